"""``watcherd scan`` and ``run`` as processes at the edges: phone formats, pictures it cannot
decode, NAS folders, noisy decoders, a read-only library, Ctrl-C, and the progress bar."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import (
    canonical_files,
    encode,
    scene,
    sigint_default,
    tiff_libtiff_fails,
    tiff_pillow_warns,
    wait_for,
    write,
)
from tests.invariants import check_library
from watcherd.decode.chunks import read_text

WATCHERD = [sys.executable, "-m", "watcherd"]
# Every line watcherd itself writes to stderr: its log format, or its one-line errors.
OUR_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) |watcherd: error: )")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WATCHERD, *args], capture_output=True, text=True, timeout=120, check=False)


def foreign_lines(stderr: str) -> list[str]:
    """Lines on stderr that watcherd did not write (raw library output, tracebacks)."""
    return [line for line in stderr.splitlines() if not OUR_LINE.match(line)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "library"
    (r / "thumbs").mkdir(parents=True)
    return r


NAS = ["@eaDir", "#recycle", "#snapshot", "@Recycle", "$RECYCLE.BIN", "System Volume Information"]
NAS += [".Trash-1000", "lost+found", ".snapshot"]


def test_scan_of_what_phones_nas_boxes_and_scanners_leave(root: Path) -> None:
    thumbs = root / "thumbs"
    heic = write(thumbs / "phone" / "IMG_0001.HEIC", encode(scene((400, 300), seed=1), "HEIF", quality=90))
    avif = write(thumbs / "phone" / "clip.avif", encode(scene((300, 400), seed=2), "AVIF", quality=90))
    jxl = write(thumbs / "misc" / "scan.jxl", b"\xff\x0a" + b"\x00" * 64)
    raw = write(thumbs / "misc" / "IMG_2.CR2", b"II*\x00\x10\x00\x00\x00CR" + b"\x00" * 64)
    warned = write(thumbs / "scans" / "w.tif", tiff_pillow_warns(scene((96, 64), seed=3)))
    failed = write(thumbs / "scans" / "f.tif", tiff_libtiff_fails(scene((96, 64), seed=4)))
    hidden = [write(thumbs / "photos" / f / f"{i}.jpg", encode(scene(seed=10 + i))) for i, f in enumerate(NAS)]
    dropped = {p.name: p.read_bytes() for p in (heic, avif, jxl, raw, warned, failed, *hidden)}

    first = run("scan", str(root), "--json")

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["counts"] == {"ingested": 3, "error": 3}
    assert foreign_lines(first.stderr) == []
    warnings = [line.split(" ", 3)[3] for line in first.stderr.splitlines() if " WARNING " in line]
    libtiff = "cannot ingest thumbs/scans/f.tif: cannot decode image: decoder error -2 (decoder: TIFFFillStrip: "
    assert warnings[2].startswith(libtiff)  # libtiff's own fprintf(stderr), folded into the file's line
    assert warnings[:2] + warnings[3:] == [
        "cannot ingest thumbs/misc/IMG_2.CR2: unsupported format (.cr2)",
        "cannot ingest thumbs/misc/scan.jxl: unsupported format (.jxl)",
        "decoder warnings for thumbs/scans/w.tif: Truncated File Read (3 times)",
    ]

    for name, fmt, size in (("IMG_0001.HEIC", "HEIF", (400, 300)), ("clip.avif", "AVIF", (300, 400))):
        (thumb,) = [
            p for p in canonical_files(thumbs / "phone") if read_text(p.read_bytes())["original_filename"] == name
        ]
        assert thumb.name.startswith(f"{size[0]}x{size[1]}_")
        with Image.open(thumb) as im:
            assert max(im.size) == 64 and im.text["format"] == fmt and im.text["sha256"]
    status = json.loads(run("status", str(root), "--json").stdout)
    assert (status["images"], status["errors"]) == (3, 3)
    tags = json.loads(run("tags", str(root), "--json").stdout)
    assert sorted(tags) == ["300x400", "400x300", "96x64", "phone", "scans"]
    for path in (jxl, raw, failed, *hidden):
        assert path.read_bytes() == dropped[path.name]
    left = {"scan.jxl", "IMG_2.CR2", "f.tif"} | {p.name for p in hidden}  # to be found where they were
    assert check_library(root, dropped, bad=left) == []

    again = run("scan", str(root), "--json")  # reported once: nothing new to say
    assert again.returncode == 0
    assert json.loads(again.stdout)["counts"] == {"unchanged": 3, "ignored": 3}
    assert [line for line in again.stderr.splitlines() if " WARNING " in line] == []


def broken_apng(im: Image.Image) -> bytes:
    """A PNG whose acTL chunk claims zero frames: Pillow warns "Invalid APNG" whenever it opens it."""
    data = encode(im, "PNG")
    body = b"acTL" + struct.pack(">II", 0, 0)
    actl = struct.pack(">I", 8) + body + struct.pack(">I", zlib.crc32(body))
    after_ihdr = 8 + 25  # the signature, then IHDR (length, type, 13 bytes, CRC)
    return data[:after_ihdr] + actl + data[after_ihdr:]


def test_a_broken_apng_is_one_log_line_and_nothing_raw(root: Path) -> None:
    write(root / "thumbs" / "anim.png", broken_apng(scene(seed=5)))
    done = run("scan", str(root), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"] == {"ingested": 1}
    assert "UserWarning" not in done.stderr and "warnings.warn" not in done.stderr
    assert foreign_lines(done.stderr) == []
    said = [line.split(" ", 3)[3] for line in done.stderr.splitlines() if " WARNING " in line]
    assert said == ["decoder warnings for thumbs/anim.png: Invalid APNG, will use default PNG image if possible"]


@pytest.fixture
def read_only(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A library whose root (a tmpfs) or thumbs folder (a bind mount) is mounted read-only."""
    which = request.param
    mounts: list[Path] = []

    def mount(*args: str) -> None:
        done = subprocess.run(["mount", *args], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount here: {done.stderr.decode().strip()}")

    try:
        root = tmp_path / "library"
        root.mkdir()
        if which == "root":
            mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root))
            mounts.append(root)
            (root / "thumbs").mkdir()
            write(root / "thumbs" / "a.jpg", encode(scene(seed=1)))
            mount("-o", "remount,ro", str(root))
            yield root
        else:
            thumbs = root / "thumbs"
            write(thumbs / "a.jpg", encode(scene(seed=1)))
            mount("--bind", str(thumbs), str(thumbs))
            mounts.append(thumbs)
            mount("-o", "remount,bind,ro", str(thumbs))
            yield thumbs
    finally:
        for m in reversed(mounts):
            subprocess.run(["umount", "-l", str(m)], check=False)


@pytest.mark.parametrize("read_only", ["root", "thumbs"], indirect=True)
@pytest.mark.parametrize("command", ["scan", "run"])
def test_a_read_only_library_is_one_line_and_exit_2(read_only: Path, command: str) -> None:
    root = read_only if read_only.name == "library" else read_only.parent
    what = "library root" if read_only == root else "thumbs folder"
    done = run(command, str(root))
    assert done.returncode == 2  # not 70: systemd's RestartPreventExitStatus=2 4 stops the restarts
    assert done.stderr == f"watcherd: error: {what} {read_only} is not writable: Read-only file system\n"
    unit = (Path(__file__).parents[2] / "etc" / "watcherd.service").read_text()
    assert re.search(r"^RestartPreventExitStatus=.*\b2\b", unit, re.M)


def _big_photos(folder: Path, n: int) -> dict[str, bytes]:
    base = scene((3000, 2000), seed=7)
    dropped = {}
    for i in range(n):
        im = base.copy()
        im.paste((i * 9 % 256, 90, 200 - i), (40 * i, 100, 40 * i + 600, 900))
        dropped[f"big{i:02d}.jpg"] = write(folder / f"big{i:02d}.jpg", encode(im)).read_bytes()
    return dropped


@pytest.mark.parametrize("when", ["decoding", "starting"])
def test_ctrl_c_stops_a_scan_without_a_traceback(root: Path, tmp_path: Path, when: str) -> None:
    dropped = _big_photos(root / "thumbs", 40)
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as out:
        # A session of its own, as a shell gives a job: Ctrl-C goes to the whole group.
        proc = subprocess.Popen(
            [*WATCHERD, "scan", str(root)], stderr=out, start_new_session=True, preexec_fn=sigint_default
        )
        try:
            if when == "decoding":
                wait_for(lambda: canonical_files(root / "thumbs") or proc.poll() is not None, timeout=60)
            else:  # the decoder workers are being spawned right after the lease is taken
                wait_for(lambda: (root / ".watcherd" / "lock").exists() or proc.poll() is not None, timeout=60)
            assert proc.poll() is None, "the scan ended before Ctrl-C"
            os.killpg(proc.pid, signal.SIGINT)
            assert proc.wait(timeout=60) == 130
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    stderr = err.read_text()
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert foreign_lines(stderr) == []
    assert len(canonical_files(root / "thumbs")) < len(dropped)  # it really was stopped midway
    # Stopped like a crash at that moment: the next scan finishes what was in hand.
    finish = run("scan", str(root))
    assert finish.returncode == 0, finish.stderr
    assert check_library(root, dropped) == []


def test_progress_bar_on_a_terminal_and_not_on_a_pipe(root: Path) -> None:
    for i in range(5):
        write(root / "thumbs" / f"{i}.jpg", encode(scene(seed=i)))
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal's size
    try:
        proc = subprocess.Popen([*WATCHERD, "scan", str(root)], stdout=subprocess.DEVNULL, stderr=secondary)
        os.close(secondary)
        shown = b""
        while True:  # read until the terminal closes (EIO on Linux once the process is gone)
            ready, _, _ = select.select([primary], [], [], 60)
            assert ready, "no output from the scan for 60 s"
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(primary)
    text = shown.decode("utf-8", "replace")
    assert re.search(r"scanning: 100%.*\b5/5 ", text), text
    assert "\r" in text  # redrawn in place

    for i in range(5, 8):
        write(root / "thumbs" / f"{i}.jpg", encode(scene(seed=i)))
    piped = run("scan", str(root))
    assert piped.returncode == 0
    assert "scanning" not in piped.stderr and "\r" not in piped.stderr
    assert foreign_lines(piped.stderr) == []
