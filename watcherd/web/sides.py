"""One picture as the page shows it: its facts (the rows compared), where to see it, and how (pure).

A browser shows JPEG, PNG, GIF, WebP and BMP originals in 8-bit modes itself; anything
else (HEIC/HEIF, AVIF, TIFF, DIB, 16-bit, CMYK...) is shown by a preview the decoder
sandbox renders (``/preview/PATH``), and "open original" still serves the file itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import quote, urlencode

from watcherd.core.exif import exif_fields
from watcherd.core.keeper import EXIF_SOURCE, Facts
from watcherd.core.naming import number

# The facts compared, in the order shown; "place" only when a side has one.
ROWS = ("pixels", "file size", "format", "date taken", "camera", "file name", "tags", "where", "place")
SHOWN_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP"})
SHOWN_MODES = frozenset({"RGB", "RGBA", "RGBX", "L", "LA", "P", "PA", "1"})
SHOWN_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp"})
_DEGREES = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Side:
    """One picture of an item (a collision's side, a near group's member)."""

    label: str  # what the page calls it: existing, newcomer, or a member's name with its role
    role: str  # existing, newcomer or member
    name: str | None  # the image's canonical name (a near group's member), else None
    thumbnail: str | None
    original: str | None
    sha256: str | None
    width: int | None
    height: int | None
    hash: str | None
    rows: dict[str, str]
    taken: str  # ISO date taken, or ""
    taken_source: str  # exif, file, or ""
    browser_shows: bool  # the original itself can be shown (else a preview is)
    reasons: list[str] = field(default_factory=list)
    distance: int | None = None  # to the group's keeper (near groups)
    order: int = 0  # catalog order in its group: first catalogued is 0

    @property
    def shown(self) -> str:
        """Where the page loads the picture from: the original, a preview of it, or the thumbnail."""
        if self.original is None:
            return file_url(self.thumbnail) if self.thumbnail else ""
        if self.browser_shows:
            return file_url(self.original)
        return preview_url(self.original, self.sha256)

    @property
    def small(self) -> str:
        """A small preview (grids and cards)."""
        if self.original is None:
            return file_url(self.thumbnail) if self.thumbnail else ""
        return preview_url(self.original, self.sha256, "small")

    @property
    def opened(self) -> str:
        """ "Open original": the file itself."""
        return file_url(self.original or self.thumbnail or "")


def file_url(rel: str) -> str:
    """A file of the library, as ``/file/PATH`` serves it."""
    return "/file/" + quote(rel)


def preview_url(rel: str, sha256: str | None, size: str = "full") -> str:
    """A preview of an original, as ``/preview/PATH`` renders it."""
    query = {k: v for k, v in (("size", size if size != "full" else ""), ("sha", sha256 or "")) if v}
    return "/preview/" + quote(rel) + (f"?{urlencode(query)}" if query else "")


def browser_shows(chunks: dict[str, str], original: str | None) -> bool:
    """Can a browser show this original itself? By its format and mode (from the thumbnail's chunks)."""
    fmt, mode = chunks.get("format"), chunks.get("mode")
    if fmt:
        return fmt.upper() in SHOWN_FORMATS and (mode is None or mode in SHOWN_MODES)
    return PurePosixPath(original or "").suffix.lower() in SHOWN_SUFFIXES


def human_size(n: int | None) -> str:
    """A file size as people read it: 2.4 MB."""
    if n is None:
        return "?"
    for unit, step in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= step:
            return f"{n / step:.1f} {unit}"
    return f"{n:,} bytes"


def _coordinate(value: str | None, ref: str | None) -> float | None:
    """A GPS coordinate as EXIF writes it (``(48.0, 51.0, 30.24)``), in signed degrees."""
    if not value:
        return None
    parts = [float(p) for p in _DEGREES.findall(value)]
    if not parts:
        return None
    degrees = float(sum(p / 60**i for i, p in enumerate(parts[:3])))
    return -degrees if (ref or "").strip().upper() in ("S", "W") else degrees


def place(chunks: dict[str, str]) -> str:
    """Where the picture was taken (EXIF GPS), as ``48.85840 N, 2.29450 E``, or ""."""
    fields = exif_fields(chunks)
    lat = _coordinate(fields.get("GPSLatitude"), fields.get("GPSLatitudeRef"))
    lon = _coordinate(fields.get("GPSLongitude"), fields.get("GPSLongitudeRef"))
    if lat is None or lon is None:
        return ""
    return f"{abs(lat):.5f} {'S' if lat < 0 else 'N'}, {abs(lon):.5f} {'W' if lon < 0 else 'E'}"


@dataclass(frozen=True)
class Known:
    """What the catalog says about a side, besides its thumbnail's chunks."""

    width: int | None = None
    height: int | None = None
    format: str | None = None
    filename: str | None = None
    tags: str = ""
    where: str | None = None


def make_side(
    label: str,
    role: str,
    facts: Facts,
    chunks: dict[str, str],
    files: tuple[str | None, str | None, str | None],
    known: Known,
    name: str | None = None,
) -> Side:
    """A side from its keeper facts, its thumbnail's chunks, its files (thumbnail, original, sha256)
    and what the catalog knows."""
    thumbnail, original, sha256 = files
    width = number(chunks.get("width", ""))
    height = number(chunks.get("height", ""))
    width, height = width if width is not None else known.width, height if height is not None else known.height
    fmt = chunks.get("format") or known.format or PurePosixPath(original or "").suffix.lstrip(".").upper() or "?"
    source = "exif" if facts.taken_from == EXIF_SOURCE else ("file" if facts.taken else "")
    taken = f"{facts.taken:%Y-%m-%d %H:%M}" if facts.taken else "?"
    rows = {
        "pixels": f"{width} x {height}" if width and height else "?",
        "file size": human_size(facts.file_size),
        "format": fmt + (f" ({chunks['mode']})" if chunks.get("mode") not in (None, "RGB", "L") else ""),
        "date taken": taken + (" (file date)" if source == "file" else ""),
        "camera": facts.camera or "-",
        "file name": known.filename or chunks.get("original_filename") or chunks.get("filename") or "?",
        "tags": known.tags or "-",
        "where": str(PurePosixPath(known.where).parent) if known.where else "?",
        "place": place(chunks) or "-",
    }
    return Side(
        label,
        role,
        name,
        thumbnail,
        original,
        sha256 or chunks.get("sha256"),
        width,
        height,
        chunks.get("hash") or (name.split("_")[1] if name and name.count("_") >= 2 else None),
        rows,
        facts.taken.isoformat() if facts.taken else "",
        source,
        browser_shows(chunks, original),
    )


def differing(sides: list[Side]) -> set[str]:
    """The rows whose values are not the same on every side."""
    return {key for key in ROWS if len({s.rows.get(key) for s in sides}) > 1}


def rows_shown(sides: list[Side]) -> list[str]:
    """The rows an item shows: every one, but "place" only when a side has one."""
    return [key for key in ROWS if key != "place" or any(s.rows["place"] != "-" for s in sides)]
