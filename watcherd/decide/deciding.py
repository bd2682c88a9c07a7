"""One entry for every decision and every undo, whatever it is about: a collision or a near group.

``decisions`` decides collisions (and near groups ``distinct``), ``neardecisions`` keeps one
image of a near group, ``undo`` reverts the last decision of either kind. Each is built on
``Decisions``; this module, above all three, picks the one a decision needs, so none of
them has to reach up to another.
"""

from __future__ import annotations

from watcherd.core.collisionrecords import Verdict, Via
from watcherd.core.documents import DecisionRef
from watcherd.core.nearpairs import is_near_id
from watcherd.decide.decisions import Decisions
from watcherd.decide.near import NearDecisions
from watcherd.decide.undo import Undo

__all__ = ["resolve", "undo"]


def resolve(decisions: Decisions, ident: str, verdict: Verdict, via: Via = Via.COMMAND) -> str:
    """Decide collision or near group ``ident``; the name of the image that holds the result."""
    if is_near_id(ident) and verdict is not Verdict.DISTINCT:
        if via is not Via.GESTURE:
            decisions.filing.finish_pending()  # a decision a crash interrupted is finished first
        return NearDecisions(decisions).keep(ident, verdict, via)
    return decisions.resolve(ident, verdict, via)


def undo(decisions: Decisions, expected: str | None = None, token: str | None = None) -> DecisionRef:
    """Revert the last decision: files back where they were, the collision (or group) undecided.

    With ``expected`` (and ``token``), only if the last decision is that one
    (``decided.expect``). Returns the decision undone.
    """
    decisions.filing.finish_pending()  # a decision a crash interrupted is finished first
    return Undo(decisions).undo(expected, token)
