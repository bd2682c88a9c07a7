"""A collision refers to its images by what they are: folders renamed and thumbnails moved
before it is decided change nothing about what each decision does (issue: records that
remembered where a file *was*)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import encode, scene, table, write
from tests.invariants import check_library
from watcherd.catalog import Catalog
from watcherd.commands import duplicates, edits
from watcherd.commands.library import Library
from watcherd.core.collisionrecords import CollisionRecord
from watcherd.core.config import Config
from watcherd.core.events import Change, ChangeKind
from watcherd.decode import imaging
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile
from watcherd.web.review import Queue


def collide(cfg: Config, pipeline: Pipeline) -> tuple[CollisionRecord, dict[str, bytes]]:
    """a/x.png, then the same picture as JPEG dropped in drop/: a perceptual collision."""
    im = scene(seed=61)
    first, second = encode(im, "PNG"), encode(im, "JPEG", quality=95)
    pipeline.process(write(cfg.thumbs_dir / "a" / "x.png", first))
    pipeline.process(write(cfg.thumbs_dir / "drop" / "y.jpg", second))
    (col,) = pipeline.catalog.collisions()
    return col, {"x.png": first, "y.jpg": second}


def rename_both(cfg: Config, pipeline: Pipeline) -> None:
    os.rename(cfg.thumbs_dir / "a", cfg.thumbs_dir / "a2")
    (cfg.thumbs_dir / "sorted").mkdir()
    os.rename(cfg.thumbs_dir / "drop", cfg.thumbs_dir / "sorted" / "drop2")  # renamed and moved
    reconcile(pipeline, reason="test", settle=0)  # what the daemon's events amount to


def test_distinct_after_the_drop_folder_was_renamed_lands_in_that_folder(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    col, dropped = collide(cfg, pipeline)
    rename_both(cfg, pipeline)
    name = edits.resolve(cfg, catalog, col.id, "distinct")["image"]
    rec = catalog.image(str(name))
    assert rec is not None
    assert rec.path == f"thumbs/sorted/drop2/{name}"
    assert {"sorted", "drop2"} <= set(rec.tags) and "drop" not in rec.tags
    assert not (cfg.thumbs_dir / "drop").exists()  # not made again under its old name
    assert cfg.root is not None
    assert check_library(cfg.root, dropped) == []


def test_keep_existing_after_the_drop_folder_was_renamed_adds_that_folders_tags(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    col, _dropped = collide(cfg, pipeline)
    rename_both(cfg, pipeline)
    edits.resolve(cfg, catalog, col.id, "keep-existing")
    kept = catalog.image(col.name)
    assert kept is not None and kept.path == f"thumbs/a2/{col.name}"
    assert {"a", "a2", "sorted", "drop2"} <= set(kept.tags)


def test_distinct_when_the_drop_folder_is_gone_makes_it_again(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    col, _dropped = collide(cfg, pipeline)
    (cfg.thumbs_dir / "drop").rmdir()  # empty once the newcomer went to _collisions/
    name = edits.resolve(cfg, catalog, col.id, "distinct")["image"]
    assert (cfg.thumbs_dir / "drop" / str(name)).is_file()


def test_dupes_and_the_page_show_where_the_existing_image_is_now(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    col, _ = collide(cfg, pipeline)
    (cfg.thumbs_dir / "a" / "drinks").mkdir()
    os.rename(cfg.thumbs_dir / "a" / col.name, cfg.thumbs_dir / "a" / "drinks" / col.name)  # one file moved
    reconcile(pipeline, reason="test", settle=0)
    (item,) = duplicates.dupes(catalog, root=cfg.root)
    assert item["existing"]["thumbnail"] == f"thumbs/a/drinks/{col.name}"
    assert f"thumbs/a/drinks/{col.name}" in item["paths"] and f"thumbs/a/{col.name}" not in item["paths"]
    assert all(os.path.lexists(Path(str(cfg.root), p)) for p in item["paths"])

    rename_both(cfg, pipeline)  # then whole folders
    (item,) = duplicates.dupes(catalog, root=cfg.root)
    assert item["existing"]["thumbnail"] == f"thumbs/a2/drinks/{col.name}"
    assert all(os.path.lexists(Path(str(cfg.root), p)) for p in item["paths"])

    queue = Queue(Library(cfg), catalog)
    assert queue.would_get(col) == ["sorted", "drop2", col.name.split("_")[0]]
    (page_item,) = [queue.collision(item, c) for c in catalog.collisions()]
    assert page_item.sides[0].thumbnail == f"thumbs/a2/drinks/{col.name}"


@pytest.mark.parametrize("verdict", ["keep-newcomer", "distinct"])
def test_every_decision_works_after_the_existing_image_moved(
    cfg: Config, catalog: Catalog, pipeline: Pipeline, verdict: str
) -> None:
    col, dropped = collide(cfg, pipeline)
    rename_both(cfg, pipeline)
    edits.resolve(cfg, catalog, col.id, verdict, render=imaging.render)
    edits.undo(cfg, catalog, render=imaging.render)
    assert [c.get("decision", None) for c in table(cfg.database_path, "collisions")] == [None]
    edits.resolve(cfg, catalog, col.id, verdict, render=imaging.render)
    assert cfg.root is not None
    assert check_library(cfg.root, dropped) == []


def test_a_newcomer_moved_into_a_folder_that_moves_on_at_once_is_decided_where_it_lands(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    """The gesture's event names a path the thumbnail has left (its folder moved meanwhile):
    not an internal error; the path is gone, and the walk decides it where it is now."""
    col, dropped = collide(cfg, pipeline)
    assert col.newcomer.thumbnail is not None
    seen_at = cfg.thumbs_dir / "b" / os.path.basename(col.newcomer.thumbnail)
    seen_at.parent.mkdir()
    os.rename(cfg.root / col.newcomer.thumbnail, seen_at)  # type: ignore[operator]
    # The gesture is recognised (its chunks read), then the folder moves on before it is decided.
    os.rename(cfg.thumbs_dir / "b", cfg.thumbs_dir / "b2")
    assert col.newcomer.sha256 is not None
    assert pipeline.moves.gestures.thumbnail_placed(seen_at, col.newcomer.sha256, col.name) is None
    (still,) = catalog.collisions()
    assert still.decision is None  # nothing changed
    pipeline.process(seen_at)  # the event, handled late: the path is gone, and that is all
    renamed = seen_at.with_name("mine.png")  # the same for a thumbnail renamed by hand
    pipeline.process(renamed)
    assert table(cfg.database_path, "errors") == []
    reconcile(pipeline, reason="test", settle=0)
    (decided,) = catalog.collisions()
    assert decided.decision is not None and decided.decision.kind.value == "distinct"
    rec = catalog.image(decided.decision.image or "")
    assert rec is not None and rec.path.startswith("thumbs/b2/")
    assert check_library(cfg.root or Path(), dropped) == []


def test_a_move_seen_first_as_a_delete_then_in_a_batch_is_distinct_with_its_original(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    """The newcomer's thumbnail moved into the tree, its folder renamed at once: the daemon sees
    the thumbnail leave ``_collisions/`` (keep-existing: the original set aside) and later finds it
    in the renamed folder, in a batch. Distinct wins, and the original goes to the new image
    from wherever it is at that moment, in the same batch."""
    col, dropped = collide(cfg, pipeline)
    assert col.newcomer.thumbnail is not None and cfg.root is not None
    landed = cfg.thumbs_dir / "b2" / os.path.basename(col.newcomer.thumbnail)
    landed.parent.mkdir()
    os.rename(cfg.root / col.newcomer.thumbnail, landed)
    pipeline.handle(Change(ChangeKind.GONE, cfg.root / col.newcomer.thumbnail))  # the delete half, decided at once
    (kept,) = catalog.collisions()
    assert kept.decision is not None and kept.decision.kind.value == "keep-existing"
    list(pipeline.process_all([landed]))  # the thumbnail seen where it landed, in a batch
    (decided,) = catalog.collisions()
    assert decided.decision is not None and decided.decision.kind.value == "distinct"
    assert decided.newcomer.moving_from is None and decided.newcomer.original is None
    rec = catalog.image(decided.decision.image or "")
    assert rec is not None and rec.original is not None and rec.moving_from is None
    assert (cfg.root / rec.original).exists()
    assert pipeline.filing.finish_pending() == 0
    assert check_library(cfg.root, dropped) == []


def test_an_original_a_decision_left_on_its_way_is_filed_as_its_images(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    """What the bug above left in catalogs written before its fix: the collision still moving its
    newcomer's original (``moving_from``) to nowhere (``original`` None), the distinct image without
    an original. The next start files it as that image's, once."""
    col, dropped = collide(cfg, pipeline)
    name = edits.resolve(cfg, catalog, col.id, "distinct")["image"]
    rec = catalog.image(str(name))
    assert rec is not None and rec.original is not None and cfg.root is not None
    left = f"originals/_duplicates/{col.id}.jpg"
    (cfg.root / left).parent.mkdir(parents=True, exist_ok=True)
    os.rename(cfg.root / rec.original, cfg.root / left)
    (broken,) = catalog.collisions()
    broken.newcomer.moving_from, rec.original = left, None
    with catalog.transaction():
        catalog.put_collision(broken)
        catalog.put_image(rec)
    assert pipeline.filing.finish_pending() == 1
    (mended,) = catalog.collisions()
    assert mended.newcomer.moving_from is None and mended.newcomer.original is None
    filed = catalog.image(str(name))
    assert filed is not None and filed.original is not None and filed.moving_from is None
    assert (cfg.root / filed.original).exists() and not (cfg.root / left).exists()
    assert pipeline.filing.finish_pending() == 0
    assert check_library(cfg.root, dropped) == []


def test_distinct_whose_drop_folder_is_dragged_away_as_it_lands_is_decided_where_it_went(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    from watcherd.core.collisionrecords import Verdict
    from watcherd.core.errors import UsageError
    from watcherd.decide.decisions import Decisions
    from watcherd.filing.context import Context
    from watcherd.filing.originals import Filing

    col, dropped = collide(cfg, pipeline)
    drop, dragged = cfg.thumbs_dir / "drop", cfg.thumbs_dir / "elsewhere"

    def drag(step: str, path: Path) -> None:
        if step == "thumbnail" and drop.exists():  # the thumbnail is back in its folder, not yet recorded
            os.rename(drop, dragged)

    ctx = Context(cfg, catalog, checkpoint=drag)
    with pytest.raises(UsageError, match="moved on from thumbs/drop/"):  # one line, not an internal error
        Decisions(ctx, Filing(ctx), imaging.render).resolve(col.id, Verdict.DISTINCT)
    reconcile(pipeline, reason="test", settle=0)  # what the folder's move event leads to
    decided = catalog.collision(col.id)
    assert decided is not None and decided.decision is not None
    assert decided.decision.kind is Verdict.DISTINCT  # the gesture it became decided it
    rec = catalog.image(col.distinct_name)
    assert rec is not None and rec.path == f"thumbs/elsewhere/{col.distinct_name}"
    assert cfg.root is not None
    assert check_library(cfg.root, dropped) == []
