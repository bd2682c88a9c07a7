"""``watcherd check``'s verdicts: given the facts about a library, which problems it has (pure).

``checkfacts`` gathers the facts (the catalog in one read transaction, the tree, the
export and the near index); this module only compares them, so every verdict is
tested with facts built as values. Each problem has a stable code, the path it is
about, a short explanation and whether ``--repair`` mends it (``repair`` does, through
the one writer). With a live writer, what it may be doing right now (moves under way,
journaled steps, an export not yet due) is a note, not a problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from watcherd.check.problems import Code, Image, Problem
from watcherd.check.stores import ExportFacts, NearFacts, export_problems, near_problems
from watcherd.core.collisionrecords import CollisionRecord
from watcherd.core.naming import names_bytes, parse_canonical
from watcherd.core.nearpairs import NearRecord
from watcherd.decide.collisions import LABEL_RE, orphan_label
from watcherd.filing.adopt import Maker

__all__ = ["Code", "Facts", "Ident", "Image", "Problem", "Verdict", "verdicts"]

# Kinds a live writer may be in the middle of: notes while it runs, problems otherwise.
IN_FLIGHT = frozenset({Code.UNFINISHED_MOVE, Code.PENDING_STEPS, Code.STALE_EXPORT, Code.UNFINISHED_REBUILD})
PENDING = frozenset({Code.UNFINISHED_MOVE, Code.PENDING_STEPS})


@dataclass(frozen=True)
class Ident:
    """What a PNG's text chunks say about it (``adopt.examine``): who made it, of which image."""

    maker: Maker
    name: str  # the canonical name its chunks give (before any low-information variant)
    sha256: str | None  # the original's sha256 (the notebook wrote none)


@dataclass
class Facts:
    """Everything the verdicts look at; paths are relative to ROOT, as the catalog keeps them."""

    root: str
    live: bool = False  # a live writer (daemon or scan) holds the lease
    integrity: list[str] = field(default_factory=list)  # what PRAGMA integrity_check said, when not "ok"
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)  # (table, key, why)
    images: dict[str, Image] = field(default_factory=dict)
    collisions: list[CollisionRecord] = field(default_factory=list)
    near: list[NearRecord] = field(default_factory=list)
    steps: int = 0  # journaled thumbnail steps not yet carried out (meta decision_steps)
    rebuilding: bool = False  # the catalog is being made from the tree and the export (meta rebuilding)
    in_flight: frozenset[str] = frozenset()  # the paths those steps remove, publish or rename
    thumbnails: frozenset[str] = frozenset()  # canonical files in the thumbs tree (not _collisions/)
    unreachable: Mapping[str, str] = field(default_factory=dict)  # places that cannot be looked up -> why
    idents: Mapping[str, Ident | None] = field(default_factory=dict)  # chunks of the files looked into
    collision_files: frozenset[str] = frozenset()  # every file under thumbs/_collisions/
    collision_originals: frozenset[str] = frozenset()  # file stems in originals/_collisions/
    existing: frozenset[str] = frozenset()  # the originals (and collision originals) that exist
    temporaries: tuple[str, ...] | None = None  # None: not looked for (a live writer may be writing them)
    data: Mapping[str, str] = field(default_factory=dict)  # original -> its sha256 (--read-data)
    export: ExportFacts | None = None
    near_index: NearFacts | None = None


@dataclass
class Verdict:
    """The problems found, the notes (in flight while a writer runs) and what was checked."""

    problems: list[Problem]
    notes: list[Problem]
    checked: dict[str, int]

    @property
    def sound(self) -> bool:
        """No problem at all (notes do not count)."""
        return not self.problems


def verdicts(facts: Facts) -> Verdict:
    """Every problem the facts show, sorted by code and path."""
    found: list[Problem] = []
    found += _catalog(facts)
    found += _places(facts)
    found += _originals(facts)
    found += _pending(facts)
    found += _collisions(facts)
    left = "a temporary watcherd left behind; --repair removes it"
    found += [Problem(Code.TEMPORARY, p, left, True) for p in facts.temporaries or ()]
    if facts.rebuilding:  # the export is kept as it is on purpose: it is what the rebuild goes on from
        why = "a rebuild stopped before the catalog was whole; 'watcherd scan' (or the daemon, started) goes on with it"
        found.append(Problem(Code.UNFINISHED_REBUILD, "", why))
    elif facts.export is not None:
        found += export_problems(facts.export)
    found += near_problems(facts.images, facts.near_index)
    # A file a journaled step is about to remove, publish or rename is that step's business.
    found = [p for p in found if p.code in PENDING or p.path not in facts.in_flight]
    found.sort(key=lambda p: (p.code.value, p.path))
    notes = [p for p in found if facts.live and p.code in IN_FLIGHT]
    problems = [p for p in found if not (facts.live and p.code in IN_FLIGHT)]
    return Verdict(problems, notes, _counts(facts))


def _counts(facts: Facts) -> dict[str, int]:
    present = [i for i in facts.images.values() if i.present]
    return {
        "images": len(facts.images),
        "missing": len(facts.images) - len(present),
        "places": sum(len(i.places) for i in present),
        "thumbnails": len(facts.thumbnails),
        "originals": sum(1 for i in facts.images.values() if i.original),
        "collisions": len(facts.collisions),
        "collision_files": len(facts.collision_files),
        "near_decisions": len(facts.near),
        "read": len(facts.data),
    }


def _catalog(facts: Facts) -> list[Problem]:
    out = [Problem(Code.CATALOG_DAMAGED, "", f"PRAGMA integrity_check: {line}") for line in facts.integrity]
    out += [
        Problem(Code.UNREADABLE_RECORD, key, f"the {table} record {key!r} cannot be read: {why}")
        for table, key, why in facts.unreadable
    ]
    return out


def belongs(image: Image, ident: Ident | None) -> bool:
    """Is a file whose chunks say ``ident`` a thumbnail of ``image``?"""
    if ident is None:
        return False
    if ident.maker is Maker.NOTEBOOK:
        return ident.name == image.name  # the notebook wrote no sha256: its name is all there is
    return ident.sha256 is not None and ident.sha256 == image.sha256


def _places(facts: Facts) -> list[Problem]:
    """Places without their file, and canonical files that are no place of a present record."""
    out: list[Problem] = []
    images = facts.images
    placed = {p for i in images.values() if i.present for p in i.places}
    unplaced: dict[str, list[str]] = {}
    for rel in sorted(facts.thumbnails - placed):
        unplaced.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
    for name in sorted(images):
        image = images[name]
        candidates = unplaced.pop(name, [])
        here = [q for q in candidates if belongs(image, facts.idents.get(q))]
        if image.present:
            out += _stale(image, facts, list(here))
        else:
            out += _returned(image, here)
        for q in candidates:
            if q not in here:
                why = f"not {name}'s thumbnail (its PNG chunks say other bytes); 'watcherd scan' decides what it is"
                out.append(Problem(Code.UNRECORDED_THUMBNAIL, q, why, False, name))
    undecided = {c.newcomer.sha256: c.id for c in facts.collisions if c.decision is None and c.newcomer.sha256}
    for name, rels in sorted(unplaced.items()):
        out += [_unknown(q, name, facts.idents.get(q), undecided) for q in rels]
    return out


def _stale(image: Image, facts: Facts, here: list[str]) -> list[Problem]:
    """A present image's places that hold no file (followed to ``here`` when it went there), and its new copies."""
    out: list[Problem] = []
    name = image.name
    for place in image.places:
        if place in facts.thumbnails:
            continue
        if place in facts.unreachable:
            why = f"cannot be looked up ({facts.unreachable[place]}): out of reach, so not gone; left as it is"
            out.append(Problem(Code.UNREACHABLE_PLACE, place, why, False, name))
        elif here:
            to = here.pop(0)
            out.append(Problem(Code.STALE_PLACE, place, f"moved to {to}; --repair follows it", True, name, to))
        else:
            rest = "its other places stay" if len(image.places) > 1 else "the image becomes missing"
            why = f"no thumbnail of {name} there or elsewhere in the tree; --repair drops this place ({rest})"
            out.append(Problem(Code.STALE_PLACE, place, why, True, name))
    copy = f"a copy of {name}; --repair records it"
    return out + [Problem(Code.UNRECORDED_THUMBNAIL, q, copy, True, name) for q in here]


def _returned(image: Image, here: list[str]) -> list[Problem]:
    """A missing image's thumbnail found in the tree again: at its last place, or elsewhere."""
    out: list[Problem] = []
    last = image.places[0] if image.places else None
    for q in here:
        if q == last:
            why = f"{image.name} is recorded missing, but its last place holds it; --repair records it present"
            out.append(Problem(Code.MISSING_BUT_THERE, q, why, True, image.name))
        else:
            why = f"{image.name} is recorded missing, but it is here; --repair records it present"
            out.append(Problem(Code.UNRECORDED_THUMBNAIL, q, why, True, image.name))
    return out


def _unknown(rel: str, name: str, ident: Ident | None, undecided: Mapping[str, str]) -> Problem:
    """A canonical file in the tree whose name no record has: adoptable, or for the scan to handle."""
    if ident is None:
        why = "no record, and not a thumbnail watcherd made or adopts; 'watcherd scan' ingests it as an image"
        return Problem(Code.UNRECORDED_THUMBNAIL, rel, why, False, name)
    if ident.sha256 is not None and ident.sha256 in undecided:
        parsed = parse_canonical(name)
        col = undecided[ident.sha256]
        if ident.maker is Maker.WATCHERD and parsed is not None and parsed.variant is not None:
            why = f"the newcomer of collision {col}, moved into the tree; --repair decides it distinct, as a scan would"
            return Problem(Code.UNRECORDED_THUMBNAIL, rel, why, True, name)
        why = f"the newcomer of collision {col}, moved into the tree; 'watcherd scan' decides it"
        return Problem(Code.UNRECORDED_THUMBNAIL, rel, why, False, name)
    if ident.maker is Maker.WATCHERD and not names_bytes(name, ident.name, ident.sha256 or ""):
        why = f"its PNG chunks name {ident.name}; 'watcherd scan' decides what it is"
        return Problem(Code.UNRECORDED_THUMBNAIL, rel, why, False, name)
    return Problem(Code.UNRECORDED_THUMBNAIL, rel, "no record; --repair adopts it from its PNG chunks", True, name)


def _originals(facts: Facts) -> list[Problem]:
    """Every original a record names is there (and, with --read-data, holds its bytes)."""
    out: list[Problem] = []
    for name in sorted(facts.images):
        image = facts.images[name]
        if image.original is None or image.moving_from:
            continue  # not known, or being filed (an unfinished move)
        if image.original not in facts.existing:
            inbox = " (it was left in the source inbox)" if image.source else ""
            out.append(Problem(Code.MISSING_ORIGINAL, image.original, f"the original of {name} is not there{inbox}"))
        else:
            out += _bytes(facts, image.original, image.sha256, f"the original of {name}")
    for col in facts.collisions:
        moving = {to for _, to in col.decision.setting_aside} if col.decision else set()
        if col.decision is not None:
            kept = [p for p in (col.decision.archived, *col.decision.again) if p and p not in moving]
            out += [
                Problem(Code.MISSING_ORIGINAL, p, f"set aside by the decision on {col.id}, but not there")
                for p in kept
                if p not in facts.existing
            ]
    for near in facts.near:
        moving = {to for _, to in near.decision.setting_aside}
        kept = [p for p in (*(m.archived for m in near.merged), *near.decision.again) if p and p not in moving]
        out += [
            Problem(Code.MISSING_ORIGINAL, p, f"set aside by the decision on {near.id}, but not there")
            for p in kept
            if p not in facts.existing
        ]
    return out


def _bytes(facts: Facts, rel: str, sha256: str | None, what: str) -> list[Problem]:
    read = facts.data.get(rel)
    if read is None or sha256 is None or read == sha256:
        return []
    if read.startswith("unreadable"):
        return [Problem(Code.CHANGED_ORIGINAL, rel, f"{what} cannot be read ({read})")]
    return [Problem(Code.CHANGED_ORIGINAL, rel, f"{what} has sha256 {read[:12]}…, its record says {sha256[:12]}…")]


def _pending(facts: Facts) -> list[Problem]:
    """Moves of originals and journaled steps that a stopped writer left unfinished."""
    fix = "; --repair finishes it"
    out = [
        Problem(Code.UNFINISHED_MOVE, i.moving_from, f"the original of {i.name} is being filed{fix}", True, i.name)
        for i in facts.images.values()
        if i.moving_from
    ]
    for col in facts.collisions:
        if col.newcomer.moving_from:
            why = f"the newcomer's original of collision {col.id} is being filed{fix}"
            out.append(Problem(Code.UNFINISHED_MOVE, col.newcomer.moving_from, why, True))
        for src, _ in col.decision.setting_aside if col.decision else []:
            why = f"being set aside by the decision on {col.id}{fix}"
            out.append(Problem(Code.UNFINISHED_MOVE, src, why, True))
    for near in facts.near:
        for src, _ in near.decision.setting_aside:
            out.append(Problem(Code.UNFINISHED_MOVE, src, f"being set aside by the decision on {near.id}{fix}", True))
    if facts.steps:
        why = f"{facts.steps} thumbnail steps of a decision are not carried out yet{fix}"
        out.append(Problem(Code.PENDING_STEPS, "", why, True))
    return out


def _collisions(facts: Facts) -> list[Problem]:
    """Every undecided collision's files are there, and every file in _collisions/ is one of them."""
    out: list[Problem] = []
    wanted: set[str] = set()
    # Newcomers' thumbnails moved into the tree (a gesture, or a distinct stopped before its commit).
    moved_in = {i.sha256 for rel, i in facts.idents.items() if i is not None and rel in facts.thumbnails}
    for col in facts.collisions:
        if col.decision is not None:
            continue
        new = col.newcomer
        if new.thumbnail:
            wanted.add(new.thumbnail)
            if new.thumbnail not in facts.collision_files and new.sha256 not in moved_in:
                why = f"the newcomer's thumbnail of collision {col.id} is gone ('watcherd scan' decides keep-existing)"
                out.append(Problem(Code.MISSING_COLLISION_FILE, new.thumbnail, why))
        if new.original and not new.moving_from:
            if new.original not in facts.existing:
                why = f"the newcomer's original of collision {col.id} is not there"
                out.append(Problem(Code.MISSING_COLLISION_FILE, new.original, why))
            else:
                out += _bytes(facts, new.original, new.sha256, f"the newcomer's original of collision {col.id}")
    for rel in sorted(facts.collision_files - wanted):
        out.append(_orphan(facts, rel))
    return out


def _orphan(facts: Facts, rel: str) -> Problem:
    """A file in _collisions/ that no undecided collision owns: watcherd's own is taken back."""
    folder, _, filename = rel.rpartition("/")
    ident = facts.idents.get(rel)
    top = folder.count("/") == 1  # directly in thumbs/_collisions/
    if not top or LABEL_RE.match(filename) is None or ident is None or ident.maker is not Maker.WATCHERD:
        return Problem(Code.ORPHAN_COLLISION_FILE, rel, "in no collision, and not watcherd's own; left as it is")
    if not orphan_label(filename, ident.sha256):
        why = "in no collision; its chunks name other bytes than its name says; left as it is"
        return Problem(Code.ORPHAN_COLLISION_FILE, rel, why)
    label = filename[: -len(".png")]
    recorded = any(c.id == label for c in facts.collisions)
    if label in facts.collision_originals and not recorded:
        why = "watcherd's own newcomer thumbnail whose collision record is lost; --repair records the collision again"
        return Problem(Code.ORPHAN_COLLISION_FILE, rel, why, True)
    why = "watcherd's own thumbnail in no collision; --repair removes it"
    return Problem(Code.ORPHAN_COLLISION_FILE, rel, why, True)
