"""The catalog's records as typed values, and the one place that turns them into JSON and back.

Every value in the catalog's key/value tables is the JSON object ``to_json`` makes;
``from_json`` reads what any version of watcherd wrote. Keys this version does not
know are kept in ``extra`` and written back unchanged, so a newer catalog opened by
an older watcherd loses nothing. Keys a newer version added read as their defaults.
A collision and the decision about it are in ``collisionrecords``, built on the two
helpers here (``stamp_pair``, ``unknown_keys``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from watcherd.core.exif import Exif

Json = dict[str, Any]


class State(str, Enum):
    """Whether an image's thumbnail is in the tree."""

    PRESENT = "present"
    MISSING = "missing"


def stamp_pair(value: Any) -> tuple[int, int] | None:
    """A ``[size, mtime_ns]`` pair from JSON."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]), int(value[1])
    return None


def unknown_keys(data: Mapping[str, Any], known: frozenset[str]) -> Json:
    return {k: v for k, v in data.items() if k not in known}


_IMAGE_KEYS = frozenset(
    {
        "name", "hash", "algorithm", "hash_size", "decode", "width", "height", "format", "sha256",
        "file_size", "original_filename", "path", "original", "moving_from", "source",
        "low_information", "tags", "state", "first_seen", "last_seen", "source_stat", "paths",
        "other_filenames", "keywords", "keyword_paths", "crops", "exif",
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
    # The tags that came from the photo's own keywords (XMP, IPTC, a sidecar dropped beside
    # it) rather than from a folder; each is also in ``tags``.
    keywords: list[str] = field(default_factory=list)
    keyword_paths: list[str] = field(default_factory=list)  # hierarchies among them (``Places|Paris``)
    crops: str = ""  # window hashes of its thumbnail (``core.crops.join``): what finds cropped copies
    # What the keeper rule reads of its picture's EXIF (from its thumbnail's chunks); None for a
    # record from before it was kept, whose thumbnail is read instead.
    exif: Exif | None = None
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
        keywords = [k for k in self.keywords if k in self.tags]  # a tag untagged since is no keyword either
        if keywords:
            out["keywords"] = keywords
        if self.keyword_paths:
            out["keyword_paths"] = list(self.keyword_paths)
        if self.crops:
            out["crops"] = self.crops
        if self.exif is not None:
            out["exif"] = self.exif.to_json()
        return out

    def add_keywords(self, keywords: Iterable[str], paths: Iterable[str] = ()) -> list[str]:
        """The photo's keywords become tags (noted in ``keywords``, their hierarchies in
        ``keyword_paths``); returns the tags that are new."""
        self.keyword_paths.extend(p for p in paths if p not in self.keyword_paths)
        added = []
        for keyword in keywords:
            if keyword not in self.tags:
                self.tags.append(keyword)
                added.append(keyword)
                if keyword not in self.keywords:
                    self.keywords.append(keyword)
        return added

    def sources(self) -> dict[str, str]:
        """Where each tag came from: ``size`` (its ``WxH``), ``keyword`` (the photo's own) or ``folder``."""
        size, keywords = self.size_tag, set(self.keywords)
        return {t: "size" if t == size else "keyword" if t in keywords else "folder" for t in self.tags}

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
            source_stat=stamp_pair(data.get("source_stat")),
            copies=[p for p in data.get("paths") or [] if isinstance(p, str) and p != data.get("path")],
            other_filenames=[n for n in data.get("other_filenames") or [] if isinstance(n, str)],
            keywords=[k for k in data.get("keywords") or [] if isinstance(k, str)],
            keyword_paths=[k for k in data.get("keyword_paths") or [] if isinstance(k, str)],
            crops=str(data.get("crops") or ""),
            exif=Exif.from_json(data.get("exif")),
            extra=unknown_keys(data, _IMAGE_KEYS),
        )


_ERROR_KEYS = frozenset(
    {
        "path",
        "reason",
        "transient",
        "size",
        "mtime_ns",
        "inode",
        "beside",
        "about",
        "beside_stamp",
        "first_seen",
        "last_seen",
        "attempts",
    }
)


@dataclass
class ErrorRecord:
    """A file that could not be ingested (the catalog key is ``path``, relative to ROOT).

    ``size``, ``mtime_ns`` and ``inode`` say which file failed: it is read again only
    once one of them changes (records written before the inode was kept compare size
    and mtime only). ``beside``: the file in the way (relative to ROOT) when the error
    is about another file in the same folder (a copy of it, its name taken); such an
    error is also looked at again once that file is gone or changed (``beside_stamp``: its
    inode, size and mtime then, ``NOT_THERE`` when the error waits for a file to come to that
    name; errors recorded before it was kept look at its presence only). ``about``: the image
    record the verdict was about and the bytes (sha256) it named then, when the error says the
    file is a thumbnail of other bytes than that image's; it is looked at again once the record
    names other bytes (a decision, or its undo, gave it these).
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
    beside_stamp: tuple[int, int, int] | None = None
    about: tuple[str, str | None] | None = None

    NOT_THERE: ClassVar[tuple[int, int, int]] = (0, 0, 0)  # ``beside_stamp`` of a name nothing held

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
            **({"beside_stamp": list(self.beside_stamp)} if self.beside_stamp is not None else {}),
            **({"about": list(self.about)} if self.about is not None else {}),
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
            extra=unknown_keys(data, _ERROR_KEYS),
            inode=data.get("inode"),
            beside=data.get("beside"),
            beside_stamp=_stamp3(data.get("beside_stamp")),
            about=_about(data.get("about")),
        )


def _about(value: Any) -> tuple[str, str | None] | None:
    """An error's (name, sha256) as JSON gave it back, or None."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        return value[0], value[1] if isinstance(value[1], str) else None
    return None


def _stamp3(value: Any) -> tuple[int, int, int] | None:
    """An (inode, size, mtime) triple as JSON gave it back, or None."""
    if isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) for v in value):
        return value[0], value[1], value[2]
    return None
