"""The planning core for decisions and undo: records and facts in, a plan out; no files, no catalog.

Each decision is made or undone from the facts a fact-finder would have looked up; the plan
says which records are written and removed, which decision leaves the order of decisions,
which thumbnail steps are journaled and what is carried out after the commit.
"""

from __future__ import annotations

import copy
from pathlib import PurePosixPath

import pytest

from watcherd.core.collisionrecords import CollisionKind, CollisionRecord, Decision, Existing, Newcomer, Verdict, Via
from watcherd.core.errors import UsageError
from watcherd.core.records import ImageRecord, State
from watcherd.decide.plans import (
    Back,
    DistinctFacts,
    KeepFacts,
    Made,
    UndoFacts,
    plan_distinct,
    plan_keep,
    plan_undo,
    unmerged,
)
from watcherd.filing.journal import Publish, Rename, Unlink

pytestmark = pytest.mark.pure  # no file, no catalog: tests/unit/conftest.py holds them to it

NAME = "320x240_00ff00ff00ff00ff_.png"
OLD_SHA, NEW_SHA = "a" * 64, "b" * 64
COL_ID = f"320x240_00ff00ff00ff00ff_~{NEW_SHA[:12]}"
TARGET = f"thumbs/_collisions/{COL_ID}.png"
PNG_NEW, PNG_OLD = b"new thumbnail", b"old thumbnail"


def image(name: str = NAME, *, path: str = f"thumbs/cats/{NAME}", sha256: str = OLD_SHA, **more: object) -> ImageRecord:
    rec = ImageRecord(name, "00ff00ff00ff00ff", 320, 240, path, State.PRESENT, "t0", "t0", sha256=sha256)
    for key, value in more.items():
        setattr(rec, key, value)
    return rec


def collision(decision: Decision) -> CollisionRecord:
    return CollisionRecord(
        COL_ID,
        NAME,
        CollisionKind.PERCEPTUAL,
        "t0",
        Existing(f"thumbs/cats/{NAME}", "originals/320x240_00ff00ff00ff00ff_.jpg", OLD_SHA),
        Newcomer(None, None, NEW_SHA, "b.jpg", dropped="thumbs/dogs"),
        decision,
    )


def test_undo_distinct_renames_our_thumbnail_back_and_removes_the_image() -> None:
    variant = f"{COL_ID}.png"
    col = collision(Decision(Verdict.DISTINCT, "t1", image=variant))
    made = image(variant, path=f"thumbs/dogs/{variant}", sha256=NEW_SHA, original=f"originals/{COL_ID}.jpg")
    back = Back(f"originals/{COL_ID}.jpg", f"originals/_collisions/{COL_ID}.jpg")
    before = copy.deepcopy(col)
    plan = plan_undo(col, UndoFacts(TARGET, image=made, thumbnail_ours=True, back=back))
    assert plan.delete_images == [variant] and plan.put_images == []
    assert plan.steps == [Rename(f"thumbs/dogs/{variant}", TARGET, NEW_SHA)]
    (undecided,) = plan.put_collisions
    assert undecided.decision is None and undecided.newcomer.thumbnail == TARGET
    assert (undecided.newcomer.moving_from, undecided.newcomer.original) == (back.current, back.planned)
    assert plan.undone == [COL_ID] and plan.carry_out == [undecided]
    assert col == before  # the records given are left as they were


def test_undo_distinct_makes_the_thumbnail_again_when_it_is_not_ours_or_gone() -> None:
    col = collision(Decision(Verdict.DISTINCT, "t1", image=f"{COL_ID}.png"))
    plan = plan_undo(col, UndoFacts(TARGET, image=None, newcomer_png=PNG_NEW))
    assert plan.steps == [Publish(TARGET, PNG_NEW)] and plan.delete_images == []


@pytest.mark.parametrize(
    ("facts", "said"),
    [
        (UndoFacts(TARGET, image=image(f"{COL_ID}.png", copies=["thumbs/x/c.png"])), "has copies in"),
        (UndoFacts(TARGET, target_taken=True, image=image(f"{COL_ID}.png")), "is taken; nothing was changed"),
    ],
)
def test_undo_distinct_refuses_before_anything_changes(facts: UndoFacts, said: str) -> None:
    with pytest.raises(UsageError, match=said):
        plan_undo(collision(Decision(Verdict.DISTINCT, "t1", image=f"{COL_ID}.png")), facts)


def test_undo_keep_existing_takes_back_what_the_kept_image_gained() -> None:
    decision = Decision(Verdict.KEEP_EXISTING, "t1", image=NAME, added_tags=["dogs"], added_filename="b.jpg")
    col = collision(decision)
    kept = image(tags=["cats", "dogs", "320x240"], keywords=["dogs"], other_filenames=["b.jpg"])
    plan = plan_undo(col, UndoFacts(TARGET, image=kept, newcomer_png=PNG_NEW))
    (after,) = plan.put_images
    assert (after.tags, after.keywords, after.other_filenames) == (["cats", "320x240"], [], [])
    assert kept.tags == ["cats", "dogs", "320x240"]  # a copy was changed, not the record given
    assert plan.steps == [Publish(TARGET, PNG_NEW)]
    # Its thumbnail already back in _collisions/ (a crash after the steps): nothing is published.
    assert plan_undo(col, UndoFacts(TARGET, target_taken=True, image=kept)).steps == []


def test_undo_keep_newcomer_restores_the_existing_side_and_both_thumbnails() -> None:
    replaced = {
        "sha256": OLD_SHA,
        "format": "JPEG",
        "file_size": 1000,
        "original_filename": "a.jpg",
        "original": "originals/320x240_00ff00ff00ff00ff_.jpg",
        "source": False,
    }
    archived = f"originals/_duplicates/320x240_00ff00ff00ff00ff_~{OLD_SHA[:12]}.jpg"
    decision = Decision(Verdict.KEEP_NEWCOMER, "t1", image=NAME, archived=archived, replaced=replaced)
    kept = image(
        sha256=NEW_SHA,
        copies=["thumbs/more/" + NAME],
        original="originals/320x240_00ff00ff00ff00ff_.jpg",
        original_filename="b.jpg",
        other_filenames=["a.jpg"],
    )
    back = Back(kept.original or "", f"originals/_collisions/{COL_ID}.jpg")
    plan = plan_undo(
        collision(decision), UndoFacts(TARGET, image=kept, newcomer_png=PNG_NEW, existing_png=PNG_OLD, back=back)
    )
    (after,) = plan.put_images
    assert (after.sha256, after.original_filename, after.other_filenames) == (OLD_SHA, "a.jpg", [])
    assert (after.original, after.moving_from) == (replaced["original"], archived)  # back from the archive
    assert plan.steps == [
        Publish(TARGET, PNG_NEW),
        Unlink(f"thumbs/cats/{NAME}", NEW_SHA),
        Publish(f"thumbs/cats/{NAME}", PNG_OLD),
        Unlink(f"thumbs/more/{NAME}", NEW_SHA),
        Publish(f"thumbs/more/{NAME}", PNG_OLD),
    ]
    undecided = plan.put_collisions[0]
    assert plan.carry_out == [undecided, after]  # the newcomer's original first: it frees the name


def test_undo_keep_newcomer_of_an_image_no_longer_catalogued_is_refused() -> None:
    with pytest.raises(UsageError, match="no longer catalogued"):
        plan_undo(collision(Decision(Verdict.KEEP_NEWCOMER, "t1", image=NAME)), UndoFacts(TARGET))


def test_unmerged_leaves_a_name_the_image_had_before() -> None:
    kept = image(other_filenames=["x.jpg"], tags=["cats"])
    assert unmerged(kept, Decision(Verdict.KEEP_EXISTING, "t1", added_filename="b.jpg")).other_filenames == ["x.jpg"]


def test_the_guard_fails_a_planning_test_that_opens_a_file() -> None:
    with pytest.raises(AssertionError, match="touched a file"):
        open("/etc/hostname").close()


def undecided_col(**newcomer: object) -> CollisionRecord:
    col = collision(Decision(Verdict.DISTINCT, "t0"))
    col.decision = None
    col.newcomer.thumbnail = TARGET
    col.newcomer.original = f"originals/_collisions/{COL_ID}.jpg"
    col.newcomer.keywords = ["beach"]
    for key, value in newcomer.items():
        setattr(col.newcomer, key, value)
    return col


def test_keep_existing_merges_the_newcomer_into_the_kept_image_and_sets_its_original_aside() -> None:
    col, kept = undecided_col(), image(tags=["cats", "320x240"], original_filename="a.jpg")
    archive = f"originals/_duplicates/{COL_ID}.jpg"
    facts = KeepFacts(
        kept, "t1", PurePosixPath("dogs"), newcomer_original_at=f"originals/_collisions/{COL_ID}.jpg", archive=archive
    )
    plan = plan_keep(col, Verdict.KEEP_EXISTING, Via.PAGE, facts)
    (after,) = plan.put_images
    assert after.tags == ["cats", "320x240", "dogs", "beach"] and after.other_filenames == ["b.jpg"]
    (decided,) = plan.put_collisions
    assert decided.decision is not None and decided.decision.added_tags == ["dogs", "beach"]
    assert (decided.newcomer.moving_from, decided.newcomer.original) == (col.newcomer.original, archive)
    assert decided.newcomer.thumbnail is None and plan.steps == [Unlink(TARGET, NEW_SHA)]
    assert plan.made == [Made(COL_ID, Via.PAGE, "t1")] and plan.carry_out == [decided]
    assert col.decision is None and kept.tags == ["cats", "320x240"]  # the records given are unchanged
    # ... and undo takes back exactly what it gave
    back = unmerged(after, decided.decision)
    assert (back.tags, back.keywords, back.other_filenames) == (kept.tags, kept.keywords, kept.other_filenames)


def test_keep_newcomer_puts_the_newcomers_thumbnail_in_every_place_and_archives_the_old_original() -> None:
    col = undecided_col()
    kept = image(copies=[f"thumbs/more/{NAME}"], original=f"originals/{NAME[:-4]}.jpg", original_filename="a.jpg")
    archive = f"originals/_duplicates/{NAME[:-4]}~{OLD_SHA[:12]}.jpg"
    facts = KeepFacts(
        kept,
        "t1",
        PurePosixPath("dogs"),
        newcomer_original_at=f"originals/_collisions/{COL_ID}.jpg",
        archive=archive,
        thumbnail_ours=True,
        png=PNG_NEW,
        chunks={"format": "JPEG", "file_size": "2000"},
        old_original_there=True,
        planned=f"originals/{NAME[:-4]}.jpg",
    )
    plan = plan_keep(col, Verdict.KEEP_NEWCOMER, Via.COMMAND, facts)
    (after,) = plan.put_images
    assert (after.sha256, after.format, after.file_size, after.original_filename) == (NEW_SHA, "JPEG", 2000, "b.jpg")
    assert (after.original, after.moving_from) == (f"originals/{NAME[:-4]}.jpg", col.newcomer.original)
    assert after.other_filenames == ["a.jpg"]
    (decided,) = plan.put_collisions
    assert decided.decision is not None and decided.decision.archived == archive
    assert decided.decision.setting_aside == [[kept.original, archive]]
    assert decided.decision.replaced is not None and decided.decision.replaced["sha256"] == OLD_SHA
    assert plan.steps == [
        Unlink(f"thumbs/cats/{NAME}", OLD_SHA),
        Publish(f"thumbs/cats/{NAME}", PNG_NEW),
        Unlink(f"thumbs/more/{NAME}", OLD_SHA),
        Publish(f"thumbs/more/{NAME}", PNG_NEW),
        Unlink(TARGET, NEW_SHA),
    ]
    assert plan.carry_out == [decided, after]  # the old original set aside first: it frees the name


@pytest.mark.parametrize(
    ("verdict", "facts", "said"),
    [
        (Verdict.KEEP_EXISTING, KeepFacts(None, ""), "no longer catalogued"),
        (Verdict.KEEP_NEWCOMER, KeepFacts(None, ""), "no longer catalogued"),
        (Verdict.KEEP_NEWCOMER, KeepFacts(image(), "t1"), "is not there"),
    ],
)
def test_a_keep_decision_is_refused_before_anything_changes(verdict: Verdict, facts: KeepFacts, said: str) -> None:
    with pytest.raises(UsageError, match=said):
        plan_keep(undecided_col(), verdict, Via.COMMAND, facts)


def test_distinct_makes_the_newcomer_an_image_of_its_own_with_its_original_and_drop_folder_tags() -> None:
    col = collision(Decision(Verdict.DISTINCT, "t1"))
    col.decision = None
    col.newcomer.thumbnail, col.newcomer.original = TARGET, f"originals/_collisions/{COL_ID}.jpg"
    col.newcomer.keywords = ["holiday"]
    before = copy.deepcopy(col)
    start = image(col.distinct_name, path=TARGET, sha256=NEW_SHA, tags=["320x240"])
    facts = DistinctFacts(
        thumbnail=f"thumbs/dogs/{col.distinct_name}",
        image=start,
        stamp="t2",
        folder=PurePosixPath("dogs"),
        original_at=f"originals/_collisions/{COL_ID}.jpg",
        planned=f"originals/{COL_ID}.jpg",
    )
    plan = plan_distinct(col, Via.GESTURE, facts)
    (rec,) = plan.put_images
    assert rec.name == col.distinct_name and rec.path == facts.thumbnail and rec.paths == [facts.thumbnail]
    assert rec.tags == ["320x240", "dogs", "holiday"]
    assert (rec.original, rec.moving_from) == (f"originals/{COL_ID}.jpg", f"originals/_collisions/{COL_ID}.jpg")
    (decided,) = plan.put_collisions
    assert decided.decision == Decision(Verdict.DISTINCT, "t2", Via.GESTURE, image=col.distinct_name)
    assert decided.newcomer.thumbnail is None and decided.newcomer.original is None
    assert plan.made == [Made(COL_ID, Via.GESTURE, "t2")] and plan.carry_out == [rec] and plan.steps == []
    assert col == before and start.tags == ["320x240"]  # the records given are left as they were


def test_distinct_leaves_a_source_file_where_it_is_and_an_original_that_is_gone_alone() -> None:
    col = collision(Decision(Verdict.DISTINCT, "t1"))
    col.decision = None
    col.newcomer.original = f"originals/_collisions/{COL_ID}.jpg"
    start = image(col.distinct_name, path=TARGET, sha256=NEW_SHA, original=None)
    gone = plan_distinct(col, Via.COMMAND, DistinctFacts(f"thumbs/dogs/{col.distinct_name}", start, "t2"))
    assert gone.put_images[0].original is None and gone.put_images[0].moving_from is None
    col.newcomer.source, col.newcomer.original = True, "source/b.jpg"
    kept = plan_distinct(col, Via.COMMAND, DistinctFacts(f"thumbs/dogs/{col.distinct_name}", start, "t2"))
    assert (kept.put_images[0].original, kept.put_images[0].source) == ("source/b.jpg", True)


@pytest.mark.parametrize("verdict", [Verdict.DISTINCT, Verdict.KEEP_EXISTING, Verdict.KEEP_NEWCOMER])
def test_a_newcomers_original_still_on_its_way_is_taken_from_where_it_is(verdict: Verdict) -> None:
    """Asked to move (``moving_from``) and not moved yet, as in a batch before its commit: each
    decision moves it from where it is now, and the collision keeps no move of its own."""
    still = f"originals/_duplicates/{COL_ID}.jpg"
    col = undecided_col(moving_from=still)
    if verdict is Verdict.DISTINCT:
        start = image(col.distinct_name, path=TARGET, sha256=NEW_SHA, original=None)
        facts = DistinctFacts(
            f"thumbs/dogs/{col.distinct_name}", start, "t2", original_at=still, planned=f"originals/{COL_ID}.jpg"
        )
        plan = plan_distinct(col, Via.GESTURE, facts)
        assert (plan.put_images[0].original, plan.put_images[0].moving_from) == (f"originals/{COL_ID}.jpg", still)
        assert plan.put_collisions[0].newcomer.moving_from is None
        return
    kept = image(original=f"originals/{NAME[:-4]}.jpg")
    archive = f"originals/_duplicates/{COL_ID}~2.jpg"
    facts_keep = KeepFacts(
        kept,
        "t1",
        PurePosixPath("dogs"),
        newcomer_original_at=still,
        archive=archive,
        thumbnail_ours=True,
        png=PNG_NEW,
        planned=f"originals/{NAME[:-4]}.jpg",
    )
    plan = plan_keep(col, verdict, Via.PAGE, facts_keep)
    new = plan.put_collisions[0].newcomer
    if verdict is Verdict.KEEP_EXISTING:
        assert (new.moving_from, new.original) == (still, archive)
    else:
        assert new.moving_from is None and plan.put_images[0].moving_from == still
