"""Where a path sits (``Places.place``): worked out once per folder, the same as from the whole path."""

from __future__ import annotations

import itertools
import os
from pathlib import Path, PurePosixPath

from watcherd.core.config import from_mapping
from watcherd.core.filters import is_ignored
from watcherd.core.places import Area, Place, Places

PARTS = ["a", "b", "_collisions", ".hidden", "Thumbs.db", "x.png", "..", "src", "thumbs", "originals"]


def whole(places: Places, path: Path) -> Place | None:
    """The rule read from the whole path at once (as ``place`` was before folders were kept)."""
    text = os.fspath(path)
    for area, top in [(Area.TREE, places.thumbs), *((Area.SOURCE, s) for s in places.cfg.source_dirs)]:
        prefix = os.fspath(top) + os.sep
        if not text.startswith(prefix):
            continue
        rel = PurePosixPath(text[len(prefix) :].replace(os.sep, "/"))
        if not rel.parts or rel.parts[0] in (".", ".."):
            return None
        if area is Area.TREE and rel.parts[0] == places.cfg.collisions:
            return None
        if is_ignored(rel.parts, places.cfg.ignore):
            return None
        return Place(area, top, rel)
    return None


def test_each_path_is_placed_as_from_its_whole_path(tmp_path: Path) -> None:
    cfg = from_mapping({"root": str(tmp_path), "sources": ["src", "thumbs/src"], "ignore": [".*", "Thumbs.db"]})
    places = Places(cfg)
    tops = [tmp_path, tmp_path / "thumbs", tmp_path / "src", tmp_path / "originals", Path("/elsewhere")]
    checked = 0
    for top, depth in itertools.product(tops, range(4)):
        for parts in itertools.product(PARTS, repeat=depth):
            path = top.joinpath(*parts) if parts else top
            assert places.place(path) == whole(places, path), path
            assert places.place(path) == whole(places, path), path  # and again, from what it kept
            checked += 1
    assert checked > 5000
