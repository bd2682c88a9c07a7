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


def test_a_folder_moved_is_one_scan_of_its_new_place_not_a_move_per_file(tmp_path: Path) -> None:
    """watchdog makes up a moved event for every file under a folder moved; the folder's own
    SCAN_DIR reads it whole, so those are dropped instead of queued 10,000 times."""
    import queue
    import time

    from watcherd.core.events import Change, ChangeKind
    from watcherd.run.watcher import Handler

    (tmp_path / "cats" / "deep").mkdir(parents=True)
    for i in range(20):
        (tmp_path / "cats" / ("deep" if i % 2 else "") / f"{i}.png").write_bytes(b"x")
    out: queue.Queue[Change] = queue.Queue()
    observer = Observer()
    observer.schedule(Handler(out), str(tmp_path), recursive=True)
    observer.start()
    try:
        (tmp_path / "cats").rename(tmp_path / "dogs")
        (tmp_path / "dogs" / "new.png").write_bytes(b"y")  # a file of its own, after the move
        seen: list[Change] = []
        deadline = time.monotonic() + 30
        while not any(c.path.name == "new.png" for c in seen) and time.monotonic() < deadline:
            try:
                seen.append(out.get(timeout=0.5))
            except queue.Empty:
                continue
    finally:
        observer.stop()
        observer.join()
    kinds = {(c.kind, c.path.relative_to(tmp_path).as_posix()) for c in seen}
    assert {(ChangeKind.SCAN_DIR, "dogs"), (ChangeKind.GONE_DIR, "cats")} <= kinds
    assert not [c for c in seen if c.kind is ChangeKind.MOVED]
    assert (ChangeKind.TOUCH, "dogs/new.png") in kinds


def test_the_observer_watcherd_makes_keeps_back_the_made_up_moves_of_a_moved_folder(tmp_path: Path) -> None:
    """Not even queued: the folder's move reaches a handler, its files' made-up moves do not."""
    import threading

    from watchdog.events import FileSystemEvent

    from watcherd.run.watcher import make_observer

    (tmp_path / "cats").mkdir()
    for i in range(20):
        (tmp_path / "cats" / f"{i}.png").write_bytes(b"x")
    events: list[FileSystemEvent] = []
    done = threading.Event()

    class Recorder(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            events.append(event)
            if str(event.src_path).endswith("new.png"):
                done.set()

    observer = make_observer("inotify", tmp_path)
    observer.schedule(Recorder(), str(tmp_path), recursive=True)
    observer.start()
    try:
        (tmp_path / "cats").rename(tmp_path / "dogs")
        (tmp_path / "dogs" / "new.png").write_bytes(b"y")
        assert done.wait(30)
    finally:
        observer.stop()
        observer.join()
    moved = [(e.is_directory, e.is_synthetic) for e in events if e.event_type == "moved"]
    assert moved == [(True, False)]  # the folder's own move, nothing made up


def test_the_observer_is_not_told_of_files_only_read(tmp_path: Path) -> None:
    """A file read (by watcherd, or a file manager drawing thumbnails) is no change: the
    observer ``watch`` starts asks inotify for none of those opens, nor for folders' own
    "modified", so they cost no thread any time."""
    import threading

    from watchdog.events import FileSystemEvent

    from watcherd.run.watcher import watch

    (tmp_path / "cats").mkdir()
    old = tmp_path / "cats" / "old.png"
    old.write_bytes(b"x")
    events: list[FileSystemEvent] = []
    done = threading.Event()

    class Recorder(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            events.append(event)
            if str(event.src_path).endswith("new.png") and event.event_type == "closed":
                done.set()

    observer, _ = watch("inotify", tmp_path, [tmp_path], Recorder())
    try:
        for _ in range(3):
            old.read_bytes()
        (tmp_path / "cats" / "new.png").write_bytes(b"y")
        assert done.wait(30)
    finally:
        observer.stop()
        observer.join()
    kinds = {(e.event_type, e.is_directory) for e in events}
    assert {("created", False), ("closed", False)} <= kinds
    assert not kinds & {("opened", False), ("closed_no_write", False), ("modified", True)}
