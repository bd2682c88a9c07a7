"""The watcher's view of a real observer."""

from pathlib import Path

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from watcherd.run.watcher import inotify_watch_count


def test_inotify_watches_are_counted(tmp_path: Path) -> None:
    for d in ("a", "b", "c/d"):
        (tmp_path / d).mkdir(parents=True)
    before = inotify_watch_count() or 0
    observer = Observer()
    observer.schedule(FileSystemEventHandler(), str(tmp_path), recursive=True)
    observer.start()
    try:
        count = inotify_watch_count()
        assert count is not None and count - before >= 5  # tmp, a, b, c, c/d
    finally:
        observer.stop()
        observer.join()
