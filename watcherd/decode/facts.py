"""What the keeper rule compares about each side, read from thumbnails' text chunks and the files,
or (a near group's members) from what their records keep of the chunks.

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
from watcherd.core.keeper import Facts, Shot, facts_from, facts_of, shot, shot_of
from watcherd.core.naming import parse_canonical
from watcherd.core.nearpairs import Member

THUMBNAIL_LIMIT = 4 << 20  # adopt.MAX_THUMBNAIL_BYTES: our thumbnails are far smaller


def thumbnail_chunks(root: Path, rel: str | None) -> dict[str, str]:
    """The PNG text chunks of a thumbnail under ROOT (a regular file, not followed if a link), or {}."""
    if rel is None:
        return {}
    path = os.path.join(root, rel)
    return _chunks(path, _regular(path))


def _chunks(path: str, st: os.stat_result | None) -> dict[str, str]:
    """The text chunks of the regular file ``path`` whose ``lstat`` is ``st``, or {}."""
    if st is None or st.st_size > THUMBNAIL_LIMIT:
        return {}
    from watcherd.decode import chunks

    try:
        with open(path, "rb") as fh:
            return chunks.read_text(fh.read())
    except OSError:
        return {}


def _regular(path: str) -> os.stat_result | None:
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
    orig = _regular(os.path.join(root, original)) if original else None
    thumb = _regular(os.path.join(root, thumbnail)) if thumbnail else None
    facts = _facts(chunks, size, orig, thumb)
    if facts.pixels is None and pixels is not None:
        facts = replace(facts, pixels=pixels)
    return facts


def _facts(
    chunks: dict[str, str],
    size: tuple[int, int] | None,
    orig: os.stat_result | None,
    thumb: os.stat_result | None,
    file_size: int | None = None,
) -> Facts:
    """``facts_from`` with the original's size (else ``file_size``) and its date (``_dated``)."""
    return facts_from(chunks, size, orig.st_size if orig else file_size, _dated(orig, thumb))


def _dated(orig: os.stat_result | None, thumb: os.stat_result | None) -> datetime | None:
    """The file date the rule falls back on: the original's modification time, else the thumbnail's."""
    dated = orig or thumb
    return datetime.fromtimestamp(dated.st_mtime) if dated is not None else None


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


def image_facts(root: Path, member: Member, thumbnail: str) -> tuple[Facts, dict[str, str]]:
    """One catalogued image's facts (a near group's member, its thumbnail at ``thumbnail``) and
    its thumbnail's chunks: one ``lstat`` of each file and one read of the thumbnail."""
    path = os.path.join(root, thumbnail)
    thumb = _regular(path)
    orig = _regular(os.path.join(root, member.original)) if member.original else None
    chunks = _chunks(path, thumb)
    # The size the record keeps when the original is out of reach (the chunks' own come first).
    return _facts(chunks, member.size, orig, thumb, member.file_size), chunks


def member_facts(root: Path, member: Member, thumbnail: str) -> tuple[Facts, Shot]:
    """A near group member's facts and its shot (``keeper.is_burst``), from what its record keeps
    of its EXIF: no thumbnail is read. The original is looked at (``lstat``) only when EXIF gives
    no date or the record no file size, and the thumbnail only when the original is not there
    either. A record from before EXIF was kept has its thumbnail read (``image_facts``); for a
    thumbnail where its record says, the facts are the same either way."""
    if member.exif is None:
        facts, chunks = image_facts(root, member, thumbnail)
        return facts, shot(chunks)
    facts = facts_of(member.exif, member.size, member.file_size, None)
    if facts.taken is None or member.file_size is None:
        orig = _regular(os.path.join(root, member.original)) if member.original else None
        thumb = _regular(os.path.join(root, thumbnail)) if orig is None else None  # only if it is needed
        file_size = member.file_size if member.file_size is not None else (orig.st_size if orig else None)
        facts = facts_of(member.exif, member.size, file_size, _dated(orig, thumb))
    return facts, shot_of(member.exif)
