"""Test images drawn with Pillow (never downloaded) and a deadline-based wait."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PIL import Image, ImageDraw

from watcherd.cli import main
from watcherd.core.records import ImageRecord, State

T = TypeVar("T")


def scene(size: tuple[int, int] = (320, 240), seed: int = 0) -> Image.Image:
    """An RGB picture with a gradient, shapes and noise; different seeds look different."""
    rng = random.Random(seed)
    w, h = size
    im = Image.linear_gradient("L").resize(size).convert("RGB")
    tint = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    im = Image.blend(im, tint, 0.5)
    draw = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randrange(w // 8, w // 2), y0 + rng.randrange(h // 8, h // 2)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    noise = Image.frombytes("L", size, rng.randbytes(w * h)).convert("RGB")
    return Image.blend(im, noise, 0.08)


def encode(im: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    """Image bytes in ``fmt``."""
    buf = io.BytesIO()
    if fmt == "JPEG" and "quality" not in params:
        params["quality"] = 90
    im.save(buf, format=fmt, **params)
    return buf.getvalue()


def set_tiff_tag(data: bytes, tag: int, entry: bytes) -> bytes:
    """A little-endian TIFF with the first IFD's entry for ``tag`` replaced by 12 raw bytes."""
    assert data[:4] == b"II*\0"
    out = bytearray(data)
    (ifd,) = struct.unpack_from("<I", out, 4)
    (count,) = struct.unpack_from("<H", out, ifd)
    for pos in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if struct.unpack_from("<H", out, pos)[0] == tag:
            out[pos : pos + 12] = entry
            return bytes(out)
    raise AssertionError(f"tag {tag} not in the TIFF")


def tiff_pillow_warns(im: Image.Image) -> bytes:
    """A TIFF that decodes, but whose last tag points past the end of the file (Pillow warns)."""
    data = encode(im, "TIFF")
    return set_tiff_tag(data, 284, struct.pack("<HHII", 65000, 2, 100, 10**6))


def tiff_libtiff_fails(im: Image.Image) -> bytes:
    """An LZW TIFF whose strip is said to be longer than the file: libtiff complains on stderr and fails."""
    data = encode(im, "TIFF", compression="tiff_lzw")
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    entries = [struct.unpack_from("<HHII", data, ifd + 2 + 12 * i) for i in range(count)]
    size = next(e[3] for e in entries if e[0] == 279)
    return set_tiff_tag(data, 279, struct.pack("<HHII", 279, 4, 1, size + 500))


def write(path: Path, data: bytes) -> Path:
    """Write bytes the way a copy would (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def drop(path: Path, im: Image.Image | None = None, fmt: str = "JPEG", seed: int = 0, **params: object) -> Path:
    """Save a scene (or ``im``) at ``path``."""
    return write(path, encode(im if im is not None else scene(seed=seed), fmt, **params))


def wait_for(condition: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T = condition()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)
        last = condition()
    return last


def canonical_files(folder: Path) -> list[Path]:
    """Canonical thumbnails directly in ``folder``."""
    return sorted(p for p in folder.glob("*x*_*_.png"))


def made_up_record(h: int, folder: str | None = "a", **fields: Any) -> ImageRecord:
    """A present record of a 64x64 image named by the hash ``h`` (there are no files), placed in
    ``thumbs/FOLDER/`` (``None``: the tree's top); ``fields`` set the rest (tags, sha256, ...)."""
    name = f"64x64_{h:016x}_.png"
    return ImageRecord(
        name=name,
        hash=f"{h:016x}",
        width=64,
        height=64,
        path=f"thumbs/{folder}/{name}" if folder else f"thumbs/{name}",
        state=State.PRESENT,
        first_seen="",
        last_seen="",
        **fields,
    )


def table(db: Path, name: str) -> list[dict[str, Any]]:
    """Rows of a catalog table read with plain sqlite3 and json, as a notebook would."""
    if not db.exists():
        return []
    # Not mode=ro: after a kill -9 a hot journal must be rolled back before reading.
    con = sqlite3.connect(db, timeout=30)
    try:
        rows = con.execute(f'SELECT value FROM "{name}"').fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        con.close()
    return [json.loads(r[0]) for r in rows]


def sha(path: Path) -> str:
    """The sha256 of a file's bytes, in hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


START_UP_DONE = "full scan done in "  # the daemon's INFO line once its start-up scan is recorded


class DaemonProcess:
    """A ``watcherd run`` child process whose stderr (the log) goes to a file."""

    def __init__(self, root: Path, conf: Path, log: Path, *extra: str) -> None:
        self.root = root
        self.log = log
        with open(log, "wb") as err:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "watcherd", "run", str(root), "-c", str(conf), *extra],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_started(self, timeout: float = 60.0) -> None:
        """Wait until the start-up scan is done (the lease is held by then); fail if the process died."""
        wait_for(
            lambda: START_UP_DONE in self.log_text() or self.proc.poll() is not None,
            timeout=timeout,
            what="the daemon's start-up scan",
        )
        if self.proc.poll() is not None:
            raise AssertionError(f"the daemon exited {self.proc.returncode} at start-up:\n{self.log_text()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` unless it has already exited; return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


@contextlib.contextmanager
def running_daemon(
    root: Path, conf: Path, log: Path | None = None, *extra: str, start_timeout: float = 60.0
) -> Iterator[DaemonProcess]:
    """Run ``watcherd run ROOT -c CONF`` until the block ends, then SIGTERM it and wait.

    Entering waits (with a deadline) for the daemon's start-up scan to be done. The log
    goes to ``log`` (default: ``daemon.log`` beside ``conf``).
    """
    daemon = DaemonProcess(root, conf, log if log is not None else conf.with_name("daemon.log"), *extra)
    try:
        daemon.wait_started(start_timeout)
        yield daemon
    finally:
        daemon.stop()


def collided_library(root: Path) -> Path:
    """``cats/a.png`` scanned, then the same picture as JPEG in ``dogs/`` scanned: one collision."""
    im = scene(seed=41)
    for rel, data in (("cats/a.png", encode(im, "PNG")), ("dogs/b.jpg", encode(im, "JPEG", quality=95))):
        write(root / "thumbs" / rel, data)
        subprocess.run(
            [sys.executable, "-m", "watcherd", "scan", str(root)], check=True, capture_output=True, timeout=120
        )
    return root


def near_library(root: Path) -> Path:
    """``cats/a.png`` scanned, then the same picture a little smaller in ``dogs/`` scanned: a near pair."""
    im = scene(seed=44)
    for rel, data in (("cats/a.png", encode(im, "PNG")), ("dogs/b.png", encode(im.resize((318, 240)), "PNG"))):
        write(root / "thumbs" / rel, data)
        subprocess.run(
            [sys.executable, "-m", "watcherd", "scan", str(root)], check=True, capture_output=True, timeout=120
        )
    return root


XMP_NS = (
    'xmlns:x="adobe:ns:meta/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:digiKam="http://www.digikam.org/ns/1.0/" '
    'xmlns:lr="http://ns.adobe.com/lightroom/1.0/"'
)


def xmp_packet(
    subject: tuple[str, ...] = (),
    tags_list: tuple[str, ...] = (),
    hierarchical: tuple[str, ...] = (),
    *,
    doctype: str = "",
    body: str = "",
) -> bytes:
    """An XMP packet as a photo manager writes one (text made here by hand, as hostile input may be)."""

    def array(prop: str, kind: str, items: tuple[str, ...]) -> str:
        lis = "".join(f"<rdf:li>{i}</rdf:li>" for i in items)
        return f"<{prop}><rdf:{kind}>{lis}</rdf:{kind}></{prop}>" if items else ""

    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        f'{doctype}<x:xmpmeta {XMP_NS}><rdf:RDF><rdf:Description rdf:about="">'
        f"{array('dc:subject', 'Bag', subject)}{array('digiKam:TagsList', 'Seq', tags_list)}"
        f"{array('lr:hierarchicalSubject', 'Bag', hierarchical)}{body}"
        '</rdf:Description></rdf:RDF></x:xmpmeta>\n<?xpacket end="w"?>'
    ).encode()


# A billion laughs, and an external entity: XMP that must be refused, not expanded or fetched.
ENTITY_BOMB = (
    '<!DOCTYPE x:xmpmeta [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + "]>\n"
)
EXTERNAL_ENTITY = '<!DOCTYPE x:xmpmeta [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'


def with_iptc_keywords(jpeg: bytes, keywords: list[str], *, utf8: bool = True) -> bytes:
    """``jpeg`` with an APP13 Photoshop segment carrying IPTC Keywords (2:25), as Photoshop or exiftool write it."""
    datasets = b""
    if utf8:
        datasets += b"\x1c\x01\x5a" + struct.pack(">H", 3) + b"\x1b%G"  # 1:90 coded character set: UTF-8
    for word in keywords:
        raw = word.encode("utf-8" if utf8 else "cp1252")
        datasets += b"\x1c\x02\x19" + struct.pack(">H", len(raw)) + raw
    if len(datasets) % 2:
        datasets += b"\x00"
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(datasets)) + datasets
    body = b"Photoshop 3.0\x00" + resource
    segment = b"\xff\xed" + struct.pack(">H", len(body) + 2) + body
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + segment + jpeg[2:]


def digest(data: bytes) -> str:
    """The sha256 of some bytes, in hex (``sha`` is the same for a file)."""
    return hashlib.sha256(data).hexdigest()


def in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``watcherd ARGV`` run in this process: its exit code, stdout and stderr."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def in_process_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """``watcherd ARGV --json`` run in this process (no config from the environment); it must succeed."""
    os.environ.pop("WATCHERD_CONFIG", None)
    code, out, err = in_process(capsys, *argv, "--json")
    assert code == 0, f"watcherd {' '.join(argv)} exited {code}: {err}"
    return json.loads(out)


def cli(*args: str) -> Any:
    """A ``python -m watcherd … --json`` command's document; it must succeed."""
    proc = subprocess.run(
        [sys.executable, "-m", "watcherd", *args, "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"watcherd {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout)


def sigint_default() -> None:
    """In a child before it runs: SIGINT as a terminal gives it. A shell starts background
    jobs with SIGINT ignored, and Python then never turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
