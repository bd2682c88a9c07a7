"""The catalog's records as typed values, and the one place that turns them into JSON and back.

Every value in the catalog's key/value tables is the JSON object ``to_json`` makes;
``from_json`` reads what any version of watcherd wrote. Keys this version does not
know are kept in ``extra`` and written back unchanged, so a newer catalog opened by
an older watcherd loses nothing. Keys a newer version added read as their defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

Json = dict[str, Any]


class State(str, Enum):
    """Whether an image's thumbnail is in the tree."""

    PRESENT = "present"
    MISSING = "missing"


class CollisionKind(str, Enum):
    """``exact``: the same bytes; ``perceptual``: other bytes with the same size and hash."""

    EXACT = "exact"
    PERCEPTUAL = "perceptual"


def _stamp(value: Any) -> tuple[int, int] | None:
    """A ``[size, mtime_ns]`` pair from JSON."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]), int(value[1])
    return None


def _rest(data: Mapping[str, Any], known: frozenset[str]) -> Json:
    return {k: v for k, v in data.items() if k not in known}


_IMAGE_KEYS = frozenset(
    {
        "name", "hash", "algorithm", "hash_size", "decode", "width", "height", "format", "sha256",
        "file_size", "original_filename", "path", "original", "moving_from", "source",
        "low_information", "tags", "state", "first_seen", "last_seen", "source_stat", "paths",
        "other_filenames", "crops",
    }
)  # fmt: skip


@dataclass
class ImageRecord:
    """One image: its name (the catalog key), what it is, where its files are, its tags."""

    name: str
    hash: str
    width: int
    height: int
    path: str  # the thumbnail (the first copy), relative to ROOT; the last place known when missing
    state: State
    first_seen: str
    last_seen: str
    algorithm: str = "whash"
    hash_size: int = 8
    decode: str = "reference"
    format: str | None = None
    sha256: str | None = None
    file_size: int | None = None
    original_filename: str | None = None
    original: str | None = None  # relative to ROOT; None while it is not known
    moving_from: str | None = None  # set while the original is being filed
    source: bool = False
    low_information: bool = False
    tags: list[str] = field(default_factory=list)
    source_stat: tuple[int, int] | None = None
    copies: list[str] = field(default_factory=list)  # further places the same thumbnail is in
    other_filenames: list[str] = field(default_factory=list)  # names duplicates of it arrived under
    crops: str = ""  # window hashes of its thumbnail (``crops.join``): what finds cropped copies
    extra: Json = field(default_factory=dict)

    @property
    def present(self) -> bool:
        """Is the thumbnail in the tree?"""
        return self.state is State.PRESENT

    @property
    def paths(self) -> list[str]:
        """Every place the thumbnail is, ``path`` first (none when missing)."""
        return [self.path, *self.copies] if self.present else []

    def place_at(self, rel: str, *, keep_others: bool) -> None:
        """The thumbnail is (also, with ``keep_others``) at ``rel``: it is present."""
        if not self.present:
            self.path, self.copies = rel, []
        elif keep_others:
            if rel not in self.paths:
                self.copies.append(rel)
        else:
            self.path, self.copies = rel, []
        self.state = State.PRESENT

    def leave(self, rel: str) -> bool:
        """The copy at ``rel`` is gone; True when that was the last one (the image is now missing)."""
        if not self.present or rel not in self.paths:
            return False
        if rel in self.copies:
            self.copies.remove(rel)
            return False
        if self.copies:
            self.path = self.copies.pop(0)
            return False
        self.state = State.MISSING
        return True

    @property
    def size_tag(self) -> str:
        """The ``WxH`` tag every image carries."""
        return f"{self.width}x{self.height}"

    def to_json(self) -> Json:
        """The catalog's JSON object for this record."""
        out: Json = {
            **self.extra,
            "name": self.name,
            "hash": self.hash,
            "algorithm": self.algorithm,
            "hash_size": self.hash_size,
            "decode": self.decode,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "sha256": self.sha256,
            "file_size": self.file_size,
            "original_filename": self.original_filename,
            "path": self.path,
            "original": self.original,
            "moving_from": self.moving_from,
            "source": self.source,
            "low_information": self.low_information,
            "tags": list(self.tags),
            "state": self.state.value,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }
        if self.source_stat is not None:
            out["source_stat"] = list(self.source_stat)
        if self.copies:
            out["paths"] = self.paths  # written only when there is more than one place
        if self.other_filenames:
            out["other_filenames"] = list(self.other_filenames)
        if self.crops:
            out["crops"] = self.crops
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageRecord:
        """Read a record written by any version."""
        size = data.get("file_size")
        return cls(
            name=str(data["name"]),
            hash=str(data["hash"]),
            width=int(data["width"]),
            height=int(data["height"]),
            path=str(data.get("path") or ""),
            state=State(data.get("state", "present")),
            first_seen=str(data.get("first_seen") or ""),
            last_seen=str(data.get("last_seen") or ""),
            algorithm=str(data.get("algorithm", "whash")),
            hash_size=int(data.get("hash_size", 8)),
            decode=str(data.get("decode", "reference")),
            format=data.get("format"),
            sha256=data.get("sha256"),
            file_size=int(size) if size is not None else None,
            original_filename=data.get("original_filename"),
            original=data.get("original"),
            moving_from=data.get("moving_from"),
            source=bool(data.get("source", False)),
            low_information=bool(data.get("low_information", False)),
            tags=[t for t in data.get("tags") or [] if isinstance(t, str)],
            source_stat=_stamp(data.get("source_stat")),
            copies=[p for p in data.get("paths") or [] if isinstance(p, str) and p != data.get("path")],
            other_filenames=[n for n in data.get("other_filenames") or [] if isinstance(n, str)],
            crops=str(data.get("crops") or ""),
            extra=_rest(data, _IMAGE_KEYS),
        )


_EXISTING_KEYS = frozenset({"thumbnail", "original", "sha256"})
_NEWCOMER_KEYS = frozenset(
    {"thumbnail", "original", "sha256", "filename", "source", "moving_from", "source_stat", "dropped", "dropped_id"}
)
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
        return cls(data.get("thumbnail"), data.get("original"), data.get("sha256"), _rest(data, _EXISTING_KEYS))


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
            source_stat=_stamp(data.get("source_stat")),
            dropped=data.get("dropped"),
            dropped_id=_stamp(data.get("dropped_id")),
            extra=_rest(data, _NEWCOMER_KEYS),
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
            extra=_rest(data, _DECISION_KEYS),
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
            extra=_rest(data, _COLLISION_KEYS),
        )


_ERROR_KEYS = frozenset(
    {"path", "reason", "transient", "size", "mtime_ns", "inode", "beside", "first_seen", "last_seen", "attempts"}
)


@dataclass
class ErrorRecord:
    """A file that could not be ingested (the catalog key is ``path``, relative to ROOT).

    ``size``, ``mtime_ns`` and ``inode`` say which file failed: it is read again only
    once one of them changes (records written before the inode was kept compare size
    and mtime only). ``beside``: the file in the way (relative to ROOT) when the error
    is about another file in the same folder (a copy of it, its name taken); such an
    error is also looked at again once that file is gone.
    """

    path: str
    reason: str
    transient: bool
    size: int | None
    mtime_ns: int | None
    first_seen: str
    last_seen: str
    attempts: int = 1
    extra: Json = field(default_factory=dict)
    inode: int | None = None
    beside: str | None = None

    @property
    def stamp(self) -> tuple[int | None, int | None]:
        """Size and mtime of the file when it failed: it is tried again once they change."""
        return self.size, self.mtime_ns

    def same_file(self, st: os.stat_result) -> bool:
        """Is ``st`` the very file that failed (same size, mtime and, when known, inode)?"""
        if self.stamp != (st.st_size, st.st_mtime_ns):
            return False
        return self.inode is None or self.inode == st.st_ino

    def to_json(self) -> Json:
        """The catalog's JSON object for this record."""
        return {
            **self.extra,
            "path": self.path,
            "reason": self.reason,
            "transient": self.transient,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            **({"inode": self.inode} if self.inode is not None else {}),
            **({"beside": self.beside} if self.beside is not None else {}),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "attempts": self.attempts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErrorRecord:
        """Read a record written by any version."""
        return cls(
            path=str(data["path"]),
            reason=str(data.get("reason", "")),
            transient=bool(data.get("transient", False)),
            size=data.get("size"),
            mtime_ns=data.get("mtime_ns"),
            first_seen=str(data.get("first_seen") or ""),
            last_seen=str(data.get("last_seen") or ""),
            attempts=int(data.get("attempts", 1)),
            extra=_rest(data, _ERROR_KEYS),
            inode=data.get("inode"),
            beside=data.get("beside"),
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
