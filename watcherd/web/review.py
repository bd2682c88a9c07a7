"""The review queue as the page shows it: each item's sides, what differs, the keeper and its plan (reads only)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from watcherd.catalog import CatalogReader, open_for_reading
from watcherd.commands import duplicates
from watcherd.commands.library import Library
from watcherd.core.collisionrecords import CollisionRecord
from watcherd.core.documents import Collision, NearGroup
from watcherd.core.keeper import choose
from watcherd.core.naming import merge_tags, parse_canonical
from watcherd.core.nearpairs import DEFAULT_DISTANCE, Member, near_id
from watcherd.core.places import Places
from watcherd.core.records import ImageRecord
from watcherd.decode.facts import collision_facts, image_facts
from watcherd.fs.folders import Folders
from watcherd.web.sides import Known, Side, differing, make_side, rows_shown

KEEPS = ("keep-existing", "keep-newcomer")  # what keeps a collision's side 0 and side 1


@dataclass(frozen=True)
class Item:
    """One undecided collision (``kind`` exact/perceptual) or near group (``kind`` near)."""

    id: str
    kind: str
    name: str
    sides: list[Side]
    differs: set[str] = field(default_factory=set)
    keeper: int = 0  # the index of the side the keeper rule keeps; -1: none (a burst is never pre-selected)
    suggested: str | None = None  # the one decision that keeps it, when one does (keep-existing/keep-newcomer)
    distance: int = 0  # Hamming distance between the hashes (a near group: the largest)
    plan: list[dict[str, str]] = field(default_factory=list)  # the decisions that keep the keeper
    rows: list[str] = field(default_factory=list)  # the facts shown

    @property
    def reasons(self) -> list[str]:
        """Why the keeper is kept, and why the others lose, as "label: reason"."""
        return [f"{s.label}: {r}" for s in self.sides for r in s.reasons]

    @property
    def plan_json(self) -> str:
        """The plan as the page's batch and ``s`` key send it."""
        return json.dumps(self.plan)


def merge_plan(members: list[Side], keeper: int, group: str) -> list[dict[str, str]]:
    """The decisions that keep ``members[keeper]`` and merge every other member into it.

    The group's first catalogued member is what ``keep-existing`` keeps and its last what
    ``keep-newcomer`` keeps: one decision on the group's id. A keeper in between is kept by
    one decision per other member, on the pair (whose first catalogued is its existing)."""
    kept = members[keeper]
    if kept.order == 0:
        return [{"id": group, "decision": "keep-existing"}]
    if kept.order == max(m.order for m in members):
        return [{"id": group, "decision": "keep-newcomer"}]
    return [
        {"id": near_id([kept.name or "", m.name or ""]), "decision": KEEPS[int(kept.order > m.order)]}
        for m in members
        if m is not kept
    ]


def hamming(a: str | None, b: str | None) -> int | None:
    """The number of differing bits of two hex hashes of one length, else None."""
    if not a or not b or len(a) != len(b):
        return None
    try:
        return (int(a, 16) ^ int(b, 16)).bit_count()
    except ValueError:
        return None


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

    @staticmethod
    def _known(rec: ImageRecord | None, where: str | None) -> Known:
        if rec is None:
            return Known(where=where)
        return Known(rec.width, rec.height, rec.format, rec.original_filename, ", ".join(rec.tags), where)

    def collision(self, doc: Collision, c: CollisionRecord) -> Item:
        """Existing beside newcomer; the keeper as ``dupes --json`` suggests it."""
        existing = self.catalog.existing_holder(c)
        c = duplicates.as_now(self.catalog, c)
        (fa, fb), (ca, cb) = collision_facts(self.root, c)
        choice = choose([fa, fb])
        ex, new = c.existing, c.newcomer
        a = make_side(
            "existing", "existing", fa, ca, (ex.thumbnail, ex.original, ex.sha256), self._known(existing, ex.thumbnail)
        )
        tags = "would get: " + ", ".join(self.would_get(c))
        known_b = Known(a.width, a.height, None, new.filename, tags, new.thumbnail)
        b = make_side("newcomer", "newcomer", fb, cb, (new.thumbnail, new.original, new.sha256), known_b)
        sides = [dataclasses.replace(s, reasons=r) for s, r in zip((a, b), choice.reasons, strict=True)]
        keeper = choice.keep
        plan = [{"id": doc["id"], "decision": KEEPS[keeper]}]
        return Item(
            doc["id"],
            doc["kind"],
            doc["name"],
            sides,
            differing(sides),
            keeper,
            KEEPS[keeper],
            0,
            plan,
            rows_shown(sides),
        )

    def near(self, doc: NearGroup) -> Item:
        """Every member, in catalog order; the keeper by the same rule, each member's distance to it."""
        role = {doc["existing"]: "existing", doc["newcomer"]: "newcomer"}
        records = self.catalog.images_named(doc["names"])
        where = dict(zip(doc["names"], doc["paths"], strict=False))
        members = sorted((r for r in records.values()), key=lambda r: (r.first_seen, r.name))
        sides: list[Side] = []
        facts = []
        for order, rec in enumerate(members):
            f, chunks = image_facts(self.root, Member.of(rec), where.get(rec.name) or rec.path)
            label = rec.name + (f" ({role[rec.name]})" if rec.name in role else "")
            files = (where.get(rec.name), rec.original, rec.sha256)
            side = make_side(
                label, role.get(rec.name, "member"), f, chunks, files, self._known(rec, files[0]), rec.name
            )
            sides.append(dataclasses.replace(side, order=order, hash=rec.hash))
            facts.append(f)
        if not sides:
            return Item(doc["id"], doc["kind"], doc["name"], [], distance=doc["max_distance"])
        if doc["kind"] == "burst":  # frames of one burst: none is pre-selected for merging, nothing planned
            sides = [dataclasses.replace(s, distance=hamming(s.hash, sides[0].hash)) for s in sides]
            return Item(
                doc["id"], "burst", doc["name"], sides, differing(sides), -1, None, doc["max_distance"], [],
                rows_shown(sides),
            )  # fmt: skip
        choice = choose(facts)
        keeper = choice.keep
        sides = [
            dataclasses.replace(s, reasons=r, distance=hamming(s.hash, sides[keeper].hash))
            for s, r in zip(sides, choice.reasons, strict=True)
        ]
        kept = sides[keeper].role
        suggested = f"keep-{kept}" if kept in ("existing", "newcomer") else None
        plan = merge_plan(sides, keeper, doc["id"])
        return Item(
            doc["id"],
            "near",
            doc["name"],
            sides,
            differing(sides),
            keeper,
            suggested,
            doc["max_distance"],
            plan,
            rows_shown(sides),
        )


def review_items(library: Library, only: set[str] | None = None) -> list[Item]:
    """Undecided collisions, then near groups, as review items (with ``only``: those ids)."""
    docs = library.dupes(DEFAULT_DISTANCE)
    catalog = open_for_reading(library.cfg)
    try:
        queue = Queue(library, catalog)
        records = {c.id: c for c in catalog.collisions()}
        items: list[Item] = []
        for doc in docs:
            if only is not None and doc["id"] not in only:
                continue
            if doc["kind"] == "near" or doc["kind"] == "burst":
                items.append(queue.near(doc))
            elif doc["id"] in records:
                items.append(queue.collision(doc, records[doc["id"]]))
        return items
    finally:
        catalog.close()


def originals_of(library: Library, names: list[str]) -> dict[str, ImageRecord]:
    """The records of the named images (for their originals, sizes and tags), those catalogued."""
    catalog = open_for_reading(library.cfg)
    try:
        return catalog.images_named(names)
    finally:
        catalog.close()
