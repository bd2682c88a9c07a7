"""Which of two (or more) copies of one picture to keep, and why (pure).

The rule, first difference wins:

1. a **camera original** beats a copy: EXIF names the camera (``Make`` or ``Model``)
   and, where EXIF recorded the picture's size (``ExifImageWidth``/``Height``), the
   pixels still have it. A re-save that dropped the EXIF, or a copy resized after the
   camera, is a copy; so a larger copy beside a camera original is an enlargement
   ("upscaled 2.1x") and loses;
2. more pixels;
3. the larger file (at equal pixels: the less compressed encoding);
4. more EXIF fields;
5. the older date taken (EXIF, else the file's date);
6. a full tie keeps the first candidate (a collision's existing side: keeping it moves
   nothing).

Nothing here depends on the order the candidates arrived in but the last tie-break:
swap two candidates that differ in any fact and the same picture is kept.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from watcherd.core.errors import UsageError
from watcherd.core.exif import DATE_TAGS, Exif, exif_fields
from watcherd.core.naming import number

EXIF_FORMAT = "%Y:%m:%d %H:%M:%S"
EXIF_SOURCE, FILE_SOURCE = "EXIF", "file date"


@dataclass(frozen=True)
class Facts:
    """What the rule compares about one candidate; None where it is not known."""

    pixels: int | None
    file_size: int | None
    taken: datetime | None  # naive local time, as cameras write it
    taken_from: str | None = None  # EXIF_SOURCE or FILE_SOURCE: where ``taken`` was read
    camera: str | None = None  # EXIF Make and Model, as one text
    exif_fields: int = 0  # how many EXIF fields the original carried
    recorded: tuple[int, int] | None = None  # the size EXIF says the picture had (ExifImageWidth/Height)
    size: tuple[int, int] | None = None  # the pixels as shown (width, height)

    @property
    def resized(self) -> bool:
        """EXIF recorded a size the pixels no longer have (either way round: turned by orientation)."""
        if self.recorded is None or self.size is None:
            return False
        return self.recorded not in (self.size, self.size[::-1])

    @property
    def camera_original(self) -> bool:
        """The file the camera wrote: EXIF names the camera and the size is the one it recorded."""
        return self.camera is not None and not self.resized


@dataclass(frozen=True)
class Choice:
    """The candidate to keep and, for each candidate, the short reasons the page shows."""

    keep: int
    reasons: list[list[str]] = field(default_factory=list)


def _key(indexed: tuple[int, Facts]) -> tuple[bool, int, int, int, bool, datetime, int]:
    i, f = indexed
    return (
        not f.camera_original,
        -(f.pixels or 0),
        -(f.file_size if f.file_size is not None else -1),
        -f.exif_fields,
        f.taken is None,  # a known date beats an unknown one
        f.taken or datetime.max,
        i,
    )


def suggest(candidates: Sequence[Facts]) -> int:
    """The index of the candidate to keep (the rule above)."""
    if not candidates:
        raise UsageError("no candidates to choose from")
    return min(enumerate(candidates), key=_key)[0]


def _scale(larger: int | None, smaller: int | None) -> float:
    """How many times longer a side is, from two pixel counts."""
    if not larger or not smaller:
        return 1.0
    return math.sqrt(larger / smaller)


def _size(n: int) -> str:
    for unit, step in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= step:
            return f"{n / step:.1f} {unit}"
    return f"{n} B"


def _camera_reason(f: Facts) -> str:
    return f"camera original ({f.camera})" if f.camera else "camera original"


def _against(kept: Facts, other: Facts) -> tuple[str, str]:
    """Why ``kept`` wins over ``other``: (a reason for the kept one, one for the other)."""
    if kept.camera_original != other.camera_original:
        if other.resized:
            w, h = other.recorded or (0, 0)
            lost = f"resized after the camera (EXIF says {w}x{h})"
        elif (other.pixels or 0) > (kept.pixels or 0):
            lost = f"upscaled {_scale(other.pixels, kept.pixels):.1f}x, no camera EXIF"
        else:
            lost = "no camera EXIF"
        return _camera_reason(kept), lost
    if (kept.pixels or 0) != (other.pixels or 0):
        return "more pixels", f"{_scale(kept.pixels, other.pixels):.1f}x smaller"
    if kept.file_size != other.file_size and kept.file_size is not None:
        theirs = _size(other.file_size) if other.file_size is not None else "unknown size"
        return f"larger file at equal pixels ({_size(kept.file_size)})", f"smaller file, more compressed ({theirs})"
    if kept.exif_fields != other.exif_fields:
        return f"more EXIF ({kept.exif_fields} fields)", f"less EXIF ({other.exif_fields} fields)"
    if kept.taken != other.taken and kept.taken is not None:
        return f"older date taken ({kept.taken:%Y-%m-%d})", "newer date taken" if other.taken else "no date"
    return "the same facts: keeping it moves nothing", "the same facts"


def choose(candidates: Sequence[Facts]) -> Choice:
    """The candidate to keep (``suggest``) and the reasons for every candidate, kept one first."""
    keep = suggest(candidates)
    kept = candidates[keep]
    reasons: list[list[str]] = [[] for _ in candidates]
    for i, other in enumerate(candidates):
        if i == keep:
            continue
        won, lost = _against(kept, other)
        if won not in reasons[keep]:
            reasons[keep].append(won)
        reasons[i].append(lost)
    if kept.camera_original and kept.recorded is not None:
        reasons[keep].append("original resolution")  # EXIF recorded this very size
    if kept.taken is not None and kept.taken_from == EXIF_SOURCE:
        reasons[keep].append(f"EXIF date {kept.taken:%Y-%m-%d}")
    return Choice(keep, reasons)


# --- the facts, read from a thumbnail's text chunks -------------------------------------


# The form nearly every EXIF date has, read without ``strptime`` (ten times slower: a near
# group listing reads two dates an image); anything else goes to ``strptime``, which says the same.
_EXIF_DATE = re.compile(r"(\d{4}):(\d\d):(\d\d) (\d\d):(\d\d):(\d\d)", re.ASCII)


def exif_date(value: str) -> datetime | None:
    """An EXIF date (``2021:05:01 10:00:00``, maybe padded or with a trailing NUL), or None."""
    text = value.strip().strip("\0").strip()[:19]
    plain = _EXIF_DATE.fullmatch(text)
    try:
        if plain:
            year, month, day, hour, minute, second = (int(part) for part in plain.groups())
            taken = datetime(year, month, day, hour, minute, second)
        else:
            taken = datetime.strptime(text, EXIF_FORMAT)
    except ValueError:
        return None
    return None if taken.year < 1900 else taken


def _date_of(fields: Mapping[str, str]) -> datetime | None:
    for tag in DATE_TAGS:
        value = fields.get(tag)
        if value is not None:
            taken = exif_date(value)
            if taken is not None:
                return taken
    return None


def date_taken(chunks: Mapping[str, str]) -> datetime | None:
    """When the picture was taken, from a thumbnail's ``exif`` text chunk (JSON of tag names to values)."""
    return _date_of(exif_fields(chunks))


def camera(fields: Mapping[str, str]) -> str | None:
    """EXIF ``Make`` and ``Model`` as one text (the make left out when the model repeats it), or None."""
    make = fields.get("Make", "").strip().strip("\0").strip()
    model = fields.get("Model", "").strip().strip("\0").strip()
    if model.lower().startswith(make.lower()):
        make = ""
    return " ".join(p for p in (make, model) if p) or None


def _int(text: str | None) -> int | None:
    return number(text.strip()) if text is not None else None


def recorded_size(fields: Mapping[str, str]) -> tuple[int, int] | None:
    """The picture's size as EXIF recorded it (``ExifImageWidth``/``ExifImageHeight``), or None."""
    w, h = _int(fields.get("ExifImageWidth")), _int(fields.get("ExifImageHeight"))
    return (w, h) if w and h else None


def facts_from(
    chunks: Mapping[str, str], size: tuple[int, int] | None, file_size: int | None, file_time: datetime | None
) -> Facts:
    """What the rule compares, from a thumbnail's text chunks and the original's size and date.

    ``size`` (width, height) is used when the chunks do not say; the date is EXIF's when
    the picture carried one, else ``file_time`` (the original's modification time).
    """
    width, height, stored = chunks.get("width", ""), chunks.get("height", ""), chunks.get("file_size", "")
    w, h, stored_size = number(width), number(height), number(stored)
    if w is not None and h is not None:
        size = (w, h)
    if stored_size is not None:
        file_size = stored_size
    return facts_of(Exif.of(chunks), size, file_size, file_time)


def facts_of(exif: Exif, size: tuple[int, int] | None, file_size: int | None, file_time: datetime | None) -> Facts:
    """What the rule compares, from what a record keeps: its EXIF, its size (width, height) and
    the original's file size, the date being EXIF's, else ``file_time``."""
    taken, source = _date_of(exif.fields), EXIF_SOURCE
    if taken is None:
        taken, source = file_time, FILE_SOURCE
    return Facts(
        size[0] * size[1] if size else None,
        file_size,
        taken,
        source if taken is not None else None,
        camera(exif.fields),
        exif.count,
        recorded_size(exif.fields),
        size,
    )


def shown_date(facts: Facts) -> str:
    """The date as the page shows it, with where it came from."""
    if facts.taken is None:
        return "?"
    return f"{facts.taken:%Y-%m-%d %H:%M:%S} ({facts.taken_from or 'unknown'})"


# --- bursts ---------------------------------------------------------------------------

# Near-duplicates taken by one camera at most this far apart, one after the other, are a
# burst (a phone's burst mode or a photographer's held shutter: several frames a second,
# or one every second or two), not copies of one picture.
BURST_GAP = timedelta(seconds=3)


@dataclass(frozen=True)
class Shot:
    """Which camera took a picture and when the shutter fired, from its EXIF (None when not said)."""

    camera: str | None  # ``camera``: make and model
    taken: datetime | None  # DateTimeOriginal, with SubsecTimeOriginal's fraction when given


def shot(chunks: Mapping[str, str]) -> Shot:
    """The camera and the moment of a thumbnail's picture, from its ``exif`` text chunk."""
    return shot_of(Exif.of(chunks))


def shot_of(exif: Exif) -> Shot:
    """The camera and the moment of a picture, from what its record keeps of its EXIF."""
    fields = exif.fields
    raw = fields.get("DateTimeOriginal")
    taken = exif_date(raw) if raw is not None else None
    sub = fields.get("SubsecTimeOriginal", "").strip().strip("\0").strip()
    fraction = number(sub)
    if taken is not None and fraction is not None:
        taken += timedelta(seconds=fraction / 10 ** len(sub))
    return Shot(camera(fields), taken)


def is_burst(shots: Sequence[Shot]) -> bool:
    """Were these pictures taken as one burst: one camera, every one dated, at two or more moments,
    each within ``BURST_GAP`` of the one before? (Copies of one picture share its moment.)"""
    if len(shots) < 2 or any(s.camera is None or s.taken is None for s in shots):
        return False
    if len({s.camera for s in shots}) != 1:
        return False
    moments = sorted({s.taken for s in shots if s.taken is not None})
    return len(moments) > 1 and all(b - a <= BURST_GAP for a, b in itertools.pairwise(moments))
