"""The watchdog edge: events become ``Change`` hints on a queue, nothing more.

Events are hints; the tree is the truth. The handler never touches the catalog or a
file: it only says which path may have changed. ``Settler`` then holds each path until
its size and mtime have stopped changing for ``settle`` seconds, so a file still being
written is never read half-done.
"""

from __future__ import annotations

import logging
import os
import queue
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

log = logging.getLogger("watcherd")

# Filesystems whose changes made on other hosts never reach inotify.
NETWORK_FS = (
    "cifs",
    "smb3",
    "smbfs",
    "nfs",
    "nfs4",
    "9p",
    "v9fs",
    "drvfs",
    "afs",
    "ceph",
    "glusterfs",
    "lustre",
    "virtiofs",
    "fakeowner",
    "vboxsf",
    "prl_fs",
    "vmhgfs",
)


@dataclass(frozen=True)
class Change:
    """A hint: ``touch`` (may be new or changed), ``moved`` (to ``path`` from ``src``),
    ``gone``, ``gone_dir``, ``scan_dir``, or ``rescan`` (events were lost: ``reason``)."""

    kind: str
    path: Path
    src: Path | None = None
    reason: str = ""


def _fspath(raw: str | bytes) -> Path:
    return Path(os.fsdecode(raw))


class Handler(FileSystemEventHandler):
    """Translate watchdog events into Changes on ``out``."""

    def __init__(self, out: queue.Queue[Change]) -> None:
        super().__init__()
        self.out = out

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Queue the paths an event may concern."""
        kind = event.event_type
        src = _fspath(event.src_path)
        if kind in ("opened", "closed_no_write"):
            return
        if event.is_directory:
            if kind == "moved":
                self.out.put(Change("scan_dir", _fspath(event.dest_path)))
                self.out.put(Change("gone_dir", src))
            elif kind == "deleted":
                self.out.put(Change("gone_dir", src))
            elif kind == "created":
                self.out.put(Change("scan_dir", src))
            return
        if kind == "moved":
            self.out.put(Change("moved", _fspath(event.dest_path), src))
        elif kind == "deleted":
            self.out.put(Change("gone", src))
        else:  # created, modified, closed, attrib
            self.out.put(Change("touch", src))


class LostEventsAlarm(logging.Handler):
    """Turns watchdog's warnings into a rescan request.

    An overflowed inotify queue or a watch that could not be added shows only as a
    WARNING or ERROR on watchdog's logger; events are gone by then, so the only safe
    answer is a full reconcile.
    """

    def __init__(self, out: queue.Queue[Change]) -> None:
        super().__init__(level=logging.WARNING)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        """Queue a rescan naming what watchdog said."""
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        self.out.put(Change("rescan", Path(), reason=f"watchdog: {message[:160]}"))


def inotify_watch_count() -> int | None:
    """How many inotify watches this process holds (Linux fdinfo), or None if unknown."""
    total, seen = 0, False
    try:
        names = os.listdir("/proc/self/fdinfo")
    except OSError:
        return None
    for name in names:
        try:
            with open(f"/proc/self/fdinfo/{name}", encoding="ascii", errors="replace") as fh:
                lines = [line for line in fh if line.startswith("inotify wd:")]
        except OSError:
            continue
        if lines:
            seen = True
            total += len(lines)
    return total if seen else None


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (Linux /proc/mounts), or ''."""
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    target = os.path.realpath(path)
    best, best_type = "", ""
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
            best, best_type = mount, parts[2]
    return best_type


def wants_polling(fs_type: str) -> bool:
    """True for filesystems where inotify misses changes made elsewhere."""
    return fs_type in NETWORK_FS or fs_type.startswith("fuse") or fs_type.startswith("nfs")


def make_observer(mode: str, root: Path, poll_interval: float = 1.0) -> BaseObserver:
    """A watchdog observer for ``mode`` (auto chooses polling on network filesystems)."""
    if mode == "polling":
        return PollingObserver(timeout=poll_interval)
    if mode == "auto":
        fs_type = filesystem_type(root)
        if wants_polling(fs_type):
            log.info("%s is on a %s filesystem: using the polling observer", root, fs_type)
            return PollingObserver(timeout=poll_interval)
    return Observer()


@dataclass
class _Pending:
    stamp: tuple[int, int] | None
    since: float
    not_before: float = 0.0


@dataclass
class Settler:
    """Holds paths until they have stopped changing; pure apart from ``os.stat``."""

    settle: float
    pending: dict[Path, _Pending] = field(default_factory=dict)
    attempts: dict[Path, int] = field(default_factory=dict)

    def touch(self, path: Path, now: float) -> None:
        """Note that ``path`` may have changed; its quiet period starts again."""
        entry = self.pending.get(path)
        if entry is None:
            self.pending[path] = _Pending(stamp=None, since=now)
        else:
            entry.stamp, entry.since = None, now

    def retry(self, path: Path, now: float, limit: int = 8) -> bool:
        """Try ``path`` again later with exponential backoff; False once given up."""
        attempts = self.attempts.get(path, 0) + 1
        if attempts > limit:
            self.pending.pop(path, None)
            self.attempts.pop(path, None)
            return False
        self.attempts[path] = attempts
        self.pending[path] = _Pending(
            stamp=None, since=now, not_before=now + min(60.0, self.settle + 2.0 ** (attempts - 1))
        )
        return True

    def done(self, path: Path) -> None:
        """Forget the retry history of a path that was handled."""
        self.attempts.pop(path, None)

    def poll(self, now: float, wall_now: float) -> tuple[list[Path], list[Path]]:
        """Return (paths ready to read, paths that vanished) and forget both."""
        ready: list[Path] = []
        vanished: list[Path] = []
        for path, entry in list(self.pending.items()):
            if now < entry.not_before:
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                vanished.append(path)
                del self.pending[path]
                continue
            except OSError:
                ready.append(path)  # let the pipeline report why it cannot be read
                del self.pending[path]
                continue
            stamp = (st.st_size, st.st_mtime_ns)
            if stamp != entry.stamp:
                entry.stamp, entry.since = stamp, now
                # A file whose mtime is already older than settle (a backlog, a rename
                # of a finished file) needs no further wait.
                if wall_now - st.st_mtime < self.settle:
                    continue
            elif now - entry.since < self.settle:
                continue
            ready.append(path)
            del self.pending[path]
        return ready, vanished

    def next_due(self, now: float) -> float:
        """Seconds until something may be ready (for the main loop's wait)."""
        if not self.pending:
            return 1.0
        soonest = min(max(e.not_before, e.since + self.settle) for e in self.pending.values())
        return max(0.02, min(1.0, soonest - now))
