"""The keeper rule on real files: the camera original is kept over an upscaled re-save,
whichever arrived first, with its reasons in ``dupes --json``."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import ExifTags, Image

from tests.helpers import encode, scene, table, wait_for, write
from tests.integration.test_daemon import Running
from watcherd.cli import main
from watcherd.commands.library import Library
from watcherd.core.config import Config
from watcherd.core.documents import NearGroup
from watcherd.flow import cropfill


def camera_original(size: tuple[int, int] = (1411, 940)) -> tuple[Image.Image, bytes]:
    """A JPEG as a camera writes it: make, model, date taken and the size it recorded."""
    im = scene(size, seed=77)
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "Canon EOS 80D"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = "2019:06:02 10:11:12"
    sub[ExifTags.Base.ExifImageWidth], sub[ExifTags.Base.ExifImageHeight] = size
    return im, encode(im, "JPEG", quality=92, exif=exif.tobytes())


def upscaled(im: Image.Image, width: int = 3000) -> bytes:
    """The same picture enlarged and saved again, without its EXIF."""
    height = round(im.height * width / im.width)
    return encode(im.resize((width, height), Image.Resampling.LANCZOS), "JPEG", quality=95)


@pytest.mark.parametrize("camera_first", [True, False])
def test_the_camera_original_is_suggested_over_an_upscaled_copy_whichever_arrived_first(
    tmp_path: Path, camera_first: bool
) -> None:
    root = tmp_path / "lib"
    im, original = camera_original()
    files = [("cats/camera.jpg", original), ("dogs/big.jpg", upscaled(im))]
    for rel, data in files if camera_first else files[::-1]:
        write(root / "thumbs" / rel, data)
        assert main(["scan", str(root)]) == 0
    cfg = dataclasses.replace(Config()).with_root(root)
    (group,) = Library(cfg).dupes(4)
    assert group["kind"] == "near"
    names = {n.split("x")[0]: n for n in group["names"]}  # by width
    assert set(names) == {"1411", "3000"}
    assert group["suggested"] == names["1411"]
    kept = [
        f"{names['1411']}: camera original (Canon EOS 80D)",
        f"{names['1411']}: original resolution",
        f"{names['1411']}: EXIF date 2019-06-02",
    ]
    lost = [f"{names['3000']}: upscaled 2.1x, no camera EXIF"]
    # Members in catalog order (first_seen, then name: two scans within a second tie).
    assert group["reasons"] in (kept + lost, lost + kept)


class Opened:
    """The files this process opens while ``watching`` (an audit hook: it cannot be removed, so
    it is added once and records only while switched on)."""

    paths: ClassVar[list[str]] = []
    on = False

    @classmethod
    def hook(cls, event: str, args: tuple[object, ...]) -> None:
        if cls.on and event == "open" and isinstance(args[0], str):
            cls.paths.append(args[0])


sys.addaudithook(Opened.hook)


def near_pair(root: Path) -> Config:
    """The camera original and its upscaled copy, scanned one after the other."""
    im, original = camera_original()
    for rel, data in (("cats/camera.jpg", original), ("dogs/big.jpg", upscaled(im))):
        write(root / "thumbs" / rel, data)
        assert main(["scan", str(root)]) == 0
    return Config().with_root(root)


def test_records_keep_what_the_rule_reads_of_exif_and_the_listing_reads_no_thumbnail(tmp_path: Path) -> None:
    cfg = near_pair(tmp_path / "lib")
    records = {r["width"]: r for r in table(cfg.database_path, "images")}
    assert records[1411]["exif"]["fields"]["Model"] == "Canon EOS 80D"
    assert records[1411]["exif"]["fields"]["DateTimeOriginal"] == "2019:06:02 10:11:12"
    assert records[1411]["exif"]["count"] >= 3 and records[3000]["exif"] == {"count": 0, "fields": {}}
    kept, opened = listed(cfg)
    assert opened == []
    # Records from before EXIF was kept: their thumbnails are read, and say the same.
    with sqlite3.connect(cfg.database_path) as con:
        con.execute("UPDATE images SET value = json_remove(value, '$.exif')")
    assert all("exif" not in r for r in table(cfg.database_path, "images"))
    read, opened = listed(cfg)
    assert len(opened) == 2
    assert read == kept and "camera original (Canon EOS 80D)" in " ".join(kept["reasons"])


def listed(cfg: Config) -> tuple[NearGroup, list[str]]:
    """The one near group ``dupes --near 4`` lists, and the thumbnails it opened to list it."""
    Opened.paths.clear()
    Opened.on = True
    try:
        (group,) = Library(cfg).dupes(4)
    finally:
        Opened.on = False
    assert group["kind"] == "near"
    return group, [p for p in Opened.paths if p.startswith(str(cfg.thumbs_dir))]


def test_a_library_adopted_from_its_thumbnails_keeps_the_same_exif(tmp_path: Path) -> None:
    cfg = near_pair(tmp_path / "lib")
    before = {r["name"]: r["exif"] for r in table(cfg.database_path, "images")}
    for f in cfg.database_path.parent.glob(cfg.database_path.name + "*"):
        f.unlink()  # the catalog lost: the thumbnails say what it held
    assert main(["scan", str(cfg.root)]) == 0
    after = {r["name"]: r["exif"] for r in table(cfg.database_path, "images")}
    assert after == before and len(after) == 2


def test_a_scan_gives_the_images_of_near_pairs_from_before_the_exif_their_thumbnails_say(tmp_path: Path) -> None:
    cfg = near_pair(tmp_path / "lib")
    kept = {r["name"]: r["exif"] for r in table(cfg.database_path, "images")}
    with sqlite3.connect(cfg.database_path) as con:  # as an older watcherd wrote them
        con.execute("UPDATE images SET value = json_remove(value, '$.exif')")
        con.execute("DELETE FROM meta WHERE key = ?", (cropfill.EXIF_KEPT,))
    assert main(["scan", str(cfg.root)]) == 0
    assert {r["name"]: r["exif"] for r in table(cfg.database_path, "images")} == kept
    assert meta_rows(cfg.database_path)[cropfill.EXIF_KEPT] is True


def test_the_daemon_gives_the_images_of_near_pairs_from_before_the_exif_their_thumbnails_say(
    tmp_path: Path,
) -> None:
    cfg = near_pair(tmp_path / "lib")
    kept = {r["name"]: r["exif"] for r in table(cfg.database_path, "images")}
    with sqlite3.connect(cfg.database_path) as con:  # as an older watcherd wrote them
        con.execute("UPDATE images SET value = json_remove(value, '$.exif')")
        con.execute("DELETE FROM meta WHERE key = ?", (cropfill.EXIF_KEPT,))
    running = Running(cfg)
    running.thread.start()
    try:
        wait_for(lambda: meta_rows(cfg.database_path).get(cropfill.EXIF_KEPT), what="the EXIF fill done")
    finally:
        running.stop.set()
        running.thread.join(timeout=20)
    assert running.error is None and running.code == 0
    assert {r["name"]: r["exif"] for r in table(cfg.database_path, "images")} == kept


def meta_rows(db: Path) -> dict[str, object]:
    with sqlite3.connect(db) as con:
        return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}
