"""The catalog is a cache: rebuild it from the tree, the PNG chunks and the export."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import canonical_files, drop, encode, scene, table, write
from watcherd.cli import main
from watcherd.core.config import Config


def _library(cfg: Config) -> Path:
    """Ingest two images, drag one through folders, make a collision; return its thumbnail."""
    assert cfg.root is not None
    data = encode(scene(seed=1))
    write(cfg.thumbs_dir / "a.jpg", data)
    drop(cfg.thumbs_dir / "keep" / "b.jpg", seed=2)
    _scan(cfg)
    thumb = canonical_files(cfg.thumbs_dir)[0]
    for folder in ("cute", "orange"):
        dest = cfg.thumbs_dir / folder / thumb.name
        dest.parent.mkdir()
        os.rename(thumb, dest)
        _scan(cfg)  # the scan notices the move and adds the folder's tag
        thumb = dest
    write(cfg.thumbs_dir / "again.jpg", data)
    _scan(cfg)
    return thumb


def _scan(cfg: Config, command: str = "scan") -> None:
    os.environ.pop("WATCHERD_CONFIG", None)
    assert main([command, str(cfg.root)]) == 0


def _state(cfg: Config) -> tuple[dict[str, Any], list[Any]]:
    images = {r["name"]: (sorted(r["tags"]), r["path"], r["original"], r["state"]) for r in _images(cfg)}
    collisions = sorted(
        (c["name"], c["kind"], c["newcomer"]["thumbnail"]) for c in table(cfg.database_path, "collisions")
    )
    return images, collisions


def _images(cfg: Config) -> list[dict[str, Any]]:
    return table(cfg.database_path, "images")


def test_rebuild_restores_accumulated_tags_and_collisions(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    thumb = _library(cfg)
    before = _state(cfg)
    assert sorted(before[0][thumb.name][0]) == ["320x240", "cute", "orange"]
    assert len(before[1]) == 1

    _scan(cfg, "rebuild")

    assert _state(cfg) == before
    kept = list(cfg.database_path.parent.glob("catalog.sqlite.replaced-*"))
    assert len(kept) == 1  # the old catalog is set aside, never deleted


def test_rebuild_records_a_missing_image_again_so_its_collision_can_still_be_kept(cfg: Config) -> None:
    """An image missing when the catalog is rebuilt has no thumbnail to be found by: the export
    carries its whole record, so it stays catalogued (missing, its tags and original kept) and
    an undecided collision naming it can still be settled by keeping it."""
    thumb = _library(cfg)
    thumb.unlink()  # the image with the undecided collision goes missing
    _scan(cfg)
    before = _state(cfg)
    assert before[0][thumb.name][3] == "missing" and len(before[1]) == 1
    old = {r["name"]: r for r in _images(cfg)}[thumb.name]

    _scan(cfg, "rebuild")

    assert _state(cfg) == before
    again = {r["name"]: r for r in _images(cfg)}[thumb.name]
    assert {k: again.get(k) for k in old} == old  # the record itself, not one made up from its name
    (col,) = table(cfg.database_path, "collisions")
    assert main(["resolve", str(cfg.root), col["id"], "keep-existing"]) == 0


@pytest.mark.parametrize("when", ["before anything is adopted", "after the adoption, before the collisions"])
def test_a_rebuild_stopped_by_ctrl_c_goes_on_at_the_next_start(
    cfg: Config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], when: str
) -> None:
    """Ctrl-C in a rebuild leaves a catalog that is not whole; the next writer goes on making
    it from the same export (not written meanwhile) instead of taking it for a whole one,
    which lost the tags of folders the thumbnails had left and the collisions."""
    from watcherd.flow import restore
    from watcherd.run.scan import scan_once

    _library(cfg)
    before = _state(cfg)
    export = restore.export_path(cfg).read_bytes()
    if when.startswith("before"):
        remembered = restore.remembered

        def stopped(*args: Any) -> Any:
            remembered(*args)
            raise KeyboardInterrupt  # the fresh catalog is made, nothing adopted into it yet

        monkeypatch.setattr(restore, "remembered", stopped)
        hook = None
    else:

        def hook(done: int, total: int) -> None:
            raise KeyboardInterrupt  # a batch of adoptions committed, the rest of the rebuild not done

    with pytest.raises(KeyboardInterrupt):
        scan_once(cfg, hook, rebuild=True)
    monkeypatch.undo()
    assert restore.export_path(cfg).read_bytes() == export  # what the next writer rebuilds from
    capsys.readouterr()
    assert main(["check", str(cfg.root), "--json"]) == 1
    assert "unfinished-rebuild" in [p["code"] for p in json.loads(capsys.readouterr().out)["problems"]]

    _scan(cfg)

    assert _state(cfg) == before


@pytest.mark.parametrize("command", ["scan", "rebuild"])
def test_a_missing_images_bytes_dropped_again_bring_it_back_in_a_rebuild_too(cfg: Config, command: str) -> None:
    """An image missing (its thumbnail deleted) whose bytes are dropped again comes back with
    its old tags and its original, the dropped copy set aside: in a rebuild as in a scan (the
    rebuild ingested the drop as a new image before it recorded the missing one, which then
    lost its tags)."""
    data = encode(scene(seed=5))
    write(cfg.thumbs_dir / "cats" / "a.jpg", data)
    _scan(cfg)
    (thumb,) = canonical_files(cfg.thumbs_dir / "cats")
    (cfg.thumbs_dir / "dogs").mkdir()
    os.rename(thumb, cfg.thumbs_dir / "dogs" / thumb.name)
    _scan(cfg)
    (cfg.thumbs_dir / "dogs" / thumb.name).unlink()
    _scan(cfg)
    (rec,) = _images(cfg)
    assert rec["state"] == "missing" and sorted(rec["tags"]) == ["320x240", "cats", "dogs"]
    dropped = write(cfg.thumbs_dir / "birds" / "again.jpg", data)
    os.utime(dropped, (time.time() - 60, time.time() - 60))  # settled: read in the walk, not after it

    _scan(cfg, command)

    (rec,) = _images(cfg)
    assert rec["state"] == "present" and rec["path"] == f"thumbs/birds/{thumb.name}"
    assert sorted(rec["tags"]) == ["320x240", "birds", "cats", "dogs"]
    assert cfg.root is not None and (cfg.root / rec["original"]).read_bytes() == data
    assert [p.read_bytes() for p in (cfg.root / "originals" / "_again").iterdir()] == [data]


@pytest.mark.parametrize("command", ["scan", "rebuild"])
def test_a_look_alike_of_a_missing_image_is_its_collision_in_a_rebuild_too(cfg: Config, command: str) -> None:
    """Other bytes with a missing image's name (the same picture saved again as PNG) are a
    collision with it, in a rebuild as in a scan. The rebuild took them for the image itself
    (it recorded the missing image only after its walk, and found the name taken): the image's
    record, its tags and its original were lost from the catalog."""
    write(cfg.thumbs_dir / "cats" / "a.jpg", encode(scene(seed=5)))
    _scan(cfg)
    (thumb,) = canonical_files(cfg.thumbs_dir / "cats")
    thumb.unlink()
    _scan(cfg)
    (before,) = _images(cfg)
    assert before["state"] == "missing"
    dropped = write(cfg.thumbs_dir / "birds" / "a.png", encode(scene(seed=5), "PNG"))
    os.utime(dropped, (time.time() - 60, time.time() - 60))  # settled: read in the walk, not after it

    _scan(cfg, command)

    (rec,) = _images(cfg)
    assert rec["name"] == before["name"] and rec["sha256"] == before["sha256"]
    assert sorted(rec["tags"]) == ["320x240", "cats"] and rec["original"] == before["original"]
    (col,) = table(cfg.database_path, "collisions")
    assert col["name"] == thumb.name and col["newcomer"]["filename"] == "a.png"


def test_a_rebuild_knows_a_copy_of_an_undecided_newcomers_thumbnail_for_what_it_is(cfg: Config) -> None:
    """A copy of an undecided newcomer's thumbnail in the tree, under a name of the person's, is
    said to be one, in a rebuild as in a scan: the rebuild records the export's collisions
    before its walk (after it, the walk took the copy for a thumbnail of other bytes than its
    image's, an error that stayed)."""
    write(cfg.thumbs_dir / "cats" / "a.jpg", encode(scene(seed=5)))
    _scan(cfg)
    write(cfg.thumbs_dir / "dogs" / "a.png", encode(scene(seed=5), "PNG"))  # a look-alike: other bytes
    _scan(cfg)
    (col,) = table(cfg.database_path, "collisions")
    assert cfg.root is not None and col["kind"] == "perceptual"
    newcomer = cfg.root / col["newcomer"]["thumbnail"]
    copy = cfg.thumbs_dir / "cats" / f"{newcomer.stem} (copy).png"
    copy.write_bytes(newcomer.read_bytes())
    os.utime(copy, (time.time() - 60, time.time() - 60))  # settled: read in the walk, not after it

    _scan(cfg, "rebuild")

    (error,) = table(cfg.database_path, "errors")
    assert error["path"] == f"thumbs/cats/{copy.name}"
    assert "the newcomer of an undecided collision" in error["reason"], error["reason"]


def test_a_thumbnail_deleted_while_no_writer_looked_keeps_its_image_through_a_rebuild(cfg: Config) -> None:
    """The catalog (and its export) still say present, the thumbnail is gone: the rebuild
    finds no thumbnail to adopt and no whole record in the export, and records the image as
    missing from its export entry and its original (its bytes give sha256 and size), tags
    kept, as a scan would have marked it. Before, it was dropped with its tags."""
    thumb = _library(cfg)
    (old,) = [r for r in _images(cfg) if r["name"] == thumb.name]
    thumb.unlink()  # no scan: nobody noticed

    _scan(cfg, "rebuild")

    (rec,) = [r for r in _images(cfg) if r["name"] == thumb.name]
    assert rec["state"] == "missing" and sorted(rec["tags"]) == sorted(old["tags"])
    assert (rec["sha256"], rec["file_size"], rec["original"]) == (old["sha256"], old["file_size"], old["original"])
    assert rec["first_seen"] == old["first_seen"] and rec["original_filename"] == old["original_filename"]
    assert main(["check", str(cfg.root)]) == 0


def test_a_rebuild_takes_a_distinct_images_thumbnail_for_it_not_for_an_undecided_newcomer(cfg: Config) -> None:
    """The same bytes dropped three times: two collisions, the first decided distinct (its
    newcomer is the image ``X~id``), the second undecided; their thumbnails are the same bytes.
    The rebuild, knowing the collisions before its walk, took ``X~id.png`` in the tree for the
    second newcomer's thumbnail moved there and decided that one distinct, leaving its own
    thumbnail in ``_collisions/`` an orphan. A name the export knows as an image is that image's."""
    data = encode(scene(seed=6))
    for folder, name in (("cats", "a.jpg"), ("dogs", "b.jpg"), ("birds", "c.jpg")):
        write(cfg.thumbs_dir / folder / name, data)
        _scan(cfg)
    first, second = sorted(table(cfg.database_path, "collisions"), key=lambda c: str(c["id"]))
    assert main(["resolve", str(cfg.root), first["id"], "distinct"]) == 0
    before = {r["name"]: (sorted(r["tags"]), r["path"], r["state"]) for r in _images(cfg)}
    assert len(before) == 2  # X and X~id

    _scan(cfg, "rebuild")

    assert {r["name"]: (sorted(r["tags"]), r["path"], r["state"]) for r in _images(cfg)} == before
    cols = {c["id"]: c for c in table(cfg.database_path, "collisions")}
    assert "decision" not in cols[second["id"]] and cols[first["id"]]["decision"]["kind"] == "distinct"
    assert main(["check", str(cfg.root)]) == 0


def test_rebuild_without_export_uses_folders_and_chunks(cfg: Config) -> None:
    thumb = _library(cfg)
    before_images, before_collisions = _state(cfg)
    cfg.database_path.with_name("catalog.export.json").unlink()

    _scan(cfg, "rebuild")

    images, collisions = _state(cfg)
    assert set(images) == set(before_images)
    assert images[thumb.name][0] == ["320x240", "orange"]  # only where it is now
    assert {k: v[1:] for k, v in images.items()} == {k: v[1:] for k, v in before_images.items()}
    assert collisions == before_collisions


def test_damaged_catalog_is_moved_aside_and_rebuilt(cfg: Config, caplog: pytest.LogCaptureFixture) -> None:
    thumb = _library(cfg)
    before = _state(cfg)
    cfg.database_path.write_bytes(b"this is no longer an SQLite database" * 100)

    _scan(cfg)

    assert "is damaged" in caplog.text and "rebuilding from the tree" in caplog.text
    assert len(list(cfg.database_path.parent.glob("catalog.sqlite.corrupt-*"))) == 1
    assert _state(cfg) == before
    assert thumb.exists()
