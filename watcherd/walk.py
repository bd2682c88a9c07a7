"""Walking the thumbs tree and the sources: which files watcherd looks at, and in what order.

Walks never follow symlinks, skip ignored names and the collisions folder, and go
breadth first in name order, so two scans of the same tree see the same sequence.
"""

from __future__ import annotations

import logging
import operator
import os
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from watcherd.config import Config
from watcherd.filters import TEMP_PREFIX, ignore_pattern
from watcherd.naming import shown

log = logging.getLogger("watcherd")

_by_name = operator.attrgetter("name")


def walk_files(top: Path, cfg: Config, on_folder: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Every regular file under ``top`` that watcherd should look at (see ``walk_folders``)."""
    for folder, files in walk_folders(top, cfg):
        if on_folder is not None:
            on_folder(Path(folder))
        for path, _ in files:
            yield Path(path)


def walk_folders(
    top: Path, cfg: Config, leftovers: list[str] | None = None
) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Each folder under ``top`` (itself included) with the (path, name) of its regular files,
    breadth first in name order (so runs are repeatable); symlinks are never followed.

    ``top`` itself is assumed wanted; below it each name is checked once against the
    ignore rules (its parents were checked on the way down), which keeps a walk of a
    large tree cheap. Paths stay strings: a start-up scan of 100k thumbnails should
    not build 100k Path objects only to find them where the catalog says. Our own
    temporaries met on the way are added to ``leftovers`` when it is given.
    """
    ignored = ignore_pattern(cfg.ignore).match
    collisions = os.fspath(cfg.thumbs_dir / cfg.collisions)
    pending = deque([os.fspath(top)])
    while pending:
        folder = pending.popleft()
        try:
            entries = sorted(os.scandir(folder), key=_by_name)
        except OSError as exc:
            log.warning("cannot list %s: %s", shown(folder), exc.strerror)
            continue
        files = []
        for entry in entries:
            if ignored(entry.name.lower()) or entry.path == collisions:
                if leftovers is not None and entry.name.startswith(TEMP_PREFIX):
                    leftovers.append(entry.path)
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    files.append((entry.path, entry.name))
            except OSError:
                continue
        yield folder, files
