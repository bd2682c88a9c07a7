"""Cropped copies found and bursts told apart, through the CLI on libraries made by ``watcherd scan``."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from starlette.testclient import TestClient

from tests.benchmarks.corpus import photo
from tests.benchmarks.realpics import crop
from tests.helpers import encode, wait_for, write
from tests.integration.test_daemon import Running
from watcherd.catalog import open_for_writing
from watcherd.catalog.cropschema import WINDOWLESS
from watcherd.cli import main
from watcherd.commands.library import Library
from watcherd.core import crops
from watcherd.core.config import Config
from watcherd.decode import imaging
from watcherd.flow import cropfill
from watcherd.web.app import create_app
from watcherd.web.review import review_items


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code = main([*argv, "--json"])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def _scan(cfg: Config, capsys: pytest.CaptureFixture[str]) -> str:
    assert cfg.root is not None
    assert main(["scan", str(cfg.root)]) == 0
    capsys.readouterr()
    return str(cfg.root)


def _named(cfg: Config) -> dict[str, str]:
    """Original file name -> catalogued name."""
    catalog = open_for_writing(cfg).catalog
    try:
        return {r.original_filename or "": r.name for r in catalog.images()}
    finally:
        catalog.close()


@pytest.fixture
def cropped(cfg: Config, capsys: pytest.CaptureFixture[str]) -> tuple[str, Image.Image]:
    """A photo, three crops of it (10% off every side, 15% off one side, 15% off a corner) and an unrelated photo."""
    im = photo((900, 600), seed=8)
    write(cfg.thumbs_dir / "original.jpg", encode(im))
    write(cfg.thumbs_dir / "every.jpg", encode(crop(im, 0.10, 0.10, 0.10, 0.10)))
    write(cfg.thumbs_dir / "side.jpg", encode(crop(im, 0.0, 0.0, 0.15, 0.0)))
    write(cfg.thumbs_dir / "corner.jpg", encode(crop(im, 0.0, 0.15, 0.15, 0.0)))
    write(cfg.thumbs_dir / "other.jpg", encode(photo((900, 600), seed=9)))
    return _scan(cfg, capsys), im


def test_crops_are_found_by_similar_dupes_and_arrange(
    cfg: Config, capsys: pytest.CaptureFixture[str], cropped: tuple[str, Image.Image], tmp_path: Path
) -> None:
    root, im = cropped
    named = _named(cfg)
    family = {named[f] for f in ("original.jpg", "every.jpg", "side.jpg", "corner.jpg")}
    # A file outside the library, cropped 10% off the left and the top: it finds the original.
    probe = write(tmp_path / "probe.jpg", encode(crop(im, 0.10, 0.10, 0.0, 0.0)))
    code, hits = run(capsys, "similar", root, str(probe))
    assert code == 0 and isinstance(hits, list)
    found = {h["name"]: h for h in hits}
    assert named["original.jpg"] in found and named["other.jpg"] not in found
    assert all(h["match"] in ("whole", "crop") for h in hits)
    assert any(h["match"] == "crop" for h in hits)
    # Each crop, asked by name, finds the original, and the original finds every crop.
    for f in ("every.jpg", "side.jpg", "corner.jpg"):
        code, hits = run(capsys, "similar", root, named[f])
        assert isinstance(hits, list) and named["original.jpg"] in {h["name"] for h in hits}, f
    code, hits = run(capsys, "similar", root, named["original.jpg"])
    assert isinstance(hits, list) and {h["name"] for h in hits} == family
    # Its hash alone: the catalogued image of that hash lends its window hashes.
    code, hits = run(capsys, "similar", root, named["original.jpg"].split("_")[1])
    assert isinstance(hits, list) and {h["name"] for h in hits} == family
    # One near group at the default distance, linked by crops.
    code, items = run(capsys, "dupes", root, "--near", "4")
    assert isinstance(items, list)
    (group,) = [i for i in items if i["kind"] in ("near", "burst")]
    assert set(group["names"]) == family and group["kind"] == "near" and group["match"] == "crop"
    # arrange by-similarity puts them in one by_ham folder, the unrelated photo stays.
    code, plan = run(capsys, "arrange", root, "by-similarity", "--dry-run")
    assert isinstance(plan, dict)
    targets = {m["name"]: m["target"].rsplit("/", 1)[0] for m in plan["moves"]}
    assert set(targets) == family and len(set(targets.values())) == 1


def _frame(im: Image.Image, i: int, taken: datetime) -> bytes:
    """Frame ``i`` of a burst: the scene shifted a little, with the camera and the time in EXIF."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "EOS R6"
    exif.get_ifd(0x8769)[0x9003] = (taken + timedelta(seconds=i)).strftime("%Y:%m:%d %H:%M:%S")
    shift = 0.01 * i
    return encode(crop(im, 0.02 + shift, 0.02, 0.06 - shift, 0.04), exif=exif.tobytes())


def test_a_burst_is_listed_as_one_not_preselected_and_distinct_is_remembered(
    cfg: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    im = photo((900, 600), seed=12)
    taken = datetime(2024, 5, 1, 10, 0, 0)
    for i in range(4):
        write(cfg.thumbs_dir / f"frame{i}.jpg", _frame(im, i, taken))
    root = _scan(cfg, capsys)
    code, items = run(capsys, "dupes", root, "--near", "4")
    assert isinstance(items, list)
    (burst,) = items
    assert burst["kind"] == "burst" and len(burst["names"]) == 4 and burst["suggested"] is None
    (item,) = review_items(Library(cfg))  # the page pre-selects no frame to keep
    assert item.kind == "burst" and item.keeper == -1 and item.suggested is None and item.plan == []
    with TestClient(create_app(cfg), base_url="http://127.0.0.1:8377") as client:
        page = client.get("/")
    assert page.status_code == 200 and 'data-kind="burst"' in page.text
    section = page.text[page.text.index('data-kind="burst"') :]
    section = section[: section.index("</section>")]
    assert 'data-keeper=""' in section and "data-plan='[]'" in section and 'data-suggested=""' in section
    assert "badge keeper" not in section and "member keeper" not in section  # no frame marked to keep
    assert section.count('<article class="member') == 4
    code, done = run(capsys, "resolve", root, burst["id"], "distinct")
    assert code == 0 and isinstance(done, dict)
    code, items = run(capsys, "dupes", root, "--near", "4")
    assert items == []  # remembered: all four are kept, and not asked about again
    code, items = run(capsys, "dupes", root, "--near", "4", "--all")
    assert isinstance(items, list)
    (decided,) = items
    assert decided["decision"] == "distinct" and decided["kind"] == "burst"


def test_copies_of_one_shot_are_not_a_burst(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    im = photo((900, 600), seed=13)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "EOS R6"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 10:00:00"
    write(cfg.thumbs_dir / "a.jpg", encode(im, exif=exif.tobytes()))
    write(cfg.thumbs_dir / "b.jpg", encode(im.resize((600, 400)), quality=70, exif=exif.tobytes()))
    root = _scan(cfg, capsys)
    code, items = run(capsys, "dupes", root, "--near", "4")
    assert code == 0 and isinstance(items, list)
    (group,) = items
    assert group["kind"] == "near" and group["match"] == "whole"
    assert group["suggested"] == _named(cfg)["a.jpg"]  # the keeper rule: more pixels


def _without_windows(cfg: Config) -> None:
    """Every record as an older watcherd left it: no window hashes."""
    catalog = open_for_writing(cfg).catalog
    try:
        with catalog.transaction():
            for rec in catalog.images():
                catalog.put_image(dataclasses.replace(rec, crops=""))
    finally:
        catalog.close()


@pytest.mark.parametrize("by", ["scan", "daemon"])
def test_window_hashes_are_given_to_images_catalogued_without_them(
    cfg: Config, capsys: pytest.CaptureFixture[str], cropped: tuple[str, Image.Image], by: str
) -> None:
    """By a scan, and by the daemon after its start-up scan, while idle (a library kept by
    ``watcherd run`` alone)."""
    root, _ = cropped
    named = _named(cfg)
    _without_windows(cfg)
    code, hits = run(capsys, "similar", root, named["corner.jpg"])
    assert code == 0 and isinstance(hits, list) and named["original.jpg"] not in {h["name"] for h in hits}
    if by == "scan":
        _scan(cfg, capsys)
    else:
        running = Running(cfg)
        running.thread.start()
        try:
            wait_for(lambda: all(crops.split(r.get("crops")) for r in running.images()), what="windows given")
        finally:
            running.stop.set()
            running.thread.join(timeout=20)
        assert running.error is None and running.code == 0
    catalog = open_for_writing(cfg).catalog
    try:
        assert all(crops.split(r.crops) for r in catalog.images())
    finally:
        catalog.close()
    code, hits = run(capsys, "similar", root, named["corner.jpg"])
    assert code == 0 and isinstance(hits, list) and named["original.jpg"] in {h["name"] for h in hits}


def test_a_bug_met_while_filling_older_records_ends_the_pass_not_the_daemon(
    cfg: Config, cropped: tuple[str, Image.Image], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> tuple[int, list[str]]:
        raise RuntimeError("a bug")

    _without_windows(cfg)
    monkeypatch.setattr(cropfill, "_give_windows", broken)
    running = Running(cfg)
    running.thread.start()
    try:
        wait_for(lambda: running.daemon.internal_errors, what="the bug met")
        running.handled_so_far()  # a file dropped after it is still filed
    finally:
        running.stop.set()
        running.thread.join(timeout=20)
    assert running.error is None and running.code == 0
    assert running.daemon.internal_errors == 1  # one pass ended, not one error a turn


def test_the_daemons_fill_asks_again_after_a_full_scan_only_when_the_catalog_changed(
    cfg: Config, cropped: tuple[str, Image.Image]
) -> None:
    catalog = open_for_writing(cfg).catalog
    try:
        fills = cropfill.Fills(cfg, catalog, imaging.render)
        assert fills.busy and fills.step() == 0 and not fills.busy  # every image has its windows
        fills.again()  # a quiet full scan: nothing asked
        assert not fills.busy
        with catalog.transaction():  # as a scan adopting a thumbnail without them would
            rec = next(iter(catalog.images()))
            catalog.put_image(dataclasses.replace(rec, crops=""))
        fills.again()
        assert fills.busy
        assert fills.windows is None and catalog.lacking_windows(f"v{crops.VERSION}:") == [rec.name]
    finally:
        catalog.close()


def test_a_rescan_reads_no_record_for_images_too_small_for_window_hashes(
    cfg: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    """A banner whose thumbnail is under ``MIN_SIDE`` never gets window hashes: the scan that
    decoded it notes so, and the next scan's question is answered by counts (nothing to decode)."""
    write(cfg.thumbs_dir / "photo.jpg", encode(photo((900, 600), seed=31)))
    write(cfg.thumbs_dir / "banner.png", encode(photo((900, 60), seed=32), "PNG"))  # a 64x4 thumbnail
    _scan(cfg, capsys)
    named = _named(cfg)
    catalog = open_for_writing(cfg).catalog
    try:
        assert catalog.lacking_windows(cropfill.PREFIX) == []
        assert catalog.meta(WINDOWLESS) == {"prefix": cropfill.PREFIX, "names": [named["banner.png"]]}
        with catalog.transaction():  # as an older watcherd left the photo: no window hashes
            rec = catalog.image(named["photo.jpg"])
            assert rec is not None
            catalog.put_image(dataclasses.replace(rec, crops=""))
        assert named["photo.jpg"] in catalog.lacking_windows(cropfill.PREFIX)
    finally:
        catalog.close()
    _scan(cfg, capsys)
    catalog = open_for_writing(cfg).catalog
    try:
        assert catalog.lacking_windows(cropfill.PREFIX) == []
        rec = catalog.image(named["photo.jpg"])
        assert rec is not None and crops.split(rec.crops)
    finally:
        catalog.close()


def test_a_fill_pass_that_finds_nothing_new_writes_nothing(cfg: Config, cropped: tuple[str, Image.Image]) -> None:
    """An image whose thumbnail cannot give window hashes (unreadable here) is asked again by each
    pass, but a pass that learns nothing writes nothing, so it does not make the daemon's next one."""
    assert cfg.root is not None
    catalog = open_for_writing(cfg).catalog
    try:
        rec = next(iter(catalog.images()))
        with catalog.transaction():
            catalog.put_image(dataclasses.replace(rec, crops=""))
        (cfg.root / rec.path).write_bytes(b"no longer a picture")
        cropfill.Fills(cfg, catalog, imaging.render).step()  # the pass notes what it found
        changes = catalog.changes
        assert catalog.lacking_windows(cropfill.PREFIX) == [rec.name]
        cropfill.Fills(cfg, catalog, imaging.render).step()  # as after a restart: the same pass again
        assert catalog.changes == changes
    finally:
        catalog.close()


def test_a_thumbnail_of_other_bytes_gives_its_record_no_window_hashes(
    cfg: Config, cropped: tuple[str, Image.Image]
) -> None:
    """Another image's thumbnail under this one's name (its chunks name other bytes) is not this
    image's thumbnail: its windows would find the other picture."""
    assert cfg.root is not None
    named = _named(cfg)
    catalog = open_for_writing(cfg).catalog
    try:
        rec, other = catalog.image(named["original.jpg"]), catalog.image(named["other.jpg"])
        assert rec is not None and other is not None
        with catalog.transaction():
            catalog.put_image(dataclasses.replace(rec, crops=""))
        (cfg.root / rec.path).write_bytes((cfg.root / other.path).read_bytes())
        assert cropfill.fill(cfg, catalog, imaging.render) == 0
        assert catalog.lacking_windows(cropfill.PREFIX) == [rec.name]
    finally:
        catalog.close()


def _kept_links(cfg: Config) -> list[tuple[str, str]]:
    with sqlite3.connect(cfg.database_path) as con:
        if con.execute("SELECT count(*) FROM near_pending").fetchone() != (0,):
            return []  # some image still waits for its pairs
        return [(str(a), str(b)) for a, b in con.execute("SELECT a, b FROM crop_pairs ORDER BY a, b")]


def test_the_daemon_keeps_the_crop_links_of_what_arrives(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    """A crop dropped while the daemon runs: its writer records the link in a pairing round,
    and dupes --near reads it (no image waiting, nothing computed at question time)."""
    im = photo((900, 600), seed=21)
    running = Running(cfg)
    running.thread.start()
    try:
        wait_for(running.scanned, what="start-up scan")
        write(cfg.thumbs_dir / "original.jpg", encode(im))
        write(cfg.thumbs_dir / "cropped.jpg", encode(crop(im, 0.0, 0.15, 0.15, 0.0)))
        wait_for(lambda: len(running.images()) == 2, what="both ingested")
        (link,) = wait_for(lambda: _kept_links(cfg), what="the crop link kept by a pairing round")
    finally:
        running.stop.set()
        running.thread.join(timeout=20)
    assert running.error is None and running.code == 0
    named = _named(cfg)
    assert sorted(link) == sorted([named["original.jpg"], named["cropped.jpg"]])
    code, items = run(capsys, "dupes", str(cfg.root), "--near", "4")
    assert code == 0 and isinstance(items, list)
    (group,) = items
    assert group["names"] == sorted(link) and group["match"] == "crop"
