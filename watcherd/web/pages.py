"""What /tags and /search show: folder tags apart from size tags, and cards of pictures (reads only)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from watcherd.catalog.finding import TagQuery
from watcherd.commands.library import Library
from watcherd.core import naming
from watcherd.core.documents import SimilarHit
from watcherd.web.review import originals_of
from watcherd.web.sides import file_url, preview_url

SIZE_TAG = re.compile(r"^\d+x\d+$")
PER_PAGE = 120
BITS = 64


@dataclass(frozen=True)
class Card:
    """One picture in a grid: a small preview, its tags, a link to its original."""

    name: str
    small: str
    opened: str
    tags: list[str]
    width: int | None = None
    height: int | None = None
    distance: int | None = None
    crop: bool = False  # found as a crop of the query (or the query as a crop of it): its distance is the windows'

    @property
    def similarity(self) -> int | None:
        """How alike, in percent of the hash's bits (64) that agree."""
        return None if self.distance is None else round(100 * (BITS - self.distance) / BITS)


def _cards(library: Library, found: list[tuple[str, str, int | None]]) -> list[Card]:
    """Cards for (name, thumbnail path, distance) of catalogued images."""
    records = originals_of(library, [name for name, _, _ in found])
    cards = []
    for name, path, distance in found:
        rec = records.get(name)
        original = rec.original if rec is not None else None
        small = preview_url(original, rec.sha256 if rec else None, "small") if original else file_url(path)
        tags = [t for t in (rec.tags if rec else []) if not SIZE_TAG.match(t)]
        width, height = (rec.width, rec.height) if rec else (None, None)
        cards.append(Card(name, small, file_url(original or path), tags, width, height, distance))
    return cards


def tags_context(library: Library, chosen: list[str], size: str, q: str, page: str) -> dict[str, Any]:
    """Folder tags (with counts, filtered by ``q``), size tags apart, and the chosen ones' pictures."""
    counts = library.tags()
    folders = {t: n for t, n in counts.items() if not SIZE_TAG.match(t)}
    sizes = {t: n for t, n in counts.items() if SIZE_TAG.match(t)}
    wanted = tuple(dict.fromkeys([*chosen, *([size] if size else [])]))
    query = TagQuery(all_of=wanted)
    total = library.find_count(query) if wanted else 0
    number = naming.number(page) or 1  # not a number, or 0: the first page
    # Only the page shown is read (``find`` walks the smallest tag's index and stops).
    shown = library.find(query, limit=PER_PAGE, offset=(number - 1) * PER_PAGE) if wanted else []
    return {
        "folders": folders,
        "sizes": sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])),
        "chosen": chosen,
        "size": size,
        "q": q,
        "total": total,
        "cards": _cards(library, [(h["name"], h["path"], None) for h in shown]),
        "page": number,
        "pages": max(1, -(-total // PER_PAGE)),
    }


def search_context(
    library: Library,
    hits: list[SimilarHit] | None,
    error: str | None,
    query: str,
    distance: str,
    uploaded: dict[str, str] | None,
) -> dict[str, Any]:
    """The search form, the picture searched with, and its matches as cards (nearest first)."""
    cards = _cards(library, [(h["name"], h["path"], h["distance"]) for h in hits]) if hits else []
    cropped = {h["name"] for h in hits or [] if h.get("match") == "crop"}
    cards = [dataclasses.replace(c, crop=True) if c.name in cropped else c for c in cards]
    return {
        "hits": hits,
        "cards": cards,
        "error": error,
        "hash": query,
        "distance": distance,
        "uploaded": uploaded,
    }
