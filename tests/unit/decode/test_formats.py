"""Formats people have: HEIC, AVIF and DIB decoded; pictures watcherd cannot decode reported;
decoder warnings gathered into one line; NAS and OS folders left alone."""

from __future__ import annotations

import hashlib
import logging
import struct
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import drop, encode, scene, set_tiff_tag, tiff_libtiff_fails, tiff_pillow_warns, write
from watcherd.core.config import DEFAULT_IGNORE, Config
from watcherd.core.errors import ImageError
from watcherd.core.naming import canonical_name
from watcherd.core.outcomes import Outcome
from watcherd.decode import imaging
from watcherd.decode.newimage import spec_for
from watcherd.decode.rendered import Rendered
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile

SPEC = spec_for(Config())


def rendered(data: bytes, name: str = "x") -> Rendered:
    return imaging.render(data, SPEC, name, "ab", 0.0)


def rotated_for_orientation_6(shown: Image.Image) -> Image.Image:
    """The pixels a camera stores for ``shown`` when it tags them 'rotate 90 CW to display'."""
    return shown.transpose(Image.Transpose.ROTATE_90)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_rotated_heif_and_avif_are_named_as_the_upright_picture(fmt: str) -> None:
    shown = scene((200, 300), seed=5)
    exif = Image.Exif()
    exif[0x0112] = 6
    upright = rendered(encode(shown, fmt, quality=90))
    turned = rendered(encode(rotated_for_orientation_6(shown), fmt, quality=90, exif=exif.tobytes()))
    assert (upright.width, upright.height) == (200, 300)
    # Turned exactly once: not left lying (300x200) and not turned twice (also 300x200).
    assert (turned.width, turned.height, turned.hash) == (upright.width, upright.height, upright.hash)
    assert turned.format == upright.format == fmt


@pytest.mark.parametrize(("fmt", "filename"), [("HEIF", "IMG_0001.HEIC"), ("AVIF", "clip.avif")])
def test_heic_and_avif_are_ingested(cfg: Config, pipeline: Pipeline, fmt: str, filename: str) -> None:
    picture = scene((480, 360), seed=21)
    src = write(cfg.thumbs_dir / "phone" / filename, encode(picture, fmt, quality=90))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    with Image.open(src) as im:  # the name is what Pillow sees once the opener is registered
        expected = canonical_name(480, 360, imaging.perceptual_hash(imaging.normalize(im)))

    assert pipeline.process(src).outcome is Outcome.INGESTED

    thumb = cfg.thumbs_dir / "phone" / expected
    with Image.open(thumb) as im:
        assert im.format == "PNG" and im.size == (64, 48)
        text = im.text
    assert text["format"] == fmt and text["original_filename"] == filename
    assert (text["width"], text["height"], text["sha256"]) == ("480", "360", digest)
    rec = pipeline.catalog.image(expected)
    assert rec is not None and rec.tags == ["phone", "480x360"]
    original = cfg.root / rec.original  # type: ignore[operator]
    assert original.suffix.lower() == Path(filename).suffix.lower()
    assert hashlib.sha256(original.read_bytes()).hexdigest() == digest


def test_headerless_dib_is_decoded(cfg: Config, pipeline: Pipeline) -> None:
    data = encode(scene((120, 90), seed=4), "DIB")
    assert not data.startswith(b"BM")  # really headerless
    src = write(cfg.thumbs_dir / "old.dib", data)
    result = pipeline.process(src)
    assert result.outcome is Outcome.INGESTED
    (rec,) = pipeline.catalog.images()
    assert rec.name.startswith("120x90_") and rec.original is not None and rec.original.endswith(".dib")


@pytest.mark.parametrize("name", ["scan.jxl", "poster.PSD", "logo.svg", "IMG_1.CR2", "DSC_2.nef", "a.arw", "b.dng"])
def test_unsupported_pictures_are_reported_once_and_left(
    cfg: Config, pipeline: Pipeline, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = b"\x00picture bytes watcherd cannot decode\xff" * 10
    src = write(cfg.thumbs_dir / "misc" / name, data)
    suffix = Path(name).suffix.lower()
    with caplog.at_level(logging.WARNING, logger="watcherd"):
        first = pipeline.process(src)
        again = pipeline.process(src)
    assert first.outcome is Outcome.ERROR and first.detail == f"unsupported format ({suffix})"
    assert again.outcome is Outcome.IGNORED
    (err,) = pipeline.catalog.errors()
    assert (err.path, err.reason, err.transient, err.attempts) == (
        f"thumbs/misc/{name}",
        f"unsupported format ({suffix})",
        False,
        1,
    )
    assert src.read_bytes() == data and sorted(p.name for p in src.parent.iterdir()) == [name]
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot ingest thumbs/misc/{name}: unsupported format ({suffix})"
    ]


def test_a_reconcile_counts_unsupported_files_as_errors(cfg: Config, pipeline: Pipeline) -> None:
    write(cfg.thumbs_dir / "a.jxl", b"\xff\x0a not really")
    drop(cfg.thumbs_dir / "b.jpg", seed=3)
    write(cfg.thumbs_dir / "notes.txt", b"not a picture at all")
    report = reconcile(pipeline, reason="scan", settle=0, now=lambda: 4e9)
    assert report.counts == {"error": 1, "ingested": 1, "ignored": 1}
    assert [e.path for e in pipeline.catalog.errors()] == ["thumbs/a.jxl"]


def test_decoder_warnings_become_one_log_line(
    cfg: Config, pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    src = write(cfg.thumbs_dir / "scans" / "w.tif", tiff_pillow_warns(scene((96, 64), seed=3)))
    with caplog.at_level(logging.WARNING, logger="watcherd"):
        assert pipeline.process(src).outcome is Outcome.INGESTED
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == "decoder warnings for thumbs/scans/w.tif: Truncated File Read (3 times)"


def test_a_failed_decode_carries_what_the_decoder_warned() -> None:
    # Pillow warns while reading a tag that points past the end, then libtiff fails on the strip.
    data = set_tiff_tag(tiff_libtiff_fails(scene((96, 64), seed=3)), 284, struct.pack("<HHII", 65000, 2, 100, 10**6))
    with pytest.raises(ImageError) as caught:
        rendered(data)
    assert caught.value.reason == "cannot decode image: decoder error -2 (decoder: Truncated File Read (3 times))"


def test_the_decompression_bomb_warning_stays_an_error() -> None:
    data = encode(Image.new("L", (3000, 3000)), "PNG")
    spec = spec_for(Config(max_image_pixels=5_000_000))  # 9 MP is between the limit and twice it
    with pytest.raises(ImageError, match="decompression bomb"):
        imaging.render(data, spec, "big.png", "ab", 0.0)


NAS_FOLDERS = [
    "@eaDir",
    "#recycle",
    "#snapshot",
    "@Recycle",
    "$RECYCLE.BIN",
    "System Volume Information",
    ".Trash-1000",
    "lost+found",
    ".snapshot",
]


def test_nas_and_os_folders_are_in_the_defaults() -> None:
    for pattern in ("@eaDir", "#recycle", "#snapshot", "@Recycle", "$RECYCLE.BIN", "System Volume Information"):
        assert pattern in DEFAULT_IGNORE
    for pattern in (".Trash-*", "lost+found", ".snapshot"):
        assert pattern in DEFAULT_IGNORE


def test_nas_and_os_folders_are_neither_ingested_nor_tags(cfg: Config, pipeline: Pipeline) -> None:
    inside = [
        drop(cfg.thumbs_dir / "photos" / folder / f"{i}.jpg", scene((200, 150), seed=40 + i))
        for i, folder in enumerate(NAS_FOLDERS)
    ]
    inside.append(drop(cfg.source_dirs[0] / "@eaDir" / "in-source.jpg", scene((200, 150), seed=60)))
    kept = drop(cfg.thumbs_dir / "photos" / "kept.jpg", scene((200, 150), seed=61))

    report = reconcile(pipeline, reason="scan", settle=0, now=lambda: 4e9)

    assert report.counts == {"ingested": 1}
    assert not kept.exists()
    (rec,) = pipeline.catalog.images()
    assert rec.tags == ["photos", "200x150"]
    assert sorted(t for t, _ in pipeline.catalog.tag_counts()) == ["200x150", "photos"]
    for path in inside:
        assert path.is_file()
        assert pipeline.process(path).outcome is Outcome.IGNORED  # as the watcher's events would be
    assert pipeline.catalog.errors() == []
