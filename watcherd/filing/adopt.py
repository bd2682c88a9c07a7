"""Adoption: a thumbnail found without a record is recorded from what it carries.

Two makers are recognised by content, never by file name alone:

- watcherd's own thumbnails carry ``software: watcherd …`` and their original's
  ``sha256``, ``hash``, ``width`` and ``height`` in PNG text chunks. They are adopted
  after a crash between publishing and recording, when a catalog is rebuilt, and when
  a library is restored without its catalog; the catalog export, when a fresh catalog
  is rebuilt, gives back what only the old catalog knew.
- the notebook this project grew from wrote, for each original, a canonical-named PNG
  smaller than the ``WxH`` in its name with ``filename``, ``width``, ``height``,
  ``format``… chunks and no ``software`` chunk. Such a file keeps its name and place;
  its original is linked if one with that file name and the same name-hash is found
  under ``originals/`` or a source folder.

Nothing is decoded to adopt a thumbnail (only to confirm a notebook original).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path, PurePosixPath

from watcherd.core import crops
from watcherd.core.exif import Exif
from watcherd.core.filters import IMAGE_SUFFIXES
from watcherd.core.naming import canonical_name, merge_tags, names_bytes, number, parse_canonical
from watcherd.core.places import Place, Places
from watcherd.core.records import ImageRecord, Json, State
from watcherd.decode import chunks
from watcherd.decode.chunkpool import Facts
from watcherd.filing.context import Context
from watcherd.filing.readahead import ReadAhead, Unread
from watcherd.fs import fsops

log = logging.getLogger("watcherd")

# A thumbnail is small; anything larger is not read to look for chunks.
MAX_THUMBNAIL_BYTES = 4 << 20

# The canonical name and sha256 a file would be ingested with (None if it is no image).
Identify = Callable[[Path], tuple[str, str] | None]


class Maker(str, Enum):
    """Who made a thumbnail found in the tree."""

    WATCHERD = "watcherd"
    NOTEBOOK = "notebook"


@dataclass(frozen=True)
class Thumbnail:
    """What a thumbnail says about its original."""

    maker: Maker
    width: int
    height: int
    hash: str
    sha256: str | None
    text: dict[str, str]

    @property
    def name(self) -> str:
        """The canonical name these facts give (before any low-information variant)."""
        return canonical_name(self.width, self.height, self.hash)


def examine(path: Path, st: os.stat_result) -> Thumbnail | None:
    """Is the PNG at ``path`` a thumbnail watcherd or the notebook made? None if not."""
    if st.st_size > MAX_THUMBNAIL_BYTES or not path.name.lower().endswith(".png"):
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return thumbnail_of(path.name, data)


def held(path: Path) -> tuple[Thumbnail, bytes, os.stat_result] | None:
    """What the PNG at ``path`` says (``thumbnail_of``), its bytes and the status of that very
    file as it was read (``fsops.read_held``), or None if it is no thumbnail or cannot be read."""
    if not path.name.lower().endswith(".png"):
        return None
    try:
        data, st = fsops.read_held(path, MAX_THUMBNAIL_BYTES)
    except OSError:
        return None
    thumb = thumbnail_of(path.name, data) if len(data) <= MAX_THUMBNAIL_BYTES else None
    return (thumb, data, st) if thumb is not None else None


def thumbnail_of(name: str, data: bytes) -> Thumbnail | None:
    """What the PNG bytes ``data``, found under the file name ``name``, say of their original, if
    watcherd or the notebook made them; None if not."""
    return thumbnail_from(name, chunks.png_facts(data))


def thumbnail_from(name: str, facts: Facts | None) -> Thumbnail | None:
    """``thumbnail_of`` from a PNG's chunks and size (``chunks.png_facts``) already read."""
    if facts is None:
        return None
    text, (tw, th) = facts
    if text.get("software", "").startswith("watcherd"):
        w, h, hash_hex, sha = text.get("width", ""), text.get("height", ""), text.get("hash", ""), text.get("sha256")
        width, height = number(w), number(h)
        if width is not None and height is not None and hash_hex and sha:
            return Thumbnail(Maker.WATCHERD, width, height, hash_hex, sha, text)
        return None
    parsed = parse_canonical(name)
    if parsed is None or "software" in text or parsed.variant is not None:
        return None
    if not {"filename", "width", "height", "format"} <= set(text):
        return None
    if (text["width"], text["height"]) != (str(parsed.width), str(parsed.height)):
        return None
    if tw * th >= parsed.width * parsed.height:
        return None  # not smaller than its original: a picture named like a thumbnail
    return Thumbnail(Maker.NOTEBOOK, parsed.width, parsed.height, parsed.hash, None, text)


@dataclass
class Remembered:
    """What the catalog export says, consumed while a fresh catalog is rebuilt."""

    images: dict[str, Json] = field(default_factory=dict)
    collisions: list[Json] = field(default_factory=list)
    meta: Json = field(default_factory=dict)  # meta values the export keeps (decisions)
    near: list[Json] = field(default_factory=list)  # near groups decided keep-existing / keep-newcomer


def remember(rec: ImageRecord, entry: Json, places: Places) -> None:
    """Give ``rec`` what the export's ``entry`` for it remembers: its original (if that is still
    there), when it was first seen, its tags, file names and keywords."""
    original = entry.get("original")
    if original and os.path.lexists(places.absolute(original)):
        rec.original = original
        rec.source = bool(entry.get("source"))
    rec.first_seen = entry.get("first_seen") or rec.first_seen
    rec.tags = [t for t in entry.get("tags") or [] if isinstance(t, str)]
    rec.other_filenames = [n for n in entry.get("other_filenames") or [] if isinstance(n, str)]
    rec.keywords = [k for k in entry.get("keywords") or [] if isinstance(k, str)]
    rec.keyword_paths = [k for k in entry.get("keyword_paths") or [] if isinstance(k, str)]


class Adopter:
    """Turns thumbnails without a record into records."""

    def __init__(self, ctx: Context, remembered: Remembered | None = None, identify: Identify | None = None) -> None:
        self.ctx = ctx
        self.remembered = remembered
        self.identify = identify
        self._by_filename: dict[str, list[Path]] | None = None
        self._originals: tuple[int, dict[str, str]] | None = None
        self._ahead: ReadAhead | None = None

    def adopt(self, path: Path, st: os.stat_result, where: Place | None = None) -> ImageRecord | None:
        """A record for the thumbnail at ``path`` (under its own name; ``where``: its place, when the
        caller knows it already), or None if it is not one."""
        thumb = self.examine(path, st)
        if thumb is None or parse_canonical(path.name) is None:
            return None
        if thumb.maker is Maker.WATCHERD and not names_bytes(path.name, thumb.name, thumb.sha256 or ""):
            return None
        return self.record(path, thumb, where)

    def examine(self, path: Path, st: os.stat_result) -> Thumbnail | None:
        """Is the PNG at ``path`` (whose status is ``st``) a thumbnail watcherd or the notebook
        made? None if not. What a worker read ahead is used only if it read the file ``st`` is of."""
        if st.st_size > self._limit:
            return None
        if self._ahead is not None:
            facts = self._ahead.take(path, st)
            if not isinstance(facts, Unread):
                return thumbnail_from(path.name, facts)
        return examine(path, st)

    @property
    def _limit(self) -> int:
        """The largest file read to look for a thumbnail's chunks."""
        return min(MAX_THUMBNAIL_BYTES, self.ctx.cfg.max_file_size)

    @contextlib.contextmanager
    def reading_ahead(self) -> Iterator[None]:
        """A scan's walk: what it hands to ``expect`` is read ahead in workers until it ends."""
        workers = min(self.ctx.cfg.worker_count, (os.cpu_count() or 1) - 1)  # one core: the writer reads
        self._ahead = ReadAhead(self.ctx.catalog, workers, self._limit)
        try:
            yield
        finally:
            ahead, self._ahead = self._ahead, None
            ahead.stop()

    def expect(self, paths: list[Path]) -> None:
        """Canonical names a scan's walk listed, in the order they will be examined: those
        without a record are read ahead (``ReadAhead.expect``)."""
        if self._ahead is not None:
            self._ahead.expect(paths)

    def record(self, path: Path, thumb: Thumbnail, where: Place | None = None) -> ImageRecord:
        """A record for ``thumb``, found at ``path`` (its canonical name), with the folder's tags."""
        places = self.ctx.places
        where = where or places.place(path)
        folder = where.rel.parent if where is not None else PurePosixPath()
        rec = from_chunks(self.ctx, path, thumb)
        if thumb.maker is Maker.WATCHERD:
            rec.original = self.find_original(path.name)
        else:
            rec.extra["adopted_from"] = Maker.NOTEBOOK.value
            self._link_notebook_original(rec)
        entry = self.remembered.images.pop(path.name, None) if self.remembered is not None else None
        if entry:
            remember(rec, entry, places)
        rec.tags = merge_tags(rec.tags, folder, rec.size_tag)
        return rec

    def remembers(self, name: str) -> bool:
        """Does the export a rebuild restores from name an image ``name`` not adopted yet?"""
        return self.remembered is not None and name in self.remembered.images

    def finish_restoring(self) -> Remembered | None:
        """Hand over what the export remembered (the collisions are left) and stop restoring."""
        remembered, self.remembered = self.remembered, None
        return remembered

    def find_original(self, name: str) -> str | None:
        """The original filed for thumbnail ``name`` in ``originals/``, whatever its suffix."""
        places = self.ctx.places
        found = self._filed_originals().get(name[: -len(".png")])
        return places.rel(places.originals / found) if found is not None else None

    def _filed_originals(self) -> dict[str, str]:
        """Stem -> file name of what ``originals/`` holds, listed once and again only when it changed."""
        folder = self.ctx.places.originals
        try:
            stamp = os.stat(folder).st_mtime_ns
            if self._originals is None or self._originals[0] != stamp:
                index: dict[str, str] = {}
                with os.scandir(folder) as entries:
                    for entry in entries:
                        stem, dot, suffix = entry.name.rpartition(".")
                        if dot and f".{suffix.lower()}" in IMAGE_SUFFIXES and entry.is_file(follow_symlinks=False):
                            index.setdefault(stem, entry.name)
                self._originals = (stamp, index)
        except OSError:  # not there, or removed between the stat and the listing
            return {}
        return self._originals[1]

    def holder(self, name: str, folder: Path) -> ImageRecord | None:
        """The record owning ``name``: from the catalog, else adopted (and saved) from ``folder/name``."""
        catalog = self.ctx.catalog
        rec = catalog.image(name)
        if rec is None and os.path.lexists(folder / name):
            rec = self.adopt(folder / name, os.lstat(folder / name))
            if rec is not None:
                with catalog.transaction():
                    catalog.put_image(rec)
        return rec

    def _link_notebook_original(self, rec: ImageRecord) -> None:
        """Link the original a notebook thumbnail was made from, if it is here with the same hash."""
        if self.identify is None or not rec.original_filename:
            return
        places = self.ctx.places
        for candidate in self._originals_named(rec.original_filename):
            found = self.identify(candidate)
            if found is None or found[0] != rec.name:
                continue
            self.ctx.checkpoint("identified", candidate)
            if places.place(candidate) is not None:  # in a source folder: it stays there
                try:
                    st = os.lstat(candidate)
                except OSError:
                    continue  # moved or deleted while it was identified: not linked
                rec.source, rec.source_stat = True, (st.st_size, st.st_mtime_ns)
            rec.original, rec.sha256 = places.rel(candidate), found[1]
            return

    def _originals_named(self, filename: str) -> list[Path]:
        """Files called ``filename`` (case-insensitive) under ``originals/`` and the source folders."""
        if self._by_filename is None:
            index: dict[str, list[Path]] = {}
            places = self.ctx.places
            for top in (places.originals, *self.ctx.cfg.source_dirs):
                for dirpath, _, files in os.walk(top):
                    for f in files:
                        index.setdefault(f.lower(), []).append(Path(dirpath) / f)
            self._by_filename = index
        return self._by_filename.get(filename.lower(), [])


def from_chunks(ctx: Context, path: Path, thumb: Thumbnail) -> ImageRecord:
    """A present record for the thumbnail at ``path`` from what its chunks say (no tags, no original yet)."""
    text = thumb.text
    now = ctx.stamp()
    file_size = text.get("file_size", "")
    return ImageRecord(
        name=path.name,
        hash=thumb.hash,
        width=thumb.width,
        height=thumb.height,
        path=ctx.places.rel(path),
        state=State.PRESENT,
        first_seen=text.get("ingested", now),
        last_seen=now,
        algorithm=text.get("hash_algorithm", "whash" if thumb.maker is Maker.NOTEBOOK else ctx.cfg.hash.algorithm),
        hash_size=int(text.get("hash_size", _side(thumb.hash))),
        decode=text.get("hash_decode", "reference"),
        format=text.get("format"),
        sha256=thumb.sha256,
        file_size=number(file_size),
        original_filename=text.get("original_filename") or text.get("filename"),
        crops=text.get("crops", "") if crops.split_bytes(text.get("crops")) is not None else "",
        exif=Exif.of(text),
    )


def _side(hash_hex: str) -> int:
    """The ImageHash ``hash_size`` of a hex hash (16 hex digits: 8)."""
    bits = len(hash_hex) * 4
    side = 1
    while side * side < bits:
        side += 1
    return side
