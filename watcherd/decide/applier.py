"""Carrying out a plan (``decide.plans``): the one place a planned decision or undo becomes
changes. One transaction writes its records, puts its decision in (or takes it out of) the order
of decisions and journals its thumbnail steps; then ``Filing.carry_out`` runs the steps and
moves the originals, committing again. A crash at any point is finished by the next start
(``Filing.finish_pending``), exactly as for every other decision.
"""

from __future__ import annotations

from watcherd.decide import decided
from watcherd.decide.plans import Plan
from watcherd.filing.originals import Filing

__all__ = ["Applier"]


class Applier:
    """Carries plans out for one library (the writer's side)."""

    def __init__(self, filing: Filing, batch: str | None = None) -> None:
        self.filing = filing
        self.catalog = filing.ctx.catalog
        self.batch = batch  # recorded with each decision made (the page's batches, undone as one)

    def apply(self, plan: Plan) -> None:
        """Commit ``plan``'s records and steps in one transaction, then carry it out."""
        catalog = self.catalog
        with catalog.transaction():
            for name in plan.delete_images:
                catalog.delete_image(name)
            for rec in plan.put_images:
                catalog.put_image(rec)
            for col in plan.put_collisions:
                catalog.put_collision(col)
            for made in plan.made:
                decided.push(catalog, made.ident, made.via, made.decided, self.batch)
            for ident in plan.undone:
                decided.pop(catalog, ident)
            self.filing.journal.plan(plan.steps)
        self.filing.carry_out(*plan.carry_out)
