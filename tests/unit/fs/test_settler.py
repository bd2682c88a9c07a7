"""Settling: a path is handed out only once it has stopped changing."""

import os
import time
from pathlib import Path

from watcherd.fs.settle import Settler
from watcherd.run.watcher import wants_polling


def test_fresh_file_waits_for_quiet_period(tmp_path: Path) -> None:
    f = tmp_path / "a.jpg"
    f.write_bytes(b"x")
    s = Settler(settle=1.0)
    wall = time.time()
    s.touch(f, now=100.0)
    assert s.poll(100.0, wall) == ([], [])  # first look: remember size and mtime
    assert s.poll(100.5, wall) == ([], [])  # unchanged, but not for long enough
    ready, _ = s.poll(101.1, wall)
    assert ready == [f]
    assert not s.pending


def test_growing_file_restarts_the_clock(tmp_path: Path) -> None:
    f = tmp_path / "a.jpg"
    f.write_bytes(b"x")
    s = Settler(settle=1.0)
    wall = time.time()
    s.touch(f, 100.0)
    s.poll(100.0, wall)
    f.write_bytes(b"xy")  # grew
    assert s.poll(100.9, wall) == ([], [])
    assert s.poll(101.5, wall) == ([], [])  # only 0.6 s since the change was seen
    assert s.poll(102.0, wall)[0] == [f]


def test_old_file_needs_no_wait(tmp_path: Path) -> None:
    f = tmp_path / "a.jpg"
    f.write_bytes(b"x")
    os.utime(f, (1_000_000, 1_000_000))
    s = Settler(settle=5.0)
    s.touch(f, 100.0)
    assert s.poll(100.0, time.time())[0] == [f]


def test_vanished_file_is_reported(tmp_path: Path) -> None:
    s = Settler(settle=1.0)
    s.touch(tmp_path / "gone.jpg", 100.0)
    assert s.poll(100.0, time.time()) == ([], [tmp_path / "gone.jpg"])


def test_retry_backs_off_and_gives_up(tmp_path: Path) -> None:
    f = tmp_path / "a.jpg"
    f.write_bytes(b"x")
    os.utime(f, (1_000_000, 1_000_000))
    s = Settler(settle=0.1)
    assert s.retry(f, 100.0, limit=2)
    assert s.poll(100.5, time.time()) == ([], [])  # backoff: not before 100 + 0.1 + 1
    assert s.poll(101.2, time.time())[0] == [f]
    assert s.retry(f, 200.0, limit=2)
    assert not s.retry(f, 300.0, limit=2)
    assert not s.pending


def test_network_filesystems_choose_polling() -> None:
    for fs in ("cifs", "smb3", "nfs", "nfs4", "9p", "fuse.sshfs", "fuseblk"):
        assert wants_polling(fs), fs
    for fs in ("ext4", "xfs", "btrfs", "tmpfs", "overlay"):
        assert not wants_polling(fs), fs
