"""Which files are watcherd's business: every ignore rule in one place (pure).

A name is left alone when any component of its path matches an ignore pattern
(case-insensitive), when it is one of watcherd's own temporaries, or when it has no
image suffix. An image suffix watcherd does not decode (``UNSUPPORTED_SUFFIXES``) is
not silently skipped: the file is reported as an error, so a person sees why it stays.
Components count as well as the file name, so a hidden folder such as ``.Trash-1000``
hides everything in it.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from pathlib import PurePosixPath

# Our own temporaries start with this; they are hidden, so every default ignore list
# skips them, and the watcher refuses them even if a user's list does not.
TEMP_PREFIX = ".watcherd-tmp-"

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp", ".dib", ".tif", ".tiff"}
    | {".heic", ".heif", ".avif"}
)

# Pictures people keep that watcherd cannot decode: JPEG XL, layered editor files,
# vector drawings, JPEG 2000, HDR and camera raw.
UNSUPPORTED_SUFFIXES = frozenset(
    {".jxl", ".psd", ".psb", ".xcf", ".svg", ".svgz", ".jp2", ".j2k", ".exr", ".hdr"}
    | {".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2", ".pef"}
    | {".srw", ".x3f", ".3fr", ".erf", ".kdc", ".mrw", ".iiq"}
)


@functools.lru_cache(maxsize=64)
def ignore_pattern(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """All ignore patterns (and our temporaries) as one regex, to match lower-cased names.

    One compiled alternation costs a fraction of ten fnmatch calls per name, which
    matters when a scan looks at every file of a large tree.
    """
    parts = [re.escape(TEMP_PREFIX) + ".*", *(fnmatch.translate(p.lower()) for p in patterns)]
    return re.compile("|".join(f"(?:{p})" for p in parts), re.DOTALL)


def is_ignored(rel_parts: tuple[str, ...], patterns: tuple[str, ...]) -> bool:
    """True when any path component matches an ignore pattern (case-insensitive)."""
    test = ignore_pattern(patterns).match
    return any(test(part.lower()) for part in rel_parts)


def has_image_suffix(name: str) -> bool:
    """True for names that look like an image we may decode."""
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def unsupported_format(name: str) -> str | None:
    """The error reason for a picture watcherd cannot decode (``None`` for any other name)."""
    suffix = PurePosixPath(name).suffix.lower()
    return f"unsupported format ({suffix})" if suffix in UNSUPPORTED_SUFFIXES else None
