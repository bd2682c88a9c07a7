"""Adoption: a thumbnail watcherd made, found without a record, is recorded from its PNG chunks.

That happens after a crash between publishing a thumbnail and recording it, when a
catalog is rebuilt, and when a library is restored without its catalog. The chunks
give everything the name does not (sha256, format, original file name); the folders
give tags; the catalog export, when a fresh catalog is being rebuilt, gives back what
only the old catalog knew (tags of folders the thumbnail has left, where its original
went). Nothing is decoded.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from watcherd import imaging
from watcherd.context import Context
from watcherd.filters import IMAGE_SUFFIXES
from watcherd.naming import merge_tags, parse_canonical
from watcherd.records import ImageRecord, Json, State

log = logging.getLogger("watcherd")


@dataclass
class Remembered:
    """What the catalog export says, consumed while a fresh catalog is rebuilt."""

    images: dict[str, Json] = field(default_factory=dict)
    collisions: list[Json] = field(default_factory=list)


class Adopter:
    """Turns our own thumbnails into records, from their chunks and what the export remembers."""

    def __init__(self, ctx: Context, remembered: Remembered | None = None) -> None:
        self.ctx = ctx
        self.remembered = remembered

    def adopt(self, path: Path, st: os.stat_result) -> ImageRecord | None:
        """A record rebuilt from one of our thumbnails, or None if it is not ours."""
        cfg = self.ctx.cfg
        parsed = parse_canonical(path.name)
        if parsed is None or st.st_size > cfg.max_file_size:
            return None
        try:
            text = imaging.read_text(path.read_bytes())
        except OSError:
            return None
        if not text.get("software", "").startswith("watcherd") or text.get("hash") != parsed.hash:
            return None
        places = self.ctx.places
        where = places.place(path)
        folder = where.rel.parent if where is not None else PurePosixPath()
        now = self.ctx.stamp()
        file_size = text.get("file_size", "")
        rec = ImageRecord(
            name=path.name,
            hash=parsed.hash,
            width=parsed.width,
            height=parsed.height,
            path=places.rel(path),
            state=State.PRESENT,
            first_seen=text.get("ingested", now),
            last_seen=now,
            algorithm=text.get("hash_algorithm", cfg.hash.algorithm),
            hash_size=int(text.get("hash_size", cfg.hash.size)),
            decode=text.get("hash_decode", "reference"),
            format=text.get("format"),
            sha256=text.get("sha256"),
            file_size=int(file_size) if file_size.isdigit() else None,
            original_filename=text.get("original_filename"),
            original=self.find_original(path.name),
        )
        entry = self.remembered.images.pop(path.name, None) if self.remembered is not None else None
        if entry:
            original = entry.get("original")
            if original and os.path.lexists(places.absolute(original)):
                rec.original = original
                rec.source = bool(entry.get("source"))
            rec.first_seen = entry.get("first_seen") or rec.first_seen
            rec.tags = [t for t in entry.get("tags") or [] if isinstance(t, str)]
        rec.tags = merge_tags(rec.tags, folder, rec.size_tag)
        return rec

    def finish_restoring(self) -> Remembered | None:
        """Hand over what the export remembered (the collisions are left) and stop restoring."""
        remembered, self.remembered = self.remembered, None
        return remembered

    def find_original(self, name: str) -> str | None:
        """The original filed for thumbnail ``name`` in ``originals/``, whatever its suffix."""
        places = self.ctx.places
        stem = name[: -len(".png")]
        for suffix in sorted(IMAGE_SUFFIXES):
            candidate = places.originals / f"{stem}{suffix}"
            if os.path.lexists(candidate):
                return places.rel(candidate)
        return None

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
