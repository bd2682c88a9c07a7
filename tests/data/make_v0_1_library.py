"""How ``v0.1-library/`` was made: run with watcherd 0.1.0 (commit a839752) installed.

    python tests/data/make_v0_1_library.py /tmp/v0.1-library

Kept for the record; the current code is not expected to reproduce the same bytes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PIL import Image

from tests.helpers import drop, encode, scene, write
from watcherd.cli import main


def _scan(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (1.6e9, 1.6e9))  # old enough to be read at once
    assert main(["scan", str(root)]) == 0


def make(root: Path) -> None:
    """Four present images (one dragged and untagged, one flat, one from source/), one missing,
    an exact collision and an error."""
    t = root / "thumbs"
    drop(t / "cats" / "2024" / "tom.jpg", scene((320, 240), seed=1))
    drop(t / "dogs" / "rex.png", scene((200, 300), seed=2), "PNG")
    drop(root / "source" / "s.jpg", scene((100, 100), seed=4))
    data = encode(scene((240, 160), seed=3))
    write(t / "misc" / "a.jpg", data)
    write(t / "blank.png", encode(Image.new("RGB", (50, 40), "white"), "PNG"))
    write(t / "bad.jpg", b"not an image at all")
    _scan(root)
    thumb = next((t / "cats" / "2024").glob("*_.png"))
    (t / "orange").mkdir()
    os.rename(thumb, t / "orange" / thumb.name)
    _scan(root)
    write(t / "again.jpg", data)
    os.unlink(next((t / "dogs").glob("*_.png")))
    _scan(root)
    assert main(["untag", str(root), thumb.name, "orange"]) == 0


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True)
    make(target)
