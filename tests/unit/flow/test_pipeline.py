"""The pipeline on a real temporary tree: ingest, move, tag, collide, refuse, resume."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import imagehash
import pytest
from PIL import Image

from tests.helpers import canonical_files, drop, encode, scene, sha, write
from watcherd.catalog import Catalog, open_for_writing
from watcherd.core.config import Config
from watcherd.core.outcomes import Outcome
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile


def under(cfg: Config, rel: str | None) -> Path:
    """The absolute path of a path the catalog records relative to ROOT."""
    assert cfg.root is not None and rel is not None
    return cfg.root / rel


def only(folder: Path) -> Path:
    files = canonical_files(folder)
    assert len(files) == 1, files
    return files[0]


def test_ingest_writes_thumbnail_moves_original_and_records(cfg: Config, pipeline: Pipeline) -> None:
    src = drop(cfg.thumbs_dir / "cats" / "2024" / "tom.JPG", scene((640, 480), seed=1))
    os.utime(src, (1_600_000_000, 1_600_000_000))
    digest = sha(src)
    expected_hash = str(imagehash.whash(Image.open(src)))

    result = pipeline.process(src)

    assert result.outcome is Outcome.INGESTED
    name = f"640x480_{expected_hash}_.png"
    thumb = cfg.thumbs_dir / "cats" / "2024" / name
    assert thumb.is_file() and not src.exists()
    original = cfg.originals_dir / f"640x480_{expected_hash}_.jpg"
    assert sha(original) == digest
    with Image.open(thumb) as im:
        assert max(im.size) == 64
        text = im.text
    assert text["original_filename"] == "tom.JPG"
    assert text["sha256"] == digest
    assert (text["width"], text["height"]) == ("640", "480")
    assert int(thumb.stat().st_mtime) == 1_600_000_000
    rec = pipeline.catalog.image(name)
    assert rec is not None
    assert rec.tags == ["cats", "640x480"]
    assert rec.path == f"thumbs/cats/2024/{name}"
    assert rec.original == f"originals/640x480_{expected_hash}_.jpg"
    assert rec.moving_from is None
    assert rec.state == "present"
    assert rec.sha256 == digest


def test_own_outputs_are_not_work(cfg: Config, pipeline: Pipeline) -> None:
    src = drop(cfg.thumbs_dir / "a.jpg", seed=2)
    pipeline.process(src)
    thumb = only(cfg.thumbs_dir)
    assert pipeline.process(thumb).outcome is Outcome.UNCHANGED
    assert not src.exists()
    assert pipeline.process(src).outcome is Outcome.IGNORED  # the original left: not a thumbnail gone
    assert len(list(pipeline.catalog.images())) == 1


def test_tags_accumulate_as_a_thumbnail_is_dragged(cfg: Config, pipeline: Pipeline) -> None:
    pipeline.process(drop(cfg.thumbs_dir / "a.jpg", seed=3))
    thumb = only(cfg.thumbs_dir)
    for folder in ("cute", "orange", ""):
        dest = cfg.thumbs_dir / folder / thumb.name
        dest.parent.mkdir(exist_ok=True)
        os.rename(thumb, dest)
        assert pipeline.process(dest).outcome is Outcome.MOVED
        assert pipeline.moves.gone(thumb).outcome is Outcome.IGNORED
        thumb = dest
    rec = pipeline.catalog.image(thumb.name)
    assert rec is not None
    assert rec.tags == ["320x240", "cute", "orange"]
    assert rec.path == f"thumbs/{thumb.name}"


def test_deleted_thumbnail_is_missing_not_forgotten(cfg: Config, pipeline: Pipeline) -> None:
    pipeline.process(drop(cfg.thumbs_dir / "x" / "a.jpg", seed=4))
    thumb = only(cfg.thumbs_dir / "x")
    saved = thumb.read_bytes()
    thumb.unlink()
    assert pipeline.moves.gone(thumb).outcome is Outcome.MISSING
    rec = pipeline.catalog.image(thumb.name)
    assert rec is not None and rec.state == "missing" and rec.tags == ["x", "320x240"]
    back = write(cfg.thumbs_dir / "y" / thumb.name, saved)
    assert pipeline.process(back).outcome is Outcome.MOVED
    rec = pipeline.catalog.image(thumb.name)
    assert rec is not None and rec.state == "present" and rec.tags == ["x", "320x240", "y"]


def test_exact_duplicate_is_a_collision_and_nothing_is_lost(cfg: Config, pipeline: Pipeline) -> None:
    data = encode(scene(seed=5))
    first = write(cfg.thumbs_dir / "a.jpg", data)
    pipeline.process(first)
    thumb = only(cfg.thumbs_dir)
    thumb_bytes = thumb.read_bytes()
    second = write(cfg.thumbs_dir / "b" / "again.jpg", data)

    result = pipeline.process(second)

    assert result.outcome is Outcome.COLLISION and result.detail == "exact"
    assert thumb.read_bytes() == thumb_bytes  # the existing thumbnail is untouched
    col = list(pipeline.catalog.collisions())
    assert len(col) == 1 and col[0].kind == "exact"
    newcomer = col[0].newcomer
    assert newcomer.thumbnail is not None and newcomer.thumbnail.startswith("thumbs/_collisions/")
    assert (under(cfg, newcomer.thumbnail)).is_file()
    assert hashlib.sha256((under(cfg, newcomer.original)).read_bytes()).hexdigest() == newcomer.sha256
    assert not second.exists()
    stored = [p for p in cfg.originals_dir.rglob("*") if p.is_file() and p.suffix != ".xmp"]  # sidecars aside
    assert len(stored) == 2 and all(p.read_bytes() == data for p in stored)
    # _collisions is neither a tag nor ingested again
    assert pipeline.process(under(cfg, newcomer.thumbnail)).outcome is Outcome.IGNORED
    assert "_collisions" not in {t for r in pipeline.catalog.images() for t in r.tags}


def test_perceptual_collision(cfg: Config, pipeline: Pipeline) -> None:
    im = scene(seed=6)
    pipeline.process(write(cfg.thumbs_dir / "a.png", encode(im, "PNG")))
    result = pipeline.process(write(cfg.thumbs_dir / "a.jpg", encode(im, "JPEG")))
    assert result.outcome is Outcome.COLLISION and result.detail == "perceptual"
    (col,) = list(pipeline.catalog.collisions())
    assert col.existing.sha256 != col.newcomer.sha256
    assert (under(cfg, col.newcomer.original)).suffix == ".jpg"


@pytest.mark.parametrize("algorithm", ["whash", "phash", "dhash", "average_hash"])
def test_distinct_blank_images_are_not_duplicates(cfg: Config, tmp_path: Path, algorithm: str) -> None:
    import dataclasses

    from watcherd.core.config import HashConfig

    cfg = dataclasses.replace(cfg, hash=HashConfig(algorithm=algorithm))
    cat = open_for_writing(cfg).catalog
    try:
        pipeline = Pipeline(cfg, cat)
        white = Image.new("RGB", (200, 100), "white")
        speck = white.copy()
        speck.putpixel((5, 5), (250, 250, 250))
        grey_logo = Image.new("RGBA", (200, 100), (0, 0, 0, 0))  # fully transparent: white when flattened
        results = [
            pipeline.process(write(cfg.thumbs_dir / name, data))
            for name, data in (
                ("white.png", encode(white, "PNG")),
                ("speck.png", encode(speck, "PNG")),
                ("clear.png", encode(grey_logo, "PNG")),
            )
        ]
        assert [r.outcome for r in results] == [Outcome.INGESTED] * 3
        names = {r.name for r in results}
        assert len(names) == 3  # plain names where hashes differ, variants where they clash
        assert all(rec.low_information for rec in cat.images())
        assert list(cat.collisions()) == []
        # identical bytes still are duplicates
        again = pipeline.process(write(cfg.thumbs_dir / "white-again.png", encode(white, "PNG")))
        assert again.outcome is Outcome.COLLISION and again.detail == "exact"
    finally:
        cat.close()


def test_third_copy_gets_its_own_collision(cfg: Config, pipeline: Pipeline) -> None:
    data = encode(scene(seed=7))
    for i in range(3):
        pipeline.process(write(cfg.thumbs_dir / f"{i}.jpg", data))
    cols = list(pipeline.catalog.collisions())
    assert len(cols) == 2
    assert len({c.newcomer.thumbnail for c in cols}) == 2
    assert len({c.newcomer.original for c in cols}) == 2
    assert len([p for p in cfg.originals_dir.rglob("*.jpg")]) == 3


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"just some text\n", "not an image"),
        (encode(scene(seed=8))[:3000], "truncated"),
    ],
)
def test_bad_files_are_left_alone_and_counted(cfg: Config, pipeline: Pipeline, data: bytes, reason: str) -> None:
    bad = write(cfg.thumbs_dir / "bad.jpg", data)
    os.utime(bad, (1_600_000_000, 1_600_000_000))  # long quiet: a truncated file is final
    before = (bad.read_bytes(), bad.stat().st_mtime_ns)
    result = pipeline.process(bad)
    assert result.outcome is Outcome.ERROR and reason in result.detail
    assert (bad.read_bytes(), bad.stat().st_mtime_ns) == before
    (err,) = list(pipeline.catalog.errors())
    assert err.path == "thumbs/bad.jpg" and reason in err.reason
    assert list(pipeline.catalog.images()) == []
    assert [p.name for p in cfg.thumbs_dir.iterdir()] == ["bad.jpg"]  # no temporaries left


def test_truncated_file_still_being_written_is_deferred_not_reported(cfg: Config, pipeline: Pipeline) -> None:
    data = encode(scene((400, 300), seed=8))
    partial = write(cfg.thumbs_dir / "partial.jpg", data[: len(data) // 2])
    result = pipeline.process(partial)
    assert result.outcome is Outcome.DEFERRED and result.retry
    assert list(pipeline.catalog.errors()) == []
    write(partial, data)
    assert pipeline.process(partial).outcome is Outcome.INGESTED


def test_a_reported_file_is_not_retried_until_it_changes(cfg: Config, pipeline: Pipeline) -> None:
    bad = write(cfg.thumbs_dir / "bad.jpg", b"not an image")
    pipeline.process(bad)
    assert pipeline.process(bad).outcome is Outcome.IGNORED
    write(bad, encode(scene(seed=9)))
    os.utime(bad, ns=(bad.stat().st_mtime_ns + 10**9,) * 2)
    assert pipeline.process(bad).outcome is Outcome.INGESTED
    assert list(pipeline.catalog.errors()) == []


def test_ignored_and_foreign_files_are_untouched(cfg: Config, pipeline: Pipeline) -> None:
    part = drop(cfg.thumbs_dir / "download.jpg.part", seed=1)
    notes = write(cfg.thumbs_dir / "notes.txt", b"hello")
    hidden = drop(cfg.thumbs_dir / ".secret.jpg", seed=1)
    for p in (part, notes, hidden):
        assert pipeline.process(p).outcome is Outcome.IGNORED
        assert p.exists()
    assert list(pipeline.catalog.errors()) == []


def test_symlinks_are_not_followed(cfg: Config, pipeline: Pipeline, tmp_path: Path) -> None:
    outside = drop(tmp_path / "outside.jpg", seed=1)
    link = cfg.thumbs_dir / "link.jpg"
    link.symlink_to(outside)
    assert pipeline.process(link).outcome is Outcome.IGNORED
    assert link.is_symlink() and outside.exists()


def test_source_images_stay_put(cfg: Config, pipeline: Pipeline) -> None:
    src = drop(cfg.source_dirs[0] / "inbox" / "s.jpg", seed=10)
    digest = sha(src)
    assert pipeline.process(src).outcome is Outcome.INGESTED
    thumb = only(cfg.thumbs_dir)
    rec = pipeline.catalog.image(thumb.name)
    assert rec is not None
    assert rec.source is True and rec.original == "source/inbox/s.jpg"
    assert sha(src) == digest
    assert pipeline.process(src).outcome is Outcome.UNCHANGED


def test_canonical_looking_user_file_is_ingested(cfg: Config, pipeline: Pipeline) -> None:
    user = write(cfg.thumbs_dir / "10x10_abcd_.png", encode(scene((200, 100), seed=11), "PNG"))
    digest = sha(user)
    assert pipeline.process(user).outcome is Outcome.INGESTED
    originals = [p for p in cfg.originals_dir.iterdir() if p.suffix != ".xmp"]  # its sidecar aside
    assert len(originals) == 1 and sha(originals[0]) == digest


def _catalog_files(cfg: Config) -> list[Path]:
    return [p for p in cfg.database_path.parent.iterdir() if p.name.startswith("catalog")]


def test_resume_after_crash_before_original_moved(cfg: Config, pipeline: Pipeline) -> None:
    src = drop(cfg.thumbs_dir / "k" / "a.jpg", seed=12)
    data = src.read_bytes()
    pipeline.process(src)
    thumb = only(cfg.thumbs_dir / "k")
    rec = pipeline.catalog.image(thumb.name)
    assert rec is not None
    # Put the world back as a crash between "record committed" and "original moved" leaves it.
    os.rename(under(cfg, rec.original), src)
    rec.moving_from = "thumbs/k/a.jpg"
    with pipeline.catalog.transaction():
        pipeline.catalog.put_image(rec)

    reconcile(pipeline, reason="test", settle=0)

    rec = pipeline.catalog.image(thumb.name)
    assert rec is not None and rec.moving_from is None
    assert not src.exists() and (under(cfg, rec.original)).read_bytes() == data
    assert list(pipeline.catalog.collisions()) == []


def test_resume_after_crash_before_record(cfg: Config, tmp_path: Path) -> None:
    cat = open_for_writing(cfg).catalog
    pipeline = Pipeline(cfg, cat)
    src = drop(cfg.thumbs_dir / "k" / "a.jpg", seed=13)
    data = src.read_bytes()
    pipeline.process(src)
    cat.close()
    # Lose the catalog and put the original back: as if we died right after publishing.
    original = next(cfg.originals_dir.glob("*.jpg"))
    os.rename(original, src)
    for p in _catalog_files(cfg):
        p.unlink()

    cat = open_for_writing(cfg).catalog
    try:
        pipeline = Pipeline(cfg, cat)
        reconcile(pipeline, reason="test", settle=0)
        (rec,) = list(cat.images())
        assert rec.tags == ["k", "320x240"]
        assert not src.exists() and (under(cfg, rec.original)).read_bytes() == data
        assert list(cat.collisions()) == []
        assert len(canonical_files(cfg.thumbs_dir / "k")) == 1
    finally:
        cat.close()


def test_reconcile_finds_moves_and_deletions_made_while_down(cfg: Config, catalog: Catalog, pipeline: Pipeline) -> None:
    for i in range(3):
        pipeline.process(drop(cfg.thumbs_dir / f"{i}.jpg", seed=20 + i))
    a, b, c = canonical_files(cfg.thumbs_dir)
    (cfg.thumbs_dir / "new").mkdir()
    os.rename(a, cfg.thumbs_dir / "new" / a.name)
    b.unlink()
    fresh = drop(cfg.thumbs_dir / "later.jpg", seed=30)
    os.utime(fresh, (1_600_000_000, 1_600_000_000))

    report = reconcile(pipeline, reason="test", settle=0.5)

    assert report.counts.get("moved") == 1
    assert report.counts.get("missing") == 1
    assert report.counts.get("ingested") == 1
    states = {r.name: r.state for r in catalog.images()}
    assert states[b.name] == "missing" and states[a.name] == "present" and states[c.name] == "present"
    again = reconcile(pipeline, reason="test", settle=0.5)
    assert set(again.counts) <= {"unchanged"}


def test_library_refuses_other_hash_settings(cfg: Config) -> None:
    import dataclasses

    from watcherd.core.config import HashConfig
    from watcherd.core.errors import ConfigError

    open_for_writing(cfg).catalog.close()
    other = dataclasses.replace(cfg, hash=HashConfig(algorithm="phash"))
    with pytest.raises(ConfigError, match="made with whash"):
        open_for_writing(other)


def test_library_refuses_another_decode_mode(cfg: Config) -> None:
    import dataclasses

    from watcherd.core.errors import ConfigError

    open_for_writing(cfg).catalog.close()
    with pytest.raises(ConfigError, match="decode: reference; the config asks for whash size 8, decode: fast"):
        open_for_writing(dataclasses.replace(cfg, decode="fast"))
    open_for_writing(cfg).catalog.close()  # the library's own settings still open it


def test_library_without_a_pinned_mode_was_named_in_reference_mode(cfg: Config) -> None:
    import dataclasses

    from watcherd.core.errors import ConfigError

    catalog = open_for_writing(cfg).catalog
    with catalog.transaction():
        catalog.set_meta("library", {"algorithm": "whash", "hash_size": 8})  # as written before the pin
    catalog.close()
    with pytest.raises(ConfigError, match="decode: reference"):
        open_for_writing(dataclasses.replace(cfg, decode="fast"))
    catalog = open_for_writing(cfg).catalog
    assert catalog.meta("library")["decode"] == "reference"
    catalog.close()


def test_collision_original_seen_again_after_going_astray_is_filed_once(cfg: Config, pipeline: Pipeline) -> None:
    data = encode(scene(seed=80))
    pipeline.process(write(cfg.thumbs_dir / "a.jpg", data))
    pipeline.process(write(cfg.thumbs_dir / "x" / "b.jpg", data))
    (col,) = list(pipeline.catalog.collisions())
    # As if folder x was renamed to y between the collision record and the move.
    elsewhere = cfg.thumbs_dir / "y" / "b.jpg"
    elsewhere.parent.mkdir()
    os.rename(under(cfg, col.newcomer.original), elsewhere)
    col.newcomer.original = None
    with pipeline.catalog.transaction():
        pipeline.catalog.put_collision(col)

    assert pipeline.process(elsewhere).outcome is Outcome.COLLISION
    (col,) = list(pipeline.catalog.collisions())
    assert (under(cfg, col.newcomer.original)).read_bytes() == data
    assert not elsewhere.exists()
    assert len(list((cfg.thumbs_dir / "_collisions").iterdir())) == 1


def test_second_collision_original_gone_astray_is_filed_under_its_own_record(cfg: Config, pipeline: Pipeline) -> None:
    data = encode(scene(seed=81))
    pipeline.process(write(cfg.thumbs_dir / "a.jpg", data))
    pipeline.process(write(cfg.thumbs_dir / "x" / "b.jpg", data))  # the first collision, filed
    assert pipeline.process(write(cfg.thumbs_dir / "y" / "c.jpg", data)).outcome is Outcome.COLLISION
    first, second = sorted(pipeline.catalog.collisions(), key=lambda c: len(c.id))
    assert first.newcomer.original != second.newcomer.original  # each planned under its own label
    # As if folder y was renamed to z between the second collision's record and its move:
    # the record as the collision committed it, the file in the renamed folder.
    (cfg.thumbs_dir / "z").mkdir()
    os.rename(under(cfg, second.newcomer.original), cfg.thumbs_dir / "z" / "c.jpg")
    second.newcomer.moving_from = "thumbs/y/c.jpg"
    with pipeline.catalog.transaction():
        pipeline.catalog.put_collision(second)
    pipeline.filing.file_collision(second)

    assert pipeline.process(cfg.thumbs_dir / "z" / "c.jpg").outcome is Outcome.COLLISION
    cols = pipeline.catalog.collisions()
    assert len(cols) == 2  # one record per dropped copy: a.jpg is the image, b and c collisions
    originals = [c.newcomer.original for c in cols]
    assert len(set(originals)) == 2 and all(under(cfg, o).read_bytes() == data for o in originals)


def test_a_folder_moved_in_takes_its_thumbnails_records_along_at_once(cfg: Config, pipeline: Pipeline) -> None:
    from watcherd.core.events import Change, ChangeKind

    for seed in (1, 2):
        pipeline.process(drop(cfg.thumbs_dir / "a" / f"p{seed}.jpg", scene(seed=seed)))
    first, second = canonical_files(cfg.thumbs_dir / "a")
    os.link(first, write(cfg.thumbs_dir / "a" / "sub" / "x", b"").parent / first.name)  # a copy, one level down
    (cfg.thumbs_dir / "a" / "sub" / "x").unlink()
    pipeline.process(cfg.thumbs_dir / "a" / "sub" / first.name)
    os.rename(cfg.thumbs_dir / "a", cfg.thumbs_dir / "b")

    handled = pipeline.handle(Change(ChangeKind.SCAN_DIR, cfg.thumbs_dir / "b"))

    assert handled.settle == []  # nothing to decode
    rec, other = pipeline.catalog.image(first.name), pipeline.catalog.image(second.name)
    assert rec is not None and other is not None
    assert sorted(rec.paths) == sorted([f"thumbs/b/sub/{first.name}", f"thumbs/b/{first.name}"])  # both, a copy
    assert other.paths == [f"thumbs/b/{second.name}"]
    assert "b" in rec.tags and "b" in other.tags and "sub" in rec.tags
    assert pipeline.catalog.present_under("thumbs/a/") == []
    with_b = {name for name, _, _ in pipeline.catalog.with_tags(["b"])}
    assert with_b == {first.name, second.name}  # the derived tables followed in the same transaction


def test_a_thumbnail_dragged_on_while_its_move_is_followed_still_earns_the_folder(
    cfg: Config, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon looks at thumbs/a/NAME (still there), and before it reads it the person drags
    it on to b/: the move it follows has already moved on, and a/ is still a folder it passed
    through (a CI run lost the tag this way)."""
    from watcherd.core.events import Change, ChangeKind

    pipeline.process(drop(cfg.thumbs_dir / "x.jpg", scene(seed=41)))
    thumb = only(cfg.thumbs_dir)
    for folder in ("a", "b"):
        (cfg.thumbs_dir / folder).mkdir()
    os.rename(thumb, cfg.thumbs_dir / "a" / thumb.name)
    follow = pipeline.process

    def dragged_on_meanwhile(path: Path) -> object:
        os.rename(cfg.thumbs_dir / "a" / thumb.name, cfg.thumbs_dir / "b" / thumb.name)
        monkeypatch.setattr(pipeline, "process", follow)
        return follow(path)

    monkeypatch.setattr(pipeline, "process", dragged_on_meanwhile)
    pipeline.handle(Change(ChangeKind.MOVED, cfg.thumbs_dir / "a" / thumb.name, thumb))
    pipeline.handle(Change(ChangeKind.MOVED, cfg.thumbs_dir / "b" / thumb.name, cfg.thumbs_dir / "a" / thumb.name))

    rec = pipeline.catalog.image(thumb.name)
    assert rec is not None
    assert rec.tags == ["320x240", "a", "b"]
    assert rec.paths == [f"thumbs/b/{thumb.name}"]


def test_a_thumbnail_of_other_bytes_is_looked_at_again_once_its_image_names_them(
    cfg: Config, pipeline: Pipeline
) -> None:
    """A copy of an image's thumbnail, under a name of the person's, made before the image was
    given other bytes (a keep-newcomer): an error, left as it is. Once the image names those
    bytes again (the decision undone), the copy is looked at again, not skipped as already
    reported (it stayed an error until the file changed; interleaving seed 534)."""
    pipeline.process(drop(cfg.thumbs_dir / "a.jpg", scene(seed=43)))
    thumb = only(cfg.thumbs_dir)
    mine = cfg.thumbs_dir / "b" / "mine.png"
    mine.parent.mkdir()
    mine.write_bytes(thumb.read_bytes())
    thumb.unlink()
    pipeline.moves.gone(thumb)
    rec = pipeline.catalog.image(thumb.name)
    assert rec is not None and rec.state.value == "missing"
    own = rec.sha256
    rec.sha256 = "0" * 64  # as a keep-newcomer leaves it: the newcomer's bytes
    with pipeline.catalog.transaction():
        pipeline.catalog.put_image(rec)
    assert pipeline.process(mine).outcome is Outcome.ERROR
    assert pipeline.process(mine).detail == "already reported"

    rec.sha256 = own  # the decision undone
    with pipeline.catalog.transaction():
        pipeline.catalog.put_image(rec)
    result = pipeline.process(mine)

    assert result.outcome is not Outcome.IGNORED and result.name == thumb.name
    back = pipeline.catalog.image(thumb.name)
    assert back is not None and back.paths == [f"thumbs/b/{thumb.name}"]
    assert pipeline.catalog.error("thumbs/b/mine.png") is None


def test_a_scan_without_a_catalog_adopts_thumbnails_a_set_at_a_time(cfg: Config, tmp_path: Path) -> None:
    import shutil

    catalog = open_for_writing(cfg).catalog
    pipeline = Pipeline(cfg, catalog)
    for seed in (1, 2, 3):
        pipeline.process(drop(cfg.thumbs_dir / "a" / f"p{seed}.jpg", scene(seed=seed)))
    first, *_ = thumbs = canonical_files(cfg.thumbs_dir / "a")
    shutil.copy2(first, write(cfg.thumbs_dir / "b" / "x", b"").parent / first.name)  # a copy in another folder
    (cfg.thumbs_dir / "b" / "x").unlink()
    impostor = drop(cfg.thumbs_dir / "a" / "9x9_0123456789abcdef_.png", scene((9, 9), seed=4), "PNG")  # not ours
    catalog.close()
    cfg.database_path.unlink()  # a library restored without its catalog

    catalog = open_for_writing(cfg).catalog
    try:
        report = reconcile(Pipeline(cfg, catalog), reason="test", settle=0)
        assert report.counts.get("adopted") == len(thumbs)
        assert report.counts.get("ingested") == 1  # the impostor, decoded one by one
        rec = catalog.image(first.name)
        assert rec is not None
        assert sorted(rec.paths) == sorted([f"thumbs/a/{first.name}", f"thumbs/b/{first.name}"])  # one record, both
        assert {name for name, _, _ in catalog.with_tags(["a"])} >= {t.name for t in thumbs}
        assert {name for name, _, _ in catalog.with_tags(["b"])} == {first.name}  # derived with the set
        assert not impostor.exists()  # ingested: its original filed
    finally:
        catalog.close()


def test_a_batch_files_its_originals_and_writes_their_records_as_one_set(cfg: Config, pipeline: Pipeline) -> None:
    dropped = [drop(cfg.thumbs_dir / "burst" / f"p{seed}.jpg", scene(seed=seed)) for seed in (1, 2, 3)]
    results = list(pipeline.process_all(dropped))
    assert [r.outcome for r in results] == [Outcome.INGESTED] * 3
    names = [r.name for r in results]
    assert all(name is not None for name in names)
    for name in names:
        rec = pipeline.catalog.image(str(name))
        assert rec is not None and rec.moving_from is None and rec.original is not None
        assert under(cfg, rec.original).is_file()
    moving = pipeline.catalog.conn.execute("SELECT count(*) FROM listing WHERE moving = 1").fetchone()[0]
    assert moving == 0  # the derived rows followed the set that cleared ``moving_from``
