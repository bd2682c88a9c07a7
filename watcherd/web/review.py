"""The review queue as the page shows it: each collision's two sides and what differs (pure reads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from watcherd import queries
from watcherd.documents import CollisionSide
from watcherd.errors import WatcherdError
from watcherd.library import Library


@dataclass(frozen=True)
class Side:
    """One picture of a pair: where it is and what the diff shows."""

    label: str
    thumbnail: str | None
    original: str | None
    rows: dict[str, str]


@dataclass(frozen=True)
class Item:
    """One undecided collision (``kind`` exact/perceptual) or near group (``kind`` near)."""

    id: str
    kind: str
    name: str
    sides: list[Side]
    differs: set[str] = field(default_factory=set)
    keeper: int = 0  # the index of the side pre-selected to keep


def _size(root: Path, rel: str | None) -> int | None:
    if rel is None:
        return None
    try:
        return (root / rel).stat().st_size
    except OSError:
        return None


def _side(root: Path, label: str, doc: CollisionSide, filename: str | None, tags: list[str]) -> Side:
    size = _size(root, doc["original"])
    rows = {
        "file name": filename or "",
        "file size": f"{size:,} bytes" if size is not None else "?",
        "format": Path(doc["original"] or "").suffix.lstrip(".").upper(),
        "tags": ", ".join(tags) or "-",
        "where": doc["thumbnail"] or "",
    }
    return Side(label, doc["thumbnail"], doc["original"], rows)


def review_items(library: Library, root: Path) -> list[Item]:
    """Undecided collisions, then near groups, as review items."""
    items: list[Item] = []
    for doc in library.dupes(queries.DEFAULT_DISTANCE):
        if doc["kind"] == "near":
            # keep-existing keeps the first catalogued image, keep-newcomer the last; the others merge into it
            role = {doc["existing"]: " (existing)", doc["newcomer"]: " (newcomer)"}
            pairs = zip(doc["names"], doc["paths"], strict=False)
            sides = [Side(name + role.get(name, ""), path, path, {"where": path}) for name, path in pairs]
            items.append(Item(doc["id"], "near", doc["name"], sides))
            continue
        try:
            existing_tags = library.image(doc["name"])["tags"]
        except WatcherdError:
            existing_tags = []
        a = _side(root, "existing", doc["existing"], None, existing_tags)
        b = _side(root, "newcomer", doc["newcomer"], doc["newcomer"]["filename"], [])
        differs = {k for k in a.rows if a.rows[k] != b.rows[k]}
        # Same name means the same pixel size; the larger file is likelier the better copy.
        keeper = 1 if (_size(root, b.original) or 0) > (_size(root, a.original) or 0) else 0
        items.append(Item(doc["id"], doc["kind"], doc["name"], [a, b], differs, keeper))
    return items
