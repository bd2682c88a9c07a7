"""Keywords and tags, both ways (pure): what a photo's keywords give as tags, and the keyword
lists an image's tags give to photo managers.

In: a photo keyworded in Lightroom, digiKam or darktable carries its keywords flat (XMP
``dc:subject``, IPTC Keywords) and as hierarchies (``digiKam:TagsList`` spelled
``Places/Paris``, ``lr:hierarchicalSubject`` spelled ``Places|Paris``). Each keyword is
cut at ``/`` and ``|`` into its levels and every level is a tag, so ``Places|Paris``
gives ``Places`` and ``Paris``, as the folder ``Places/Paris`` would. darktable's own
bookkeeping (``darktable|format|jpg``) is not a keyword anyone chose and is left out.

Out: watcherd's tags are flat folder names that accumulate, with no hierarchy of their
own. The hierarchy written back is the one the image's folders spell now: the folder
``cats/orange`` gives ``cats|orange`` (``cats/orange`` in digiKam's list) while both are
still tags, and every other tag is a keyword of its own. The ``WxH`` size tag is never
written: a photo manager shows the size itself, and a keyword per size would bury the
ones people chose.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A photo may carry at most this many keywords into the catalog, each at most this long:
# other people's bytes must not grow a record without bound.
MAX_KEYWORDS = 500
MAX_KEYWORD = 255

_LEVELS = re.compile(r"[/|]")
_SIZE_TAG = re.compile(r"^\d+x\d+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Hierarchies a tool keeps for itself, not keywords a person chose (first level, case-insensitive).
_BOOKKEEPING = frozenset({"darktable"})
# IPTC's coded character set (record 1, dataset 90) for UTF-8: ESC % G.
IPTC_UTF8 = b"\x1b%G"


def tag_of(level: str) -> str | None:
    """One level of a keyword as a tag: NFC, trimmed, without control characters; None if nothing is left
    (or it would read as a size tag, which every image carries for itself)."""
    text = unicodedata.normalize("NFC", _CONTROL.sub("", level)).strip()
    if not text or text in (".", "..") or _SIZE_TAG.match(text):
        return None
    return text[:MAX_KEYWORD]


def tags_from_keywords(keywords: Iterable[str]) -> list[str]:
    """Tags given by keywords (flat or hierarchical), in order, each once, at most MAX_KEYWORDS."""
    return read_keywords(keywords)[0]


def read_keywords(keywords: Iterable[str]) -> tuple[list[str], list[str]]:
    """Tags given by keywords (flat or hierarchical), in order, each once, at most MAX_KEYWORDS; and
    the hierarchies among them, each spelled ``a|b`` with its levels as tags (so they are written
    back as hierarchies, not as loose keywords)."""
    tags: list[str] = []
    paths: list[str] = []
    for keyword in keywords:
        levels = _LEVELS.split(keyword)
        if len(levels) > 1 and levels[0].strip().lower() in _BOOKKEEPING:
            continue
        chain = [t for t in (tag_of(level) for level in levels) if t is not None]
        if len(chain) > 1 and "|".join(chain) not in paths and len(paths) < MAX_KEYWORDS:
            paths.append("|".join(chain))
        for tag in chain:
            if tag not in tags and len(tags) < MAX_KEYWORDS:
                tags.append(tag)
    return tags, paths


def iptc_keywords(values: Sequence[bytes], charset: bytes | None) -> list[str]:
    """IPTC Keywords (record 2, dataset 25) as text: UTF-8 when the record says so (or the bytes
    are valid UTF-8, as most tools write them today), else Latin-1 (cp1252), IPTC's old default."""
    out = []
    for raw in values:
        if charset == IPTC_UTF8:
            out.append(raw.decode("utf-8", "replace"))
            continue
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(raw.decode("cp1252", "replace"))
    return out


@dataclass(frozen=True)
class KeywordLists:
    """The three keyword lists a sidecar carries: flat, digiKam's (``a/b``) and Lightroom's (``a|b``)."""

    subject: tuple[str, ...] = ()
    tags_list: tuple[str, ...] = ()
    hierarchical: tuple[str, ...] = ()


def keyword_lists(
    tags: Sequence[str], size_tag: str, folders: Iterable[Sequence[str]], paths: Iterable[str] = ()
) -> KeywordLists:
    """The keyword lists of an image with ``tags`` whose thumbnail is in ``folders``.

    ``folders``: the folder names, top first, of each place the thumbnail is in (relative
    to the thumbs tree; the last place known for a missing image); ``paths``: the
    hierarchies the photo's own keywords spelled (``a|b``). Each is a hierarchy of the tags
    it still gives (an untagged or renamed level drops out); every other tag stands alone.
    Entries follow the order of their first tag.
    """
    flat = [t for t in tags if t != size_tag]
    chains: list[tuple[str, ...]] = []
    for folder in [*folders, *(p.split("|") for p in paths)]:
        chain: list[str] = []
        for name in folder:
            tag = unicodedata.normalize("NFC", name)
            if tag in flat and tag not in chain:
                chain.append(tag)
        if len(chain) > 1 and tuple(chain) not in chains:
            chains.append(tuple(chain))
    covered = {t for chain in chains for t in chain}
    entries = chains + [(t,) for t in flat if t not in covered]
    entries.sort(key=lambda e: flat.index(e[0]))
    return KeywordLists(
        subject=tuple(flat),
        tags_list=tuple("/".join(e) for e in entries),
        hierarchical=tuple("|".join(e) for e in entries),
    )


def xattr_value(tags: Sequence[str], size_tag: str) -> str:
    """``user.xdg.tags``: the tags but the size tag, comma-separated (the freedesktop convention)."""
    return ",".join(t for t in tags if t != size_tag)


def xattr_tags(value: str) -> list[str]:
    """The tags in a ``user.xdg.tags`` value."""
    return [t for t in value.split(",") if t]
