"""A corpus of hostile and odd files, each with its expected outcome, against the real daemon.

Outcomes: ``ingested`` (a thumbnail exists, the original's bytes sit in originals/),
``error`` (left exactly as it was, counted in status), ``ignored`` (left exactly as it
was, not counted).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import encode, running_daemon, scene, sha, table, wait_for

OLD = 1_600_000_000  # mtime of a file finished long ago


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def bomb_png() -> bytes:
    """A 60000x60000 PNG header (3.6 gigapixels) with almost no data."""
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def jpeg_with_xmp(xmp: str, seed: int) -> bytes:
    return encode(scene(seed=seed), "JPEG", xmp=xmp.encode())


def png_with_big_xmp(seed: int) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>" + "A" * (2 * 1024 * 1024) + "</x:xmpmeta>", zip=True)
    return encode(scene(seed=seed), "PNG", pnginfo=info)


def exif_rotated(seed: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8
    return encode(scene((300, 200), seed=seed), "JPEG", exif=exif.tobytes())


def sixteen_bit(seed: int) -> bytes:
    arr = (np.asarray(scene(seed=seed).convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    return encode(Image.fromarray(arr), "PNG")


def animated(seed: int) -> bytes:
    frames = [scene((64, 64), seed=seed + i).convert("P") for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    return buf.getvalue()


JPEG = encode(scene((400, 300), seed=99), "JPEG")
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&c;</x:xmpmeta>'
)
XXE = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x:xmpmeta>&e;</x:xmpmeta>'
DEEP = "<a>" * 50_000 + "</a>" * 50_000

# (name as bytes, content, expected outcome)
CORPUS: list[tuple[bytes, bytes, str]] = [
    (b"empty.jpg", b"", "error"),
    (b"text.jpg", b"I am a text file with a .jpg name\n", "error"),
    (b"truncated.jpg", JPEG[: len(JPEG) // 3], "error"),
    (b"truncated.png", encode(scene(seed=2), "PNG")[:500], "error"),
    (b"eps-in-disguise.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "error"),
    (b"pdf-in-disguise.png", b"%PDF-1.4\n1 0 obj<< /Type /Catalog >>endobj\ntrailer<<>>\n%%EOF\n", "error"),
    (b"psd-in-disguise.jpg", b"8BPS\x00\x01" + b"\x00" * 20 + b"\x00\x03\x00\x00\x00\x10\x00\x00\x00\x10", "error"),
    (b"html.webp", b"<html><body>hello</body></html>", "error"),
    (b"noise.gif", bytes(range(256)) * 8, "error"),
    (b"gif-header-only.gif", b"GIF89a\x10\x00\x10\x00", "error"),
    (b"bomb.png", bomb_png(), "error"),
    (b"huge-xmp.png", png_with_big_xmp(3), "ingested"),
    (b"billion-laughs.jpg", jpeg_with_xmp(BILLION_LAUGHS, 4), "ingested"),
    (b"xxe.jpg", jpeg_with_xmp(XXE, 5), "ingested"),
    (b"deep-xmp.jpg", jpeg_with_xmp(DEEP[:60000], 6), "ingested"),
    (b"new\nline.jpg", encode(scene(seed=7)), "ingested"),
    (b"caf\xe9-latin1.jpg", encode(scene(seed=8)), "ingested"),
    ("café-nfc.jpg".encode(), encode(scene(seed=9)), "ingested"),
    ("cafe\u0301-nfd.jpg".encode(), encode(scene(seed=10)), "ingested"),
    (b"a" * 251 + b".jpg", encode(scene(seed=11)), "ingested"),
    (b"CON.jpg", encode(scene(seed=12)), "ingested"),
    (b"photo.jpg.", encode(scene(seed=13)), "ignored"),
    (b"Case.jpg", encode(scene(seed=14)), "ingested"),
    (b"case.jpg", encode(scene(seed=15)), "ingested"),
    (b"\x1b[31mred\x1b[0m.jpg", encode(scene(seed=16)), "ingested"),
    (b"-rf.jpg", encode(scene(seed=17)), "ingested"),
    ("🐱 cat.png".encode(), encode(scene(seed=18), "PNG"), "ingested"),
    (b"cmyk.jpg", encode(scene(seed=19).convert("CMYK"), "JPEG"), "ingested"),
    (b"sixteen.png", sixteen_bit(20), "ingested"),
    (b"animated.gif", animated(21), "ingested"),
    (b"palette-alpha.png", encode(scene(seed=22).convert("P"), "PNG", transparency=3), "ingested"),
    (b"rotated.jpg", exif_rotated(23), "ingested"),
    (b"one-bit.png", encode(scene(seed=24).convert("1"), "PNG"), "ingested"),
    (b"float.tif", encode(scene(seed=25).convert("F"), "TIFF"), "ingested"),
    (b"download.jpg.part", encode(scene(seed=26)), "ignored"),
    (b"~$lock.jpg", encode(scene(seed=27)), "ignored"),
    (b"Thumbs.db", b"\xd0\xcf\x11\xe0", "ignored"),
    (b".DS_Store", b"\x00\x00\x00\x01Bud1", "ignored"),
    (b"._resource.jpg", b"\x00\x05\x16\x07", "ignored"),
    (b"notes.txt", b"hello", "ignored"),
    (b"folder.jpg/inside.jpg", encode(scene(seed=28)), "ingested"),
]


def special_files(thumbs: Path, outside: Path) -> dict[str, Callable[[], bool]]:
    """FIFOs, sockets and links with image names: each must be left exactly as it is."""
    os.mkfifo(thumbs / "pipe.jpg")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(thumbs / "sock.jpg"))
    sock.close()
    (thumbs / "passwd.jpg").symlink_to("/etc/passwd")
    (thumbs / "loop.jpg").symlink_to(thumbs / "loop.jpg")
    target = outside / "linked"
    target.mkdir()
    (target / "secret.jpg").write_bytes(encode(scene(seed=30)))
    (thumbs / "linkdir").symlink_to(target, target_is_directory=True)
    return {
        "pipe.jpg": lambda: (thumbs / "pipe.jpg").is_fifo(),
        "sock.jpg": lambda: (thumbs / "sock.jpg").is_socket(),
        "passwd.jpg": lambda: (thumbs / "passwd.jpg").is_symlink(),
        "loop.jpg": lambda: (thumbs / "loop.jpg").is_symlink(),
        "linkdir": lambda: (target / "secret.jpg").exists() and not list(target.glob("*_.png")),
    }


def test_hostile_corpus(tmp_path: Path) -> None:
    assert len(CORPUS) >= 30
    root = tmp_path / "lib"
    thumbs = root / "thumbs"
    thumbs.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    conf = tmp_path / "w.yaml"
    conf.write_text("settle: 0.2\ndecode_timeout: 20\n")
    with running_daemon(root, conf, tmp_path / "daemon.log") as daemon:
        specials = special_files(thumbs, outside)
        # A hard-linked original: its other name outside the tree must keep sharing the data.
        hard = outside / "hardlinked.jpg"
        hard.write_bytes(encode(scene(seed=31)))
        bthumbs = os.fsencode(thumbs)
        for name, data, _ in CORPUS:
            path = os.path.join(bthumbs, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
            os.utime(path, (OLD, OLD))
        os.link(hard, thumbs / "hardlinked.jpg")

        ingest = sum(1 for *_, o in CORPUS if o == "ingested") + 1
        errors = sum(1 for *_, o in CORPUS if o == "error")
        db = root / ".watcherd" / "catalog.sqlite"
        wait_for(
            lambda: len(table(db, "images")) == ingest and len(table(db, "errors")) == errors,
            timeout=90,
            what=f"{ingest} images and {errors} errors",
        )
        status = json.loads(
            subprocess.run(
                [sys.executable, "-m", "watcherd", "status", str(root), "--json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert daemon.proc.poll() is None, "the daemon died"
        code = daemon.stop()
    assert code == 0
    assert status["errors"] == errors and status["images"] == ingest and status["collisions"] == 0

    stored = {sha(p) for p in (root / "originals").rglob("*") if p.is_file()}
    reasons = {e["path"]: e["reason"] for e in table(db, "errors")}
    for name, data, outcome in CORPUS:
        path = os.path.join(bthumbs, name)
        shown = name.decode("utf-8", "backslashreplace")
        if outcome == "ingested":
            assert not os.path.lexists(path), f"{shown} still in the tree"
            assert hashlib.sha256(data).hexdigest() in stored, f"{shown}: original not kept"
        else:
            with open(path, "rb") as fh:
                assert fh.read() == data, f"{shown} was changed"
            assert os.stat(path).st_mtime == OLD, f"{shown} was touched"
        if outcome == "error":
            rel = "thumbs/" + os.fsdecode(name)
            assert rel in reasons, f"{shown}: no error recorded"
    assert "decompression bomb" in reasons["thumbs/bomb.png"]
    assert "allowed format" in reasons["thumbs/eps-in-disguise.jpg"]
    for what, still_fine in specials.items():
        assert still_fine(), f"{what} was disturbed"

    records = {r["original_filename"]: r for r in table(db, "images")}
    big = records["huge-xmp.png"]
    with Image.open(root / big["path"]) as im:
        assert "xmp_omitted" in im.text
    laughs = records["billion-laughs.jpg"]
    with Image.open(root / laughs["path"]) as im:
        assert im.text["xmp"] == BILLION_LAUGHS  # kept verbatim, never expanded
    assert records["caf\\xe9-latin1.jpg"]["state"] == "present"
    assert records[["folder.jpg", "inside.jpg"][1]]["tags"][0] == "folder.jpg"
    linked = records["hardlinked.jpg"]
    assert os.stat(root / linked["original"]).st_ino == os.stat(hard).st_ino  # not split
    log = (tmp_path / "daemon.log").read_bytes()
    assert b"\x1b[31m" not in log and b"new\nline" not in log  # no log injection
    assert b"Traceback" not in log
