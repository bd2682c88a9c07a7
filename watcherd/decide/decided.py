"""The order of decisions and what each one was: what ``undo`` takes, and how it names it.

``meta.decided`` lists the ids of the decisions in effect, oldest first: ``undo`` reverts
the last. ``meta.decisions_made`` says, for each of those ids, how (``via``) and when
(``decided``) the decision was made and a random ``token`` that tells it from an earlier
decision on the same id (decided, undone elsewhere, decided again). An undo may name the
decision it means (``expect``): refused with ``ConflictError``, changing nothing, unless
that decision is still in effect and the last. Reads only the catalog; no Pillow.
"""

from __future__ import annotations

import secrets

from watcherd.catalog import Catalog, CatalogReader
from watcherd.core.collisionrecords import Via
from watcherd.core.documents import DecisionRef
from watcherd.core.errors import ConflictError
from watcherd.core.nearpairs import is_near_id
from watcherd.core.records import Json

STACK = "decided"  # meta key: ids of decisions, oldest first (collision ids and near-group ids)
MADE = "decisions_made"  # meta key: {id: {"via", "decided", "token"}} for each id in STACK
NEAR = "distinct_groups"  # meta key: near-duplicate groups decided distinct (sorted name lists)

HOW = {
    Via.COMMAND.value: "from the command line",
    Via.PAGE.value: "on the review page",
    Via.GESTURE.value: "by a gesture in thumbs/_collisions/",
}


def push(catalog: Catalog, ident: str, via: Via, decided: str, batch: str | None = None) -> None:
    """Put ``ident`` last in the order of decisions (the next one ``undo`` reverts), with a new token
    (and the ``batch`` it was made in, when the page applied several decisions at once)."""
    stack = [i for i in catalog.meta(STACK) or [] if i != ident]
    catalog.set_meta(STACK, [*stack, ident])
    made = dict(catalog.meta(MADE) or {})
    made[ident] = {"via": via.value, "decided": decided, "token": secrets.token_hex(8)}
    if batch is not None:
        made[ident]["batch"] = batch
    catalog.set_meta(MADE, made)


def pop(catalog: Catalog, ident: str) -> None:
    """Take ``ident`` out of the order of decisions (its decision was undone)."""
    catalog.set_meta(STACK, [i for i in catalog.meta(STACK) or [] if i != ident])
    made = catalog.meta(MADE) or {}
    if ident in made:
        catalog.set_meta(MADE, {k: v for k, v in made.items() if k != ident})


def last(catalog: CatalogReader) -> str | None:
    """The id of the last decision in effect, or None."""
    stack = catalog.meta(STACK) or []
    return str(stack[-1]) if stack else None


def pinned_last(catalog: CatalogReader) -> Json:
    """What an undo of "the last decision" names when it is asked: that decision's id and token
    (``{}`` when there is none). A writer that applies the request twice (it died after the undo
    and before its answer) then refuses the second time, instead of undoing the decision before."""
    ident = last(catalog)
    if ident is None:
        return {}
    token = describe(catalog, ident)["token"]
    return {"id": ident, **({"token": token} if token is not None else {})}


def describe(catalog: CatalogReader, ident: str) -> DecisionRef:
    """The decision on ``ident`` in effect, as an undo names it (fields not recorded are None)."""
    made: Json = (catalog.meta(MADE) or {}).get(ident) or {}
    kind = via = decided = None
    if is_near_id(ident):
        near = catalog.near_decision(ident)
        if near is not None:
            kind, via, decided = near.decision.kind.value, near.decision.via.value, near.decision.decided
        elif sorted(ident.split("+")) in [sorted(g) for g in catalog.meta(NEAR) or []]:
            kind = "distinct"
    else:
        for col in catalog.collisions_named(ident.split("~")[0] + ".png") or catalog.collisions():
            if col.id == ident and col.decision is not None:
                kind, via, decided = col.decision.kind.value, col.decision.via.value, col.decision.decided
                break
    return {
        "id": ident,
        "decision": kind,
        "via": made.get("via") or via,
        "decided": made.get("decided") or decided or None,
        "token": made.get("token"),
        "batch": made.get("batch"),
    }


def said(ref: DecisionRef) -> str:
    """A decision as a message names it: ``keep-existing on ID (made from the command line at T)``."""
    how = " ".join(p for p in (HOW.get(ref["via"] or ""), f"at {ref['decided']}" if ref["decided"] else "") if p)
    return f"{ref['decision'] or 'the decision'} on {ref['id']}" + (f" (made {how})" if how else "")


def expect(catalog: CatalogReader, ident: str, token: str | None = None) -> None:
    """Refuse (``ConflictError``) unless the last decision is the one on ``ident`` (with
    ``token``, that very decision). Its ``details``: ``last`` (the last decision, or None)
    and ``named`` (``{"id", "in_effect"}``: is the named decision still in effect?)."""
    stack = [str(i) for i in catalog.meta(STACK) or []]
    recorded = ((catalog.meta(MADE) or {}).get(ident) or {}).get("token")
    in_effect = ident in stack and (token is None or recorded == token)
    if in_effect and stack[-1] == ident:
        return
    latest = describe(catalog, stack[-1]) if stack else None
    if in_effect:
        assert latest is not None
        message = (
            f"the last decision is {said(latest)}, not the one on {ident}: only the last decision can be "
            "undone; undo it first with 'watcherd resolve --undo'; nothing was changed"
        )
    elif ident in stack:
        message = (
            f"the decision on {ident} named here was undone elsewhere, and {ident} decided again since "
            f"({said(describe(catalog, ident))}); nothing was changed"
        )
    else:
        message = f"there is no decision on {ident} to undo (undone elsewhere, or never made); nothing was changed"
    raise ConflictError(message, {"last": latest, "named": {"id": ident, "in_effect": in_effect}})


def batch_in_effect(catalog: CatalogReader, batch: str) -> list[str]:
    """The ids of the decisions of ``batch`` still in effect, oldest first; refused
    (``ConflictError``, as ``expect``) unless they are the last decisions, with nothing after them."""
    stack = [str(i) for i in catalog.meta(STACK) or []]
    made = catalog.meta(MADE) or {}
    members = [i for i in stack if (made.get(i) or {}).get("batch") == batch]
    if members and stack[-len(members) :] == members:
        return members
    latest = describe(catalog, stack[-1]) if stack else None
    if not members:
        message = (
            f"there is no decision of batch {batch} to undo (undone elsewhere, or never made); nothing was changed"
        )
    else:
        assert latest is not None
        message = (
            f"the last decision is {said(latest)}, made after batch {batch}: only the last decisions can be "
            "undone; undo it first with 'watcherd resolve --undo'; nothing was changed"
        )
    raise ConflictError(message, {"last": latest, "named": {"id": batch, "in_effect": bool(members)}})
