"""A collision and the decision about it (or about a near group) as typed values, with their JSON.

Like every record (``records``), each reads what any version wrote and keeps keys it
does not know in ``extra``. A collision names its two sides by content (the contested
name and each side's ``sha256``); where the existing side's files are now is read from
the image that holds the name (``existing_now``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from watcherd.core.naming import names_bytes, variant_name
from watcherd.core.records import ImageRecord, Json, stamp_pair, unknown_keys


class CollisionKind(str, Enum):
    """``exact``: the same bytes; ``perceptual``: other bytes with the same size and hash."""

    EXACT = "exact"
    PERCEPTUAL = "perceptual"


_EXISTING_KEYS = frozenset({"thumbnail", "original", "sha256"})
_NEWCOMER_KEYS = frozenset(
    {
        "thumbnail", "original", "sha256", "filename", "source", "moving_from", "source_stat", "dropped",
        "dropped_id", "keywords", "keyword_paths",
    }
)  # fmt: skip
_COLLISION_KEYS = frozenset({"id", "name", "kind", "detected", "existing", "newcomer", "decision"})
_DECISION_KEYS = frozenset(
    {
        "kind",
        "decided",
        "via",
        "image",
        "archived",
        "again",
        "added_tags",
        "added_filename",
        "replaced",
        "setting_aside",
    }
)


@dataclass
class Existing:
    """The side of a collision that held the name first."""

    thumbnail: str | None = None
    original: str | None = None
    sha256: str | None = None
    extra: Json = field(default_factory=dict)

    def to_json(self) -> Json:
        """JSON object."""
        return {**self.extra, "thumbnail": self.thumbnail, "original": self.original, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Existing:
        """Inverse of ``to_json``."""
        return cls(data.get("thumbnail"), data.get("original"), data.get("sha256"), unknown_keys(data, _EXISTING_KEYS))


@dataclass
class Newcomer:
    """The side of a collision that arrived second: kept under ``_collisions/``."""

    thumbnail: str | None = None
    original: str | None = None
    sha256: str | None = None
    filename: str | None = None
    source: bool = False
    moving_from: str | None = None
    source_stat: tuple[int, int] | None = None
    # The folder it was dropped in, relative to ROOT, as it was then (None: not known), and
    # what that folder is: its (st_dev, st_ino), by which it is found again after a rename
    # or a move (``folders.Folders.locate``); the path alone would go stale.
    dropped: str | None = None
    dropped_id: tuple[int, int] | None = None
    keywords: list[str] = field(default_factory=list)  # tags its own keywords give (as an image's ``keywords``)
    keyword_paths: list[str] = field(default_factory=list)  # the hierarchies among them
    extra: Json = field(default_factory=dict)

    def to_json(self) -> Json:
        """JSON object."""
        out: Json = {
            **self.extra,
            "thumbnail": self.thumbnail,
            "original": self.original,
            "sha256": self.sha256,
            "filename": self.filename,
            "source": self.source,
            "moving_from": self.moving_from,
        }
        if self.source_stat is not None:
            out["source_stat"] = list(self.source_stat)
        if self.dropped is not None:
            out["dropped"] = self.dropped
        if self.dropped_id is not None:
            out["dropped_id"] = list(self.dropped_id)
        if self.keywords:
            out["keywords"] = list(self.keywords)
        if self.keyword_paths:
            out["keyword_paths"] = list(self.keyword_paths)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Newcomer:
        """Inverse of ``to_json``."""
        return cls(
            thumbnail=data.get("thumbnail"),
            original=data.get("original"),
            sha256=data.get("sha256"),
            filename=data.get("filename"),
            source=bool(data.get("source", False)),
            moving_from=data.get("moving_from"),
            source_stat=stamp_pair(data.get("source_stat")),
            dropped=data.get("dropped"),
            dropped_id=stamp_pair(data.get("dropped_id")),
            keywords=[k for k in data.get("keywords") or [] if isinstance(k, str)],
            keyword_paths=[k for k in data.get("keyword_paths") or [] if isinstance(k, str)],
            extra=unknown_keys(data, _NEWCOMER_KEYS),
        )


class Verdict(str, Enum):
    """What a person decided about a collision or a near-duplicate group."""

    DISTINCT = "distinct"  # different pictures: both kept as separate images
    KEEP_EXISTING = "keep-existing"  # the same picture: the library's copy stays
    KEEP_NEWCOMER = "keep-newcomer"  # the same picture: the newcomer takes the name


class Via(str, Enum):
    """How a decision was made."""

    COMMAND = "command"  # ``watcherd resolve`` (or anything calling the same edit)
    GESTURE = "gesture"  # the newcomer's thumbnail moved out of, or deleted from, ``_collisions/``
    PAGE = "page"  # the review page (``watcherd serve``) or its JSON API


@dataclass
class Decision:
    """A decided collision: what was decided, when, and what it did (so ``undo`` can revert it)."""

    kind: Verdict
    decided: str
    via: Via = Via.COMMAND
    image: str | None = None  # the record that now holds the newcomer's bytes (or the kept one)
    archived: str | None = None  # the original set aside under originals/_duplicates/ (keep-*)
    again: list[str] = field(default_factory=list)  # the same bytes dropped again, set aside there too
    added_tags: list[str] = field(default_factory=list)  # tags the kept record gained from the newcomer
    added_filename: str | None = None  # the file name the kept record gained
    replaced: Json | None = None  # keep-newcomer: the existing side's facts it replaced
    # [from, to] moves of originals into originals/_duplicates/ committed but not yet made
    # (``filing`` makes them and, after a crash, the next start does)
    setting_aside: list[list[str]] = field(default_factory=list)
    extra: Json = field(default_factory=dict)

    def to_json(self) -> Json:
        """JSON object."""
        return {
            **self.extra,
            "kind": self.kind.value,
            "decided": self.decided,
            "via": self.via.value,
            "image": self.image,
            "archived": self.archived,
            "again": list(self.again),
            "added_tags": list(self.added_tags),
            "added_filename": self.added_filename,
            "replaced": self.replaced,
            **({"setting_aside": [list(p) for p in self.setting_aside]} if self.setting_aside else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        """Inverse of ``to_json``."""
        return cls(
            kind=Verdict(data["kind"]),
            decided=str(data.get("decided") or ""),
            via=Via(data.get("via", "command")),
            image=data.get("image"),
            archived=data.get("archived"),
            again=[p for p in data.get("again") or [] if isinstance(p, str)],
            added_tags=[t for t in data.get("added_tags") or [] if isinstance(t, str)],
            added_filename=data.get("added_filename"),
            replaced=data.get("replaced"),
            setting_aside=[[str(a), str(b)] for a, b in data.get("setting_aside") or []],
            extra=unknown_keys(data, _DECISION_KEYS),
        )


@dataclass
class CollisionRecord:
    """Two images that want one canonical name (the catalog key is ``id``)."""

    id: str
    name: str
    kind: CollisionKind
    detected: str | None
    existing: Existing
    newcomer: Newcomer
    decision: Decision | None = None  # None while undecided
    extra: Json = field(default_factory=dict)

    @property
    def distinct_name(self) -> str:
        """The name the newcomer takes when decided ``distinct``: the collision's own id, which
        its thumbnail in ``_collisions/`` already carries (``X~sha12``, or ``X~sha12~n`` for the
        n-th newcomer of those bytes), so newcomers of the same bytes kept apart never want one
        name; the plain variant for an id that is no name of these bytes."""
        sha256 = self.newcomer.sha256 or ""
        own = f"{self.id}.png"
        return own if names_bytes(own, self.name, sha256) else variant_name(self.name, sha256)

    def to_json(self) -> Json:
        """The catalog's JSON object for this record (``decision`` only once decided)."""
        out: Json = {
            **self.extra,
            "id": self.id,
            "name": self.name,
            "kind": self.kind.value,
            "detected": self.detected,
            "existing": self.existing.to_json(),
            "newcomer": self.newcomer.to_json(),
        }
        if self.decision is not None:
            out["decision"] = self.decision.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CollisionRecord:
        """Read a record written by any version."""
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            kind=CollisionKind(data.get("kind", "perceptual")),
            detected=data.get("detected"),
            existing=Existing.from_json(data.get("existing") or {}),
            newcomer=Newcomer.from_json(data.get("newcomer") or {}),
            decision=Decision.from_json(data["decision"]) if data.get("decision") else None,
            extra=unknown_keys(data, _COLLISION_KEYS),
        )


def existing_now(col: CollisionRecord, holder: ImageRecord | None) -> Existing:
    """A collision's existing side as it is now: ``holder`` (the image holding the contested
    name) where its files are today. The places stored at detection are only a fallback for
    an image no longer catalogued: a record says what a side is, the image says where it is.
    """
    if holder is None:
        return Existing(None, col.existing.original, col.existing.sha256, dict(col.existing.extra))
    thumbnail = holder.path if holder.present else None
    return Existing(thumbnail, holder.original, holder.sha256, dict(col.existing.extra))
