"""Folders of the thumbs tree found by what they are, not where they were.

A collision remembers the folder its newcomer was dropped in, and the user may rename or
move that folder before deciding. The record keeps the folder's path as it was and its
identity (``st_dev``, ``st_ino``, which a rename or a move within the tree keeps);
``Folders.locate`` finds where that folder is now, walking the tree's folders once per
``Folders`` only when the remembered path no longer names it.
"""

from __future__ import annotations

import os
from pathlib import Path

from watcherd.core.places import Places
from watcherd.fs.walk import scan_folders

Ident = tuple[int, int]  # (st_dev, st_ino)


def ident_of(folder: Path) -> Ident | None:
    """The identity of ``folder`` (None if it is not a folder one can stat)."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Folders:
    """Finds folders of one library's thumbs tree by identity; one instance per question asked."""

    def __init__(self, places: Places) -> None:
        self.places = places
        self._by_ident: dict[Ident, Path] | None = None

    def locate(self, rel: str | None, ident: Ident | None, *, source: bool = False) -> Path:
        """Where the folder remembered as ``rel`` (with identity ``ident``) is now.

        Its remembered path when that is still it; else the folder of the tree with that
        identity (renamed or moved); else the remembered path (gone: whoever places a file
        there makes it again); the top of the tree for a source, an unknown folder, or one
        watcherd must leave alone.
        """
        places = self.places
        if source or not rel:
            return places.thumbs
        path = places.absolute(rel)
        if ident is not None and ident_of(path) != ident:
            found = self._walk().get(ident)
            if found is not None:
                path = found
        if path != places.thumbs and places.place(path / "x.png") is None:
            return places.thumbs
        return path

    def _walk(self) -> dict[Ident, Path]:
        """Every folder of the tree a scan walks (not ``_collisions``, not ignored ones) by identity, built once."""
        if self._by_ident is None:
            found: dict[Ident, Path] = {}
            for folder, _ in scan_folders(self.places.thumbs, self.places.cfg):
                ident = ident_of(Path(folder))
                if ident is not None:
                    found.setdefault(ident, Path(folder))
            self._by_ident = found
        return self._by_ident
