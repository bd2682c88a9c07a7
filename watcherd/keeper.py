"""Which of two (or more) copies of one picture to keep, as the review page suggests it (pure).

The rule: more pixels, then the larger file, then the older date; a tie keeps the first
candidate (the side the library already has: keeping it moves nothing). The date is
the one the picture was taken, from EXIF, else the file's modification time.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# EXIF date tags, best first: when the shutter fired, when it was digitized, when the file
# was last written by the camera or an editor (IFD0's DateTime).
DATE_TAGS = ("DateTimeOriginal", "DateTimeDigitized", "DateTime")
EXIF_FORMAT = "%Y:%m:%d %H:%M:%S"


@dataclass(frozen=True)
class Facts:
    """What the rule compares about one candidate; None where it is not known."""

    pixels: int | None
    file_size: int | None
    taken: datetime | None  # naive local time, as cameras write it
    taken_from: str | None = None  # "EXIF" or "file date": where ``taken`` was read


def suggest(candidates: Sequence[Facts]) -> int:
    """The index of the candidate to keep: more pixels, then larger file, then older date.

    An unknown value loses to a known one; equal (or unknown on both) goes to the next
    criterion, and a full tie to the earlier candidate.
    """
    if not candidates:
        raise ValueError("no candidates to choose from")

    def key(indexed: tuple[int, Facts]) -> tuple[int, int, int, datetime, int]:
        i, f = indexed
        return (
            -(f.pixels or 0),
            -(f.file_size if f.file_size is not None else -1),
            f.taken is None,  # a known date beats an unknown one
            f.taken or datetime.max,
            i,
        )

    return min(enumerate(candidates), key=key)[0]


def exif_date(value: str) -> datetime | None:
    """An EXIF date (``2021:05:01 10:00:00``, maybe padded or with a trailing NUL), or None."""
    text = value.strip().strip("\0").strip()
    try:
        taken = datetime.strptime(text[:19], EXIF_FORMAT)
    except ValueError:
        return None
    return None if taken.year < 1900 else taken


def date_taken(chunks: Mapping[str, str]) -> datetime | None:
    """When the picture was taken, from a thumbnail's ``exif`` text chunk (JSON of tag names to values)."""
    raw = chunks.get("exif")
    if not raw:
        return None
    try:
        fields = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    for tag in DATE_TAGS:
        value = fields.get(tag)
        if isinstance(value, str):
            taken = exif_date(value)
            if taken is not None:
                return taken
    return None


def shown_date(facts: Facts) -> str:
    """The date as the page shows it, with where it came from."""
    if facts.taken is None:
        return "?"
    return f"{facts.taken:%Y-%m-%d %H:%M:%S} ({facts.taken_from or 'unknown'})"


# Near-duplicates taken by one camera at most this far apart, one after the other, are a
# burst (a phone's burst mode or a photographer's held shutter: several frames a second,
# or one every second or two), not copies of one picture.
BURST_GAP = timedelta(seconds=3)


@dataclass(frozen=True)
class Shot:
    """Which camera took a picture and when the shutter fired, from its EXIF (None when not said)."""

    camera: str | None  # "Make Model"
    taken: datetime | None  # DateTimeOriginal, with SubSecTimeOriginal's fraction when given


def shot(chunks: Mapping[str, str]) -> Shot:
    """The camera and the moment of a thumbnail's picture, from its ``exif`` text chunk."""
    try:
        fields = json.loads(chunks.get("exif") or "{}")
    except ValueError:
        fields = {}
    if not isinstance(fields, dict):
        fields = {}
    make, model = (" ".join(str(fields.get(k) or "").split()).strip("\0 ") for k in ("Make", "Model"))
    camera = f"{make} {model}".strip() or None
    raw = fields.get("DateTimeOriginal")
    taken = exif_date(raw) if isinstance(raw, str) else None
    sub = str(fields.get("SubsecTimeOriginal") or "").strip().strip("\0").strip()
    if taken is not None and sub.isdigit():
        taken += timedelta(seconds=int(sub) / 10 ** len(sub))
    return Shot(camera, taken)


def is_burst(shots: Sequence[Shot]) -> bool:
    """Were these pictures taken as one burst: one camera, every one dated, at two or more moments,
    each within ``BURST_GAP`` of the one before? (Copies of one picture share its moment.)"""
    if len(shots) < 2 or any(s.camera is None or s.taken is None for s in shots):
        return False
    if len({s.camera for s in shots}) != 1:
        return False
    moments = sorted({s.taken for s in shots if s.taken is not None})
    return len(moments) > 1 and all(b - a <= BURST_GAP for a, b in itertools.pairwise(moments))
