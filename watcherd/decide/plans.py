"""Deciding what a decision or an undo does, from facts, with no I/O: the planning core.

A planner takes the records and what was looked up on disk (``DistinctFacts``: where the
newcomer's thumbnail is and the record it becomes; ``KeepFacts``: the kept image,
the newcomer's drop folder, where the originals go, the newcomer's thumbnail; ``UndoFacts``:
where the newcomer's thumbnail goes back, whether the image's thumbnail is ours, the
thumbnails made again) and returns a ``Plan``: the records to write and remove,
the decision leaving the order of decisions, the thumbnail steps to journal, and what to
carry out after the commit. It never touches a file, the catalog or the clock; a refusal
is a ``UsageError`` raised before anything changed. ``decide.applier`` carries a plan out:
one transaction, then the journal's steps and the originals' moves.

The records a planner returns are new copies; the ones it was given are left as they were.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from watcherd.core import crops
from watcherd.core.collisionrecords import CollisionRecord, Decision, Verdict, Via
from watcherd.core.errors import UsageError
from watcherd.core.exif import Exif
from watcherd.core.naming import merge_tags, number, safe_text
from watcherd.core.records import ImageRecord
from watcherd.filing import journal

__all__ = [
    "Back",
    "DistinctFacts",
    "KeepFacts",
    "Made",
    "Plan",
    "UndoFacts",
    "merged",
    "plan_distinct",
    "plan_keep",
    "plan_undo",
    "unmerged",
]


@dataclass(frozen=True)
class Back:
    """Where the newcomer's original goes back to (``originals/_collisions/…``), from where; None:
    it stays (a source file, or an original no longer there)."""

    current: str
    planned: str


@dataclass(frozen=True)
class Made:
    """A decision put last in the order of decisions (the next one ``undo`` reverts)."""

    ident: str
    via: Via
    decided: str


@dataclass
class Plan:
    """What a decision or an undo does: carried out by ``decide.applier.Applier``."""

    made: list[Made] = field(default_factory=list)
    put_images: list[ImageRecord] = field(default_factory=list)
    delete_images: list[str] = field(default_factory=list)
    put_collisions: list[CollisionRecord] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)  # ids leaving the order of decisions
    steps: list[journal.Step] = field(default_factory=list)  # thumbnail steps, journaled in the same transaction
    carry_out: list[CollisionRecord | ImageRecord] = field(default_factory=list)  # after the commit, in this order


@dataclass(frozen=True)
class UndoFacts:
    """What an undo needs to know that only the disk can tell.

    ``target``: where the newcomer's thumbnail goes back (``thumbs/_collisions/{id}.png``);
    ``target_taken``: a file is there already; ``image``: the record holding the decision's
    result (the image ``distinct`` made, or the kept one), as the catalog has it now;
    ``thumbnail_ours``: that image's thumbnail is watcherd's, of the newcomer's bytes (so it
    can be renamed back rather than made again); ``newcomer_png``: the newcomer's thumbnail
    made again (None when it is not needed); ``existing_png``: the existing image's
    thumbnail made again (``keep-newcomer``); ``back``: the newcomer's original's way back.
    """

    target: str
    target_taken: bool = False
    image: ImageRecord | None = None
    thumbnail_ours: bool = False
    newcomer_png: bytes | None = None
    existing_png: bytes | None = None
    back: Back | None = None


@dataclass(frozen=True)
class KeepFacts:
    """What a keep decision needs to know that only the disk (or the clock) can tell.

    ``kept``: the image kept (``keep-existing``: the one that holds the contested name now,
    or the one a near keep merged it into; ``keep-newcomer``: the one named so), None when
    it is no longer catalogued; ``stamp``: when; ``folder``: the newcomer's drop folder in
    the tree as it is now (its tags); ``newcomer_original_at``: where the newcomer's original
    is now (its collision's ``original``, or ``moving_from`` while that move is still to be
    made; None when it is gone); ``archive``: where an original set aside goes
    (``originals/_duplicates/…``: the newcomer's for ``keep-existing``, the old one's for
    ``keep-newcomer``); ``thumbnail_ours``, ``png``, ``chunks``: the newcomer's thumbnail is
    watcherd's, its bytes and text chunks (``keep-newcomer``); ``old_original_there``: the
    kept image's original is where its record says; ``planned``: where the newcomer's
    original goes as the kept image's (``originals/{name}.{ext}``); ``replaced_ingested``: when
    the thumbnail ``keep-newcomer`` replaces says it was ingested (undo makes it again so).
    """

    kept: ImageRecord | None
    stamp: str
    folder: PurePosixPath = field(default_factory=PurePosixPath)
    newcomer_original_at: str | None = None
    archive: str | None = None
    thumbnail_ours: bool = False
    png: bytes = b""
    chunks: dict[str, str] = field(default_factory=dict)
    old_original_there: bool = False
    planned: str | None = None
    replaced_ingested: str | None = None


@dataclass(frozen=True)
class DistinctFacts:
    """What ``distinct`` needs to know that only the disk (or the clock) can tell.

    ``thumbnail``: where the newcomer's thumbnail is in the tree (brought to its drop folder,
    or where a gesture put it); ``folder``: that place's folder in the tree (its tags);
    ``image``: the record the new image starts from (the one its name already has, when a
    gesture decides again; else the one its thumbnail's chunks describe); ``original_at``:
    where the newcomer's original is now (as ``KeepFacts.newcomer_original_at``); ``planned``: where it goes in
    ``originals/``; ``stamp``: when.
    """

    thumbnail: str
    image: ImageRecord
    stamp: str
    folder: PurePosixPath = field(default_factory=PurePosixPath)
    original_at: str | None = None
    planned: str | None = None


def plan_distinct(col: CollisionRecord, via: Via, facts: DistinctFacts) -> Plan:
    """What ``distinct`` on ``col`` does: the newcomer becomes an image of its own, named by the
    collision's id, holding its thumbnail, its original and its drop folder's tags."""
    out = copy.deepcopy(col)
    new = out.newcomer
    rec = copy.deepcopy(facts.image)
    rec.place_at(facts.thumbnail, keep_others=False)
    rec.tags = merge_tags(rec.tags, facts.folder, rec.size_tag)
    rec.add_keywords(new.keywords, new.keyword_paths)
    if new.source:
        rec.original, rec.source, rec.source_stat = new.original, True, new.source_stat
    elif facts.original_at:
        rec.original, rec.moving_from = facts.planned, facts.original_at
    out.decision = Decision(Verdict.DISTINCT, facts.stamp, via, image=col.distinct_name)
    # Both are the new image's now (undo puts them back); so is a move of its original not made yet.
    new.thumbnail = new.original = new.moving_from = None
    new.source_stat = None
    return Plan(made=[Made(col.id, via, facts.stamp)], put_images=[rec], put_collisions=[out], carry_out=[rec])


def merged(kept: ImageRecord, col: CollisionRecord, folder: PurePosixPath, decision: Decision) -> ImageRecord:
    """The kept record with what the newcomer brings: its drop folder's tags, its own keywords
    and its file name (each noted in ``decision`` for undo: ``unmerged`` takes them back)."""
    out = copy.deepcopy(kept)
    tags = merge_tags(out.tags, folder, out.size_tag)
    decision.added_tags = [t for t in tags if t not in out.tags]
    out.tags = tags
    decision.added_tags += out.add_keywords(col.newcomer.keywords, col.newcomer.keyword_paths)
    filename = col.newcomer.filename
    if filename and filename != out.original_filename and filename not in out.other_filenames:
        out.other_filenames.append(safe_text(filename))
        decision.added_filename = filename
    return out


def plan_keep(col: CollisionRecord, verdict: Verdict, via: Via, facts: KeepFacts) -> Plan:
    """What ``keep-existing`` or ``keep-newcomer`` on ``col`` does (refused before anything changed)."""
    if facts.kept is None:
        raise UsageError(f"{col.name} is no longer catalogued; decide 'distinct' to keep the newcomer")
    if verdict is Verdict.KEEP_EXISTING:
        return _keep_existing_plan(col, via, facts, facts.kept)
    return _keep_newcomer_plan(col, via, facts, facts.kept)


def _keep_existing_plan(col: CollisionRecord, via: Via, facts: KeepFacts, kept: ImageRecord) -> Plan:
    out = copy.deepcopy(col)
    new = out.newcomer
    decision = Decision(Verdict.KEEP_EXISTING, facts.stamp, via, image=kept.name)
    after = merged(kept, col, facts.folder, decision)
    if not new.source and facts.newcomer_original_at:
        assert facts.archive is not None
        new.moving_from, new.original = facts.newcomer_original_at, facts.archive
    out.decision = decision
    # watcherd's own file, made again from the original by undo
    steps = [journal.unlink(new.thumbnail, new.sha256)] if new.thumbnail else []
    new.thumbnail = None
    return Plan(
        made=[Made(col.id, via, decision.decided)],
        put_images=[after],
        put_collisions=[out],
        steps=steps,
        carry_out=[out],
    )


def _keep_newcomer_plan(col: CollisionRecord, via: Via, facts: KeepFacts, kept: ImageRecord) -> Plan:
    out = copy.deepcopy(col)
    new = out.newcomer
    if not facts.thumbnail_ours:
        raise UsageError(f"the newcomer's thumbnail {new.thumbnail} is not there (deleted or moved?)")
    decision = Decision(Verdict.KEEP_NEWCOMER, facts.stamp, via, image=kept.name)
    decision.replaced = {
        "sha256": kept.sha256,
        "format": kept.format,
        "file_size": kept.file_size,
        "original_filename": kept.original_filename,
        "original": kept.original,
        "source": kept.source,
        "ingested": facts.replaced_ingested,
        "crops": kept.crops,
        "exif": kept.exif.to_json() if kept.exif is not None else None,
    }
    after = merged(kept, col, facts.folder, decision)
    old_sha, old_original = after.sha256, after.original
    if old_original and after.original_filename and after.original_filename not in after.other_filenames:
        after.other_filenames.append(after.original_filename)
    size = facts.chunks.get("file_size", "")
    after.sha256, after.format = new.sha256, facts.chunks.get("format", after.format)
    after.file_size = number(size)
    # What the record keeps of its thumbnail follows the thumbnail now in its places.
    windows = facts.chunks.get("crops", "")
    after.crops = windows if crops.split_bytes(windows) is not None else ""
    after.exif = Exif.of(facts.chunks)
    after.original_filename = new.filename
    if new.filename in after.other_filenames:
        after.other_filenames.remove(new.filename)
    if old_original and not after.source and facts.old_original_there:
        assert facts.archive is not None
        decision.archived = facts.archive
        decision.setting_aside.append([old_original, facts.archive])  # moved by Filing after the commit
    if new.source:
        after.original, after.source, after.source_stat, after.moving_from = new.original, True, new.source_stat, None
    elif new.original:
        after.source, after.source_stat = False, None
        # From where it is now; one gone goes astray in filing (adopted when seen again).
        after.original, after.moving_from = facts.planned, facts.newcomer_original_at or new.original
    out.decision = decision
    # The newcomer's thumbnail takes each place of the existing one (ours: removed, then
    # published without replacing anything), and leaves _collisions.
    steps = [step for rel in after.paths for step in (journal.unlink(rel, old_sha), journal.publish(rel, facts.png))]
    assert new.thumbnail is not None
    steps.append(journal.unlink(new.thumbnail, new.sha256))
    new.thumbnail = new.original = new.moving_from = None  # the kept image's now (undo puts them back)
    return Plan(
        made=[Made(col.id, via, decision.decided)],
        put_images=[after],
        put_collisions=[out],
        steps=steps,
        carry_out=[out, after],  # the old original set aside first: it frees the canonical name
    )


def unmerged(kept: ImageRecord, decision: Decision) -> ImageRecord:
    """The kept record without what the decision gave it: its added tags (the keywords among
    them) and the file name it gained."""
    out = copy.deepcopy(kept)
    out.tags = [t for t in out.tags if t not in decision.added_tags]
    out.keywords = [k for k in out.keywords if k in out.tags]
    if decision.added_filename in out.other_filenames:
        out.other_filenames.remove(decision.added_filename)
    return out


def plan_undo(col: CollisionRecord, facts: UndoFacts) -> Plan:
    """What undoing ``col``'s decision does: files back where they were, the collision undecided."""
    assert col.decision is not None
    kind = col.decision.kind
    if kind is Verdict.DISTINCT:
        return _distinct(col, facts)
    if kind is Verdict.KEEP_EXISTING:
        return _keep_existing(col, facts)
    return _keep_newcomer(col, facts)


def _undecided(col: CollisionRecord, facts: UndoFacts) -> CollisionRecord:
    """The collision as it was before its decision: undecided, its newcomer's thumbnail in
    ``_collisions/`` and its original on its way back there."""
    out = copy.deepcopy(col)
    if facts.back is not None:
        out.newcomer.moving_from, out.newcomer.original = facts.back.current, facts.back.planned
    out.newcomer.thumbnail = facts.target
    out.decision = None
    return out


def _distinct(col: CollisionRecord, facts: UndoFacts) -> Plan:
    rec = facts.image
    if rec is not None and len(rec.paths) > 1:
        raise UsageError(f"{rec.name} has copies in {', '.join(rec.paths)}; delete all but one, then undo")
    if facts.target_taken:
        raise UsageError(f"{facts.target} is taken; nothing was changed")
    if rec is not None and rec.present and facts.thumbnail_ours:
        step = journal.rename(rec.path, facts.target, col.newcomer.sha256)
    else:
        assert facts.newcomer_png is not None, "the newcomer's thumbnail is made again when it cannot be renamed back"
        step = journal.publish(facts.target, facts.newcomer_png)
    undecided = _undecided(col, facts)
    return Plan(
        delete_images=[rec.name] if rec is not None else [],
        put_collisions=[undecided],
        undone=[col.id],
        steps=[step],
        carry_out=[undecided],
    )


def _keep_existing(col: CollisionRecord, facts: UndoFacts) -> Plan:
    assert col.decision is not None
    steps = [] if facts.target_taken else [journal.publish(facts.target, _made_again(facts.newcomer_png))]
    kept = unmerged(facts.image, col.decision) if facts.image is not None else None
    undecided = _undecided(col, facts)
    return Plan(
        put_images=[kept] if kept is not None else [],
        put_collisions=[undecided],
        undone=[col.id],
        steps=steps,
        carry_out=[undecided],
    )


def _keep_newcomer(col: CollisionRecord, facts: UndoFacts) -> Plan:
    decision = col.decision
    assert decision is not None
    if facts.image is None:
        raise UsageError(f"{col.name} is no longer catalogued; nothing was changed")
    kept = unmerged(facts.image, decision)
    replaced = decision.replaced or {}
    # The newcomer's thumbnail back under _collisions/, the existing one's back in each place.
    steps = [journal.publish(facts.target, _made_again(facts.newcomer_png))]
    old_png = _made_again(facts.existing_png)
    steps += [step for rel in kept.paths for step in (journal.unlink(rel, kept.sha256), journal.publish(rel, old_png))]
    old_filename = replaced.get("original_filename")
    if col.newcomer.filename == kept.original_filename and old_filename in kept.other_filenames:
        kept.other_filenames.remove(old_filename)
    kept.sha256, kept.format = replaced.get("sha256"), replaced.get("format")
    kept.file_size, kept.original_filename = replaced.get("file_size"), replaced.get("original_filename")
    kept.source = bool(replaced.get("source"))
    if "crops" in replaced:  # a decision made before these were kept left them as they were
        kept.crops = str(replaced["crops"] or "")
    if "exif" in replaced:
        kept.exif = Exif.from_json(replaced["exif"])
    if decision.archived and replaced.get("original"):
        kept.original, kept.moving_from = replaced["original"], decision.archived
    else:
        kept.original, kept.moving_from = replaced.get("original"), None
    undecided = _undecided(col, facts)
    return Plan(
        put_images=[kept],
        put_collisions=[undecided],
        undone=[col.id],
        steps=steps,
        carry_out=[undecided, kept],  # the newcomer's original first: it frees the name the old one returns to
    )


def _made_again(png: bytes | None) -> bytes:
    assert png is not None, "the fact-finder makes the thumbnails a plan publishes"
    return png
