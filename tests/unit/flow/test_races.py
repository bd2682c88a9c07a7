"""Folders dragged while watcherd works in them, paused at the exact step with a checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

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


def test_a_copy_compared_with_a_thumbnail_dragged_away_meanwhile_is_named_back_later(
    cfg: Config, catalog: Catalog
) -> None:
    inbox, moved = cfg.thumbs_dir / "inbox", cfg.thumbs_dir / "sorted"
    src = drop(inbox / "a.jpg", seed=8)
    data = src.read_bytes()
    Pipeline(cfg, catalog).process(src)
    (thumb,) = inbox.glob("*.png")
    copy_named = thumb.with_name(f"{thumb.stem} (copy).png")  # as a file manager names a copy
    copy_named.write_bytes(thumb.read_bytes())

    def drag(step: str, path: Path) -> None:
        if step == "comparing" and path.exists():  # the copy is about to be compared with it
            moved.mkdir(exist_ok=True)
            os.rename(path, moved / path.name)

    pipeline = Pipeline(cfg, catalog, checkpoint=drag)
    result = pipeline.process(copy_named)
    assert result.retry and result.detail == "name taken meanwhile"  # no internal error: looked at again
    again = pipeline.process(copy_named)  # the retry: the name is free now
    assert again.path == inbox / thumb.name  # named back
    reconcile(pipeline, reason="test", settle=0)  # what the move event of the thumbnail leads to
    assert not copy_named.exists() and (inbox / thumb.name).exists() and (moved / thumb.name).exists()
    (rec,) = table(cfg.database_path, "images")
    assert sorted(rec["paths"]) == sorted([f"thumbs/inbox/{thumb.name}", f"thumbs/sorted/{thumb.name}"])
    assert not table(cfg.database_path, "errors")
    assert cfg.root is not None
    assert check_library(cfg.root, {"a.jpg": data}) == []


def test_a_notebook_original_moved_while_it_is_identified_is_not_linked(cfg: Config, catalog: Catalog) -> None:
    import io
    import warnings

    import imagehash
    from PIL import Image, PngImagePlugin

    from watcherd.core.outcomes import Outcome

    data = encode(scene((320, 240), seed=44))
    original = write(cfg.source_dirs[0] / "photo.jpg", data)
    img = Image.open(io.BytesIO(data))
    thumb = img.copy()
    thumb.thumbnail((64, 64))
    info = PngImagePlugin.PngInfo()  # what the notebook this project grew from wrote
    for key, value in {"filename": "photo.jpg", "width": "320", "height": "240", "format": "JPEG"}.items():
        info.add_text(key, value)
    folder = cfg.thumbs_dir / "by_size" / "320x240"
    folder.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        name = f"320x240_{imagehash.whash(img, hash_size=8)}_.png"
    thumb.save(folder / name, pnginfo=info)

    def move(step: str, path: Path) -> None:
        if step == "identified" and path.exists():  # read and found to be its original; then moved
            os.rename(path, path.with_name("renamed.jpg"))

    result = Pipeline(cfg, catalog, checkpoint=move).process(folder / name)
    assert result.outcome is Outcome.ADOPTED  # not an internal error
    (rec,) = table(cfg.database_path, "images")
    assert rec["original"] is None  # not linked to a file that is not there
    assert not original.exists() and original.with_name("renamed.jpg").read_bytes() == data


def test_a_copy_beside_a_thumbnail_made_again_by_keep_newcomer_stays_a_copy(cfg: Config, catalog: Catalog) -> None:
    """The same image's thumbnail made again at another time (a keep-newcomer of its exact
    collision: the same original dropped twice) differs in its bytes from a copy made of it
    before; the copy is still a copy of that image, not a file holding a name that is taken."""
    import time

    from watcherd.commands import edits

    inbox = cfg.thumbs_dir / "inbox"
    src = drop(inbox / "a.jpg", seed=10)
    data = src.read_bytes()
    Pipeline(cfg, catalog).process(src)
    (thumb,) = inbox.glob("*.png")
    copy_named = thumb.with_name(f"{thumb.stem} (copy).png")  # a file manager's duplicate in place
    copy_named.write_bytes(thumb.read_bytes())
    pipeline = Pipeline(cfg, catalog)
    assert "a copy of" in pipeline.process(copy_named).detail
    later = Pipeline(cfg, catalog, now=lambda: time.time() + 3600)  # the same bytes dropped again, later
    later.process(write(cfg.thumbs_dir / "again" / "a.jpg", data))
    (col,) = catalog.collisions()
    edits.resolve(cfg, catalog, col.id, "keep-newcomer")
    assert thumb.read_bytes() != copy_named.read_bytes()  # made again, at its ingest time
    again = pipeline.process(copy_named)  # looked at again: the file beside it changed
    assert "a copy of" in again.detail and copy_named.exists() and thumb.exists()
    (err,) = table(cfg.database_path, "errors")
    assert err["reason"].startswith("a copy of")
    assert cfg.root is not None
    assert check_library(cfg.root, {"a.jpg": data}, bad={copy_named.name}) == []


def test_the_same_bytes_again_whose_folder_is_dragged_as_they_are_set_aside_are_named_once(
    cfg: Config, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bytes a keep-existing settled, dropped again into a folder dragged away just as they are
    set aside: seen again where they went, they are set aside once, and the decision names
    only the file that is there (it named a second, planned place nothing ever reached:
    ``check`` said missing-original; soak seed 270)."""
    from tests.helpers import in_process
    from watcherd.commands import edits

    im = scene(seed=83)
    first, second = encode(im, "PNG"), encode(im, "JPEG", quality=95)
    pipeline = Pipeline(cfg, catalog)
    pipeline.process(write(cfg.thumbs_dir / "a" / "x.png", first))
    pipeline.process(write(cfg.thumbs_dir / "drop" / "y.jpg", second))
    (col,) = catalog.collisions()
    edits.resolve(cfg, catalog, col.id, "keep-existing")
    inbox, moved = cfg.thumbs_dir / "inbox", cfg.thumbs_dir / "sorted"

    def drag(step: str, path: Path) -> None:
        if step == "filing" and path.name == "again.jpg" and inbox.exists():  # recorded, about to be set aside
            os.rename(inbox, moved)

    Pipeline(cfg, catalog, checkpoint=drag).process(write(inbox / "again.jpg", second))
    assert (moved / "again.jpg").exists()  # went with its folder
    reconcile(pipeline, reason="test", settle=0)  # what the folder's move event leads to
    decided = catalog.collision(col.id)
    assert decided is not None and decided.decision is not None
    (again,) = decided.decision.again
    assert cfg.root is not None and (cfg.root / again).read_bytes() == second
    _, out, _ = in_process(capsys, "check", str(cfg.root), "--json")
    assert [p["code"] for p in json.loads(out)["problems"]] == ["stale-export"]  # (no scan wrote one here)
    assert check_library(cfg.root, {"x.png": first, "y.jpg": second, "again.jpg": second}) == []
