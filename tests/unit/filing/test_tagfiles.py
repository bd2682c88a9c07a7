"""Sidecars beside the originals and ``user.xdg.tags`` on the files, kept current by the one writer
(a pipeline on tmp_path, no processes); keywords already in a photo become tags."""

from __future__ import annotations

import dataclasses
import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import encode, scene, write, xmp_packet
from watcherd.catalog import Catalog, open_for_writing
from watcherd.commands import edits, queries
from watcherd.core import xmp
from watcherd.core.config import Config
from watcherd.core.events import Change, ChangeKind
from watcherd.core.outcomes import Outcome
from watcherd.core.records import ImageRecord
from watcherd.decode import imaging
from watcherd.filing import tagfiles
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile
from watcherd.fs import sidecars


def at(cfg: Config, rel: str | None) -> Path:
    assert cfg.root is not None and rel is not None
    return cfg.root / rel


def lists(path: Path) -> dict[str, list[str]]:
    """The three keyword lists of a sidecar, as a photo manager reads them."""
    root = ET.fromstring(path.read_bytes())
    out: dict[str, list[str]] = {"subject": [], "TagsList": [], "hierarchicalSubject": []}
    for ns, local, _, _ in xmp.LISTS:
        for prop in root.iter(f"{{{ns}}}{local}"):
            out[local] += [li.text or "" for li in prop.iter(f"{{{xmp.RDF}}}li")]
    return out


def xattr(path: Path) -> str:
    return os.getxattr(path, tagfiles.XATTR).decode()


def only(catalog: Catalog) -> ImageRecord:
    (rec,) = catalog.images()
    return rec


def sidecar(cfg: Config, rec: ImageRecord) -> Path:
    return sidecars.sidecar_of(at(cfg, rec.original))


def test_an_ingested_image_gets_a_sidecar_and_the_attribute_on_both_files(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    drop = write(cfg.thumbs_dir / "cats" / "orange" / "tom.jpg", encode(scene(seed=1)))
    assert pipeline.process(drop).outcome is Outcome.INGESTED
    rec = only(catalog)
    assert lists(sidecar(cfg, rec)) == {
        "subject": ["cats", "orange"],
        "TagsList": ["cats/orange"],
        "hierarchicalSubject": ["cats|orange"],
    }
    assert sidecar(cfg, rec).name == f"{rec.name[: -len('.png')]}.jpg.xmp"
    assert xattr(at(cfg, rec.path)) == xattr(at(cfg, rec.original)) == "cats,orange"
    assert not list(cfg.thumbs_dir.rglob("*.xmp"))  # the thumbs tree stays uncluttered
    assert catalog.tagfile_marks(0) == []  # nothing left to do


def test_moves_retag_and_untag_are_followed_and_others_keywords_kept(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    pipeline.process(write(cfg.thumbs_dir / "cats" / "tom.jpg", encode(scene(seed=2))))
    rec = only(catalog)
    thumb = at(cfg, rec.path)
    moved = cfg.thumbs_dir / "dogs" / "orange" / rec.name
    moved.parent.mkdir(parents=True)
    os.rename(thumb, moved)
    pipeline.handle(Change(ChangeKind.MOVED, moved, thumb))
    assert lists(sidecar(cfg, rec))["hierarchicalSubject"] == ["cats", "dogs|orange"]
    assert xattr(moved) == "cats,dogs,orange"

    # another tool adds a keyword to the sidecar, and a tag in the file manager
    root = ET.parse(sidecar(cfg, rec)).getroot()
    bag = next(root.iter(f"{{{xmp.DC}}}subject"))[0]
    ET.SubElement(bag, f"{{{xmp.RDF}}}li").text = "sunset"
    sidecar(cfg, rec).write_bytes(ET.tostring(root, encoding="utf-8"))
    os.setxattr(moved, tagfiles.XATTR, b"cats,dogs,orange,favourite")

    edits.retag(catalog, "orange", "ginger")
    assert lists(sidecar(cfg, rec)) == {
        "subject": ["cats", "dogs", "ginger", "sunset"],
        "TagsList": ["cats", "dogs", "ginger"],
        "hierarchicalSubject": ["cats", "dogs", "ginger"],
    }
    assert xattr(moved) == "cats,dogs,ginger,favourite"
    edits.untag_everywhere(catalog, "cats")
    assert lists(sidecar(cfg, rec))["subject"] == ["dogs", "ginger", "sunset"]
    assert xattr(moved) == xattr(at(cfg, only(catalog).original)).replace(",favourite", "") + ",favourite"
    edits.untag(catalog, rec.name, "dogs")
    assert lists(sidecar(cfg, rec))["subject"] == ["ginger", "sunset"]
    assert xattr(moved) == "ginger,favourite"


def test_keywords_in_the_photo_and_a_dropped_sidecar_become_tags_and_the_sidecar_goes_along(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    folder = cfg.thumbs_dir / "cats"
    photo = write(folder / "tom.jpg", encode(scene(seed=3), xmp=xmp_packet(("gamma",), (), ("Places|Paris",))))
    rating = '<xmp:Rating xmlns:xmp="http://ns.adobe.com/xap/1.0/">4</xmp:Rating>'
    write(folder / "tom.xmp", xmp_packet(("from-sidecar",), body=rating))  # Lightroom's spelling
    assert pipeline.process(photo).outcome is Outcome.INGESTED
    rec = only(catalog)
    assert rec.tags == ["cats", "320x240", "gamma", "Places", "Paris", "from-sidecar"]
    summary = queries.summary(rec)
    assert summary["keywords"] == ["gamma", "Places", "Paris", "from-sidecar"]
    assert summary["sources"] == {
        "cats": "folder",
        "320x240": "size",
        "gamma": "keyword",
        "Places": "keyword",
        "Paris": "keyword",
        "from-sidecar": "keyword",
    }
    assert not list(folder.glob("*.xmp"))  # it went with its original
    merged = sidecar(cfg, rec)
    assert b"<xmp:Rating>4</xmp:Rating>" in merged.read_bytes()  # everything else in it is kept
    assert lists(merged) == {
        "subject": ["cats", "gamma", "Places", "Paris", "from-sidecar"],
        "TagsList": ["cats", "gamma", "Places/Paris", "from-sidecar"],
        "hierarchicalSubject": ["cats", "gamma", "Places|Paris", "from-sidecar"],
    }


def test_keywords_are_not_read_when_import_keywords_is_off(tmp_path: Path) -> None:
    cfg = dataclasses.replace(Config(), import_keywords=False).with_root(tmp_path)
    catalog = open_for_writing(cfg).catalog
    try:
        pipeline = Pipeline(cfg, catalog)
        photo = write(cfg.thumbs_dir / "cats" / "tom.jpg", encode(scene(seed=3), xmp=xmp_packet(("gamma",))))
        write(cfg.thumbs_dir / "cats" / "tom.jpg.xmp", xmp_packet(("from-sidecar",)))
        pipeline.process(photo)
        rec = only(catalog)
        assert rec.tags == ["cats", "320x240"]
        assert lists(sidecar(cfg, rec))["subject"] == ["cats", "from-sidecar"]  # still goes along, kept
    finally:
        catalog.close()


def test_a_crash_between_the_commit_and_the_files_is_finished_by_the_next_start(tmp_path: Path) -> None:
    cfg = Config().with_root(tmp_path)
    with open_for_writing(cfg).catalog as catalog:
        Pipeline(cfg, catalog).process(write(cfg.thumbs_dir / "cats" / "tom.jpg", encode(scene(seed=4))))
        rec = only(catalog)
    before = sidecar(cfg, rec).read_bytes()
    # A writer killed right after its commit: the tags changed, the files did not.
    with Catalog(cfg.database_path) as crashed:
        edits.retag(crashed, "cats", "felines")
    assert sidecar(cfg, rec).read_bytes() == before and xattr(at(cfg, rec.path)) == "cats"
    with open_for_writing(cfg).catalog as catalog:  # the next start
        assert [name for _, name in catalog.tagfile_marks(0)] == [rec.name]
        reconcile(Pipeline(cfg, catalog), reason="start-up", settle=0)
        assert lists(sidecar(cfg, rec))["subject"] == ["felines"] and xattr(at(cfg, rec.path)) == "felines"
        assert catalog.tagfile_marks(0) == []


def test_sidecars_follow_keep_newcomer_and_its_undo(cfg: Config, catalog: Catalog, pipeline: Pipeline) -> None:
    im = scene(seed=6)
    pipeline.process(write(cfg.thumbs_dir / "cats" / "a.png", encode(im, "PNG")))
    newcomer = write(cfg.thumbs_dir / "dogs" / "b.jpg", encode(im, "JPEG", quality=95))
    write(cfg.thumbs_dir / "dogs" / "b.jpg.xmp", xmp_packet(("sunset",)))
    assert pipeline.process(newcomer).outcome is Outcome.COLLISION
    (col,) = catalog.collisions()
    assert col.newcomer.keywords == ["sunset"]
    parked = sidecars.sidecar_of(at(cfg, col.newcomer.original))  # beside the newcomer's original
    assert parked.is_file() and not list(cfg.thumbs_dir.rglob("*.xmp"))
    stem = col.name[: -len(".png")]

    edits.resolve(cfg, catalog, col.id, "keep-newcomer")
    kept = only(catalog)
    assert kept.original == f"originals/{stem}.jpg" and "sunset" in kept.keywords
    assert lists(sidecar(cfg, kept))["subject"] == ["cats", "dogs", "sunset"]
    (decided,) = catalog.collisions()
    assert decided.decision is not None and decided.decision.archived is not None
    archived = sidecars.sidecar_of(at(cfg, decided.decision.archived))
    assert lists(archived)["subject"] == ["cats"]  # the existing image's sidecar went with its original

    edits.undo(cfg, catalog, imaging.render)
    back = only(catalog)
    assert back.original == f"originals/{stem}.png" and back.tags == ["cats", "320x240"]
    assert lists(sidecar(cfg, back))["subject"] == ["cats"] and not archived.exists()
    (col,) = catalog.collisions()
    assert sidecars.sidecar_of(at(cfg, col.newcomer.original)).is_file()  # back beside the newcomer's original
    assert xattr(at(cfg, back.path)) == "cats"


def test_a_sidecar_that_cannot_be_read_safely_is_left_as_it_is(
    cfg: Config, catalog: Catalog, pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline.process(write(cfg.thumbs_dir / "cats" / "tom.jpg", encode(scene(seed=7))))
    rec = only(catalog)
    hostile = b'<!DOCTYPE x [<!ENTITY a "a">]><x/>'
    sidecar(cfg, rec).write_bytes(hostile)
    with caplog.at_level(logging.WARNING, logger="watcherd"):
        edits.retag(catalog, "cats", "felines")
    assert sidecar(cfg, rec).read_bytes() == hostile
    assert "left the sidecar" in caplog.text and "document type" in caplog.text
    assert xattr(at(cfg, rec.path)) == "felines"  # the attributes still follow


def test_nothing_is_written_when_switched_off_and_everything_once_switched_on(tmp_path: Path) -> None:
    off = dataclasses.replace(Config(), sidecars="none", xattr_tags=False).with_root(tmp_path)
    catalog = open_for_writing(off).catalog
    try:
        Pipeline(off, catalog).process(write(off.thumbs_dir / "cats" / "tom.jpg", encode(scene(seed=8))))
        rec = only(catalog)
        assert not list(tmp_path.rglob("*.xmp"))
        assert tagfiles.XATTR not in os.listxattr(at(off, rec.path))
        on = dataclasses.replace(off, sidecars="xmp", xattr_tags=True)
        reconcile(Pipeline(on, catalog), reason="start-up", settle=0)
        assert lists(sidecar(on, rec))["subject"] == ["cats"] and xattr(at(on, rec.path)) == "cats"
    finally:
        catalog.close()


def test_a_library_marked_whole_is_caught_up_a_chunk_at_a_time(tmp_path: Path) -> None:
    off = dataclasses.replace(Config(), sidecars="none").with_root(tmp_path)
    with open_for_writing(off).catalog as catalog:
        pipeline = Pipeline(off, catalog)
        for i in range(3):
            pipeline.process(write(off.thumbs_dir / "cats" / f"{i}.jpg", encode(scene(seed=90 + i))))
        files = tagfiles.attach(dataclasses.replace(off, sidecars="xmp"), catalog)
        files.begin()  # sidecars switched on: every image is marked
        assert files.catch_up(1) == 1 and files.backlog is not None  # the daemon's turn: one chunk
        assert len(list(tmp_path.rglob("*.xmp"))) == 1
        assert files.catch_up() == 2 and files.backlog is None  # scan: all the rest
        assert len(list(tmp_path.rglob("*.xmp"))) == 3 and catalog.tagfile_marks(0) == []
        assert files.catch_up() == 0


def test_a_commit_marking_more_than_a_chunk_hands_the_rest_to_the_pass(
    cfg: Config, catalog: Catalog, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder renamed: its records follow in one commit, the first chunk of files at once and the
    rest between events (``catch_up``), so the next change is not held up behind 10,000 files."""
    for i in range(5):
        pipeline.process(write(cfg.thumbs_dir / "cats" / f"{i}.jpg", encode(scene(seed=70 + i))))
    monkeypatch.setattr(tagfiles, "CHUNK", 2)
    os.rename(cfg.thumbs_dir / "cats", cfg.thumbs_dir / "dogs")
    pipeline.handle(Change(ChangeKind.SCAN_DIR, cfg.thumbs_dir / "dogs"))
    thumbs = sorted((cfg.thumbs_dir / "dogs").glob("*.png"))
    assert all("dogs" in r.tags for r in catalog.images())  # every record followed
    assert sorted("dogs" in xattr(t) for t in thumbs) == [False, False, False, True, True]
    files = pipeline.tagfiles
    assert files.backlog is not None
    pipeline.process(write(cfg.thumbs_dir / "birds" / "b.jpg", encode(scene(seed=79))))  # the next change
    assert xattr(next((cfg.thumbs_dir / "birds").glob("*.png"))) == "birds"
    assert sum("dogs" in xattr(t) for t in thumbs) == 2  # not held up behind the rest
    assert files.catch_up() == 3 and files.backlog is None
    assert all("dogs" in xattr(t) for t in thumbs) and catalog.tagfile_marks(0) == []


def test_sidecars_follow_a_near_keep_and_its_undo(cfg: Config, catalog: Catalog, pipeline: Pipeline) -> None:
    im = scene(seed=32)  # the same picture a little smaller: a near pair with names of their own
    pipeline.process(write(cfg.thumbs_dir / "cats" / "a.png", encode(im, "PNG")))
    pipeline.process(write(cfg.thumbs_dir / "dogs" / "b.png", encode(im.resize((318, 240)), "PNG")))
    records = {r.name: r for r in catalog.images()}
    before = {name: sidecar(cfg, r).read_bytes() for name, r in records.items()}

    kept = edits.resolve(cfg, catalog, "+".join(sorted(records)), "keep-existing", render=imaging.render)["image"]
    assert kept is not None
    (gone,) = set(records) - {kept}
    assert sorted(lists(sidecar(cfg, records[kept]))["subject"]) == ["cats", "dogs"]
    (near,) = catalog.near_decisions()
    merged = sidecars.sidecar_of(at(cfg, near.merged[0].archived))
    assert lists(merged)["subject"] == records[gone].tags[:1]  # the merged original's sidecar went with it

    edits.undo(cfg, catalog, render=imaging.render)
    assert {r.name: sidecar(cfg, r).read_bytes() for r in catalog.images()} == before and not merged.exists()


def test_tags_cleared_in_the_file_manager_are_written_again_with_ours_remembered(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    pipeline.process(write(cfg.thumbs_dir / "cats" / "tom.jpg", encode(scene(seed=2))))
    thumb = at(cfg, only(catalog).path)
    os.removexattr(thumb, tagfiles.XATTR)  # the person clears the file's tags
    edits.retag(catalog, "cats", "felines")
    assert xattr(thumb) == "felines"
    assert os.getxattr(thumb, tagfiles.XATTR_OURS).decode() == "felines"  # not what was there before
    os.setxattr(thumb, tagfiles.XATTR, b"felines,favourite")
    edits.retag(catalog, "felines", "cats")
    assert xattr(thumb) == "cats,favourite"
