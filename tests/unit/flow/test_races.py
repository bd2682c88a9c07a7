"""Folders dragged while watcherd works in them, paused at the exact step with a checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import drop, encode, scene, table, write
from tests.invariants import check_library
from watcherd.catalog import Catalog
from watcherd.core.config import Config
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile


def test_a_folder_renamed_while_its_thumbnail_is_written_keeps_no_temporary(cfg: Config, catalog: Catalog) -> None:
    inbox, moved = cfg.thumbs_dir / "inbox", cfg.thumbs_dir / "sorted"
    src = drop(inbox / "a.jpg", seed=1)
    data = src.read_bytes()
    seen: list[str] = []

    def drag(step: str, path: Path) -> None:
        seen.append(step)
        if step == "publishing" and inbox.exists():  # the temporary is written, not yet published
            os.rename(inbox, moved)

    pipeline = Pipeline(cfg, catalog, checkpoint=drag)
    pipeline.process(src)
    assert seen[0] == "publishing"
    assert not list(cfg.thumbs_dir.rglob(".watcherd-tmp-*"))  # not left in the folder that moved
    reconcile(pipeline, reason="test", settle=0)  # what the folder's move event leads to
    (rec,) = table(cfg.database_path, "images")
    assert rec["path"].startswith("thumbs/sorted/") and rec["state"] == "present"
    assert rec["tags"][0] == "inbox" and "sorted" in rec["tags"]
    assert cfg.root is not None
    assert check_library(cfg.root, {"a.jpg": data}) == []


def test_a_collision_whose_folder_is_renamed_before_filing_is_recorded_once(cfg: Config, catalog: Catalog) -> None:
    data = encode(scene(seed=81))
    first = Pipeline(cfg, catalog)
    first.process(write(cfg.thumbs_dir / "a.jpg", data))
    first.process(write(cfg.thumbs_dir / "x" / "b.jpg", data))  # a first collision, filed
    y, z = cfg.thumbs_dir / "y", cfg.thumbs_dir / "z"

    def drag(step: str, path: Path) -> None:
        if step == "filing" and path.name == "c.jpg" and y.exists():  # recorded, about to be filed
            os.rename(y, z)

    pipeline = Pipeline(cfg, catalog, checkpoint=drag)
    pipeline.process(write(y / "c.jpg", data))
    assert z.is_dir() and (z / "c.jpg").exists()  # the original went with its folder
    reconcile(pipeline, reason="test", settle=0)
    images, collisions = table(cfg.database_path, "images"), table(cfg.database_path, "collisions")
    assert len(images) + len(collisions) == 3  # one record per dropped file
    originals = [c["newcomer"]["original"] for c in collisions]
    assert len(set(originals)) == 2
    assert cfg.root is not None
    assert check_library(cfg.root, {"a.jpg": data, "b.jpg": data, "c.jpg": data}) == []


def test_a_folder_renamed_between_a_move_and_its_first_name_going_keeps_no_second_copy(
    cfg: Config, catalog: Catalog
) -> None:
    inbox, moved = cfg.thumbs_dir / "inbox", cfg.thumbs_dir / "sorted"
    data = [encode(scene(seed=s)) for s in (91, 92)]

    def drag(step: str, path: Path) -> None:
        # The original has its name in originals/ and still its first name in inbox/.
        if step == "moved" and path.name == "a.jpg" and inbox.exists():
            os.rename(inbox, moved)

    pipeline = Pipeline(cfg, catalog, checkpoint=drag)
    results = pipeline.process_all([write(inbox / "a.jpg", data[0]), write(inbox / "b.jpg", data[1])])
    try:
        list(results)
    finally:
        results.close()
    assert moved.is_dir() and not inbox.exists()
    assert not (moved / "a.jpg").exists()  # not stranded as a second name under the folder's new path
    reconcile(pipeline, reason="test", settle=0)
    assert len(table(cfg.database_path, "images")) == 2  # one record per dropped file
    assert table(cfg.database_path, "collisions") == []
    assert cfg.root is not None
    assert check_library(cfg.root, {"a.jpg": data[0], "b.jpg": data[1]}) == []


def test_a_folder_renamed_just_after_a_thumbnail_is_named_back_follows_it(cfg: Config, catalog: Catalog) -> None:
    inbox, moved = cfg.thumbs_dir / "inbox", cfg.thumbs_dir / "sorted"
    src = drop(inbox / "a.jpg", seed=7)
    data = src.read_bytes()

    def drag(step: str, path: Path) -> None:
        if step == "renamed back" and inbox.exists():  # its name given back, not yet looked at again
            os.rename(inbox, moved)

    Pipeline(cfg, catalog).process(src)
    (thumb,) = inbox.glob("*.png")
    copy_named = thumb.with_name(f"{thumb.stem} (copy).png")  # as a file manager names a copy
    os.rename(thumb, copy_named)
    pipeline = Pipeline(cfg, catalog, checkpoint=drag)
    result = pipeline.process(copy_named)
    assert result.detail == "gone"  # no internal error: it is seen where its folder went
    assert (moved / thumb.name).exists()
    reconcile(pipeline, reason="test", settle=0)  # what the folder's move event leads to
    (rec,) = table(cfg.database_path, "images")
    assert rec["path"] == f"thumbs/sorted/{thumb.name}" and rec["state"] == "present"
    assert not table(cfg.database_path, "errors")
    assert cfg.root is not None
    assert check_library(cfg.root, {"a.jpg": data}) == []
