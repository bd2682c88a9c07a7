"""Filing originals: moving a user's file from the tree into ``originals/``, after its record.

The record always says where the original is about to go (``original``) and where it
still is (``moving_from``) before the move starts, and that record is committed; the
move then gives the file its new name by a hard link before the old name goes (a
copy, fsynced and published, across filesystems), and the record is committed again.
A crash at any point leaves ``moving_from`` set, and the next start finishes the move.
"""

from __future__ import annotations

import logging
import os
from typing import Protocol

from watcherd import fsops
from watcherd.context import Context
from watcherd.naming import shown
from watcherd.records import CollisionRecord, ImageRecord

log = logging.getLogger("watcherd")


class Side(Protocol):
    """Anything with an original being filed: an image record, or a collision's newcomer."""

    original: str | None
    moving_from: str | None


class Filing:
    """Moves originals into ``originals/`` and records where they went."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def planned(self, name: str, suffix: str, *, collision: bool = False) -> str:
        """Where an original named for thumbnail ``name`` (or a collision label) should go."""
        places = self.ctx.places
        folder = places.original_collisions if collision else places.originals
        stem = name[: -len(".png")] if name.endswith(".png") else name
        return places.rel(folder / f"{stem}{suffix.lower()}")

    def file_image(self, rec: ImageRecord) -> None:
        """Finish filing an image's original, then commit where it went."""
        if self._move(rec, rec.name):
            with self.ctx.catalog.transaction():
                self.ctx.catalog.put_image(rec)

    def file_collision(self, col: CollisionRecord) -> None:
        """Finish filing a collision newcomer's original, then commit where it went."""
        if self._move(col.newcomer, col.id):
            with self.ctx.catalog.transaction():
                self.ctx.catalog.put_collision(col)

    def finish_pending(self) -> int:
        """Complete the moves of originals that a crash interrupted; return how many."""
        catalog = self.ctx.catalog
        done = 0
        for name in catalog.pending_moves():
            rec = catalog.image(name)
            if rec is not None and rec.moving_from:
                self.file_image(rec)
                done += 1
        for col in catalog.collisions():
            if col.newcomer.moving_from:
                self.file_collision(col)
                done += 1
        return done

    def _move(self, side: Side, label: str) -> bool:
        """Move ``side``'s original from ``moving_from`` to (about) ``original``.

        Returns whether ``side`` changed (and must be saved); False when the move
        failed and will be tried again.
        """
        src_rel = side.moving_from
        if not src_rel or side.original is None:
            return False
        places = self.ctx.places
        src = places.absolute(src_rel)
        planned = places.absolute(side.original)
        astray = False
        if os.path.lexists(src):
            try:
                before = os.lstat(src)
                dst = fsops.move_no_replace(src, planned.parent, planned.name)
                after = os.lstat(dst)
            except FileNotFoundError:
                astray = True  # gone between the look and the move
            except OSError as exc:
                log.error("cannot move original %s: %s (will retry)", shown(src_rel), exc)
                return False
            else:
                if before.st_nlink > 1 and after.st_ino != before.st_ino:
                    log.warning(
                        "%s had %d hard links and was copied across filesystems: its other names are now a copy",
                        shown(src_rel),
                        before.st_nlink,
                    )
                side.original = places.rel(dst)
        elif not os.path.lexists(planned):
            astray = True
        if astray:
            # Moved away (a folder renamed, say) before we could file it. A record
            # without an original adopts these bytes when they are seen again.
            log.info("original of %s left %s before it was filed; waiting to see it again", label, shown(src_rel))
            side.original = None
        side.moving_from = None
        return True
