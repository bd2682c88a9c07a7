"""The keeper rule (more pixels, larger file, older date) and where its facts come from."""

from __future__ import annotations

import json
import os
from datetime import datetime

import pytest
from PIL import ExifTags, Image

from tests.helpers import encode, scene, write
from watcherd.catalog import Catalog
from watcherd.commands import duplicates
from watcherd.core.config import Config
from watcherd.core.errors import UsageError
from watcherd.core.keeper import Facts, camera, choose, date_taken, exif_date, facts_from, shown_date, suggest
from watcherd.core.outcomes import Outcome
from watcherd.decode import chunks, imaging
from watcherd.decode.facts import collision_facts
from watcherd.decode.newimage import spec_for
from watcherd.flow.pipeline import Pipeline

OLD = datetime(2019, 6, 1, 12, 0, 0)
NEW = datetime(2023, 1, 2, 3, 4, 5)


def test_more_pixels_wins_over_a_larger_file_and_an_older_date() -> None:
    small_big_old = Facts(pixels=100, file_size=10_000, taken=OLD)
    large_small_new = Facts(pixels=200, file_size=10, taken=NEW)
    assert suggest([small_big_old, large_small_new]) == 1
    assert suggest([large_small_new, small_big_old]) == 0


def test_with_equal_pixels_the_larger_file_wins_over_an_older_date() -> None:
    assert suggest([Facts(100, 10, OLD), Facts(100, 11, NEW)]) == 1


def test_with_equal_pixels_and_size_the_older_date_wins() -> None:
    assert suggest([Facts(100, 10, NEW), Facts(100, 10, OLD)]) == 1
    assert suggest([Facts(100, 10, OLD), Facts(100, 10, NEW)]) == 0


def test_unknown_values_lose_to_known_ones_and_a_full_tie_keeps_the_first() -> None:
    assert suggest([Facts(None, 10, OLD), Facts(1, None, None)]) == 1
    assert suggest([Facts(100, None, OLD), Facts(100, 1, NEW)]) == 1
    assert suggest([Facts(100, 1, None), Facts(100, 1, NEW)]) == 1
    assert suggest([Facts(100, 1, OLD), Facts(100, 1, OLD)]) == 0
    assert suggest([Facts(None, None, None)] * 3) == 0
    with pytest.raises(UsageError):
        suggest([])


def test_exif_dates_are_read_as_cameras_write_them() -> None:
    assert exif_date("2019:06:01 12:00:00") == OLD
    assert exif_date(" 2019:06:01 12:00:00\0") == OLD
    assert exif_date("0000:00:00 00:00:00") is None  # "unknown", as some cameras say it
    assert exif_date("yesterday") is None


def test_date_taken_prefers_the_moment_the_shutter_fired() -> None:
    fields = {"DateTime": "2023:01:02 03:04:05", "DateTimeOriginal": "2019:06:01 12:00:00"}
    assert date_taken({"exif": json.dumps(fields)}) == OLD
    assert date_taken({"exif": json.dumps({"DateTime": "2023:01:02 03:04:05"})}) == NEW
    assert date_taken({"exif": json.dumps({"Make": "x"})}) is None
    assert date_taken({"exif": "not json"}) is None and date_taken({}) is None
    assert shown_date(Facts(1, 1, OLD, "EXIF")) == "2019-06-01 12:00:00 (EXIF)"
    assert shown_date(Facts(1, 1, None)) == "?"


def jpeg_taken(when: str, seed: int = 3, quality: int = 90) -> bytes:
    """A JPEG whose Exif sub-IFD says when it was taken (IFD0 only has the camera's make)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "watcherd test"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = when
    return encode(scene(seed=seed), "JPEG", quality=quality, exif=exif.tobytes())


def test_the_thumbnail_keeps_the_date_from_the_exif_sub_ifd(cfg: Config) -> None:
    out = imaging.render(jpeg_taken("2019:06:01 12:00:00"), spec_for(cfg), "a.jpg", "0" * 64, 0.0)
    text = chunks.read_text(out.png)
    assert json.loads(text["exif"])["DateTimeOriginal"] == "2019:06:01 12:00:00"
    assert date_taken(text) == OLD


def test_dupes_suggests_the_larger_newcomer_and_the_older_picture_on_a_tie(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    assert cfg.root is not None
    # The same picture: a small JPEG first, then a larger (better quality) one: keep the newcomer.
    small, large = jpeg_taken("2023:01:02 03:04:05", quality=40), jpeg_taken("2019:06:01 12:00:00", quality=95)
    assert pipeline.process(write(cfg.thumbs_dir / "a.jpg", small)).outcome is Outcome.INGESTED
    assert pipeline.process(write(cfg.thumbs_dir / "b.jpg", large)).outcome is Outcome.COLLISION
    (item,) = duplicates.dupes(catalog, root=cfg.root)
    assert item["suggested"] == "newcomer"
    (col,) = catalog.collisions()
    (existing, newcomer), _ = collision_facts(cfg.root, col)
    assert existing.pixels == newcomer.pixels == 320 * 240
    assert (existing.file_size, newcomer.file_size) == (len(small), len(large))
    assert (existing.taken, newcomer.taken, newcomer.taken_from) == (NEW, OLD, "EXIF")
    assert duplicates.dupes(catalog)[0]["suggested"] is None  # no root: no files to look at


def test_without_exif_the_original_s_file_date_decides_a_tie(cfg: Config, catalog: Catalog, pipeline: Pipeline) -> None:
    assert cfg.root is not None
    data = encode(scene(seed=9), "PNG")
    first = write(cfg.thumbs_dir / "a.png", data)
    assert pipeline.process(first).outcome is Outcome.INGESTED
    again = write(cfg.thumbs_dir / "dogs" / "b.png", data)  # the same bytes: an exact collision, same size
    os.utime(again, (OLD.timestamp(), OLD.timestamp()))  # but a file from 2019
    assert pipeline.process(again).outcome is Outcome.COLLISION
    (item,) = duplicates.dupes(catalog, root=cfg.root)
    assert item["kind"] == "exact" and item["suggested"] == "newcomer"
    (col,) = catalog.collisions()
    (_, newcomer), _ = collision_facts(cfg.root, col)
    assert (newcomer.taken, newcomer.taken_from) == (OLD, "file date")


# --- the camera original beats an enlarged or recompressed copy --------------------------

CAMERA = Facts(1411 * 940, 400_000, OLD, "EXIF", "Canon EOS 80D", 12, (1411, 940), (1411, 940))
UPSCALED = Facts(3000 * 1999, 2_500_000, NEW, "file date", None, 0, None, (3000, 1999))


def test_the_camera_original_beats_a_larger_copy_without_exif_whichever_came_first() -> None:
    for order in ([CAMERA, UPSCALED], [UPSCALED, CAMERA]):
        choice = choose(order)
        assert order[choice.keep] is CAMERA
        kept, other = choice.reasons[choice.keep], choice.reasons[1 - choice.keep]
        assert kept == ["camera original (Canon EOS 80D)", "original resolution", "EXIF date 2019-06-01"]
        assert other == ["upscaled 2.1x, no camera EXIF"]


def test_a_copy_resized_after_the_camera_is_no_camera_original() -> None:
    resized = Facts(800 * 533, 90_000, OLD, "EXIF", "Canon EOS 80D", 12, (6000, 4000), (800, 533))
    assert resized.resized and not resized.camera_original
    stripped = Facts(6000 * 4000, 9_000_000, NEW, "file date", None, 0, None, (6000, 4000))
    choice = choose([resized, stripped])
    assert choice.keep == 1  # neither is a camera original: more pixels wins
    assert choice.reasons == [["7.5x smaller"], ["more pixels"]]
    turned = Facts(4000 * 6000, 1, OLD, "EXIF", "X", 3, (6000, 4000), (4000, 6000))
    assert turned.camera_original  # EXIF orientation turned it: the same size the other way round


def test_at_equal_pixels_the_less_compressed_file_wins_then_more_exif_then_the_older_date() -> None:
    a = Facts(100, 5 << 20, NEW, "EXIF", "X", 5, None, (10, 10))
    b = Facts(100, 1 << 20, OLD, "EXIF", "X", 9, None, (10, 10))
    assert choose([b, a]).keep == 1
    assert choose([b, a]).reasons == [
        ["smaller file, more compressed (1.0 MB)"],
        ["larger file at equal pixels (5.0 MB)", "EXIF date 2023-01-02"],
    ]
    c = Facts(100, 1 << 20, NEW, "EXIF", "X", 12, None, (10, 10))
    assert choose([b, c]).keep == 1 and choose([b, c]).reasons[1][0] == "more EXIF (12 fields)"
    d = Facts(100, 1 << 20, NEW, "file date", "X", 9, None, (10, 10))
    assert choose([d, b]).keep == 1 and choose([d, b]).reasons[0] == ["newer date taken"]
    assert choose([b, b]).reasons == [
        ["the same facts: keeping it moves nothing", "EXIF date 2019-06-01"],
        ["the same facts"],
    ]


def test_facts_are_read_from_the_exif_chunk() -> None:
    fields = {
        "Make": "Canon",
        "Model": "Canon EOS 80D",
        "DateTimeOriginal": "2019:06:01 12:00:00",
        "ExifImageWidth": "1411",
        "ExifImageHeight": "940",
    }
    chunks = {"width": "1411", "height": "940", "file_size": "1234", "exif": json.dumps(fields)}
    facts = facts_from(chunks, None, 99, NEW)
    assert facts == Facts(1411 * 940, 1234, OLD, "EXIF", "Canon EOS 80D", 5, (1411, 940), (1411, 940))
    assert facts_from({}, (4, 3), 99, NEW) == Facts(12, 99, NEW, "file date", None, 0, None, (4, 3))
    assert facts_from({}, None, None, None) == Facts(None, None, None)
    assert camera({"Make": "NIKON CORPORATION", "Model": "NIKON D750"}) == "NIKON CORPORATION NIKON D750"
    assert camera({"Make": "Apple", "Model": "iPhone 12"}) == "Apple iPhone 12"
    assert camera({}) is None
