"""Decisions about collisions, made by the ``resolve`` and ``undo`` edits, and reverted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from tests.helpers import digest, encode, scene, write
from tests.invariants import check_library
from watcherd.catalog import Catalog
from watcherd.commands import duplicates, edits
from watcherd.commands.library import Library
from watcherd.core.collisionrecords import CollisionRecord, Verdict
from watcherd.core.config import Config
from watcherd.core.errors import UsageError
from watcherd.core.exif import Exif
from watcherd.core.outcomes import Outcome
from watcherd.core.records import ImageRecord
from watcherd.decide import deciding
from watcherd.decide.decisions import Decisions
from watcherd.decode import chunks, imaging
from watcherd.filing.context import Context
from watcherd.filing.originals import Filing
from watcherd.flow.pipeline import Pipeline


def at(cfg: Config, rel: str | None) -> Path:
    assert cfg.root is not None and rel is not None
    return cfg.root / rel


def files_under(cfg: Config) -> dict[str, str]:
    """Every file under the library's thumbs and originals folders (relative path -> sha256), but the
    XMP sidecars: derived from the records, they follow their originals (test_tagfiles.py)."""
    assert cfg.root is not None
    out = {}
    for top in (cfg.thumbs_dir, cfg.originals_dir):
        for p in top.rglob("*"):
            if p.is_file() and p.suffix != ".xmp":
                out[p.relative_to(cfg.root).as_posix()] = digest(p.read_bytes())
    return out


def collide(cfg: Config, pipeline: Pipeline) -> tuple[CollisionRecord, dict[str, bytes]]:
    """cats/a.png, then the same picture as JPEG in dogs/: a perceptual collision."""
    im = scene(seed=6)
    first, second = encode(im, "PNG"), encode(im, "JPEG", quality=95)
    assert pipeline.process(write(cfg.thumbs_dir / "cats" / "a.png", first)).outcome is Outcome.INGESTED
    assert pipeline.process(write(cfg.thumbs_dir / "dogs" / "b.jpg", second)).outcome is Outcome.COLLISION
    (col,) = pipeline.catalog.collisions()
    return col, {"a.png": first, "b.jpg": second}


def test_dupes_lists_undecided_with_an_id_and_all_adds_decided(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    col, _ = collide(cfg, pipeline)
    (item,) = duplicates.dupes(catalog)
    assert item["id"] == col.id and item["decision"] is None and item["decided"] is None
    edits.resolve(cfg, catalog, col.id, "keep-existing")
    assert duplicates.dupes(catalog) == []
    (item,) = duplicates.dupes(catalog, decided=True)
    assert item["decision"] == "keep-existing" and item["decided"]
    assert catalog.counts()["collisions"] == 0


def test_distinct_catalogues_the_newcomer_under_a_variant_name_where_it_was_dropped(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    col, dropped = collide(cfg, pipeline)
    before = files_under(cfg)
    done = edits.resolve(cfg, catalog, col.id, "distinct")
    assert col.newcomer.sha256 is not None
    name = f"{col.name[: -len('.png')]}~{col.newcomer.sha256[:12]}.png"
    made = done.pop("made")  # type: ignore[misc]
    assert done == {"id": col.id, "decision": "distinct", "image": name, "undone": False}
    assert made["decision"] == "distinct" and made["via"] == "command" and made["decided"] and made["token"]
    rec = catalog.image(name)
    assert rec is not None and rec.path == f"thumbs/dogs/{name}" and rec.tags == ["dogs", "320x240"]
    assert rec.original == f"originals/{name[: -len('.png')]}.jpg" and rec.moving_from is None
    assert at(cfg, rec.original).read_bytes() == dropped["b.jpg"]
    assert not at(cfg, col.newcomer.thumbnail).exists()
    assert check_library(cfg.root or Path(), dropped) == []
    # a second decision is refused; undo puts every file back where it was
    with pytest.raises(UsageError, match="already decided"):
        edits.resolve(cfg, catalog, col.id, "keep-existing")
    assert edits.undo(cfg, catalog, imaging.render)["id"] == col.id
    assert catalog.image(name) is None
    (again,) = catalog.collisions()
    assert again.decision is None and again.newcomer.original == col.newcomer.original
    assert files_under(cfg) == before
    with pytest.raises(UsageError, match="no decision to undo"):
        edits.undo(cfg, catalog, imaging.render)


def test_two_newcomers_of_the_same_bytes_decided_distinct_are_two_images(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    """Each takes its collision's id as its name (``X~sha12``, ``X~sha12~2``): one name per image."""
    col, dropped = collide(cfg, pipeline)
    again = write(cfg.thumbs_dir / "dogs" / "c.jpg", dropped["b.jpg"])
    assert pipeline.process(again).outcome is Outcome.COLLISION
    second = next(c for c in catalog.collisions() if c.id != col.id)
    assert second.id == f"{col.id}~2"
    first_name = edits.resolve(cfg, catalog, col.id, "distinct")["image"]
    second_name = edits.resolve(cfg, catalog, second.id, "distinct")["image"]
    assert (first_name, second_name) == (f"{col.id}.png", f"{col.id}~2.png")
    for name in (f"{col.id}.png", f"{col.id}~2.png"):
        rec = catalog.image(name)
        assert rec is not None and rec.path == f"thumbs/dogs/{name}" and rec.sha256 == digest(dropped["b.jpg"])
    assert check_library(cfg.root or Path(), {**dropped, "c.jpg": dropped["b.jpg"]}) == []


def test_a_collision_decided_distinct_is_no_near_group(cfg: Config, catalog: Catalog, pipeline: Pipeline) -> None:
    col, _ = collide(cfg, pipeline)
    library = Library(cfg)
    assert [d["kind"] for d in library.dupes(near=4)] == ["perceptual"]
    variant = edits.resolve(cfg, catalog, col.id, "distinct")["image"]
    # The two images look alike (a distance of 0 or so): told apart once, never listed again.
    assert library.dupes(near=4) == []
    decided = [d for d in library.dupes(near=4, decided=True) if d["kind"] == "near"]
    assert [(d["names"], d["decision"]) for d in decided] == [([col.name, variant], "distinct")]
    edits.undo(cfg, catalog, imaging.render)
    assert [d["kind"] for d in library.dupes(near=4)] == ["perceptual"]


def test_a_set_aside_that_fails_is_tried_again_not_forgotten(cfg: Config, catalog: Catalog, pipeline: Pipeline) -> None:
    col, dropped = collide(cfg, pipeline)
    blocker = cfg.originals_dir / "_duplicates"
    blocker.write_bytes(b"a file where the archive folder should be")
    edits.resolve(cfg, catalog, col.id, "keep-newcomer")  # sets the existing original aside
    assert at(cfg, col.existing.original).read_bytes() == dropped["a.png"]  # not moved: still where it was
    (decided,) = catalog.collisions()
    assert decided.decision is not None and decided.decision.setting_aside  # still to do, not forgotten
    blocker.unlink()
    assert pipeline.filing.finish_pending() == 1  # what the next scan's start does
    (decided,) = catalog.collisions()
    assert decided.decision is not None and not decided.decision.setting_aside
    assert at(cfg, decided.decision.archived).read_bytes() == dropped["a.png"]
    assert check_library(cfg.root or Path(), dropped) == []


def test_keep_existing_archives_the_newcomer_and_merges_tags_and_name(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    col, dropped = collide(cfg, pipeline)
    before = files_under(cfg)
    edits.resolve(cfg, catalog, col.id, "keep-existing")
    kept = catalog.image(col.name)
    assert kept is not None and kept.tags == ["cats", "320x240", "dogs"] and kept.other_filenames == ["b.jpg"]
    (decided,) = catalog.collisions()
    assert decided.newcomer.original == f"originals/_duplicates/{col.id}.jpg"
    assert at(cfg, decided.newcomer.original).read_bytes() == dropped["b.jpg"]
    assert not at(cfg, col.newcomer.thumbnail).exists()  # watcherd's own thumbnail went away
    assert check_library(cfg.root or Path(), dropped) == []
    edits.undo(cfg, catalog, imaging.render)
    kept = catalog.image(col.name)
    assert kept is not None and kept.tags == ["cats", "320x240"] and kept.other_filenames == []
    after = files_under(cfg)
    assert after.keys() == before.keys()  # the thumbnail is made again (its ingest time differs)
    assert {k: v for k, v in after.items() if "thumbs/_collisions" not in k} == {
        k: v for k, v in before.items() if "thumbs/_collisions" not in k
    }


def test_keep_newcomer_takes_the_name_and_archives_the_existing_original(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    col, dropped = collide(cfg, pipeline)
    before = files_under(cfg)
    edits.resolve(cfg, catalog, col.id, Verdict.KEEP_NEWCOMER.value)
    kept = catalog.image(col.name)
    assert kept is not None and kept.sha256 == digest(dropped["b.jpg"]) and kept.original_filename == "b.jpg"
    assert kept.other_filenames == ["a.png"] and kept.tags == ["cats", "320x240", "dogs"]
    assert kept.original == f"originals/{col.name[: -len('.png')]}.jpg"
    assert at(cfg, kept.original).read_bytes() == dropped["b.jpg"]
    (decided,) = catalog.collisions()
    assert decided.decision is not None and decided.decision.archived is not None
    assert decided.decision.archived.startswith("originals/_duplicates/")
    assert at(cfg, decided.decision.archived).read_bytes() == dropped["a.png"]
    thumb = at(cfg, kept.path)
    assert digest(thumb.read_bytes()) == before[col.newcomer.thumbnail or ""]  # the newcomer's thumbnail
    assert not at(cfg, col.newcomer.thumbnail).exists()
    assert check_library(cfg.root or Path(), dropped) == []
    edits.undo(cfg, catalog, imaging.render)
    kept = catalog.image(col.name)
    assert kept is not None and kept.sha256 == digest(dropped["a.png"]) and kept.original_filename == "a.png"
    assert kept.other_filenames == [] and kept.tags == ["cats", "320x240"]
    assert files_under(cfg).keys() == before.keys()
    assert at(cfg, kept.original).read_bytes() == dropped["a.png"]
    assert check_library(cfg.root or Path(), dropped) == []


def test_what_the_record_keeps_of_its_thumbnail_follows_keep_newcomer_and_its_undo(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    """The newcomer's thumbnail takes the image's places: its window hashes and EXIF become the
    record's (a camera's JPEG beside an EXIF-less PNG), and undoing gives the old ones back."""
    im = scene(seed=6)
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = "Canon", "Canon EOS 80D"
    assert pipeline.process(write(cfg.thumbs_dir / "cats" / "a.png", encode(im, "PNG"))).outcome is Outcome.INGESTED
    camera = encode(im, "JPEG", quality=95, exif=exif.tobytes())
    assert pipeline.process(write(cfg.thumbs_dir / "dogs" / "b.jpg", camera)).outcome is Outcome.COLLISION
    (col,) = catalog.collisions()
    before = catalog.image(col.name)
    assert before is not None and before.exif == Exif(0, {})

    def as_thumbnail_says(rec: ImageRecord | None) -> tuple[str, Exif]:
        assert rec is not None
        text = chunks.read_text(at(cfg, rec.path).read_bytes())
        return text["crops"], Exif.of(text)

    edits.resolve(cfg, catalog, col.id, Verdict.KEEP_NEWCOMER.value)
    kept = catalog.image(col.name)
    assert kept is not None and kept.exif is not None and kept.exif.fields["Model"] == "Canon EOS 80D"
    assert (kept.crops, kept.exif) == as_thumbnail_says(kept) and kept.crops != before.crops
    edits.undo(cfg, catalog, imaging.render)
    again = catalog.image(col.name)
    assert again is not None and (again.crops, again.exif) == (before.crops, before.exif)
    assert (again.crops, again.exif) == as_thumbnail_says(again)


def test_unknown_ids_and_decisions_are_refused(cfg: Config, catalog: Catalog, pipeline: Pipeline) -> None:
    col, _ = collide(cfg, pipeline)
    with pytest.raises(UsageError, match="no collision with id"):
        edits.resolve(cfg, catalog, "nope", "distinct")
    with pytest.raises(UsageError, match="choose one of"):
        edits.resolve(cfg, catalog, col.id, "merge")


def test_a_copy_under_a_name_of_its_own_beside_a_thumbnail_stays_a_copy_after_keep_newcomer(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    """A copy of cats/X.png under a name of the user's, beside it, is no place of the image (a
    documented leftover: "a copy of X"). Keep-newcomer replaces X.png; the copy, now of the
    original set aside, is still said to be a copy (of X from before), not an unknown thumbnail."""
    col, dropped = collide(cfg, pipeline)
    holder = catalog.image(col.name)
    assert holder is not None
    mine = at(cfg, holder.path).with_name("my own.png")
    mine.write_bytes(at(cfg, holder.path).read_bytes())
    assert pipeline.process(mine).outcome is Outcome.ERROR
    assert pipeline.process(mine).outcome is Outcome.IGNORED  # already reported
    edits.resolve(cfg, catalog, col.id, Verdict.KEEP_NEWCOMER.value)
    # Looked at again: the file it was a copy of is another one now.
    assert pipeline.process(mine).outcome is Outcome.ERROR
    err = catalog.error("thumbs/cats/my own.png")
    (decided,) = catalog.collisions()
    assert decided.decision is not None and err is not None
    assert err.reason == (
        f"a copy of {col.name} from before a keep-newcomer decision replaced its original "
        f"(set aside at {decided.decision.archived}); left as it is"
    )
    assert mine.read_bytes() != at(cfg, holder.path).read_bytes()  # left as it is
    assert pipeline.process(mine).outcome is Outcome.IGNORED  # and said once
    assert check_library(cfg.root or Path(), dropped, bad={"my own.png"}) == []
    edits.undo(cfg, catalog, imaging.render)  # the old thumbnail back beside it: a plain copy again
    assert pipeline.process(mine).outcome is Outcome.ERROR
    again = catalog.error("thumbs/cats/my own.png")
    assert again is not None and again.reason == f"a copy of {col.name} in the same folder; left as it is"
    assert check_library(cfg.root or Path(), dropped, bad={"my own.png"}) == []


def test_bytes_of_a_forgotten_distinct_image_dropped_again_are_a_new_collision(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    """The image a ``distinct`` made was deleted and forgotten; its bytes dropped again collide
    anew. The decided collision keeps no original: a newcomer's original went to the image its
    decision made, so it is not one that went astray before filing (the soak, seed 131, found it
    filed into ``originals/_collisions/`` under the decided collision, owned by nobody)."""
    col, dropped = collide(cfg, pipeline)
    name = str(edits.resolve(cfg, catalog, col.id, Verdict.DISTINCT.value)["image"])
    made = catalog.image(name)
    assert made is not None
    at(cfg, made.path).unlink()
    assert pipeline.process(at(cfg, made.path)).outcome is Outcome.MISSING
    edits.forget(catalog, [name])
    again = write(cfg.thumbs_dir / "birds" / "b again.jpg", dropped["b.jpg"])
    assert pipeline.process(again).outcome is Outcome.COLLISION
    decided, fresh = sorted(catalog.collisions(), key=lambda c: c.decision is None)
    assert decided.id == col.id and decided.newcomer.original is None and decided.newcomer.moving_from is None
    assert fresh.decision is None and fresh.id != col.id and fresh.newcomer.original is not None
    assert at(cfg, fresh.newcomer.original).read_bytes() == dropped["b.jpg"]
    assert check_library(cfg.root or Path(), {**dropped, "b again.jpg": dropped["b.jpg"]}) == []


def test_undoing_keep_newcomer_gives_back_the_thumbnail_it_replaced_byte_for_byte(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    """The thumbnail made again from the original set aside says when that image was ingested,
    not when it was undone: it is the thumbnail it replaced again, and a copy of that one beside
    it is a copy again (a made-again thumbnail stamped with the undo's second was not, whenever
    the undo came in another second than the ingest)."""
    col, _ = collide(cfg, pipeline)
    holder = catalog.image(col.name)
    assert holder is not None
    thumb = at(cfg, holder.path)
    before = thumb.read_bytes()
    edits.resolve(cfg, catalog, col.id, Verdict.KEEP_NEWCOMER.value)
    assert thumb.read_bytes() != before
    later = Context(cfg, catalog, now=lambda: time.time() + 3600)  # another second, surely
    deciding.undo(Decisions(later, Filing(later), imaging.render))
    assert thumb.read_bytes() == before


def test_a_copy_made_while_keep_newcomer_was_in_effect_is_the_newcomers_copy_after_undo(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    """Duplicated in place while keep-newcomer gave the image the newcomer's bytes, then the
    decision undone: the copy is a copy of the newcomer's thumbnail (back in ``_collisions/``),
    left as it is; it decides nothing (soak seed 260)."""
    col, dropped = collide(cfg, pipeline)
    edits.resolve(cfg, catalog, col.id, Verdict.KEEP_NEWCOMER.value)
    holder = catalog.image(col.name)
    assert holder is not None
    thumb = at(cfg, holder.path)
    copy_named = thumb.with_name(f"{thumb.stem} (copy).png")
    copy_named.write_bytes(thumb.read_bytes())
    assert "a copy of" in pipeline.process(copy_named).detail
    deciding.undo(Decisions(pipeline.ctx, Filing(pipeline.ctx), imaging.render))
    again = pipeline.process(copy_named)  # looked at again: the thumbnail beside it changed
    assert again.outcome is Outcome.ERROR
    assert again.detail.startswith(f"a copy of {col.distinct_name}, the newcomer of an undecided collision")
    (undecided,) = catalog.collisions()
    assert undecided.decision is None and at(cfg, undecided.newcomer.thumbnail).exists()
    assert copy_named.exists()
    assert check_library(cfg.root or Path(), dropped, bad={copy_named.name}) == []
