"""``watcherd scan`` and ``rebuild``: take the lease, reconcile once, ingest what settles, exit."""

from __future__ import annotations

import logging
import math
import time

from watcherd.catalog import move_aside, open_for_writing
from watcherd.commands import edits, mailbox
from watcherd.core.config import Config
from watcherd.core.outcomes import Outcome
from watcherd.decode.cluster import ClusterDecoder, Connection, connect
from watcherd.decode.sandbox import DecoderPool, Sandbox
from watcherd.flow import cropfill, restore
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import Progress, Report, reconcile, record_scan
from watcherd.flow.worker import Worker
from watcherd.fs.layout import lease_path, remove_leftovers, requests_dir
from watcherd.fs.lease import Heartbeat, Lease, Role, holding
from watcherd.near.builder import Upkeep

log = logging.getLogger("watcherd")

SCAN_RETRIES = 3  # tries of a transient failure within one scan (after 1.5, 2.5 and 4.5 s)


def scan_once(
    cfg: Config, progress: Progress | None = None, *, rebuild: bool = False, cluster: str | None = None
) -> Report:
    """Reconcile the library once and wait for the files that were too fresh to read.

    A rebuild first moves the current catalog aside (it is kept, never deleted), so the
    reconcile starts from the tree, the PNG text chunks and the last export. With a
    ``cluster`` address (or ``cluster.address`` in the config) newcomers are decoded on
    that dask cluster; the writer stays here.
    """
    with holding(Lease(lease_path(cfg), cfg.heartbeat, cfg.stale_after, role=Role.SCAN)) as beat:
        return _scan(cfg, beat, progress, rebuild, cluster)


def _scan(cfg: Config, beat: Heartbeat, progress: Progress | None, rebuild: bool, cluster: str | None) -> Report:
    conn: Connection | None = None
    try:
        address = cluster or cfg.cluster.address
        if address is not None:
            conn = connect(address, cfg.worker_count)  # distributed is imported only here
        remove_leftovers(cfg)
        if rebuild and cfg.database_path.exists():
            aside = move_aside(cfg.database_path, "replaced")
            log.warning("moved the catalog to %s; rebuilding it from the tree", aside)
        opened = open_for_writing(cfg, reconciles=True)
        catalog = opened.catalog
        catalog.guard = beat.confirm  # a commit only while the lease is still this scan's
        # On a cluster one local sandbox decodes what the workers could not (a file
        # changed since a worker read it); the cores here are the cluster's.
        decoders: DecoderPool | Sandbox = (
            Sandbox(cfg.decode_timeout, cfg.decode_memory)
            if conn is not None
            else DecoderPool(cfg.worker_count, cfg.decode_timeout, cfg.decode_memory)
        )
        try:
            remembered = restore.remembered(cfg) if opened.fresh else None
            remote = ClusterDecoder(conn, cfg) if conn is not None else None
            pipeline = Pipeline(cfg, catalog, render=decoders, remembered=remembered, remote=remote)
            reason = "rebuild" if rebuild else "scan"

            last = [0.0]

            def serve() -> None:
                # Changes commands handed over while this scan holds the lease.
                if not catalog.in_transaction:
                    last[0] = time.monotonic()
                    try:
                        mailbox.serve(requests_dir(cfg), lambda req: edits.answer(cfg, catalog, req, decoders))
                    except OSError as exc:
                        log.warning("cannot answer change requests: %s", exc)

            def hook(done: int, total: int) -> None:
                if time.monotonic() - last[0] >= 0.2:
                    serve()
                if progress is not None:
                    progress(done, total)

            report = reconcile(pipeline, reason=reason, settle=cfg.settle, progress=hook)
            # Files too fresh to read wait until they are still; a file that failed in a
            # way worth retrying (truncated while still being written, a read error) is
            # tried again a few times with backoff, then counted as what it is.
            worker = Worker(pipeline, cfg.settle, retry_limit=SCAN_RETRIES)
            worker.wait_for(report.deferred, report.retry)
            if report.retry:
                report.add(Outcome.DEFERRED, -len(report.retry))
                if report.counts.get(Outcome.DEFERRED.value) == 0:
                    del report.counts[Outcome.DEFERRED.value]
            if worker.settler.pending:
                started = time.monotonic()
                report.add_all(worker.drain())
                report.seconds += time.monotonic() - started
                record_scan(catalog, report, reason)
            if remote is not None:
                log.info("decoded %d files on the cluster", pipeline.decoder.remote_used)
            serve()
            pipeline.tagfiles.catch_up()  # every sidecar and attribute left, before the scan exits
            # Images catalogued before window hashes were kept get them from their thumbnails.
            cropfill.fill(cfg, catalog, decoders)
            # Fold the near-duplicate log into a new index when it is long (or the index is
            # missing), so a library kept by scans alone has a bounded log too; then pair.
            Upkeep(cfg.state_dir, cfg.database_path, quiet=math.inf, background=False).run(catalog, 0.0)
            cropfill.fill_exif(cfg, catalog)  # the images just paired included
            restore.save_copies(cfg, catalog, time.time())
            return report
        finally:
            decoders.close()
            catalog.close()
    finally:
        if conn is not None:
            conn.close()
