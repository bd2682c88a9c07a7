"""The watchdog edge: events become ``Change`` hints on a queue, nothing more.

Events are hints; the tree is the truth. The handler never touches the catalog or a
file: it only says which path may have changed. Also here: choosing the observer
(polling on network filesystems), starting it on the watched folders and telling when
one of them is another folder now, and counting inotify watches.
"""

from __future__ import annotations

import logging
import os
import queue
import stat
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from watcherd.core.events import Change, ChangeKind

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


# The events ``Handler`` turns into changes; the observer is asked for these only. A file
# opened and closed without a write (watcherd reading it, a file manager drawing its
# thumbnail) and a folder's own "modified" say nothing new, and inotify then never reports
# the opens at all.
WANTED: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]


def _fspath(raw: str | bytes) -> Path:
    return Path(os.fsdecode(raw))


def made_up_move(event: FileSystemEvent) -> bool:
    """Is this one of the moves watchdog makes up for each file under a moved folder (a walk of
    the new folder)? The folder's own SCAN_DIR reads that folder whole, so 10,000 of these
    say nothing new."""
    return event.event_type == "moved" and event.is_synthetic


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
        if made_up_move(event):  # kept back by our inotify observer already; others may send them
            return
        if event.is_directory:
            if kind == "moved":
                self.out.put(Change(ChangeKind.SCAN_DIR, _fspath(event.dest_path)))
                self.out.put(Change(ChangeKind.GONE_DIR, src))
            elif kind == "deleted":
                self.out.put(Change(ChangeKind.GONE_DIR, src))
            elif kind == "created":
                self.out.put(Change(ChangeKind.SCAN_DIR, src))
            return
        if kind == "moved":
            self.out.put(Change(ChangeKind.MOVED, _fspath(event.dest_path), src))
        elif kind == "deleted":
            self.out.put(Change(ChangeKind.GONE, src))
        else:  # created, modified, closed, attrib
            self.out.put(Change(ChangeKind.TOUCH, src))


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
        self.out.put(Change(ChangeKind.RESCAN, Path(), reason=f"watchdog: {message[:160]}"))


def identities(folders: list[Path]) -> dict[Path, tuple[int, int] | None]:
    """Each folder's (device, inode), None where there is no folder: a folder renamed away and
    another made under its name differ, though inotify goes on watching the first under that name."""
    found: dict[Path, tuple[int, int] | None] = {}
    for folder in folders:
        try:
            st = os.stat(folder)
        except OSError:
            found[folder] = None
            continue
        found[folder] = (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
    return found


def watch(
    mode: str, root: Path, folders: list[Path], handler: FileSystemEventHandler
) -> tuple[BaseObserver, dict[Path, tuple[int, int] | None]]:
    """An observer started on each of ``folders`` that is there (the first is made again if it
    is gone), and their ``identities`` as watched. A folder that goes while the observer starts
    is looked for again, twice."""
    tries = 3
    while True:
        folders[0].mkdir(parents=True, exist_ok=True)
        watched = identities(folders)
        observer = make_observer(mode, root)
        for folder, identity in watched.items():
            if identity is not None:
                observer.schedule(handler, str(folder), recursive=True, event_filter=WANTED)
        try:
            observer.start()
        except (FileNotFoundError, NotADirectoryError) as exc:
            observer.stop()  # the emitters started so far
            tries -= 1
            if not tries:
                raise
            log.warning("%s went as the watcher started; looking again", exc.filename or "a folder")
            continue
        return observer, watched


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
    return _inotify_observer()


def _inotify_observer() -> BaseObserver:
    """The platform's observer; on Linux, one whose emitter keeps back ``made_up_move`` events
    before they go through the queue: 10,000 of them for a folder of 10,000 cost the writer's
    thread time while it follows the folder."""
    try:
        from watchdog.observers.inotify import InotifyEmitter, InotifyObserver
    except ImportError:  # not Linux
        return Observer()

    class Emitter(InotifyEmitter):
        def queue_event(self, event: FileSystemEvent) -> None:
            if not made_up_move(event):
                super().queue_event(event)

    class Inotify(InotifyObserver):  # "observer: Inotify" in the start-up line
        def __init__(self) -> None:
            super().__init__()
            # watchdog takes the emitter's class only through the base observer's constructor,
            # which InotifyObserver calls with its own; a test fails if this stops working.
            self._emitter_class = Emitter

    return Inotify()
