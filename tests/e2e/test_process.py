"""``watcherd run`` as a real process, driven the way a file manager and a user would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import imagehash
import pytest
from PIL import Image

from tests.helpers import DaemonProcess, canonical_files, drop, encode, running_daemon, scene, wait_for, write
from watcherd.core import config
from watcherd.fs.layout import lease_path
from watcherd.fs.lease import Lease, Role


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "watcherd", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"watcherd {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def path_of(root: Path, name: str) -> str:
    return str(json.loads(cli("tags", str(root), name, "--json").stdout)["path"])


def is_at(root: Path, name: str, want: str) -> Callable[[], bool]:
    """A condition: the catalog has ``name`` at ``want``."""
    return lambda: path_of(root, name) == want


def status(root: Path) -> dict[str, Any]:
    data = json.loads(cli("status", str(root), "--json").stdout)
    assert isinstance(data, dict)
    return data


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "library"
    r.mkdir()
    return r


@pytest.fixture
def daemon(root: Path, tmp_path: Path) -> Iterator[DaemonProcess]:
    conf = tmp_path / "watcherd.yaml"
    conf.write_text("settle: 0.3\nheartbeat: 0.5\n")
    with running_daemon(root, conf, tmp_path / "daemon.log") as proc:
        yield proc


def test_drop_move_collide_and_stop(root: Path, tmp_path: Path, daemon: DaemonProcess) -> None:
    thumbs = root / "thumbs"
    st = status(root)
    assert st["last_scan"]["reason"] == "start-up"
    assert st["daemon"]["running"] is True and st["daemon"]["pid"] == daemon.pid

    # Copy a photo in (a file manager's paste), and an RGBA logo.
    staging = tmp_path / "staging"
    photo = drop(staging / "holiday.jpg", scene((1200, 800), seed=1))
    shutil.copy2(photo, thumbs / "holiday.jpg")
    logo = scene((300, 300), seed=2).convert("RGBA")
    logo.putalpha(128)
    write(thumbs / "logo.png", encode(logo, "PNG"))

    wait_for(lambda: status(root)["images"] == 2, what="two images")
    holiday = next(p for p in canonical_files(thumbs) if p.name.startswith("1200x800_"))
    assert holiday.name == "1200x800_00000207e6fbffff_.png"  # pinned
    with Image.open(photo) as im:
        assert holiday.name == f"1200x800_{imagehash.whash(im)}_.png"  # the README's notebook recipe
    with Image.open(holiday) as im:
        assert max(im.size) == 64
        assert im.text["original_filename"] == "holiday.jpg"
        assert im.text["hash_algorithm"] == "whash"
    assert not (thumbs / "holiday.jpg").exists()
    assert (root / "originals" / holiday.name.replace(".png", ".jpg")).read_bytes() == photo.read_bytes()

    # Drag the thumbnail through folders (as a person would: one drag at a time) and back home.
    def tags() -> list[str]:
        got = json.loads(cli("tags", str(root), holiday.name, "--json").stdout)["tags"]
        assert isinstance(got, list) and all(isinstance(t, str) for t in got)
        return got

    for folder in ("beach", "2023", "family"):
        (thumbs / folder).mkdir()
        shutil.move(str(holiday), thumbs / folder / holiday.name)
        holiday = thumbs / folder / holiday.name
        want = f"thumbs/{folder}/{holiday.name}"
        wait_for(is_at(root, holiday.name, want), what=f"move into {folder}")
    shutil.move(str(holiday), thumbs / holiday.name)
    wait_for(is_at(root, holiday.name, f"thumbs/{holiday.name}"), what="move home")
    assert tags() == ["1200x800", "beach", "family"]  # accumulated; 2023 is numeric
    found = json.loads(cli("find", str(root), "--tag", "beach", "--tag", "family", "--json").stdout)
    assert [f["name"] for f in found] == [holiday.name]

    # The same photo again, under another name: a visible collision, nothing lost.
    shutil.copy2(photo, thumbs / "beach" / "copy of holiday.jpg")
    wait_for(lambda: status(root)["collisions"] == 1, what="collision")
    (dupe,) = json.loads(cli("dupes", str(root), "--json").stdout)
    assert dupe["name"] == holiday.name and dupe["kind"] == "exact"
    assert any(p.startswith("thumbs/_collisions/") for p in dupe["paths"])

    # A second daemon is refused with one line naming the holder.
    second = cli("run", str(root), check=False)
    assert second.returncode == 4
    assert second.stderr.startswith("watcherd: error: library is locked by watcherd pid")
    assert second.stderr.count("\n") == 1

    # A text file pretending to be a JPEG: counted, left alone.
    write(thumbs / "fake.jpg", b"not really")
    wait_for(lambda: status(root)["errors"] == 1, what="error counted")
    assert (thumbs / "fake.jpg").read_bytes() == b"not really"

    assert daemon.stop(signal.SIGTERM) == 0
    final = status(root)
    assert final["daemon"] is None
    assert (final["images"], final["collisions"], final["errors"], final["missing"]) == (2, 1, 1, 0)
    assert not [p for p in root.rglob(".watcherd-tmp-*")]


def test_sigint_stops_cleanly(root: Path, daemon: DaemonProcess) -> None:
    assert daemon.stop(signal.SIGINT) == 0
    assert not (root / ".watcherd" / "lock").exists()


def test_scan_command_and_missing_root(root: Path, tmp_path: Path) -> None:
    drop(root / "thumbs" / "x" / "a.jpg", seed=3)
    os.utime(root / "thumbs" / "x" / "a.jpg", (1_600_000_000, 1_600_000_000))
    out = json.loads(cli("scan", str(root), "--json").stdout)
    assert out["counts"] == {"ingested": 1}
    assert status(root)["images"] == 1
    bad = cli("status", str(tmp_path / "nope"), check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "does not exist" in bad.stderr


@pytest.mark.parametrize(("role", "doing"), [(Role.COMMAND, "applying a change"), (Role.SCAN, "scanning the library")])
def test_a_daemon_started_while_a_command_or_scan_writes_waits_for_it(
    root: Path, tmp_path: Path, role: Role, doing: str
) -> None:
    """A change command applied without a daemon holds the lease for the moment it writes, a
    scan (from cron, say) for as long as it runs; a daemon started then (after a crash, by
    systemd) waits for it instead of exiting 4 and staying down. A second daemon is still
    refused at once."""
    conf = tmp_path / "watcherd.yaml"
    conf.write_text("settle: 0.3\nheartbeat: 0.5\n")
    cfg = config.load(conf).with_root(root)
    (root / "thumbs").mkdir()
    command = Lease(lease_path(cfg), cfg.heartbeat, cfg.stale_after, role=role)
    command.acquire()  # as writer._apply_here and scan_once hold it
    try:
        daemon = DaemonProcess(root, conf, tmp_path / "daemon.log")
        wait_for(lambda: f"is {doing}; waiting for it" in daemon.log_text(), what="the daemon waiting")
        for _ in range(6):  # the command's write goes on for a moment, its lease kept live
            assert command.renew() and daemon.proc.poll() is None
            time.sleep(0.25)
    finally:
        command.release()
    try:
        daemon.wait_started()
        assert daemon.proc.poll() is None
        second = cli("run", str(root), "-c", str(conf), check=False)
        assert second.returncode == 4 and "library is locked by watcherd pid" in second.stderr
    finally:
        assert daemon.stop() == 0
