"""The long-running edges: ``watcherd run`` (the daemon), the watchdog observer, and
``watcherd scan``/``rebuild``.
"""

__all__ = ["daemon", "scan", "watcher"]
