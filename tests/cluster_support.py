"""What the cluster tests share: a varied library, and the facts two scans of it must agree on."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.helpers import encode, scene, table, write

needs_distributed = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="dask.distributed is not installed (pip install -e '.[test]' installs it)",
)


def make_library(root: Path, n: int = 24) -> None:
    """Pictures in tagged folders and a source inbox, a duplicate (a collision) and a file that is no image."""
    for i in range(n):
        folder = ("cats", "dogs/old", "birds")[i % 3]
        fmt, suffix = ("JPEG", "jpg") if i % 4 else ("PNG", "png")
        write(root / "thumbs" / folder / f"pic{i:03d}.{suffix}", encode(scene(seed=500 + i), fmt))
    write(root / "source" / "inbox.jpg", encode(scene(seed=900)))
    write(root / "thumbs" / "dogs" / "again.jpg", encode(scene(seed=501)))  # pic001's bytes: a collision
    write(root / "thumbs" / "cats" / "broken.jpg", b"this is no picture")


def copy_library(root: Path, to: Path) -> Path:
    """The same files under another root."""
    shutil.copytree(root, to, symlinks=True)
    return to


def _pixels(path: Path) -> str:
    with Image.open(path) as im:
        return hashlib.sha256(im.tobytes()).hexdigest()


def library_facts(root: Path) -> dict[str, Any]:
    """Names, tags, originals, errors and files of a library, free of timestamps."""
    db = root / ".watcherd" / "catalog.sqlite"
    images = sorted(
        (r["path"], r["name"], tuple(r["tags"]), r["sha256"], r.get("original"), r["state"])
        for r in table(db, "images")
    )
    errors = sorted((r["path"], r["reason"]) for r in table(db, "errors"))
    collisions = sorted((c["id"], c["name"], c["kind"], c["newcomer"].get("original")) for c in table(db, "collisions"))
    files = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith(".watcherd/"):
            # A thumbnail's text chunks carry the time it was made: its pixels are what must agree.
            files[rel] = (
                _pixels(p)
                if p.suffix == ".png" and rel.startswith("thumbs/")
                else hashlib.sha256(p.read_bytes()).hexdigest()
            )
    return {"images": images, "errors": errors, "collisions": collisions, "files": files}
