"""``watcherd check``'s verdicts on what is derived from the catalog: the export and the near index (pure).

The export (``restore``) must say what the catalog says now: the same images with the
same entries, the same collisions, near decisions and decision order. The near index
plus the catalog's log after it (``near.persisted``) must hold exactly the present rows of
``hashes``, and those exactly the present images' hashes. An index built for another
catalog state (another epoch, a trimmed log) is void, not wrong: readers rebuild it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from watcherd.check.problems import Code, Image, Problem
from watcherd.core.records import Json

_HASH64 = re.compile(r"[0-9a-f]{16}")


@dataclass
class ExportFacts:
    """The export file as found, and what the catalog would export now."""

    path: str
    document: Json | None  # the export as read (None: there is none, or it cannot be read)
    error: str | None = None  # why it cannot be read
    images: dict[str, Json] = field(default_factory=dict)
    collisions: dict[str, Json] = field(default_factory=dict)
    near: dict[str, Json] = field(default_factory=dict)
    meta: Json = field(default_factory=dict)


@dataclass
class IndexFacts:
    """A persisted near index file: its position and what it holds (catalog row -> hash, low)."""

    path: str
    error: str | None = None  # why it cannot be read, or is not sound
    epoch: str | None = None
    seq: int = 0
    entries: dict[int, tuple[int, bool]] = field(default_factory=dict)


@dataclass
class NearFacts:
    """The present rows of ``hashes`` (row -> name, unsigned hash, low), the log and the index file."""

    table: dict[int, tuple[str, int, bool]] = field(default_factory=dict)
    epoch: str | None = None
    trimmed: int = 0
    head: int = 0
    log: dict[int, tuple[int, bool] | None] = field(default_factory=dict)  # after the index: row -> now
    index: IndexFacts | None = None  # None: there is no index file (readers build one)


def _differences(what: str, found: Mapping[str, object], wanted: Mapping[str, object]) -> list[str]:
    """Short phrases for how ``found`` differs from ``wanted`` (keys missing, extra, with other values)."""
    out = []
    for label, keys in (
        ("missing", sorted(set(wanted) - set(found))),
        ("not in the catalog", sorted(set(found) - set(wanted))),
        ("different", sorted(k for k in set(found) & set(wanted) if found[k] != wanted[k])),
    ):
        if keys:
            out.append(f"{len(keys)} {what} {label} (first: {keys[0]})")
    return out


def export_problems(facts: ExportFacts) -> list[Problem]:
    """Does the export say what the catalog says?"""
    fix = "; --repair writes it again"
    if facts.error is not None:
        return [Problem(Code.STALE_EXPORT, facts.path, f"the export cannot be read: {facts.error}{fix}", True)]
    doc = facts.document
    if doc is None:
        if not (facts.images or facts.collisions or facts.near):
            return []
        why = "there is no export, so a rebuild would lose what only the catalog knows"
        return [Problem(Code.STALE_EXPORT, facts.path, why + fix, True)]
    images = doc.get("images")
    collisions = {str(c.get("id")): c for c in doc.get("collisions") or [] if isinstance(c, dict)}
    near = {str(n.get("id")): n for n in doc.get("near_decisions") or [] if isinstance(n, dict)}
    meta = doc.get("meta")
    diffs = [
        *_differences("images", images if isinstance(images, dict) else {}, facts.images),
        *_differences("collisions", collisions, facts.collisions),
        *_differences("near decisions", near, facts.near),
        *_differences("meta values", meta if isinstance(meta, dict) else {}, facts.meta),
    ]
    if not diffs:
        return []
    why = f"the export disagrees with the catalog: {'; '.join(diffs)}"
    return [Problem(Code.STALE_EXPORT, facts.path, why + fix, True)]


def near_problems(images: Mapping[str, Image], facts: NearFacts | None) -> list[Problem]:
    """Does ``hashes`` hold the present images' hashes, and the near index (with its log) ``hashes``?"""
    if facts is None:
        return []
    out: list[Problem] = []
    wanted = {
        i.name: (int(i.hash.lower(), 16), i.low)
        for i in images.values()
        if i.present and _HASH64.fullmatch(i.hash.lower())
    }
    table = {name: (h, low) for name, h, low in facts.table.values()}
    diffs = _differences("images", table, wanted)
    if diffs:
        why = f"the hashes table disagrees with the image records: {'; '.join(diffs)}"
        out.append(Problem(Code.DERIVED_TABLE, "", why))
    index = facts.index
    if index is None:
        return out
    fix = "; --repair builds it again"
    if index.error is not None:
        return [*out, Problem(Code.NEAR_INDEX, index.path, f"{index.error}{fix}", True)]
    void = facts.epoch is None or index.epoch != facts.epoch or not facts.trimmed <= index.seq <= facts.head
    if void:
        return out  # built for another state of the catalog: every reader ignores it and builds a new one
    now = {row: entry for row, entry in index.entries.items() if row not in facts.log}
    now.update({row: entry for row, entry in facts.log.items() if entry is not None})
    present = {str(row): (h, low) for row, (_, h, low) in facts.table.items()}
    diffs = _differences("rows", {str(row): entry for row, entry in now.items()}, present)
    if diffs:
        why = f"the index and the log after it disagree with the catalog: {'; '.join(diffs)}"
        out.append(Problem(Code.NEAR_INDEX, index.path, why + fix, True))
    return out
