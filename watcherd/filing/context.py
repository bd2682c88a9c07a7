"""What every step of the pipeline works with: settings, the catalog, places and a clock."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from watcherd.catalog import Catalog
from watcherd.core.config import Config
from watcherd.core.naming import shown
from watcherd.core.places import Places
from watcherd.fs import publish

log = logging.getLogger("watcherd")

Checkpoint = Callable[[str, Path], None]


def no_checkpoint(step: str, path: Path) -> None:
    """The default checkpoint: nothing happens between steps."""


def iso(ts: float) -> str:
    """UTC timestamp as ISO 8601 text, second precision."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Context:
    """Shared by the pipeline's steps; ``now`` is a parameter so tests need not patch time."""

    cfg: Config
    catalog: Catalog
    now: Callable[[], float] = time.time
    # Called between the steps of a file's journey (``publishing``: its thumbnail is
    # written under a temporary name and not yet published; ``filing``: its record is
    # committed and its original about to move), so a test can do exactly what a user
    # might do at that moment, deterministically.
    checkpoint: Checkpoint = no_checkpoint
    places: Places = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "places", Places(self.cfg))

    def published(self, path: Path) -> None:
        """``path`` was just published for records not yet committed: take it back if they roll back.

        So a batch stopped before its commit (Ctrl-C, SIGTERM, an error) leaves none of its
        thumbnails behind; after SIGKILL or power loss the next start adopts or takes them back.
        """
        try:
            st = os.lstat(path)
        except OSError:
            return
        rel = self.places.rel(path)

        def undo() -> None:
            if publish.take_back(path, st):
                log.info("took back %s: the records it was published for were not written", shown(rel))

        self.catalog.on_rollback(undo)

    def sync_later(self, dir_fd: int) -> None:
        """Fsync this open folder once, just before the open transaction commits (its records
        name a file just published there); a batch of files in one folder syncs it once."""
        st = os.fstat(dir_fd)
        held = os.dup(dir_fd)  # held open: a rename of the folder meanwhile does not matter

        def run() -> None:
            try:
                os.fsync(held)
            except OSError:
                pass
            finally:
                os.close(held)

        if not self.catalog.before_commit(("fsync", st.st_dev, st.st_ino), run, lambda: os.close(held)):
            os.close(held)

    def stamp(self) -> str:
        """The current time as the catalog records it."""
        return iso(self.now())
