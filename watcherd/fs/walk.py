"""Walking the thumbs tree and the sources: which files watcherd looks at, and in what order.

Walks never follow symlinks, never enter ignored folders or the collisions folder,
and go breadth first in name order, so two scans of the same tree see the same
sequence.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from watcherd.core.config import Config
from watcherd.core.filters import ignore_pattern
from watcherd.core.naming import CANONICAL_RE, shown

log = logging.getLogger("watcherd")


def walk_files(top: Path, cfg: Config, on_folder: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Every regular file under ``top`` that watcherd should look at, folder by folder in name order."""
    ignored = ignore_pattern(cfg.ignore).match
    for folder, names in scan_folders(top, cfg):
        if on_folder is not None:
            on_folder(Path(folder))
        for name in sorted(names):
            if not ignored(name.lower()):
                yield Path(folder, name)


def scan_folders(top: Path, cfg: Config) -> Iterator[tuple[str, list[str]]]:
    """Each folder under ``top`` (itself included) with the names of its regular files.

    Folders come breadth first in name order (so runs are repeatable) and ignored
    folders are not entered; the file names are as the folder lists them, in no
    order and not yet checked against the ignore rules, because a scan of a large
    tree finds most of them where the catalog says and needs nothing more of them.
    Paths stay strings: a start-up scan of 100k thumbnails should not build 100k
    Path objects. Symlinks are never followed.
    """
    ignored = ignore_pattern(cfg.ignore).match
    collisions = os.fspath(cfg.thumbs_dir / cfg.collisions)
    pending = deque([os.fspath(top)])
    while pending:
        folder = pending.popleft()
        files: list[str] = []
        folders: list[str] = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if not ignored(entry.name.lower()) and entry.path != collisions:
                                folders.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            files.append(entry.name)
                    except OSError:
                        continue
        except OSError as exc:
            log.warning("cannot list %s: %s", shown(folder), exc.strerror)
            continue
        pending.extend(sorted(folders))
        yield folder, files


def count_waiting(cfg: Config) -> int:
    """Files waiting in the thumbs tree to be made thumbnails (what a start-up scan would decode).

    Every file there that is not ignored and not named like a thumbnail is new:
    watcherd moves each original out of the tree once it is done with it.
    """
    ignored = ignore_pattern(cfg.ignore).match
    return sum(
        1
        for _, names in scan_folders(cfg.thumbs_dir, cfg)
        for name in names
        if not CANONICAL_RE.match(name) and not ignored(name.lower())
    )
