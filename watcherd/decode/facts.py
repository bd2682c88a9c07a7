"""What the keeper rule compares about each side, read from thumbnails' text chunks and the files.

Reads only PNG text chunks (never pixels) and ``lstat``: commands and the review page
call it without loading the decoders.
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from watcherd.core.collisionrecords import CollisionRecord
from watcherd.core.keeper import Facts, facts_from
from watcherd.core.naming import parse_canonical
from watcherd.core.records import ImageRecord

THUMBNAIL_LIMIT = 4 << 20  # adopt.MAX_THUMBNAIL_BYTES: our thumbnails are far smaller


def thumbnail_chunks(root: Path, rel: str | None) -> dict[str, str]:
    """The PNG text chunks of a thumbnail under ROOT (a regular file, not followed if a link), or {}."""
    if rel is None:
        return {}
    from watcherd.decode import chunks

    path = root / rel
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > THUMBNAIL_LIMIT:
            return {}
        return chunks.read_text(path.read_bytes())
    except OSError:
        return {}


def _regular(path: Path) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def side_facts(
    root: Path,
    thumbnail: str | None,
    original: str | None,
    chunks: dict[str, str],
    pixels: int | None = None,
    size: tuple[int, int] | None = None,
) -> Facts:
    """What the keeper rule compares about one side, from its thumbnail's chunks and its files.

    The date is EXIF's when the picture carried one, else the original's modification
    time (kept through every move), else the thumbnail's (which copies it). ``size`` (or
    only ``pixels``) is used when the chunks do not say.
    """
    orig = _regular(root / original) if original else None
    thumb = _regular(root / thumbnail) if thumbnail else None
    dated = orig or thumb
    when = datetime.fromtimestamp(dated.st_mtime) if dated is not None else None
    facts = facts_from(chunks, size, orig.st_size if orig else None, when)
    if facts.pixels is None and pixels is not None:
        facts = replace(facts, pixels=pixels)
    return facts


def collision_facts(
    root: Path, c: CollisionRecord
) -> tuple[tuple[Facts, Facts], tuple[dict[str, str], dict[str, str]]]:
    """Both sides' facts (existing, newcomer) and their thumbnails' chunks."""
    parsed = parse_canonical(c.name)
    size = (parsed.width, parsed.height) if parsed else None
    a = thumbnail_chunks(root, c.existing.thumbnail)
    b = thumbnail_chunks(root, c.newcomer.thumbnail)
    facts = (
        side_facts(root, c.existing.thumbnail, c.existing.original, a, size=size),
        side_facts(root, c.newcomer.thumbnail, c.newcomer.original, b, size=size),
    )
    return facts, (a, b)


def image_facts(root: Path, rec: ImageRecord, thumbnail: str | None = None) -> tuple[Facts, dict[str, str]]:
    """One catalogued image's facts (a near group's member) and its thumbnail's chunks."""
    chunks = thumbnail_chunks(root, thumbnail or rec.path)
    facts = side_facts(root, thumbnail or rec.path, rec.original, chunks, size=(rec.width, rec.height))
    if facts.file_size is None and rec.file_size is not None:
        facts = replace(facts, file_size=rec.file_size)
    return facts, chunks
