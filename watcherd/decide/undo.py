"""Undoing the last decision about a collision: files back where they were, the collision
undecided again, and whatever the decision added to the kept image taken back.

An undo of a collision's decision is looked up here (``UndoFacts``: what only the disk can
tell, thumbnails made again by the decoder sandbox), planned without I/O
(``decide.plans.plan_undo``) and carried out by ``decide.applier``: one transaction
(records, the originals' moves planned, the thumbnail steps journaled), then the steps
(``Filing.carry_out``). A crash at any point is finished by the next start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from watcherd.core.collisionrecords import CollisionRecord, Verdict
from watcherd.core.documents import DecisionRef
from watcherd.core.errors import UsageError
from watcherd.core.nearpairs import is_near_id
from watcherd.decide import decided
from watcherd.decide.applier import Applier
from watcherd.decide.decided import NEAR
from watcherd.decide.decisions import Decisions
from watcherd.decide.near import NearDecisions
from watcherd.decide.plans import Back, UndoFacts, plan_undo
from watcherd.filing import journal

log = logging.getLogger("watcherd")


class Undo:
    """Reverts the most recent decision (the last id in ``meta.decided``, see ``decided``)."""

    def __init__(self, decisions: Decisions) -> None:
        self.decisions = decisions
        self.ctx = decisions.ctx
        self.filing = decisions.filing
        self.applier = Applier(decisions.filing)

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
        self._undo_collision(col)
        log.info("undid %s: undecided again", decided.said(ref))
        return ref

    def _undo_collision(self, col: CollisionRecord) -> None:
        """Look up what the undo needs (``UndoFacts``), plan it (pure), carry the plan out."""
        self.applier.apply(plan_undo(col, self._facts(col)))

    def _facts(self, col: CollisionRecord) -> UndoFacts:
        catalog, places, new = self.ctx.catalog, self.ctx.places, col.newcomer
        decision = col.decision
        assert decision is not None
        target = self.decisions.collision_thumb(col)
        taken = os.path.lexists(target)
        if decision.kind is Verdict.DISTINCT:
            assert decision.image is not None
            rec = catalog.image(decision.image)
            if (rec is not None and len(rec.paths) > 1) or taken:
                return UndoFacts(places.rel(target), taken, rec)  # refused by the plan: nothing made again
            ours = rec is not None and rec.present and journal.ours(places.absolute(rec.path), new.sha256)
            original, ingested = (rec.original, rec.first_seen) if rec else (new.original, col.detected)
            png = None if ours else self.decisions.render(original, new.filename, ingested)
            back = self._back(col, rec.original if rec else None)
            return UndoFacts(places.rel(target), taken, rec, ours, newcomer_png=png, back=back)
        kept = self.decisions.kept_image(col)
        if decision.kind is Verdict.KEEP_EXISTING:
            png = None if taken else self.decisions.render(new.original, new.filename, col.detected)
            return UndoFacts(places.rel(target), taken, kept, newcomer_png=png, back=self._back(col, new.original))
        if kept is None:
            return UndoFacts(places.rel(target), taken, None)  # refused by the plan
        replaced = decision.replaced or {}
        old_png = self.decisions.render(
            decision.archived or replaced.get("original"),
            replaced.get("original_filename"),
            replaced.get("ingested") or kept.first_seen,
        )
        new_png = self.decisions.render(kept.original, new.filename, col.detected)
        back = self._back(col, None if new.source else kept.original)
        return UndoFacts(places.rel(target), taken, kept, newcomer_png=new_png, existing_png=old_png, back=back)

    def _back(self, col: CollisionRecord, current: str | None) -> Back | None:
        """The newcomer's original's way back to ``originals/_collisions/`` (None: it stays)."""
        if col.newcomer.source or not current or not os.path.lexists(self.ctx.places.absolute(current)):
            return None
        return Back(current, self.filing.planned(col.id, Path(current).suffix, collision=True))
