"""What crosses the decoder's boundary: the spec of a render and what it gives back.

Plain values, picklable and free of Pillow, so the writer can name them without loading the
decoders (a rescan that decodes nothing never imports Pillow, NumPy or ImageHash); the work
itself is ``imaging.render``, run in a sandbox's child, on a cluster's worker or here.
"""

from __future__ import annotations

from dataclasses import dataclass

from watcherd.core.exif import Exif

__all__ = ["MAX_WARNING", "RENDER", "RenderSpec", "Rendered", "summarize_warnings"]

# The job a sandbox's child runs unless told otherwise (``module:function``, imported there).
RENDER = "watcherd.decode.imaging:render"


@dataclass(frozen=True)
class RenderSpec:
    """Everything ``render`` needs besides the bytes (picklable, for a worker process)."""

    formats: tuple[str, ...]
    max_pixels: int
    background: str
    algorithm: str
    hash_size: int
    thumbnail_size: int
    decode: str = "reference"
    keywords: bool = True  # read the photo's keywords (and its sidecar's) as tags


@dataclass(frozen=True)
class Rendered:
    """A newcomer's name parts and its finished thumbnail PNG."""

    width: int
    height: int
    hash: str
    format: str
    png: bytes
    low_information: bool = False
    warnings: tuple[str, ...] = ()  # what the decoders complained about, once each
    keywords: tuple[str, ...] = ()  # tags given by the photo's keywords and its sidecar's
    keyword_paths: tuple[str, ...] = ()  # the hierarchies among them (``a|b``)
    refused: str = ""  # why some XMP was not read (one log line), "" when all of it was
    note: str = ""  # what another sandbox job says besides its bytes (``previews``: JSON)
    crops: str = ""  # the thumbnail's window hashes (``core.crops.join``), what finds cropped copies
    exif: Exif | None = None  # what the keeper rule reads of the picture's EXIF, kept in its record


# A decoder warning longer than this is cut: it goes into one log line.
MAX_WARNING = 300


def summarize_warnings(messages: list[str]) -> tuple[str, ...]:
    """Each distinct message once, on one line, with how often it was said."""
    counts: dict[str, int] = {}
    for message in messages:
        line = " ".join(message.split())[:MAX_WARNING]
        if line:
            counts[line] = counts.get(line, 0) + 1
    return tuple(m if n == 1 else f"{m} ({n} times)" for m, n in counts.items())
