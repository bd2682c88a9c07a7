"""``watcherd run``: lease, start-up reconcile, observer, the worker loop, clean stop.

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
from pathlib import Path

from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from watcherd.catalog import open_for_writing
from watcherd.commands import edits, mailbox
from watcherd.core.config import Config
from watcherd.core.errors import CatalogError, ClusterError, LockedError, StopError
from watcherd.core.events import Change, ChangeKind
from watcherd.core.naming import shown
from watcherd.decode.sandbox import DecoderPool
from watcherd.filing import tagfiles
from watcherd.flow import cropfill, restore
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile
from watcherd.flow.worker import Worker
from watcherd.fs.layout import lease_path, remove_leftovers, requests_dir
from watcherd.fs.lease import Heartbeat, Lease, Role, beating
from watcherd.fs.walk import count_waiting
from watcherd.near.builder import Upkeep
from watcherd.run.watcher import (
    Handler,
    LostEventsAlarm,
    filesystem_type,
    identities,
    inotify_watch_count,
    wants_polling,
    watch,
)

log = logging.getLogger("watcherd")

REQUEST_POLL = 0.2  # seconds between looks at the requests folder (one scandir each)


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


def warn_client_cache(cfg: Config) -> None:
    """A FUSE client (rclone...) may hold writes back: the lease must still reach the server in time."""
    assert cfg.root is not None
    fs = filesystem_type(cfg.root)
    if fs.startswith("fuse."):
        log.warning(
            "the library is on a %s mount: its client must send writes to the server in less than the "
            "heartbeat (%gs), or other hosts never see this daemon's lease (docs: samba.md)",
            fs,
            cfg.heartbeat,
        )


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
        self.last_scan = 0.0
        self.observer: BaseObserver | None = None
        self.observer_mode = cfg.observer
        self.rescan_reason: str | None = None
        self.folders = 0
        self.watch_check_at: float | None = None
        self.confirmed_short = False
        self.export = _WhenChanged(cfg.export_interval, "cannot write the catalog export")
        self.snapshot = _WhenChanged(cfg.publish_interval, "cannot publish the catalog snapshot")
        self.near = Upkeep(cfg.state_dir, cfg.database_path)  # each index builds in a background process
        self.watch_counter: Callable[[], int | None] = inotify_watch_count
        self.watched: dict[Path, tuple[int, int] | None] = {}  # each watched folder's identity when watched
        self.worker: Worker | None = None
        self.requests_at = 0.0
        self.heartbeat: Heartbeat | None = None
        self.fills: cropfill.Fills | None = None

    @property
    def internal_errors(self) -> int:
        """Bugs met and survived so far (each logged with its traceback)."""
        return self.worker.pipeline.internal_errors if self.worker is not None else 0

    def run(self) -> int:
        """Hold the lease and watch; return the exit code."""
        cfg = self.cfg
        lease = Lease(lease_path(cfg), cfg.heartbeat, cfg.stale_after, role=Role.DAEMON)
        if not lease.acquire(self.stop):  # stopped while a scan or a command held it
            log.info("stopped before starting")
            return 0
        with beating(lease, self.stop) as beat:
            self.heartbeat = beat
            remove_leftovers(cfg)
            warn_network_catalog(cfg)
            warn_client_cache(cfg)
            opened = open_for_writing(cfg, reconciles=True)
            decoders = DecoderPool(cfg.worker_count, cfg.decode_timeout, cfg.decode_memory)
            decoders.warm()
            try:
                remembered = restore.remembered(cfg) if opened.fresh else None
                make = functools.partial(
                    Pipeline, cfg, opened.catalog, now=self.now, render=decoders, remembered=remembered
                )
                self.worker = Worker(make(), cfg.settle)
                self.fills = cropfill.Fills(cfg, opened.catalog, decoders)
                self._watch(self.worker, make)
            finally:
                decoders.close()
                opened.catalog.close()
        if beat.lost:
            raise LockedError("stopped: another process took the library's lease")
        log.info("stopped")
        return 0

    def _watch(self, worker: Worker, make: Callable[..., Pipeline]) -> None:
        """Start the observer, scan once, then loop until stopped."""
        # Start watching before the start-up scan, so nothing that arrives during the
        # scan is missed; duplicates are harmless (idempotent).
        alarm = LostEventsAlarm(self.changes)
        logging.getLogger("watchdog").addHandler(alarm)
        try:
            self.observer = self._start_observer()
            log.info("watching %s (observer: %s)", self.cfg.thumbs_dir, type(self.observer).__name__)
            self._startup_scan(worker, make)
            self._loop(worker)
            self._side_jobs(worker, force=True)
        finally:
            logging.getLogger("watchdog").removeHandler(alarm)
            self._stop_observer()
            self.near.stop()

    def _start_observer(self) -> BaseObserver:
        """Watch ``thumbs/`` (made again if it is gone, as at the first start) and the source folders."""
        assert self.cfg.root is not None
        folders = [self.cfg.thumbs_dir, *self.cfg.source_dirs]
        observer, self.watched = watch(self.observer_mode, self.cfg.root, folders, Handler(self.changes))
        return observer

    def _check_watched(self, worker: Worker) -> None:
        """Watch again when a watched folder is no longer the one watched: ``thumbs/`` renamed
        (inotify goes on watching it under its old name) or deleted, a new folder in its place,
        a source folder made since. Then a full scan says what left the tree."""
        if self.observer is None:
            return
        changed = [folder for folder, now in identities(list(self.watched)).items() if now != self.watched[folder]]
        if not changed:
            return
        shown_folders = ", ".join(shown(str(folder)) for folder in changed)
        log.warning("watching %s again: another folder is there now (moved, deleted or made)", shown_folders)
        self._stop_observer()
        self.observer = self._start_observer()
        self._full_scan(worker, "watched folder replaced")

    def _stop_observer(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=10)
            self.observer = None

    def _startup_scan(self, worker: Worker, make: Callable[..., Pipeline]) -> None:
        """The start-up scan; decoded on the cluster (``cluster.address``) when more than
        ``cluster.backlog`` new files wait, here otherwise or when the cluster cannot help."""
        cluster = self.cfg.cluster
        waiting = count_waiting(self.cfg) if cluster.address is not None else 0
        if cluster.address is None or waiting <= cluster.backlog:
            self._full_scan(worker, "start-up")
            return
        from watcherd.decode.cluster import ClusterDecoder, connect  # distributed is imported only now

        try:
            conn = connect(cluster.address, self.cfg.worker_count)
        except ClusterError as exc:
            log.warning("%d new files wait, but %s; decoding them here", waiting, exc)
            self._full_scan(worker, "start-up")
            return
        log.info("%d new files wait (cluster.backlog is %d): decoding them on the cluster", waiting, cluster.backlog)
        try:
            pipeline = make(remote=ClusterDecoder(conn, self.cfg))
            self._full_scan(worker, "start-up", pipeline)
            log.info("decoded %d files on the cluster", pipeline.decoder.remote_used)
        except StopError as exc:
            log.error("the start-up scan lost its cluster, so the daemon decodes the rest here (%s)", exc)
            self._full_scan(worker, "start-up, cluster lost")
        finally:
            conn.close()

    def _full_scan(self, worker: Worker, reason: str, pipeline: Pipeline | None = None) -> None:
        """Reconcile the library (through ``pipeline``, the worker's by default); files too fresh wait in ``worker``."""
        log.info("full scan (%s)", reason)

        def serve(done: int, total: int) -> None:  # commands are answered between files of a scan
            self._serve(worker)

        report = reconcile(pipeline or worker.pipeline, reason=reason, settle=self.cfg.settle, progress=serve)
        worker.wait_for(report.deferred, report.retry)
        now = time.monotonic()
        self.last_scan = now
        self.folders = report.folders
        self.watch_check_at = now  # compare watches with folders at the next turn
        if self.fills is not None:
            self.fills.again()
        self._side_jobs(worker, force=True)
        summary = ", ".join(f"{k}={v}" for k, v in sorted(report.counts.items()))
        log.info("full scan done in %.2fs: %s", report.seconds, summary or "nothing to do")

    def _apply(self, worker: Worker, change: Change) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("event %s %s", change.kind.value, shown(str(change.path)))
        if change.kind is ChangeKind.RESCAN:
            if self.rescan_reason is None:
                log.warning("events may have been lost (%s); a full scan follows", change.reason)
            self.rescan_reason = change.reason
            return
        try:
            worker.apply(change)
        except (CatalogError, LockedError):
            raise
        except Exception:
            # A bug met on one hint is logged, never the end of the daemon; the next
            # full scan looks at that path again.
            worker.pipeline.internal_errors += 1
            log.exception("internal error while handling %s; carrying on", shown(str(change.path)))

    def _serve(self, worker: Worker) -> None:
        """Apply the changes commands asked for, oldest first (also between files of a full scan).

        Each is applied in its own transaction, never inside another one; the export and
        the snapshot follow at once, so readers elsewhere see the change when the command
        returns.
        """
        now = time.monotonic()
        catalog = worker.pipeline.catalog
        if now - self.requests_at < REQUEST_POLL or catalog.in_transaction:
            return
        self.requests_at = now

        def answer(req: mailbox.Request) -> mailbox.Answer:
            done = edits.answer(self.cfg, catalog, req, worker.pipeline.decoder.render)
            for rel in edits.to_read_again(req, done):  # errors --retry: read those files again now
                self.changes.put(Change(ChangeKind.TOUCH, worker.pipeline.places.absolute(rel)))
            return done

        try:
            served = mailbox.serve(requests_dir(self.cfg), answer)
        except OSError as exc:  # an unreadable requests folder must not take the daemon down
            log.warning("cannot answer change requests: %s", exc)
            return
        if served:
            self._side_jobs(worker, force=True)

    def _side_jobs(self, worker: Worker, *, force: bool = False) -> None:
        """Export the catalog and publish its snapshot when it changed, at most every interval; keep
        the near pairs; bring sidecars and older records up to date, a chunk a turn."""
        catalog = worker.pipeline.catalog
        self.export.run(catalog.changes, force, lambda: restore.export_now(self.cfg, catalog, self.now()))
        dest = self.cfg.snapshot_path
        if dest is not None:
            self.snapshot.run(catalog.changes, force, lambda: catalog.publish(dest))
        self.near.run(catalog, time.monotonic())
        worker.pipeline.tagfiles.catch_up(tagfiles.CHUNK)  # sidecars left from the start, a chunk a turn
        if self.fills is not None and not worker.settler.pending and self.changes.empty():
            self._fill(worker, self.fills)

    def _fill(self, worker: Worker, fills: cropfill.Fills) -> None:
        """One batch of what older records lack; a bug met there ends the pass, never the daemon."""
        try:
            fills.step()
        except (CatalogError, LockedError):
            raise
        except Exception:
            worker.pipeline.internal_errors += 1
            log.exception("internal error while giving older records what they lack; left for a later pass")
            fills.give_up()

    def _check_watches(self, worker: Worker) -> None:
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
        self._full_scan(worker, "inotify watch limit")

    def _paused(self) -> bool:
        """While the lease cannot be renewed, wait (and write nothing); after, catch up with a full scan."""
        heartbeat = self.heartbeat
        if heartbeat is None:
            return False
        if heartbeat.resumed.is_set():
            heartbeat.resumed.clear()
            self.rescan_reason = "the lease is renewed again"
        if not heartbeat.paused.is_set():
            return False
        self.stop.wait(REQUEST_POLL)
        return True

    def _loop(self, worker: Worker) -> None:
        while not self.stop.is_set():
            if self._paused():
                continue
            # Idle work left (``Fills``) is done between looks at what arrives, not after a wait.
            idle_work = self.fills is not None and self.fills.busy and not worker.settler.pending
            try:
                change = self.changes.get(timeout=0.0 if idle_work else min(worker.next_due(), REQUEST_POLL))
            except queue.Empty:
                pass
            else:
                self._apply(worker, change)
                while True:
                    try:
                        nxt = self.changes.get_nowait()
                    except queue.Empty:
                        break
                    self._apply(worker, nxt)
            worker.process_ready(self.stop)
            self._serve(worker)
            if self.observer is not None and not self.observer.is_alive() and not self.stop.is_set():
                log.error("the filesystem observer stopped; restarting it and rescanning")
                self._stop_observer()
                self.observer = self._start_observer()
                self._full_scan(worker, "observer restarted")
            if self.rescan_reason is not None and not self.stop.is_set():
                reason, self.rescan_reason = self.rescan_reason, None
                self._full_scan(worker, reason)
            self._check_watched(worker)
            self._check_watches(worker)
            self._side_jobs(worker)
            interval = self.cfg.rescan_interval
            if interval > 0 and time.monotonic() - self.last_scan >= interval:
                self._full_scan(worker, "periodic")
