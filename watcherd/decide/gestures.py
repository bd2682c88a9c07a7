"""Decisions made by gesture in the file manager: a newcomer's thumbnail moved out of
``_collisions/`` into the tree is ``distinct`` where it landed; deleted, it is ``keep-existing``.

The decisions themselves are ``decisions.Decisions``' (made ``Via.GESTURE``); this module
only tells from what happened to a thumbnail which collision it was and what was meant.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath

from watcherd.core.collisionrecords import CollisionRecord, Verdict, Via
from watcherd.core.errors import UsageError
from watcherd.decide.decisions import Decisions
from watcherd.fs import fsops

__all__ = ["Gestures"]

log = logging.getLogger("watcherd")


class Gestures:
    """What a newcomer's thumbnail leaving ``_collisions/`` decides, through ``decisions``."""

    def __init__(self, decisions: Decisions) -> None:
        self.decisions = decisions
        self.ctx = decisions.ctx

    def thumbnail_deleted(self, rel: str) -> str | None:
        """The newcomer's thumbnail at ``rel`` left ``_collisions/`` (and did not appear in the
        tree): keep-existing. Returns the collision's id, or None if it decided nothing."""
        for col in self.ctx.catalog.collisions():
            if col.decision is None and col.newcomer.thumbnail == rel:
                if os.path.lexists(self.ctx.places.absolute(rel)) or self.ctx.catalog.existing_holder(col) is None:
                    return None
                self.decisions.resolve(col.id, Verdict.KEEP_EXISTING, Via.GESTURE)
                return col.id
        return None

    def thumbnail_placed(self, path: Path, sha256: str, canonical: str, *, left: bool = False) -> str | None:
        """A newcomer's thumbnail (chunks ``sha256``, plain name ``canonical``) is at ``path`` in
        the tree: distinct, catalogued there under its variant name. Its name, or None.

        ``left``: only a newcomer whose thumbnail left ``_collisions/`` (a file under a name of
        the person's: while the newcomer's own is still there, this one is a copy of something)."""
        catalog, places = self.ctx.catalog, self.ctx.places
        for col in self._by_likeness(catalog.collisions_named(canonical), path):
            undecided = col.decision is None or (
                col.decision.via is Via.GESTURE and col.decision.kind is Verdict.KEEP_EXISTING
            )
            if col.newcomer.sha256 != sha256 or not undecided:
                continue
            if left and col.newcomer.thumbnail and os.path.lexists(places.absolute(col.newcomer.thumbnail)):
                continue
            target = path.parent / col.distinct_name
            if target != path:
                try:
                    fsops.rename_no_replace(path, target)
                except (FileExistsError, FileNotFoundError):
                    return None
            if col.decision is not None:
                self._gesture_revisited(col)
            try:
                return self.decisions.resolve(col.id, Verdict.DISTINCT, Via.GESTURE, at=target)
            except FileNotFoundError:
                return None  # it moved on before it was decided (its folder too): the walk decides it where it is
        return None

    def _by_likeness(self, cols: list[CollisionRecord], path: Path) -> list[CollisionRecord]:
        """Collisions in the order they may have sent the thumbnail now at ``path``: two newcomers
        of the same bytes (``X~sha12``, ``X~sha12~2``) have the same thumbnail, so the one whose
        file name it still has comes first, then those whose thumbnail left ``_collisions/``."""

        def key(col: CollisionRecord) -> tuple[bool, bool]:
            thumb = col.newcomer.thumbnail
            named = thumb is not None and PurePosixPath(thumb).name == path.name
            left = not thumb or not os.path.lexists(self.ctx.places.absolute(thumb))
            return not named, not left

        return sorted(cols, key=key)

    def _gesture_revisited(self, col: CollisionRecord) -> None:
        """A deletion that was the first half of a move: its original comes back from the archive."""
        assert col.decision is not None
        kept = self.decisions.unmerge(col)
        new = col.newcomer
        self.decisions.back_to_collisions(col, new.original)
        col.decision = None
        with self.ctx.catalog.transaction():
            if kept is not None:
                self.ctx.catalog.put_image(kept)
            self.ctx.catalog.put_collision(col)
            self.decisions.pop(col.id)
        self.decisions.filing.carry_out(col)

    def sweep(self) -> int:
        """After a full scan: undecided collisions whose thumbnail left ``_collisions/`` are decided
        as the gestures say (a thumbnail placed in the tree was handled by the walk)."""
        decided = 0
        for col in self.ctx.catalog.collisions():
            if col.decision is None and col.newcomer.thumbnail and not col.newcomer.source:
                try:
                    decided += self.thumbnail_deleted(col.newcomer.thumbnail) is not None
                except UsageError as exc:
                    log.warning("collision %s: %s", col.id, exc)
        return decided
