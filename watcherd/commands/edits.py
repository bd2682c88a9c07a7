"""The changes commands make to the catalog, each in one transaction, returning its document
(``check-repair`` in several: each repair is its own change).

The daemon (answering a request) and a command holding the lease itself call the same
functions, so a change means the same whoever applies it. Each is idempotent in effect:
applied twice (a writer that died before answering applies it again at start-up), the
second time changes nothing or is refused with an error nobody waits for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from watcherd.catalog import Catalog
from watcherd.commands import arrange as arranging
from watcherd.commands import queries, search
from watcherd.commands.mailbox import Answer, Request
from watcherd.core.config import Config
from watcherd.core.documents import (
    Arrangement,
    BatchDecided,
    BatchUndone,
    Decided,
    DecisionRef,
    Forgotten,
    ImageSummary,
    Refusal,
    RepairReport,
    Retried,
    TagChange,
    Undone,
)
from watcherd.core.errors import UsageError, WatcherdError
from watcherd.core.naming import shown
from watcherd.core.records import Json
from watcherd.decide import deciding

if TYPE_CHECKING:
    from watcherd.decode.newimage import Renderer

log = logging.getLogger("watcherd")

SIZE_TAG = re.compile(r"^\d+x\d+$")


def _check_tag(tag: str, what: str) -> None:
    if not tag or "/" in tag or tag in (".", ".."):
        raise UsageError(f"{what} {tag!r} is not a tag (a tag is one folder name)")
    if SIZE_TAG.match(tag):
        raise UsageError(f"{what} {tag!r} is a size tag: every image carries its own, it cannot be changed")


def untag(catalog: Catalog, name: str, tag: str) -> ImageSummary:
    """Remove ``tag`` from one image; it comes back only if the image is moved into such a folder."""
    with catalog.transaction():
        rec = search.lookup(catalog, name)
        if tag not in rec.tags:
            raise UsageError(f"{rec.name} has no tag {tag!r} (it has: {', '.join(rec.tags) or 'none'})")
        rec.tags = [t for t in rec.tags if t != tag]
        catalog.put_image(rec)
    log.info("untagged %s: %s", rec.name, shown(tag))
    return queries.summary(rec)


def retag(catalog: Catalog, old: str, new: str | None) -> TagChange:
    """Rename tag ``old`` to ``new`` on every image (merged where both are there); None removes it."""
    _check_tag(old, "tag")
    if new is not None:
        _check_tag(new, "new tag")
        if new == old:
            raise UsageError(f"the old and the new tag are both {old!r}")
    with catalog.transaction():
        names = catalog.names_tagged(old)
        if not names:
            raise UsageError(f"no image has the tag {old!r}")
        for rec in catalog.images_named(names).values():
            rec.tags = _renamed(rec.tags, old, new)
            rec.keywords = _renamed(rec.keywords, old, new)  # a renamed keyword is still one
            rec.keyword_paths = [
                q for q in ("|".join(_renamed(p.split("|"), old, new)) for p in rec.keyword_paths) if q
            ]
            catalog.put_image(rec)
    log.info("%s tag %s on %d images", "renamed" if new else "removed", shown(old), len(names))
    return {"old": old, "new": new, "images": len(names), "names": names}


def _renamed(tags: list[str], old: str, new: str | None) -> list[str]:
    """``tags`` with ``old`` renamed to ``new`` (or removed), each once, in place."""
    out: list[str] = []
    for t in tags:
        renamed = new if t == old else t
        if renamed is not None and renamed not in out:
            out.append(renamed)
    return out


def untag_everywhere(catalog: Catalog, tag: str) -> TagChange:
    """Remove ``tag`` from every image that has it."""
    return retag(catalog, tag, None)


def forget(catalog: Catalog, names: list[str]) -> Forgotten:
    """Drop the records of missing images; all or nothing: a present or unknown one refuses the lot,
    and so does one an undecided collision compares a newcomer with."""
    if not names:
        raise UsageError("forget needs at least one NAME")
    with catalog.transaction():
        records = [search.lookup(catalog, n) for n in names]
        present = [r.name for r in records if r.present]
        if present:
            raise UsageError(
                f"refusing to forget {', '.join(present)}: only missing images can be forgotten, and "
                f"{'this one is' if len(present) == 1 else 'these are'} in the tree (nothing was forgotten)"
            )
        gone = sorted({r.name for r in records})
        # An undecided collision compares a newcomer with the record: without it neither
        # keep decision (nor the settle gesture of deleting the newcomer) could be made.
        waiting = sorted({c.id for name in gone for c in catalog.collisions_named(name) if c.decision is None})
        if waiting:
            raise UsageError(
                f"refusing to forget: the undecided collision{'' if len(waiting) == 1 else 's'} "
                f"{', '.join(waiting)} compare{'s' if len(waiting) == 1 else ''} a newcomer with "
                f"{'this image' if len(gone) == 1 else 'these images'}; decide "
                f"{'it' if len(waiting) == 1 else 'them'} first (nothing was forgotten)"
            )
        for name in gone:
            catalog.delete_image(name)
    log.info("forgot %d missing images: %s", len(gone), ", ".join(gone))
    return {"forgotten": gone}


def retry_errors(catalog: Catalog) -> Retried:
    """Forget every error record, so that each of those files is read again: by the next scan,
    or at once by the daemon that applied this (``to_read_again``)."""
    with catalog.transaction():
        paths = sorted(e.path for e in catalog.errors())
        for rel in paths:
            catalog.clear_error(rel)
    if paths:
        log.info("forgot %d error records; those files are read again", len(paths))
    return {"retried": paths}


def to_read_again(req: Request, answer: Answer) -> list[str]:
    """The files (relative to ROOT) a writer should read again now that ``req`` was applied."""
    if req.command != "retry-errors" or not answer.ok or not isinstance(answer.result, dict):
        return []
    return [str(p) for p in answer.result.get("retried", [])]


ASKED_VIA = ("command", "page")  # how a change asks for a decision (a gesture is the writer's own)


def resolve(
    cfg: Config, catalog: Catalog, ident: str, decision: str, via: str = "command", render: Renderer | None = None
) -> Decided:
    """Decide collision (or near group) ``ident``: ``distinct``, ``keep-existing`` or ``keep-newcomer``.

    ``via``: ``command`` or ``page``, recorded with the decision. ``render`` makes
    thumbnails again where a decision needs one: the daemon's decoder pool; None starts a
    decoder sandbox for the moment (never decoding in this process).
    """
    from watcherd.core.collisionrecords import Verdict, Via
    from watcherd.decide import decided

    try:
        verdict = Verdict(decision)
    except ValueError:
        raise UsageError(f"decide {decision!r}? choose one of {', '.join(v.value for v in Verdict)}") from None
    if via not in ASKED_VIA:
        raise UsageError(f"a decision via {via!r}? choose {' or '.join(ASKED_VIA)}")
    with _decisions(cfg, catalog, render) as decisions:
        image = deciding.resolve(decisions, ident, verdict, Via(via))
    made = decided.describe(catalog, ident)
    return {"id": ident, "decision": verdict.value, "image": image, "undone": False, "made": made}


def undo(
    cfg: Config,
    catalog: Catalog,
    render: Renderer | None = None,
    expected: str | None = None,
    token: str | None = None,
) -> Undone:
    """Revert the last decision: files back where they were, the collision undecided again
    (its thumbnails made again by ``render``, as for ``resolve``).

    With ``expected`` (a decision's id) and ``token`` (from ``resolve``'s ``made``): only
    when the last decision is that one; else ``ConflictError`` and nothing changes. Applied
    twice (a writer that died before answering), the second one is refused so.
    """
    with _decisions(cfg, catalog, render) as decisions:
        undid = deciding.undo(decisions, expected, token)
    return {"id": undid["id"], "decision": None, "image": None, "undone": True, "undid": undid}


BATCH = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _batch_id(batch: object) -> str:
    if not isinstance(batch, str) or not BATCH.match(batch):
        raise UsageError("a batch is named by 1 to 64 letters, digits, '-' or '_'")
    return batch


def resolve_batch(
    cfg: Config, catalog: Catalog, asked: list[Json], via: str, batch: str, render: Renderer | None = None
) -> BatchDecided:
    """Make several decisions at once (the page's "apply the suggested keeper to all"), each
    recorded with ``batch`` so that one undo takes them all back (``undo_batch``).

    Each decision is its own transaction, as alone; one that cannot be made (decided
    meanwhile, unknown, a thumbnail watcherd did not make) is refused and the others are made.
    """
    from watcherd.core.collisionrecords import Verdict, Via
    from watcherd.decide import decided

    batch = _batch_id(batch)
    if via not in ASKED_VIA:
        raise UsageError(f"a decision via {via!r}? choose {' or '.join(ASKED_VIA)}")
    wanted: list[tuple[str, Verdict]] = []
    for item in asked:
        try:
            wanted.append((str(item["id"]), Verdict(str(item["decision"]))))
        except (KeyError, ValueError, TypeError):
            raise UsageError("each decision of a batch is {id, decision}") from None
    made: list[Decided] = []
    refused: list[Refusal] = []
    with _decisions(cfg, catalog, render, batch) as decisions:
        for ident, verdict in wanted:
            try:
                image = deciding.resolve(decisions, ident, verdict, Via(via))
            except UsageError as exc:
                refused.append({"id": ident, "decision": verdict.value, "error": str(exc)})
                continue
            ref = decided.describe(catalog, ident)
            made.append({"id": ident, "decision": verdict.value, "image": image, "undone": False, "made": ref})
    if made:
        log.info("batch %s: %d decisions made (%s), %d refused", batch, len(made), via, len(refused))
    return {"batch": batch, "made": made, "refused": refused}


def undo_batch(cfg: Config, catalog: Catalog, batch: str, render: Renderer | None = None) -> BatchUndone:
    """Undo every decision of ``batch`` still in effect, newest first; refused (``ConflictError``,
    nothing changed) unless they are the library's last decisions. One that cannot be undone
    stops the rest: what was undone is said, and the ones left (``left``) stay the last."""
    from watcherd.decide import decided

    batch = _batch_id(batch)
    members = decided.batch_in_effect(catalog, batch)
    made = catalog.meta(decided.MADE) or {}
    undid: list[DecisionRef] = []
    error = None
    with _decisions(cfg, catalog, render) as decisions:
        for ident in reversed(members):
            try:
                undid.append(deciding.undo(decisions, ident, (made.get(ident) or {}).get("token")))
            except WatcherdError as exc:
                if not undid:
                    raise
                error = str(exc)
                break
    left = [i for i in members if i not in {u["id"] for u in undid}]
    return {"batch": batch, "undone": True, "undid": undid, "left": left, "error": error}


@contextlib.contextmanager
def _decisions(cfg: Config, catalog: Catalog, render: Renderer | None, batch: str | None = None) -> Iterator[Any]:
    from watcherd.decide.decisions import Decisions
    from watcherd.filing.context import Context
    from watcherd.filing.originals import Filing

    ctx = Context(cfg, catalog)
    if render is not None:
        yield Decisions(ctx, Filing(ctx), render, batch)
        return
    from watcherd.decode.sandbox import Sandbox

    # Its worker process starts only if a thumbnail has to be made (undo).
    with Sandbox(cfg.decode_timeout, cfg.decode_memory) as box:
        yield Decisions(ctx, Filing(ctx), box, batch)


def _repair(cfg: Config, catalog: Catalog, args: Json, render: Renderer | None) -> RepairReport:
    """``check --repair``: temporaries are removed only by the command itself under the lease
    (``host`` and ``pid`` are its own), never by a daemon, which may be writing its own."""
    from watcherd.check.repair import repair

    here = args.get("host") == socket.gethostname() and args.get("pid") == os.getpid()
    return repair(cfg, catalog, render, sweep=here)


def _arrange(cfg: Config, catalog: Catalog, args: Json) -> Arrangement:
    plan = arranging.plan(cfg, catalog, str(args["mode"]), str(args.get("under") or ""))
    return arranging.execute(cfg, catalog, plan)


EDITS: dict[str, Callable[[Config, Catalog, Json, Renderer | None], Any]] = {
    "untag": lambda cfg, cat, a, r: untag(cat, str(a["name"]), str(a["tag"])),
    "retag": lambda cfg, cat, a, r: retag(cat, str(a["old"]), str(a["new"])),
    "untag-everywhere": lambda cfg, cat, a, r: untag_everywhere(cat, str(a["tag"])),
    "forget": lambda cfg, cat, a, r: forget(cat, [str(n) for n in a["names"]]),
    "retry-errors": lambda cfg, cat, a, r: retry_errors(cat),
    "arrange": lambda cfg, cat, a, r: _arrange(cfg, cat, a),
    "resolve": lambda cfg, cat, a, r: resolve(
        cfg, cat, str(a["id"]), str(a["decision"]), str(a.get("via") or "command"), render=r
    ),
    "resolve-batch": lambda cfg, cat, a, r: resolve_batch(
        cfg, cat, list(a["decisions"]), str(a.get("via") or "command"), a["batch"], render=r
    ),
    "undo": lambda cfg, cat, a, r: (
        undo_batch(cfg, cat, a["batch"], r)
        if a.get("batch") is not None
        else undo(cfg, cat, r, _text(a, "id"), _text(a, "token"))
    ),
    "check-repair": _repair,
}


def _text(arguments: Json, key: str) -> str | None:
    """An optional text argument (absent or null: None)."""
    value = arguments.get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{key!r} must be text")
    return value


def apply(cfg: Config, catalog: Catalog, command: str, arguments: Json, render: Renderer | None = None) -> Any:
    """Apply one named change; its document, or a WatcherdError. ``render``: as for ``resolve``."""
    edit = EDITS.get(command)
    if edit is None:
        raise UsageError(f"unknown change {command!r} (known: {', '.join(sorted(EDITS))})")
    try:
        return edit(cfg, catalog, arguments, render)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"malformed {command} request: {type(exc).__name__}: {exc}") from None


def answer(cfg: Config, catalog: Catalog, req: Request, render: Renderer | None = None) -> Answer:
    """Apply a request and say how it went (a bug in one request is logged, never the writer's end).

    ``render``: the writer's decoder pool, so an undo decodes in its sandbox."""
    try:
        return Answer(req.id, True, result=apply(cfg, catalog, req.command, req.arguments, render))
    except WatcherdError as exc:
        log.info("request %s (%s) refused: %s", req.id, req.command, exc)
        return Answer(req.id, False, result=exc.details, error=str(exc), exit_code=exc.exit_code)
    except Exception as exc:
        log.exception("internal error while applying request %s (%s)", req.id, req.command)
        return Answer(req.id, False, error=f"internal error: {type(exc).__name__}: {exc}", exit_code=70)
