"""The daemon: lease, start-up reconcile, observer, one worker loop, clean stop.

Signal handlers (installed by the CLI) only set ``stop``; this loop notices and winds
down: the observer is stopped and joined, the catalog closed and the lease released
in ``finally`` blocks, so SIGTERM always leaves a consistent library.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable

from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from watcherd import fsops
from watcherd.config import Config
from watcherd.errors import CatalogError, LockedError
from watcherd.lease import Lease
from watcherd.library import lease_path, move_aside, open_for_writing
from watcherd.naming import shown
from watcherd.pipeline import Pipeline
from watcherd.reconcile import Progress, Report, reconcile, record_scan
from watcherd.restore import write_export
from watcherd.sandbox import DecoderPool
from watcherd.walk import walk_files
from watcherd.watcher import (
    Change,
    Handler,
    LostEventsAlarm,
    Settler,
    filesystem_type,
    inotify_watch_count,
    make_observer,
    wants_polling,
)

log = logging.getLogger("watcherd")


class _Heartbeat(threading.Thread):
    """Renews the lease on its own thread, so a long decode never lets it go stale."""

    def __init__(self, lease: Lease, interval: float, stop: threading.Event) -> None:
        super().__init__(name="watcherd-heartbeat", daemon=True)
        self.lease = lease
        self.interval = interval
        self.stop = stop
        self.lost = False
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                ok = self.lease.renew()
            except OSError as exc:
                log.warning("cannot renew the lease: %s", exc)
                continue
            if not ok:
                self.lost = True
                log.error("the library's lease was taken by another process; stopping")
                self.stop.set()
                return

    def close(self) -> None:
        self._done.set()
        self.join(timeout=5)


def warn_network_catalog(cfg: Config) -> None:
    """SQLite's locking is unreliable on network filesystems: say so, and what to do."""
    fs = filesystem_type(cfg.database_path.parent)
    if wants_polling(fs):
        log.warning(
            "the catalog %s is on a %s filesystem, where SQLite locking is unreliable; set 'database:' "
            "to a path on a local disk and watcherd will publish a read-only snapshot into %s",
            cfg.database_path,
            fs,
            cfg.state_dir,
        )


def remove_leftovers(cfg: Config) -> None:
    """Delete temporaries our own crashed runs left (only ever our reserved names)."""
    for top in (cfg.thumbs_dir, cfg.originals_dir, cfg.state_dir):
        for path in fsops.remove_temporaries(top):
            log.info("removed leftover temporary %s", shown(str(path)))


def scan_once(cfg: Config, progress: Progress | None = None, *, rebuild: bool = False) -> Report:
    """``watcherd scan`` (and ``rebuild``): take the lease, reconcile, wait for fresh files.

    A rebuild first moves the current catalog aside (it is kept, never deleted), so the
    reconcile starts from the tree, the PNG text chunks and the last export.
    """
    lease = Lease(lease_path(cfg), cfg.heartbeat, cfg.stale_after)
    lease.acquire()
    try:
        remove_leftovers(cfg)
        if rebuild and cfg.database_path.exists():
            aside = move_aside(cfg.database_path, "replaced")
            log.warning("moved the catalog to %s; rebuilding it from the tree", aside)
        catalog = open_for_writing(cfg)
        sandbox = DecoderPool(cfg.worker_count, cfg.decode_timeout, cfg.decode_memory)
        try:
            pipeline = Pipeline(cfg, catalog, render=sandbox)
            reason = "rebuild" if rebuild else "scan"
            report = reconcile(pipeline, reason=reason, settle=cfg.settle, progress=progress)
            settler = Settler(cfg.settle)
            for path in report.deferred:
                settler.touch(path, time.monotonic())
            if settler.pending:
                started = time.monotonic()
                while settler.pending:
                    time.sleep(settler.next_due(time.monotonic()))
                    ready, _ = settler.poll(time.monotonic(), time.time())
                    for _, result in pipeline.process_all(ready):
                        report.add(result.outcome)
                report.seconds += time.monotonic() - started
                record_scan(catalog, report, reason)
            write_export(cfg, catalog, time.time())
            if cfg.snapshot_path is not None:
                catalog.publish(cfg.snapshot_path)
            return report
        finally:
            sandbox.close()
            catalog.close()
    finally:
        lease.release()


class _WhenChanged:
    """Run a job after the catalog changed, at most once per ``interval`` unless forced."""

    def __init__(self, interval: float, failure: str) -> None:
        self.interval = interval
        self.failure = failure
        self.done_at = 0.0
        self.done_changes = -1

    def run(self, changes: int, force: bool, job: Callable[[], object]) -> None:
        """Do ``job`` if due; a failure is logged and tried again next time."""
        now = time.monotonic()
        if changes == self.done_changes or (not force and now - self.done_at < self.interval):
            return
        try:
            job()
        except Exception as exc:  # a side job: it must never take the daemon down
            log.warning("%s: %s", self.failure, exc, exc_info=not isinstance(exc, (CatalogError, OSError)))
            return
        self.done_at, self.done_changes = now, changes


class Daemon:
    """``watcherd run``: watch until ``stop`` is set."""

    def __init__(self, cfg: Config, stop: threading.Event, now: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.stop = stop
        self.now = now
        self.changes: queue.Queue[Change] = queue.Queue()
        self.settler = Settler(cfg.settle)
        self.last_scan = 0.0
        self.observer: BaseObserver | None = None
        self.observer_mode = cfg.observer
        self.rescan_reason: str | None = None
        self.folders = 0
        self.watch_check_at: float | None = None
        self.confirmed_short = False
        self.export = _WhenChanged(cfg.export_interval, "cannot write the catalog export")
        self.snapshot = _WhenChanged(cfg.publish_interval, "cannot publish the catalog snapshot")
        self.watch_counter: Callable[[], int | None] = inotify_watch_count
        self.internal_errors = 0

    def _start_observer(self) -> BaseObserver:
        assert self.cfg.root is not None
        observer = make_observer(self.observer_mode, self.cfg.root)
        handler = Handler(self.changes)
        observer.schedule(handler, str(self.cfg.thumbs_dir), recursive=True)
        for source in self.cfg.source_dirs:
            if source.is_dir():
                observer.schedule(handler, str(source), recursive=True)
        observer.start()
        return observer

    def _full_scan(self, pipeline: Pipeline, reason: str) -> None:
        log.info("full scan (%s)", reason)
        report = reconcile(pipeline, reason=reason, settle=self.cfg.settle)
        now = time.monotonic()
        for path in report.deferred:
            self.settler.touch(path, now)
        for path in report.retry:
            self.settler.retry(path, now)
        self.last_scan = now
        self.folders = report.folders
        self.watch_check_at = now  # compare watches with folders at the next turn
        self._export(pipeline, force=True)
        self._publish(pipeline, force=True)
        summary = ", ".join(f"{k}={v}" for k, v in sorted(report.counts.items()))
        log.info("full scan done in %.2fs: %s", report.seconds, summary or "nothing to do")

    def _apply(self, pipeline: Pipeline, change: Change) -> None:
        now = time.monotonic()
        log.debug("event %s %s", change.kind, shown(str(change.path)))
        if change.kind == "rescan":
            if self.rescan_reason is None:
                log.warning("events may have been lost (%s); a full scan follows", change.reason)
            self.rescan_reason = change.reason
            return
        if change.kind == "moved":
            # A thumbnail dragged on quickly still earns the folder it passed through.
            pipeline.visited(change.path)
            if change.src is not None:
                pipeline.gone(change.src)
        if change.kind in ("touch", "moved"):
            if pipeline.place(change.path) is None:
                return
            if pipeline.is_known_thumbnail(change.path):
                pipeline.process(change.path)  # a rename: nothing to decode, no need to settle
            else:
                self.settler.touch(change.path, now)
        elif change.kind == "gone":
            pipeline.gone(change.path)
        elif change.kind == "gone_dir":
            pipeline.gone_dir(change.path)
        elif change.kind == "scan_dir":
            if pipeline.place(change.path) is None:
                return
            # A folder moved in: its known thumbnails are records to update, not files
            # to settle and decode; a 10k-thumbnail folder costs one commit, not 10k.
            for path in pipeline.follow(list(walk_files(change.path, pipeline.cfg))):
                self.settler.touch(path, now)

    def _guarded(self, path: object, job: Callable[[], object]) -> None:
        """Run one step of the loop; a bug met on one file is logged, never the end of the daemon.

        Catalog and lease failures still stop the daemon: carrying on without a
        catalog or without the lease would be worse than stopping.
        """
        try:
            job()
        except (CatalogError, LockedError):
            raise
        except Exception:
            self.internal_errors += 1
            log.exception("internal error while handling %s; carrying on", shown(str(path)) if path else "a batch")

    def _process_ready(self, pipeline: Pipeline) -> None:
        ready, vanished = self.settler.poll(time.monotonic(), time.time())
        for path in vanished:
            pipeline.gone(path)
        results = pipeline.process_all(ready)
        try:
            for path, result in results:
                if result.retry:
                    self.settler.retry(path, time.monotonic(), limit=12)
                else:
                    self.settler.done(path)
                if self.stop.is_set():
                    return  # the rest waits for the next start-up scan
        finally:
            results.close()

    def run(self) -> int:
        """Hold the lease and watch; return the exit code."""
        cfg = self.cfg
        lease = Lease(lease_path(cfg), cfg.heartbeat, cfg.stale_after)
        lease.acquire()
        heartbeat = _Heartbeat(lease, cfg.heartbeat, self.stop)
        heartbeat.start()
        try:
            remove_leftovers(cfg)
            warn_network_catalog(cfg)
            catalog = open_for_writing(cfg)
            sandbox = DecoderPool(cfg.worker_count, cfg.decode_timeout, cfg.decode_memory)
            sandbox.warm()
            try:
                pipeline = Pipeline(cfg, catalog, now=self.now, render=sandbox)
                # Start watching before the start-up scan, so nothing that arrives
                # during the scan is missed; duplicates are harmless (idempotent).
                alarm = LostEventsAlarm(self.changes)
                logging.getLogger("watchdog").addHandler(alarm)
                try:
                    self.observer = self._start_observer()
                    log.info("watching %s (observer: %s)", cfg.thumbs_dir, type(self.observer).__name__)
                    self._full_scan(pipeline, "start-up")
                    self._loop(pipeline)
                    self._export(pipeline, force=True)
                    self._publish(pipeline, force=True)
                finally:
                    logging.getLogger("watchdog").removeHandler(alarm)
                    self._stop_observer()
            finally:
                sandbox.close()
                catalog.close()
        finally:
            heartbeat.close()
            lease.release()
        if heartbeat.lost:
            raise LockedError("stopped: another process took the library's lease")
        log.info("stopped")
        return 0

    def _export(self, pipeline: Pipeline, *, force: bool = False) -> None:
        """Write the catalog export when it changed, at most every ``export_interval``."""
        catalog = pipeline.catalog
        self.export.run(catalog.changes, force, lambda: write_export(self.cfg, catalog, self.now()))

    def _publish(self, pipeline: Pipeline, *, force: bool = False) -> None:
        """Publish the snapshot for other hosts when it changed, at most every ``publish_interval``."""
        dest = self.cfg.snapshot_path
        if dest is not None:
            catalog = pipeline.catalog
            self.snapshot.run(catalog.changes, force, lambda: catalog.publish(dest))

    def _stop_observer(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=10)
            self.observer = None

    def _check_watches(self, pipeline: Pipeline) -> None:
        """Fall back to polling when inotify holds fewer watches than there are folders.

        With ``fs.inotify.max_user_watches`` too low, watchdog starts without a word
        and files in the unwatched folders are never reported.
        """
        now = time.monotonic()
        if self.watch_check_at is None or now < self.watch_check_at:
            return
        self.watch_check_at = None
        if isinstance(self.observer, PollingObserver) or self.observer is None:
            return
        watches = self.watch_counter()
        if watches is None or watches >= self.folders:
            self.confirmed_short = False
            return
        if not self.confirmed_short:
            self.confirmed_short = True  # folders may be brand new: look again shortly
            self.watch_check_at = now + 2.0
            return
        log.error(
            "only %d inotify watches for %d folders (raise fs.inotify.max_user_watches); "
            "switching to the polling observer",
            watches,
            self.folders,
        )
        self._stop_observer()
        self.observer_mode = "polling"
        self.observer = self._start_observer()
        self._full_scan(pipeline, "inotify watch limit")

    def _loop(self, pipeline: Pipeline) -> None:
        while not self.stop.is_set():
            timeout = self.settler.next_due(time.monotonic())
            try:
                change = self.changes.get(timeout=timeout)
            except queue.Empty:
                pass
            else:
                self._guarded(change.path, functools.partial(self._apply, pipeline, change))
                while True:
                    try:
                        nxt = self.changes.get_nowait()
                    except queue.Empty:
                        break
                    self._guarded(nxt.path, functools.partial(self._apply, pipeline, nxt))
            self._guarded(None, lambda: self._process_ready(pipeline))
            if self.observer is not None and not self.observer.is_alive() and not self.stop.is_set():
                log.error("the filesystem observer stopped; restarting it and rescanning")
                self._stop_observer()
                self.observer = self._start_observer()
                self._full_scan(pipeline, "observer restarted")
            if self.rescan_reason is not None and not self.stop.is_set():
                reason, self.rescan_reason = self.rescan_reason, None
                self._full_scan(pipeline, reason)
            self._check_watches(pipeline)
            self._export(pipeline)
            self._publish(pipeline)
            interval = self.cfg.rescan_interval
            if interval > 0 and time.monotonic() - self.last_scan >= interval:
                self._full_scan(pipeline, "periodic")
