"""Write the small library in ``v0.1-library/`` with the installed watcherd.

    python -m tests.data.make_v0_1_library /tmp/v1lib/lib

Run it from the repository root at the version whose library you want to keep.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PIL import Image

from tests.helpers import drop, encode, scene, write
from watcherd.cli import main

OLD = 1_600_000_000  # every file long finished, so each scan takes it at once


def _scan(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (OLD, OLD))
    assert main(["scan", str(root)]) == 0


def go(root: Path) -> None:
    """Ingest five images, drag one, collide, delete and untag: every kind of record."""
    t = root / "thumbs"
    drop(t / "cats" / "2024" / "tom.jpg", scene((320, 240), seed=1))
    drop(t / "dogs" / "rex.png", scene((200, 300), seed=2), "PNG")
    drop(root / "source" / "s.jpg", scene((100, 100), seed=4))
    data = encode(scene((240, 160), seed=3))
    write(t / "misc" / "a.jpg", data)
    write(t / "blank.png", encode(Image.new("RGB", (50, 40), "white"), "PNG"))
    write(t / "bad.jpg", b"not an image at all")
    _scan(root)
    # Drag one thumbnail through a folder.
    thumb = next((t / "cats" / "2024").glob("*_.png"))
    (t / "orange").mkdir()
    os.rename(thumb, t / "orange" / thumb.name)
    _scan(root)
    # An exact collision and a deleted (missing) thumbnail.
    write(t / "again.jpg", data)
    os.unlink(next((t / "dogs").glob("*_.png")))
    _scan(root)
    assert main(["untag", str(root), next((t / "orange").glob("*_.png")).name, "orange"]) == 0


if __name__ == "__main__":
    go(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/v1lib/lib"))
