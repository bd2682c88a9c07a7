"""Near-duplicates decided the same picture: which side is which, what the kept image gains (pure).

A near-duplicate group (or any pair of it) is a set of catalogued images with their own
names. ``keep-existing`` keeps the oldest of them (the first catalogued), ``keep-newcomer``
the newest; every other one is merged into the kept image: its record leaves ``images``
and is kept whole in a ``NearRecord`` (table ``near_decisions``), so ``undo`` writes it
back exactly. The writer's side (files, transactions) is ``neardecisions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from watcherd.core.collisionrecords import Decision
from watcherd.core.exif import Exif
from watcherd.core.records import ImageRecord, Json, unknown_keys

# From tests/benchmarks/quality.py: whash finds 98.9% of near-duplicates at 4 bits with
# 0.02% false positives; 5 answers the same, 6 quadruples the false positives.
DEFAULT_DISTANCE = 4
# The widest distance asked of the index: probes per chunk grow as C(16, r // 4); past
# this a scan is as quick. Here, not in ``near``: commands check it without numpy.
MAX_RADIUS = 16

_MERGED_KEYS = frozenset({"record", "archived", "folders"})
_NEAR_KEYS = frozenset({"id", "decision", "merged", "added_filenames"})


def near_id(names: list[str]) -> str:
    """The stable id of a near-duplicate group: its sorted names joined by ``+``."""
    return "+".join(sorted(names))


def is_near_id(ident: str) -> bool:
    """Does ``ident`` name a near-duplicate group (rather than a collision)?"""
    return "+" in ident


def names_of(ident: str) -> list[str]:
    """The names a near id (``A+B``, sorted names joined by ``+``) decides about, each once."""
    return list(dict.fromkeys(n for n in ident.split("+") if n))


class Catalogued(Protocol):
    """What ``sides`` orders by: an image's name and when it was first catalogued."""

    @property
    def name(self) -> str: ...

    @property
    def first_seen(self) -> str: ...


@dataclass(frozen=True)
class Member:
    """What a near group's listing needs of one member's record: when it was first catalogued
    and what the keeper rule reads beside its files (read in SQL, not whole records)."""

    name: str
    first_seen: str
    original: str | None
    size: tuple[int, int]
    file_size: int | None
    path: str = ""  # where its thumbnail is now (its first place)
    exif: Exif | None = None  # as its record keeps it (None: from before, its thumbnail is read)

    @classmethod
    def of(cls, record: ImageRecord) -> Member:
        """The member a whole record is."""
        return cls(
            record.name,
            record.first_seen,
            record.original,
            (record.width, record.height),
            record.file_size,
            record.path or "",
            record.exif,
        )


C = TypeVar("C", bound=Catalogued)


def sides(records: list[C]) -> tuple[C, C]:
    """(existing, newcomer): the first catalogued and the last (ties broken by name)."""
    ordered = sorted(records, key=lambda r: (r.first_seen, r.name))
    return ordered[0], ordered[-1]


def merge(kept: ImageRecord, merged: list[ImageRecord]) -> tuple[list[str], list[str]]:
    """``kept`` gains the merged images' tags (not their own ``WxH`` size tags) and their
    original file names; returns what it gained (tags, file names), for ``undo``."""
    sizes = {m.size_tag for m in merged} - {kept.size_tag}
    added_tags: list[str] = []
    added_names: list[str] = []
    for m in merged:
        for tag in m.tags:
            if tag not in sizes and tag not in kept.tags:
                kept.tags.append(tag)
                added_tags.append(tag)
                if tag in m.keywords:  # a tag that came from the photo's keywords stays one
                    kept.keywords.append(tag)
        kept.keyword_paths.extend(p for p in m.keyword_paths if p not in kept.keyword_paths)
        for name in [m.original_filename, *m.other_filenames]:
            if name and name != kept.original_filename and name not in kept.other_filenames:
                kept.other_filenames.append(name)
                added_names.append(name)
    return added_tags, added_names


def unmerge(kept: ImageRecord, added_tags: list[str], added_names: list[str]) -> None:
    """Take back what ``merge`` gave ``kept`` (only what is still there)."""
    kept.tags = [t for t in kept.tags if t not in added_tags]
    kept.keywords = [k for k in kept.keywords if k in kept.tags]
    kept.other_filenames = [n for n in kept.other_filenames if n not in added_names]


def widest(hashes: list[str]) -> int:
    """The largest Hamming distance between any two of these hex hashes."""
    values = [int(h, 16) for h in hashes]
    return max(((a ^ b).bit_count() for i, a in enumerate(values) for b in values[i + 1 :]), default=0)


@dataclass
class Merged:
    """One image merged into the kept one: its record as it was, and where its original went."""

    record: Json  # the image's catalog record when decided (``undo`` writes it back)
    archived: str | None = None  # its original set aside under originals/_duplicates/ (None: left where it was)
    # Each folder its thumbnails were in (relative to ROOT) -> that folder's (st_dev, st_ino),
    # so ``undo`` puts them back into those folders wherever they have been renamed or moved to.
    folders: dict[str, tuple[int, int]] = field(default_factory=dict)
    extra: Json = field(default_factory=dict)

    @property
    def image(self) -> ImageRecord:
        """The merged image's record as it was."""
        return ImageRecord.from_json(self.record)

    def to_json(self) -> Json:
        """JSON object."""
        out = {**self.extra, "record": self.record, "archived": self.archived}
        if self.folders:
            out["folders"] = {rel: list(ident) for rel, ident in self.folders.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Merged:
        """Inverse of ``to_json``."""
        folders = {
            str(rel): (int(ident[0]), int(ident[1]))
            for rel, ident in (data.get("folders") or {}).items()
            if isinstance(ident, (list, tuple)) and len(ident) == 2
        }
        return cls(dict(data.get("record") or {}), data.get("archived"), folders, unknown_keys(data, _MERGED_KEYS))


@dataclass
class NearRecord:
    """A near-duplicate group (or pair) decided ``keep-existing`` or ``keep-newcomer`` (key: ``id``).

    ``decision.image`` is the kept image; ``decision.added_tags`` what it gained,
    ``decision.again`` the same bytes of a merged image dropped again and set aside,
    ``decision.setting_aside`` the originals still to move (as for collisions).
    """

    id: str
    decision: Decision
    merged: list[Merged] = field(default_factory=list)
    added_filenames: list[str] = field(default_factory=list)
    extra: Json = field(default_factory=dict)

    def holding(self, sha256: str) -> Merged | None:
        """The merged image made from exactly these bytes, if any."""
        return next((m for m in self.merged if m.record.get("sha256") == sha256), None)

    def to_json(self) -> Json:
        """The catalog's JSON object for this record."""
        return {
            **self.extra,
            "id": self.id,
            "decision": self.decision.to_json(),
            "merged": [m.to_json() for m in self.merged],
            "added_filenames": list(self.added_filenames),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NearRecord:
        """Read a record written by any version."""
        return cls(
            id=str(data["id"]),
            decision=Decision.from_json(data["decision"]),
            merged=[Merged.from_json(m) for m in data.get("merged") or [] if isinstance(m, dict)],
            added_filenames=[n for n in data.get("added_filenames") or [] if isinstance(n, str)],
            extra=unknown_keys(data, _NEAR_KEYS),
        )
