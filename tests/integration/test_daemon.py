"""The daemon with a real watchdog observer on a temporary tree."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import canonical_files, drop, encode, scene, sha, table, wait_for, write
from watcherd.commands.library import Library
from watcherd.core.config import Config
from watcherd.run.daemon import Daemon


class Running:
    """A daemon on its own thread, plus ways to look at its catalog."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.stop = threading.Event()
        self.code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="test-daemon")
        self.daemon = Daemon(cfg, self.stop)
        self.sentinels: list[str] = []

    def _run(self) -> None:
        try:
            self.code = self.daemon.run()
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def images(self) -> list[dict[str, Any]]:
        return table(self.cfg.database_path, "images")

    def by_name(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in self.images()}

    def collisions(self) -> list[dict[str, Any]]:
        return table(self.cfg.database_path, "collisions")

    def errors(self) -> list[dict[str, Any]]:
        return table(self.cfg.database_path, "errors")

    def handled_so_far(self) -> None:
        """Drop a fresh image and wait until it is ingested and filed.

        Its events come after every earlier event (one inotify queue, one FIFO of
        changes) and it settles after every file touched before it, so once it is
        filed the daemon has handled everything that happened before this call.
        """
        name = f"sentinel-{len(self.sentinels)}.jpg"
        self.sentinels.append(name)
        drop(self.cfg.thumbs_dir / name, seed=90_000 + len(self.sentinels))
        wait_for(
            lambda: [r for r in self.images() if r["original_filename"] == name and r["moving_from"] is None],
            what=f"{name} ingested",
        )

    def user_images(self) -> list[dict[str, Any]]:
        """Records of the test's own images (sentinels left out)."""
        return [r for r in self.images() if r["original_filename"] not in self.sentinels]

    def tagged(self, name: str, tag: str) -> Callable[[], bool]:
        """A condition: the record of ``name`` carries ``tag`` (no record yet: not yet; a thumbnail
        is published while its batch works, and its record is durable once the batch commits)."""
        return lambda: tag in self.by_name().get(name, {}).get("tags", [])

    def scanned(self) -> bool:
        """True once a full scan has been recorded in ``meta``."""
        return any(isinstance(m, dict) and "reason" in m for m in table(self.cfg.database_path, "meta"))

    def last_scan_reason(self) -> str:
        scans = [m for m in table(self.cfg.database_path, "meta") if isinstance(m, dict) and "reason" in m]
        return str(scans[0]["reason"]) if scans else ""


def start(cfg: Config, watch_counter: Callable[[], int | None] | None = None) -> Running:
    r = Running(cfg)
    if watch_counter is not None:
        r.daemon.watch_counter = watch_counter
    r.thread.start()
    wait_for(r.scanned, what="start-up scan")
    return r


@pytest.fixture
def daemon(cfg: Config) -> Iterator[Running]:
    r = start(cfg)
    yield r
    r.stop.set()
    r.thread.join(timeout=20)
    assert not r.thread.is_alive()
    assert r.error is None, r.error
    assert r.code == 0


def test_dropped_image_becomes_a_thumbnail(cfg: Config, daemon: Running) -> None:
    src = drop(cfg.thumbs_dir / "cats" / "tom.jpg", seed=1)
    digest = sha(src)
    (rec,) = wait_for(lambda: [r for r in daemon.images() if r["moving_from"] is None], what="ingest")
    assert rec["tags"] == ["cats", "320x240"]
    assert (cfg.root / rec["path"]).is_file()
    assert not src.exists()
    assert sha(cfg.root / rec["original"]) == digest


def test_slow_writer_is_read_once_after_the_last_byte(cfg: Config, daemon: Running) -> None:
    data = encode(scene((800, 600), seed=2), "PNG")
    dest = cfg.thumbs_dir / "slow.png"
    chunks = 8
    step = len(data) // chunks + 1
    with open(dest, "wb") as fh:
        for i in range(chunks):
            fh.write(data[i * step : (i + 1) * step])
            fh.flush()
            time.sleep(0.1)  # slower than nothing, faster than settle between chunks
    (rec,) = wait_for(daemon.images, what="ingest")
    assert rec["sha256"] == hashlib.sha256(data).hexdigest()
    daemon.handled_so_far()  # any late read of the slow file would have happened by now
    assert daemon.errors() == []
    assert daemon.collisions() == []
    assert [r["sha256"] for r in daemon.user_images()] == [rec["sha256"]]


def test_writer_pausing_longer_than_settle_is_not_an_error(cfg: Config, daemon: Running) -> None:
    data = encode(scene((1600, 1200), seed=3), "JPEG", quality=95)
    dest = cfg.thumbs_dir / "paused.jpg"
    step = len(data) // 4 + 1
    with open(dest, "wb") as fh:
        for i in range(4):
            fh.write(data[i * step : (i + 1) * step])
            fh.flush()
            time.sleep(cfg.settle * 3)  # long pauses: the daemon will see a truncated file
    (rec,) = wait_for(daemon.images, timeout=30, what="ingest after the last chunk")
    assert rec["sha256"] == hashlib.sha256(data).hexdigest()
    assert daemon.errors() == [] and daemon.collisions() == []


def test_moves_accumulate_tags(cfg: Config, daemon: Running) -> None:
    drop(cfg.thumbs_dir / "a.jpg", seed=3)
    wait_for(lambda: canonical_files(cfg.thumbs_dir), what="thumbnail")
    thumb = canonical_files(cfg.thumbs_dir)[0]
    for folder in ("cute", "orange"):
        (cfg.thumbs_dir / folder).mkdir()
        dest = cfg.thumbs_dir / folder / thumb.name
        os.rename(thumb, dest)
        thumb = dest
        wait_for(daemon.tagged(thumb.name, folder), what=f"tag {folder}")
    rec = daemon.by_name()[thumb.name]
    assert rec["tags"] == ["320x240", "cute", "orange"]
    assert rec["path"] == f"thumbs/orange/{thumb.name}"
    assert rec["state"] == "present"


def test_quick_drags_through_existing_folders_still_tag(cfg: Config) -> None:
    for folder in ("a", "b", "c"):
        (cfg.thumbs_dir / folder).mkdir(parents=True)
    r = start(cfg)
    try:
        drop(cfg.thumbs_dir / "x.jpg", seed=40)
        wait_for(lambda: r.images() and not r.images()[0]["moving_from"], what="ingest")
        thumb = canonical_files(cfg.thumbs_dir)[0]
        cur = thumb
        for folder in ("a", "b", "c"):
            nxt = cfg.thumbs_dir / folder / thumb.name
            os.rename(cur, nxt)
            cur = nxt
        os.rename(cur, thumb)  # home again within milliseconds
        wait_for(lambda: r.images()[0]["tags"] == ["320x240", "a", "b", "c"], what="all three tags")
        assert r.images()[0]["path"] == f"thumbs/{thumb.name}"
    finally:
        r.stop.set()
        r.thread.join(timeout=20)
    assert r.code == 0


def test_folder_moves_within_into_and_out_of_the_tree(cfg: Config, daemon: Running, tmp_path: Path) -> None:
    for i in range(5):
        drop(cfg.thumbs_dir / "box" / f"{i}.jpg", seed=10 + i)
    wait_for(lambda: len([r for r in daemon.images() if not r["moving_from"]]) == 5, what="5 ingests")

    os.rename(cfg.thumbs_dir / "box", cfg.thumbs_dir / "crate")
    wait_for(lambda: all(r["path"].startswith("thumbs/crate/") for r in daemon.images()), what="dir rename")
    assert all(r["tags"] == ["box", "320x240", "crate"] for r in daemon.images())

    outside = tmp_path / "outside"
    shutil.move(str(cfg.thumbs_dir / "crate"), outside)
    wait_for(lambda: all(r["state"] == "missing" for r in daemon.images()), what="dir moved out")

    incoming = tmp_path / "incoming"
    for i in range(3):
        drop(incoming / f"n{i}.jpg", seed=30 + i)
    os.rename(incoming, cfg.thumbs_dir / "incoming")
    wait_for(lambda: len(daemon.images()) == 8, what="dir moved in")
    new = [r for r in daemon.images() if r["path"].startswith("thumbs/incoming/")]
    assert len(new) == 3 and all("incoming" in r["tags"] for r in new)


def test_many_drops_give_one_record_each_and_no_rework(cfg: Config, daemon: Running) -> None:
    n = 30
    for i in range(n):
        drop(cfg.thumbs_dir / f"img{i:02d}.jpg", seed=100 + i)
    wait_for(lambda: len([r for r in daemon.images() if not r["moving_from"]]) == n, timeout=60, what="all ingested")
    daemon.handled_so_far()  # the events of the daemon's own writes are handled by now: no rework
    assert len(daemon.user_images()) == n
    assert daemon.collisions() == [] and daemon.errors() == []
    assert len(canonical_files(cfg.thumbs_dir)) == n + 1
    assert len(list(cfg.originals_dir.glob("*.jpg"))) == n + 1


def test_download_then_rename(cfg: Config, daemon: Running) -> None:
    part = write(cfg.thumbs_dir / "photo.jpg.crdownload", encode(scene(seed=5)))
    daemon.handled_so_far()  # the partial download has been seen, and settled, by now
    assert daemon.user_images() == [] and part.exists()
    assert daemon.errors() == []
    os.rename(part, cfg.thumbs_dir / "photo.jpg")
    wait_for(daemon.images, what="ingest after rename")


def test_collision_is_flagged_and_everything_kept(cfg: Config, daemon: Running) -> None:
    data = encode(scene(seed=6))
    write(cfg.thumbs_dir / "a.jpg", data)
    wait_for(lambda: [r for r in daemon.images() if not r["moving_from"]], what="first")
    write(cfg.thumbs_dir / "b.jpg", data)
    (col,) = wait_for(daemon.collisions, what="collision")
    assert col["kind"] == "exact"
    wait_for(lambda: not daemon.collisions()[0]["newcomer"]["moving_from"], what="collision original moved")
    stored = [p for p in cfg.originals_dir.rglob("*.jpg")]
    assert len(stored) == 2 and all(p.read_bytes() == data for p in stored)


def test_bad_file_is_counted_and_daemon_keeps_going(cfg: Config, daemon: Running) -> None:
    bad = write(cfg.thumbs_dir / "bad.jpg", b"this is text")
    wait_for(daemon.errors, what="error recorded")
    drop(cfg.thumbs_dir / "good.jpg", seed=7)
    wait_for(daemon.images, what="good one ingested")
    assert bad.read_bytes() == b"this is text"


def test_errors_retry_makes_the_running_daemon_read_the_files_again(cfg: Config) -> None:
    big = drop(cfg.thumbs_dir / "big.jpg", scene((640, 480), seed=14))
    os.utime(big, (time.time() - 3600,) * 2)
    first = start(dataclasses.replace(cfg, max_file_size=1000))  # too small for the photo
    try:
        (err,) = wait_for(first.errors, what="the photo refused")
        assert err["reason"].startswith("file too large") and err["attempts"] == 1
    finally:
        first.stop.set()
        first.thread.join(timeout=20)
    r = start(cfg)  # a config that would take it: a start-up scan does not read it again
    try:
        wait_for(lambda: r.daemon.last_scan > 0, what="this daemon's start-up scan")  # (meta holds the first's)
        assert [e["attempts"] for e in r.errors()] == [1] and r.images() == []
        assert Library(cfg).retry_errors() == {"retried": ["thumbs/big.jpg"]}
        (rec,) = wait_for(r.images, what="the photo read again and ingested")
        assert rec["original_filename"] == "big.jpg" and r.errors() == []
    finally:
        r.stop.set()
        r.thread.join(timeout=20)
    assert (first.code, r.code) == (0, 0)


def test_deleted_thumbnail_is_marked_missing(cfg: Config, daemon: Running) -> None:
    drop(cfg.thumbs_dir / "a.jpg", seed=8)
    thumb = wait_for(lambda: canonical_files(cfg.thumbs_dir), what="thumbnail")[0]
    wait_for(lambda: daemon.images() and not daemon.images()[0]["moving_from"], what="record")
    thumb.unlink()
    wait_for(lambda: daemon.images()[0]["state"] == "missing", what="missing")


def test_source_inbox(cfg: Config, daemon: Running) -> None:
    src = drop(cfg.source_dirs[0] / "s.jpg", seed=9)
    (rec,) = wait_for(daemon.images, what="source ingest")
    assert rec["source"] is True and rec["original"] == "source/s.jpg"
    assert src.exists() and rec["path"].count("/") == 1


def test_polling_observer(cfg: Config) -> None:
    r = start(dataclasses.replace(cfg, observer="polling"))
    try:
        drop(cfg.thumbs_dir / "p" / "a.jpg", seed=11)
        (rec,) = wait_for(r.images, what="ingest with polling")
        assert rec["tags"] == ["p", "320x240"]
    finally:
        r.stop.set()
        r.thread.join(timeout=20)
    assert r.code == 0


def test_start_up_reconcile_sees_what_happened_while_down(cfg: Config) -> None:
    r = start(cfg)
    drop(cfg.thumbs_dir / "a.jpg", seed=12)
    wait_for(lambda: r.images() and not r.images()[0]["moving_from"], what="ingest")
    r.stop.set()
    r.thread.join(timeout=20)
    thumb = canonical_files(cfg.thumbs_dir)[0]
    (cfg.thumbs_dir / "later").mkdir()
    os.rename(thumb, cfg.thumbs_dir / "later" / thumb.name)
    drop(cfg.thumbs_dir / "b.jpg", seed=13)
    r = start(cfg)
    try:
        wait_for(lambda: len(r.images()) == 2, what="b ingested at start-up")
        assert r.by_name()[thumb.name]["tags"] == ["320x240", "later"]
    finally:
        r.stop.set()
        r.thread.join(timeout=20)


def test_watchdog_warning_triggers_a_full_scan(cfg: Config, daemon: Running) -> None:
    logging.getLogger("watchdog.observers.inotify_c").warning("Inotify queue overflowed; filesystem events were lost")
    wait_for(lambda: daemon.last_scan_reason().startswith("watchdog: Inotify queue overflowed"), what="rescan")


def test_dead_observer_is_restarted_and_the_tree_rescanned(cfg: Config, daemon: Running) -> None:
    observer = daemon.daemon.observer
    assert observer is not None
    observer.stop()  # as when the emitter dies after an OSError on a share that went away
    observer.join()
    wait_for(lambda: daemon.last_scan_reason() == "observer restarted", what="restart")
    drop(cfg.thumbs_dir / "after.jpg", seed=50)
    wait_for(daemon.images, what="ingest by the new observer")


def test_too_few_inotify_watches_falls_back_to_polling(cfg: Config) -> None:
    (cfg.thumbs_dir / "a" / "b").mkdir(parents=True)
    r = start(cfg, watch_counter=lambda: 1)
    try:
        wait_for(lambda: r.last_scan_reason() == "inotify watch limit", what="fallback")
        assert type(r.daemon.observer).__name__ == "PollingObserver"
        drop(cfg.thumbs_dir / "a" / "b" / "x.jpg", seed=51)
        (rec,) = wait_for(r.images, what="ingest while polling")
        assert rec["tags"] == ["a", "b", "320x240"]
    finally:
        r.stop.set()
        r.thread.join(timeout=20)
    assert r.code == 0


def test_local_catalog_is_published_for_other_hosts(cfg: Config, tmp_path: Path) -> None:
    local = dataclasses.replace(cfg, database=str(tmp_path / "local" / "catalog.sqlite"), publish_interval=1.0)
    r = start(local)
    try:
        drop(cfg.thumbs_dir / "a.jpg", seed=60)
        snapshot = cfg.state_dir / "catalog.sqlite"
        wait_for(lambda: [x for x in table(snapshot, "images") if not x["moving_from"]], what="published snapshot")
    finally:
        r.stop.set()
        r.thread.join(timeout=20)
    assert r.code == 0
    assert len(table(tmp_path / "local" / "catalog.sqlite", "images")) == 1


def test_reader_holding_the_catalog_delays_but_loses_no_write(cfg: Config, daemon: Running) -> None:
    import sqlite3

    # The start-up scan's side jobs (export, the first near index) commit too: the reader
    # takes the catalog once the daemon is past them, so what it delays is the ingest below.
    daemon.handled_so_far()
    reader = sqlite3.connect(cfg.database_path, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM images").fetchone()  # SHARED lock held
    try:
        for i in range(5):
            drop(cfg.thumbs_dir / f"r{i}.jpg", seed=70 + i)
        # Files arrive and are decoded while the reader holds the file: a thumbnail is
        # published before its record is committed, and that commit must now wait.
        wait_for(lambda: canonical_files(cfg.thumbs_dir), what="a thumbnail written under the reader's lock")
    finally:
        reader.execute("COMMIT")
        reader.close()
    wait_for(lambda: len([r for r in daemon.user_images() if not r["moving_from"]]) == 5, what="all five recorded")
    assert daemon.errors() == []


def test_a_bug_met_on_one_file_is_logged_and_the_daemon_carries_on(
    cfg: Config, daemon: Running, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from watcherd.flow.pipeline import Pipeline

    real = Pipeline.process

    def buggy(self: Pipeline, path: Path) -> object:
        if path.name == "trigger.jpg":
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "a bug we have not met yet")
        return real(self, path)

    monkeypatch.setattr(Pipeline, "process", buggy)
    with caplog.at_level(logging.ERROR, logger="watcherd"):
        drop(cfg.thumbs_dir / "trigger.jpg", seed=71)
        wait_for(lambda: daemon.daemon.internal_errors > 0, what="the bug to be met")
        drop(cfg.thumbs_dir / "after.jpg", seed=72)
        wait_for(lambda: any(r["original_filename"] == "after.jpg" for r in daemon.images()), what="the next file")
    assert daemon.thread.is_alive()
    assert (cfg.thumbs_dir / "trigger.jpg").exists()  # left as it was
    assert any("internal error while handling" in r.getMessage() for r in caplog.records)
