"""The review queue as the page shows it: each item's sides, what differs, the keeper (reads only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from watcherd import queries
from watcherd.catalog import CatalogReader, open_for_reading
from watcherd.documents import Collision, NearGroup
from watcherd.folders import Folders
from watcherd.keeper import Facts, shown_date, suggest
from watcherd.library import Library
from watcherd.naming import merge_tags, parse_canonical
from watcherd.places import Places
from watcherd.records import CollisionRecord, ImageRecord

ROWS = ("pixels", "file size", "format", "date taken", "file name", "tags", "where")


@dataclass(frozen=True)
class Side:
    """One picture of an item: where it is and the rows of the diff."""

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
    keeper: int = 0  # the index of the side pre-selected to keep (``keeper.suggest``); -1: none (a burst)
    suggested: str | None = None  # the decision that keeps it, when one does (keep-existing/keep-newcomer)


def _rows(
    facts: Facts, chunks: dict[str, str], original: str | None, filename: str | None, tags: str, where: str | None
) -> dict[str, str]:
    """The diff's rows for one side, in ``ROWS`` order."""
    width, height = chunks.get("width"), chunks.get("height")
    return {
        "pixels": f"{width} x {height}" if width and height else "?",
        "file size": f"{facts.file_size:,} bytes" if facts.file_size is not None else "?",
        "format": chunks.get("format") or Path(original or "").suffix.lstrip(".").upper() or "?",
        "date taken": shown_date(facts),
        "file name": filename or chunks.get("original_filename") or chunks.get("filename") or "?",
        "tags": tags or "-",
        "where": where or "?",
    }


def _differs(sides: list[Side]) -> set[str]:
    return {key for key in ROWS if len({s.rows.get(key) for s in sides}) > 1}


KEEPS = ("keep-existing", "keep-newcomer")  # what keeps a collision's side 0 and side 1


class Queue:
    """Builds the items from one read of the catalog."""

    def __init__(self, library: Library, catalog: CatalogReader) -> None:
        assert library.cfg.root is not None
        self.root = Path(library.cfg.root)
        self.places = Places(library.cfg)
        self.folders = Folders(self.places)  # one walk of the tree at most, for every item
        self.catalog = catalog

    def would_get(self, c: CollisionRecord) -> list[str]:
        """The tags the newcomer would get: those of the folder it was dropped in (the top: none)."""
        parsed = parse_canonical(c.name)
        size_tag = parsed.size_tag if parsed else ""
        new = c.newcomer
        folder = self.places.tag_folder(self.folders.locate(new.dropped, new.dropped_id, source=new.source))
        return merge_tags([], folder, size_tag)

    def image_side(
        self, label: str, rec: ImageRecord | None, thumbnail: str | None, original: str | None
    ) -> tuple[Side, Facts]:
        """A side that is a catalogued image (a collision's existing side, a near group's member)."""
        chunks = queries.thumbnail_chunks(self.root, thumbnail)
        pixels = rec.width * rec.height if rec else None
        facts = queries.side_facts(self.root, thumbnail, original, chunks, pixels)
        if rec is not None:
            chunks = {"width": str(rec.width), "height": str(rec.height), **chunks}
            if rec.format and "format" not in chunks:
                chunks["format"] = rec.format
        filename = rec.original_filename if rec else None
        tags = ", ".join(rec.tags) if rec else ""
        return Side(label, thumbnail, original, _rows(facts, chunks, original, filename, tags, thumbnail)), facts

    def collision(self, doc: Collision, c: CollisionRecord) -> Item:
        """Existing beside newcomer; the keeper as ``dupes --json`` suggests it."""
        existing = self.catalog.image(c.name)
        c = queries.as_now(self.catalog, c)
        a, _ = self.image_side("existing", existing, c.existing.thumbnail, c.existing.original)
        (_, facts), (_, chunks) = queries.collision_facts(self.root, c)
        tags = "would get: " + ", ".join(self.would_get(c))
        rows = _rows(facts, chunks, c.newcomer.original, c.newcomer.filename, tags, c.newcomer.thumbnail)
        b = Side("newcomer", c.newcomer.thumbnail, c.newcomer.original, rows)
        sides = [a, b]
        keeper = int(doc["suggested"] == "newcomer")
        return Item(doc["id"], doc["kind"], doc["name"], sides, _differs(sides), keeper, KEEPS[keeper])

    def near(self, doc: NearGroup) -> Item:
        """Every member side by side; the keeper by the same rule.

        keep-existing keeps the first catalogued member, keep-newcomer the last; the
        others merge into it. A keeper in between is marked, but no key keeps it.
        """
        role = {doc["existing"]: "keep-existing", doc["newcomer"]: "keep-newcomer"}
        shown_role = {"keep-existing": " (existing)", "keep-newcomer": " (newcomer)"}
        sides: list[Side] = []
        facts: list[Facts] = []
        for name, path in zip(doc["names"], doc["paths"], strict=False):
            rec = self.catalog.image(name)
            label = name + shown_role.get(role.get(name, ""), "")
            side, f = self.image_side(label, rec, path, rec.original if rec else None)
            sides.append(side)
            facts.append(f)
        if doc["kind"] == "burst":  # frames of one burst: none is pre-selected for merging
            return Item(doc["id"], "burst", doc["name"], sides, _differs(sides), -1, None)
        keeper = suggest(facts) if facts else 0
        suggested = role.get(doc["names"][keeper]) if facts else None
        return Item(doc["id"], "near", doc["name"], sides, _differs(sides), keeper, suggested)


def review_items(library: Library) -> list[Item]:
    """Undecided collisions, then near groups, as review items."""
    docs = library.dupes(queries.DEFAULT_DISTANCE)
    catalog = open_for_reading(library.cfg)
    try:
        queue = Queue(library, catalog)
        records = {c.id: c for c in catalog.collisions()}
        items: list[Item] = []
        for doc in docs:
            if doc["kind"] == "near" or doc["kind"] == "burst":
                items.append(queue.near(doc))
            elif doc["id"] in records:
                items.append(queue.collision(doc, records[doc["id"]]))
        return items
    finally:
        catalog.close()


def originals_of(library: Library, names: list[str]) -> dict[str, str]:
    """Where each named image's original is (relative to ROOT), for those that have one."""
    catalog = open_for_reading(library.cfg)
    try:
        records = [catalog.image(name) for name in names]
        return {r.name: r.original for r in records if r is not None and r.original}
    finally:
        catalog.close()
