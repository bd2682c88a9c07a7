"""One change in, one outcome out: the pipeline every dropped, moved or deleted file goes
through (ingest, moves), the writer's loop body, the full reconcile, and restoring what only
the catalog knew from its export.
"""

__all__ = ["cropfill", "ingest", "moves", "pipeline", "reconcile", "restore", "worker"]
