"""The keeper rule on real files: the camera original is kept over an upscaled re-save,
whichever arrived first, with its reasons in ``dupes --json``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from tests.helpers import encode, scene, write
from watcherd.cli import main
from watcherd.commands.library import Library
from watcherd.core.config import Config


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
