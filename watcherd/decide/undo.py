"""Undoing the last decision about a collision: files back where they were, the collision
undecided again, and whatever the decision added to the kept image taken back.

Like a decision, an undo is one transaction (records, the originals' moves planned, the
thumbnail steps journaled), then the steps (``filing.settle``): a crash at any point is
finished by the next start. Thumbnails are made again by the decoder sandbox.
"""

from __future__ import annotations

import logging
import os

from watcherd.core.collisionrecords import CollisionRecord, Verdict
from watcherd.core.documents import DecisionRef
from watcherd.core.errors import UsageError
from watcherd.core.nearpairs import is_near_id
from watcherd.decide import decided
from watcherd.decide.decided import NEAR
from watcherd.decide.decisions import Decisions
from watcherd.decide.near import NearDecisions
from watcherd.filing import journal

log = logging.getLogger("watcherd")


class Undo:
    """Reverts the most recent decision (the last id in ``meta.decided``, see ``decided``)."""

    def __init__(self, decisions: Decisions) -> None:
        self.decisions = decisions
        self.ctx = decisions.ctx
        self.filing = decisions.filing

    def undo(self, expected: str | None = None, token: str | None = None) -> DecisionRef:
        """Revert the last decision: files back where they were, the collision undecided.

        With ``expected`` (and ``token``) only if the last decision is that one, else
        ``ConflictError`` and nothing changes. Returns the decision undone."""
        catalog = self.ctx.catalog
        if expected is not None:
            decided.expect(catalog, expected, token)
        ident = decided.last(catalog)
        if ident is None:
            raise UsageError("there is no decision to undo")
        ref = decided.describe(catalog, ident)
        if is_near_id(ident) and NearDecisions(self.decisions).undo(ident):
            return ref
        if is_near_id(ident):
            names = sorted(ident.split("+"))
            with catalog.transaction():
                catalog.set_meta(NEAR, [g for g in catalog.meta(NEAR) or [] if sorted(g) != names])
                self.decisions.pop(ident)
            log.info("undid: the near-duplicates %s are undecided again", ", ".join(names))
            return ref
        col = next((c for c in catalog.collisions() if c.id == ident), None)
        if col is None or col.decision is None:
            with catalog.transaction():
                self.decisions.pop(ident)
            raise UsageError(f"the last decision ({ident}) is gone from the catalog; nothing was changed")
        kind = col.decision.kind
        if kind is Verdict.DISTINCT:
            self._undo_distinct(col)
        elif kind is Verdict.KEEP_EXISTING:
            self._undo_keep_existing(col)
        else:
            self._undo_keep_newcomer(col)
        log.info("undid %s: undecided again", decided.said(ref))
        return ref

    def _undo_distinct(self, col: CollisionRecord) -> None:
        catalog, places = self.ctx.catalog, self.ctx.places
        assert col.decision is not None and col.decision.image is not None
        rec = catalog.image(col.decision.image)
        if rec is not None and len(rec.paths) > 1:
            raise UsageError(f"{rec.name} has copies in {', '.join(rec.paths)}; delete all but one, then undo")
        target = self.decisions.collision_thumb(col)
        planned: list[journal.Step] = []
        if os.path.lexists(target):
            raise UsageError(f"{places.rel(target)} is taken; nothing was changed")
        if rec is not None and rec.present and journal.ours(places.absolute(rec.path), col.newcomer.sha256):
            planned.append(journal.rename(rec.path, places.rel(target), col.newcomer.sha256))
        else:
            png = self.decisions.render(rec.original if rec else col.newcomer.original, col.newcomer.filename)
            planned.append(journal.publish(places.rel(target), png))
        self.decisions.back_to_collisions(col, rec.original if rec else None)
        col.newcomer.thumbnail = places.rel(target)
        col.decision = None
        with catalog.transaction():
            if rec is not None:
                catalog.delete_image(rec.name)
            catalog.put_collision(col)
            self.decisions.pop(col.id)
            self.filing.journal.plan(planned)
        self.filing.carry_out(col)

    def _undo_keep_existing(self, col: CollisionRecord) -> None:
        catalog = self.ctx.catalog
        target = self.decisions.collision_thumb(col)
        planned: list[journal.Step] = []
        if not os.path.lexists(target):
            png = self.decisions.render(col.newcomer.original, col.newcomer.filename)
            planned.append(journal.publish(self.ctx.places.rel(target), png))
        kept = self.decisions.unmerge(col)
        self.decisions.back_to_collisions(col, col.newcomer.original)
        col.newcomer.thumbnail = self.ctx.places.rel(target)
        col.decision = None
        with catalog.transaction():
            if kept is not None:
                catalog.put_image(kept)
            catalog.put_collision(col)
            self.decisions.pop(col.id)
            self.filing.journal.plan(planned)
        self.filing.carry_out(col)

    def _undo_keep_newcomer(self, col: CollisionRecord) -> None:
        catalog, places = self.ctx.catalog, self.ctx.places
        decision = col.decision
        assert decision is not None
        kept = self.decisions.unmerge(col)
        if kept is None:
            raise UsageError(f"{col.name} is no longer catalogued; nothing was changed")
        replaced = decision.replaced or {}
        old_original = decision.archived or replaced.get("original")
        old_png = self.decisions.render(old_original, replaced.get("original_filename"))
        target = self.decisions.collision_thumb(col)
        new_png = self.decisions.render(kept.original, col.newcomer.filename)
        # The newcomer's thumbnail back under _collisions/, the existing one's back in each place.
        planned = [journal.publish(places.rel(target), new_png)]
        planned += [
            step for rel in kept.paths for step in (journal.unlink(rel, kept.sha256), journal.publish(rel, old_png))
        ]
        newcomer_original = None if col.newcomer.source else kept.original
        self.decisions.back_to_collisions(col, newcomer_original)
        old_filename = replaced.get("original_filename")
        if col.newcomer.filename == kept.original_filename and old_filename in kept.other_filenames:
            kept.other_filenames.remove(old_filename)
        kept.sha256, kept.format = replaced.get("sha256"), replaced.get("format")
        kept.file_size, kept.original_filename = replaced.get("file_size"), replaced.get("original_filename")
        kept.source = bool(replaced.get("source"))
        if decision.archived and replaced.get("original"):
            kept.original, kept.moving_from = replaced["original"], decision.archived
        else:
            kept.original, kept.moving_from = replaced.get("original"), None
        col.newcomer.thumbnail = places.rel(target)
        col.decision = None
        with catalog.transaction():
            catalog.put_image(kept)
            catalog.put_collision(col)
            self.decisions.pop(col.id)
            self.filing.journal.plan(planned)
        self.filing.carry_out(col, kept)  # the newcomer's original first: it frees the name the old one returns to
