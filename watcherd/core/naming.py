"""Names and tags: pure functions over strings, no filesystem access.

A thumbnail's name is ``{W}x{H}_{HASH}_.png``. Everything that needs to build or parse
such a name, derive tags from a folder, or show a file name safely in one log line
goes through here. Which files are watcherd's business at all is ``filters``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath

CANONICAL_RE = re.compile(
    r"^(?P<w>[1-9][0-9]{0,5})x(?P<h>[1-9][0-9]{0,5})_(?P<hash>[0-9a-f]{4,256})_"
    r"(?:~(?P<variant>[0-9a-f]{12})(?:~(?P<n>[2-9]|[1-9][0-9]{1,5}))?)?\.png$"
)
HASH_RE = re.compile(r"^[0-9a-f]{4,256}$")


@dataclass(frozen=True)
class Canonical:
    """The parts of a canonical thumbnail name."""

    width: int
    height: int
    hash: str
    variant: str | None = None
    n: int | None = None

    @property
    def name(self) -> str:
        """The file name, ``{W}x{H}_{HASH}_.png`` (``…_~{SHA12}.png`` for a variant, ``…_~{SHA12}~{n}.png``
        for the n-th image of the same bytes decided distinct)."""
        base = canonical_name(self.width, self.height, self.hash)
        if self.variant is None:
            return base
        variant = variant_name(base, self.variant)
        return variant if self.n is None else numbered(variant, self.n)

    @property
    def plain(self) -> str:
        """The name without its variant: ``{W}x{H}_{HASH}_.png``."""
        return canonical_name(self.width, self.height, self.hash)

    @property
    def size_tag(self) -> str:
        """The ``WxH`` tag every image carries."""
        return f"{self.width}x{self.height}"


def canonical_name(width: int, height: int, hash_hex: str) -> str:
    """Build the thumbnail name for an image of ``width`` x ``height`` with ``hash_hex``."""
    return f"{width}x{height}_{hash_hex}_.png"


def parse_canonical(name: str) -> Canonical | None:
    """Return the parts of a canonical name, or None for any other name."""
    m = CANONICAL_RE.match(name)
    if m is None:
        return None
    return Canonical(int(m["w"]), int(m["h"]), m["hash"], m["variant"], int(m["n"]) if m["n"] else None)


def names_bytes(name: str, plain: str, sha256: str) -> bool:
    """Is ``name`` a name the image ``plain`` of bytes ``sha256`` may have: the plain name, or a
    variant of it for those bytes (``~{SHA12}``, or ``~{SHA12}~{n}``: the collision ``~{SHA12}~{n}``
    decided distinct takes its own id as its name)."""
    if name == plain:
        return True
    parsed = parse_canonical(name)
    return parsed is not None and parsed.plain == plain and parsed.variant == sha256[:12]


def variant_name(name: str, sha256: str) -> str:
    """The name a low-information image takes when its plain name belongs to other bytes.

    Flat and blank pictures all hash alike; giving each distinct file its own name
    (the first 12 hex digits of its sha256) keeps them from being reported as
    duplicates of one another.
    """
    return f"{name[: -len('.png')]}~{sha256[:12]}.png"


def numbered(name: str, n: int) -> str:
    """``name`` with ``~n`` before its suffix, for a second file that must not replace the first."""
    p = PurePosixPath(name)
    return f"{p.stem}~{n}{p.suffix}"


def tags_for(rel_dir: PurePosixPath) -> list[str]:
    """Tags given by a folder path relative to the thumbs tree.

    Every folder name counts, except purely numeric ones (date or counter folders
    say nothing about the picture). Names are NFC-normalized so the same folder
    typed on macOS and Linux yields one tag.
    """
    tags = []
    for part in rel_dir.parts:
        if part in ("", ".", "/") or part.isdigit():
            continue
        tag = unicodedata.normalize("NFC", part)
        if tag not in tags:
            tags.append(tag)
    return tags


def merge_tags(old: list[str], folder: PurePosixPath, size_tag: str) -> list[str]:
    """``old`` plus the tags of ``folder`` and the size tag, in order, each once (tags accumulate)."""
    tags = list(old)
    for tag in [*tags_for(folder), size_tag]:
        if tag not in tags:
            tags.append(tag)
    return tags


def shown(text: str) -> str:
    """Text safe for one log line: control characters and undecodable bytes escaped.

    File names may contain newlines or ANSI escapes; printed raw they could forge
    log lines, so every non-printable character becomes a visible escape.
    """
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # surrogateescape'd byte from os.fsdecode
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def safe_text(value: str) -> str:
    """Text that encodes as UTF-8: undecodable name bytes become visible escapes."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def number(text: str) -> int | None:
    """The whole number ``text`` is written as in ASCII digits (a name, a chunk, a query), else None.

    Not ``str.isdigit``: it says yes to ``²`` and ``①``, which ``int`` refuses."""
    return int(text) if text.isascii() and text.isdigit() else None
