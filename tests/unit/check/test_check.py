"""``watcherd check``'s verdicts, from facts built as values (no files, no catalog)."""

from __future__ import annotations

from watcherd.check.problems import Code, Image, Problem
from watcherd.check.stores import ExportFacts, IndexFacts, NearFacts
from watcherd.check.verdicts import Facts, Ident, verdicts
from watcherd.core.collisionrecords import CollisionKind, CollisionRecord, Decision, Existing, Newcomer, Verdict
from watcherd.core.nearpairs import Merged, NearRecord
from watcherd.filing.adopt import Maker

A = "320x240_00000011ffefefff_.png"
B = "320x240_000000dfefc7e7ef_.png"
SHA_A, SHA_B, SHA_N = "a" * 64, "b" * 64, "3ff611add694" + "c" * 52
LABEL = f"{A[:-4]}~{SHA_N[:12]}"


def image(name: str = A, *places: str, present: bool = True, **kw: object) -> Image:
    return Image(name, present, places or (f"thumbs/cats/{name}",), **kw)  # type: ignore[arg-type]


def ours(name: str = A, sha256: str = SHA_A) -> Ident:
    return Ident(Maker.WATCHERD, name, sha256)


def collision(**kw: object) -> CollisionRecord:
    newcomer = Newcomer(f"thumbs/_collisions/{LABEL}.png", f"originals/_collisions/{LABEL}.jpg", SHA_N)
    return CollisionRecord(LABEL, A, CollisionKind.PERCEPTUAL, None, Existing(), newcomer, **kw)  # type: ignore[arg-type]


def sound_facts() -> Facts:
    """A present image with its original, and an undecided collision with both files."""
    return Facts(
        root="/lib",
        images={A: image(original=f"originals/{A[:-4]}.jpg", sha256=SHA_A)},
        thumbnails=frozenset({f"thumbs/cats/{A}"}),
        collisions=[collision()],
        collision_files=frozenset({f"thumbs/_collisions/{LABEL}.png"}),
        collision_originals=frozenset({LABEL}),
        existing=frozenset({f"originals/{A[:-4]}.jpg", f"originals/_collisions/{LABEL}.jpg"}),
        temporaries=(),
    )


def codes(facts: Facts) -> list[tuple[str, str, bool]]:
    return [(p.code.value, p.path, p.repairable) for p in verdicts(facts).problems]


def only(facts: Facts) -> Problem:
    problems = verdicts(facts).problems
    assert len(problems) == 1, problems
    return problems[0]


def test_a_sound_library_has_no_problem_and_says_what_was_checked() -> None:
    verdict = verdicts(sound_facts())
    assert verdict.sound and verdict.problems == [] and verdict.notes == []
    assert verdict.checked["images"] == 1 and verdict.checked["places"] == 1
    assert verdict.checked["collisions"] == 1 and verdict.checked["collision_files"] == 1


def test_a_thumbnail_moved_without_a_scan_is_a_stale_place_the_repair_follows() -> None:
    facts = sound_facts()
    facts.thumbnails = frozenset({f"thumbs/dogs/{A}"})
    facts.idents = {f"thumbs/dogs/{A}": ours()}
    problem = only(facts)
    assert (problem.code, problem.path, problem.target) == (Code.STALE_PLACE, f"thumbs/cats/{A}", f"thumbs/dogs/{A}")
    assert problem.repairable and problem.name == A


def test_a_place_without_any_file_of_its_bytes_is_dropped() -> None:
    facts = sound_facts()
    facts.thumbnails = frozenset()
    problem = only(facts)
    assert problem.code is Code.STALE_PLACE and problem.target is None and problem.repairable
    assert "becomes missing" in problem.detail
    facts.images = {A: image(A, f"thumbs/cats/{A}", f"thumbs/dogs/{A}", original=f"originals/{A[:-4]}.jpg")}
    facts.thumbnails = frozenset({f"thumbs/dogs/{A}"})
    assert "other places stay" in only(facts).detail


def test_a_place_out_of_reach_is_not_a_place_gone() -> None:
    facts = sound_facts()
    facts.thumbnails = frozenset()
    facts.unreachable = {f"thumbs/cats/{A}": "Input/output error"}
    assert codes(facts) == [("unreachable-place", f"thumbs/cats/{A}", False)]


def test_a_file_of_the_same_name_with_other_bytes_is_not_followed() -> None:
    facts = sound_facts()
    facts.thumbnails = frozenset({f"thumbs/dogs/{A}"})
    facts.idents = {f"thumbs/dogs/{A}": ours(sha256=SHA_B)}
    assert codes(facts) == [
        ("stale-place", f"thumbs/cats/{A}", True),
        ("unrecorded-thumbnail", f"thumbs/dogs/{A}", False),
    ]


def test_a_copy_is_recorded_and_a_missing_image_back_at_its_last_place_is_present_again() -> None:
    facts = sound_facts()
    facts.thumbnails = frozenset({f"thumbs/cats/{A}", f"thumbs/dogs/{A}"})
    facts.idents = {f"thumbs/dogs/{A}": ours()}
    problem = only(facts)
    assert (problem.code, problem.path, problem.repairable) == (Code.UNRECORDED_THUMBNAIL, f"thumbs/dogs/{A}", True)
    facts.images = {A: image(present=False, original=f"originals/{A[:-4]}.jpg", sha256=SHA_A)}
    facts.thumbnails = frozenset({f"thumbs/cats/{A}"})
    facts.idents = {f"thumbs/cats/{A}": ours()}
    assert codes(facts) == [("missing-but-there", f"thumbs/cats/{A}", True)]


def test_a_missing_image_whose_last_place_is_empty_is_no_problem() -> None:
    facts = sound_facts()
    facts.images = {A: image(present=False, original=f"originals/{A[:-4]}.jpg", sha256=SHA_A)}
    facts.thumbnails = frozenset()
    assert codes(facts) == []


def test_a_canonical_file_without_a_record_is_adopted_only_when_watcherd_can_adopt_it() -> None:
    facts = sound_facts()
    rel = f"thumbs/cats/{B}"
    facts.thumbnails = frozenset({f"thumbs/cats/{A}", rel})
    facts.idents = {rel: ours(B, SHA_B)}
    assert codes(facts) == [("unrecorded-thumbnail", rel, True)]
    facts.idents = {rel: Ident(Maker.NOTEBOOK, B, None)}
    assert codes(facts) == [("unrecorded-thumbnail", rel, True)]
    facts.idents = {rel: None}  # a picture merely named like a thumbnail: the scan ingests it
    assert codes(facts) == [("unrecorded-thumbnail", rel, False)]
    facts.idents = {rel: ours(A, SHA_B)}  # its chunks name another image
    assert codes(facts) == [("unrecorded-thumbnail", rel, False)]
    facts.idents = {rel: ours(B, SHA_N)}  # an undecided newcomer's bytes under another image's name
    assert codes(facts) == [("unrecorded-thumbnail", rel, False)]


def test_a_newcomer_moved_into_the_tree_is_decided_distinct_as_a_scan_would() -> None:
    facts = sound_facts()
    rel = f"thumbs/birds/{LABEL}.png"
    facts.thumbnails = frozenset({f"thumbs/cats/{A}", rel})
    facts.collision_files = frozenset()
    facts.idents = {rel: ours(A, SHA_N)}
    problem = only(facts)  # not also its thumbnail missing from _collisions/: it is here
    assert (problem.code, problem.path, problem.repairable) == (Code.UNRECORDED_THUMBNAIL, rel, True)
    assert "decides it distinct" in problem.detail


def test_originals_must_be_there_unless_they_are_being_filed() -> None:
    facts = sound_facts()
    facts.existing = frozenset({f"originals/_collisions/{LABEL}.jpg"})
    assert codes(facts) == [("missing-original", f"originals/{A[:-4]}.jpg", False)]
    facts.images = {A: image(original=f"originals/{A[:-4]}.jpg", moving_from="thumbs/cats/a.jpg")}
    assert codes(facts) == [("unfinished-move", "thumbs/cats/a.jpg", True)]


def test_with_a_live_writer_work_in_flight_is_a_note() -> None:
    facts = sound_facts()
    facts.images = {A: image(original=f"originals/{A[:-4]}.jpg", moving_from="thumbs/cats/a.jpg")}
    facts.steps = 2
    facts.live = True
    verdict = verdicts(facts)
    assert verdict.sound
    assert [p.code for p in verdict.notes] == [Code.PENDING_STEPS, Code.UNFINISHED_MOVE]


def test_read_data_compares_each_original_with_its_record() -> None:
    facts = sound_facts()
    facts.data = {f"originals/{A[:-4]}.jpg": SHA_B, f"originals/_collisions/{LABEL}.jpg": SHA_N}
    assert codes(facts) == [("changed-original", f"originals/{A[:-4]}.jpg", False)]
    facts.data = {f"originals/{A[:-4]}.jpg": "unreadable: Permission denied"}
    assert "cannot be read" in only(facts).detail


def test_an_undecided_collision_needs_both_of_its_newcomer_files() -> None:
    facts = sound_facts()
    facts.collision_files = frozenset()
    facts.existing = frozenset({f"originals/{A[:-4]}.jpg"})
    assert codes(facts) == [
        ("missing-collision-file", f"originals/_collisions/{LABEL}.jpg", False),
        ("missing-collision-file", f"thumbs/_collisions/{LABEL}.png", False),
    ]


def test_files_in_the_collisions_folder_that_no_collision_owns() -> None:
    facts = sound_facts()
    orphan = f"thumbs/_collisions/{LABEL}~2.png"
    mine = "thumbs/_collisions/mine.png"
    deep = f"thumbs/_collisions/old/{LABEL}.png"
    facts.collision_files = facts.collision_files | {orphan, mine, deep}
    facts.idents = {orphan: ours(A, SHA_N), mine: None, deep: ours(A, SHA_N)}
    assert codes(facts) == [
        ("orphan-collision-file", orphan, True),
        ("orphan-collision-file", mine, False),
        ("orphan-collision-file", deep, False),
    ]
    facts.idents = {orphan: ours(A, SHA_B)}  # named for other bytes than its chunks say
    assert ("orphan-collision-file", orphan, False) in codes(facts)


def test_a_newcomer_whose_record_is_lost_but_whose_original_is_there_is_recorded_again() -> None:
    facts = sound_facts()
    facts.collisions = []
    facts.existing = frozenset({f"originals/{A[:-4]}.jpg"})
    facts.idents = {f"thumbs/_collisions/{LABEL}.png": ours(A, SHA_N)}
    problem = only(facts)
    assert problem.code is Code.ORPHAN_COLLISION_FILE and problem.repairable
    assert "records the collision again" in problem.detail
    facts.collision_originals = frozenset()
    assert "removes it" in only(facts).detail


def test_a_decision_s_originals_set_aside_must_be_there_once_moved() -> None:
    facts = sound_facts()
    aside = f"originals/_duplicates/{LABEL}.jpg"
    decided = Decision(Verdict.KEEP_EXISTING, "2026-01-01", archived=aside)
    facts.collisions = [collision(decision=decided)]
    facts.collision_files = frozenset()
    assert codes(facts) == [("missing-original", aside, False)]
    decided.setting_aside = [[f"originals/_collisions/{LABEL}.jpg", aside]]
    assert codes(facts) == [("unfinished-move", f"originals/_collisions/{LABEL}.jpg", True)]
    near = NearRecord(f"{A}+{B}", Decision(Verdict.KEEP_EXISTING, "", image=A), [Merged({}, "originals/_duplicates/b")])
    facts.collisions, facts.near = [], [near]
    assert codes(facts) == [("missing-original", "originals/_duplicates/b", False)]


def test_files_a_journaled_step_is_about_to_change_are_left_to_it() -> None:
    facts = sound_facts()
    facts.collision_files = frozenset()  # an undo is about to publish the newcomer's thumbnail again
    facts.steps, facts.in_flight = 1, frozenset({f"thumbs/_collisions/{LABEL}.png"})
    assert codes(facts) == [("pending-steps", "", True)]


def test_temporaries_catalog_damage_and_unreadable_records() -> None:
    facts = sound_facts()
    facts.temporaries = ("thumbs/.watcherd-tmp-1",)
    facts.integrity = ["row 3 missing from index sqlite_autoindex_images_1"]
    facts.unreadable = [("images", "x.png", "ValueError: not JSON")]
    facts.steps = 1
    assert codes(facts) == [
        ("catalog-damaged", "", False),
        ("pending-steps", "", True),
        ("temporary", "thumbs/.watcherd-tmp-1", True),
        ("unreadable-record", "x.png", False),
    ]


def test_the_export_must_say_what_the_catalog_says() -> None:
    facts = sound_facts()
    entry = {"tags": ["cats"], "other_filenames": [], "original": None, "source": False}
    facts.export = ExportFacts(".watcherd/catalog.export.json", None, images={A: entry})
    assert codes(facts) == [("stale-export", ".watcherd/catalog.export.json", True)]
    facts.export.document = {"version": 1, "images": {A: entry}, "collisions": [], "meta": {}}
    assert codes(facts) == []
    facts.export.document["images"] = {A: {**entry, "tags": ["dogs"]}, B: entry}
    problem = only(facts)
    assert "1 images not in the catalog (first: " + B in problem.detail and "1 images different" in problem.detail
    facts.export = ExportFacts("x", None)  # an empty library needs no export yet
    assert codes(facts) == []
    facts.export = ExportFacts("x", None, error="Expecting value")
    assert codes(facts) == [("stale-export", "x", True)]


def test_an_unfinished_rebuild_is_reported_and_its_export_is_not_stale() -> None:
    """A rebuild stopped before the catalog was whole keeps the export as it is on purpose
    (the next writer rebuilds from it): that is said once, not as a stale export --repair
    would write again; with a writer at work it is a note."""
    facts = sound_facts()
    facts.export = ExportFacts(".watcherd/catalog.export.json", None, images={A: {"tags": ["cats"]}})
    assert codes(facts) == [("stale-export", ".watcherd/catalog.export.json", True)]
    facts.rebuilding = True
    assert codes(facts) == [("unfinished-rebuild", "", False)]
    facts.live = True
    assert codes(facts) == [] and [p.code for p in verdicts(facts).notes] == [Code.UNFINISHED_REBUILD]


def test_the_near_index_with_its_log_must_hold_exactly_the_present_hashes() -> None:
    facts = sound_facts()
    h = int(A.split("_")[1], 16)
    facts.images = {A: image(original=f"originals/{A[:-4]}.jpg", hash=A.split("_")[1])}
    table = {7: (A, h, False)}
    facts.near_index = NearFacts(table=table, epoch="e", trimmed=0, head=5)
    assert codes(facts) == []
    facts.near_index.index = IndexFacts(".watcherd/near/index.bin", epoch="e", seq=3, entries={7: (h, False)})
    assert codes(facts) == []
    facts.near_index.index.entries = {6: (h, False)}  # row 6 was replaced by row 7 ...
    assert codes(facts) == [("near-index", ".watcherd/near/index.bin", True)]
    facts.near_index.log = {6: None, 7: (h, False)}  # ... which the log after the index says
    assert codes(facts) == []
    facts.near_index.index.epoch = "other"  # built for another derivation: void, every reader rebuilds it
    facts.near_index.log = {}
    assert codes(facts) == []
    facts.near_index.index.error = "the index cannot be read: cut short"
    assert codes(facts) == [("near-index", ".watcherd/near/index.bin", True)]


def test_the_hashes_table_must_follow_the_records() -> None:
    facts = sound_facts()
    facts.images = {A: image(original=f"originals/{A[:-4]}.jpg", hash="00000011ffefefff")}
    facts.near_index = NearFacts(table={})
    assert codes(facts) == [("derived-table", "", False)]
