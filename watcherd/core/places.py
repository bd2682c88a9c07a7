"""Where a path sits in a library: the thumbs tree, a source inbox, or nowhere of ours (pure).

Paths in the catalog are relative to ROOT in POSIX form; ``Places`` turns absolute
paths into those and classifies them, applying every ignore rule (``filters``) and
leaving the collisions folder alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath

from watcherd.core.config import Config
from watcherd.core.filters import is_ignored


class Area(str, Enum):
    """The two kinds of place watcherd looks at."""

    TREE = "tree"  # the thumbs tree the user organizes: originals move out, thumbnails stay
    SOURCE = "source"  # an inbox: thumbnailed to the top of the tree, the original stays put


@dataclass(frozen=True)
class Place:
    """Where a path sits: its area, that area's top folder and the path relative to it."""

    area: Area
    top: Path
    rel: PurePosixPath


class Places:
    """The folders of one library and how paths relate to them."""

    def __init__(self, cfg: Config) -> None:
        assert cfg.root is not None
        self.cfg = cfg
        self.root = cfg.root
        self.thumbs = cfg.thumbs_dir
        self.originals = cfg.originals_dir
        self.collisions = self.thumbs / cfg.collisions
        self.original_collisions = self.originals / cfg.collisions
        self._root_prefix = os.fspath(cfg.root).rstrip(os.sep) + os.sep
        self._areas = [(Area.TREE, self.thumbs), *((Area.SOURCE, s) for s in cfg.source_dirs)]
        self._folders: dict[str, tuple[Area, Path, PurePosixPath] | None] = {}

    def rel(self, path: Path) -> str:
        """Path relative to ROOT in POSIX form, as the catalog stores it."""
        text = os.fspath(path)
        if text.startswith(self._root_prefix) and os.sep == "/":
            return text[len(self._root_prefix) :]  # the common case, without pathlib's cost
        return Path(os.path.relpath(path, self.root)).as_posix()

    def absolute(self, rel: str) -> Path:
        """The absolute path of a path relative to ROOT."""
        return self.root / rel

    def place(self, path: Path) -> Place | None:
        """Classify a path; None for anything watcherd must leave alone.

        What its folder is comes from ``_folder``, worked out once per folder (a folder of
        10,000 thumbnails is one lookup, not 10,000 parses); the name is checked on its own."""
        text = os.fspath(path)
        parent, sep, name = text.rpartition(os.sep)
        folder = self._folder(parent) if sep else None
        if folder is None:
            return None
        area, top, rel = folder
        if not rel.parts and (name in (".", "..") or (area is Area.TREE and name == self.cfg.collisions)):
            return None
        if is_ignored((name,), self.cfg.ignore):
            return None
        return Place(area, top, rel / name)

    def _folder(self, parent: str) -> tuple[Area, Path, PurePosixPath] | None:
        """The area, its top folder and the path relative to it of a folder whose files may be
        watcherd's (None: outside every area, or left alone), kept for the folders looked up last."""
        try:
            return self._folders[parent]
        except KeyError:
            pass
        probe = parent + os.sep
        area, top = next(((a, t) for a, t in self._areas if probe.startswith(os.fspath(t) + os.sep)), (None, None))
        found: tuple[Area, Path, PurePosixPath] | None = None
        if area is not None and top is not None:
            rel = PurePosixPath(probe[len(os.fspath(top)) + 1 :].replace(os.sep, "/"))
            first = rel.parts[0] if rel.parts else None
            left_alone = first in (".", "..") or (area is Area.TREE and first == self.cfg.collisions)
            if not left_alone and not is_ignored(rel.parts, self.cfg.ignore):
                found = (area, top, rel)
        if len(self._folders) >= 4096:
            self._folders.clear()
        self._folders[parent] = found
        return found

    def tag_folder(self, folder: Path) -> PurePosixPath:
        """A folder of the thumbs tree, relative to it: what its tags are read from."""
        return PurePosixPath(Path(os.path.relpath(folder, self.thumbs)).as_posix())
