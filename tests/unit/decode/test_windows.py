"""Window hashes (core.crops, decode.windows) and the burst rule (core.keeper.is_burst), on pictures made here."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta

import numpy as np
import pytest
from PIL import Image

from tests.benchmarks.corpus import photo
from tests.benchmarks.realpics import crop
from watcherd.catalog import cropschema as schema
from watcherd.core import crops
from watcherd.core.keeper import BURST_GAP, Shot, is_burst, shot
from watcherd.decode import imaging, windows


def windows_of(im: Image.Image) -> list[int]:
    """Window hashes as ingest computes them: from the 64-px thumbnail of the picture."""
    return windows.window_hashes(imaging.thumbnail(imaging.normalize(im), 64))


def whash(im: Image.Image) -> int:
    return int(imaging.perceptual_hash(imaging.normalize(im)), 16)


@pytest.fixture(scope="module")
def original() -> Image.Image:
    return photo((900, 600), seed=3)


def test_window_hashes_are_a_fixed_list_that_round_trips(original: Image.Image) -> None:
    hs = windows_of(original)
    assert len(hs) == len(crops.WINDOWS) and crops.WINDOWS[0] == (0.0, 0.0, 0.0, 0.0)
    assert hs == windows_of(original.copy())  # a function of the pixels
    text = crops.join(hs)
    assert text.startswith("v1:") and crops.split(text) == hs
    assert crops.split(text.replace("v1:", "v0:")) == []  # another version is recomputed, not misread
    assert crops.split(text[:-4]) == [] and crops.split(text[:3] + "z" + text[4:]) == [] and crops.split(None) == []
    assert crops.split(text[:-4] + "!!!!") == []
    # What the catalog's trigger reads from the text: the same shape.
    shape = ("v1:", len(text), crops.STORED, crops.HEX)
    assert shape == (schema.CROP_PREFIX, schema.CROP_LENGTH, schema.CROP_STORED, schema.CROP_HEX)
    assert max(crops.AS_ORIGINAL) < crops.HEX  # dupes --near reads them from the hex
    assert all(bin(h).count("1") == 32 for h in hs)  # each bit says above or below the median


def test_a_tiny_thumbnail_has_no_window_hashes() -> None:
    assert windows.window_hashes(Image.new("RGB", (64, crops.MIN_SIDE - 1))) == []
    assert crops.join([]) == ""


@pytest.mark.parametrize(
    "sides",
    [
        (0.10, 0.10, 0.10, 0.10),
        (0.15, 0.0, 0.0, 0.0),
        (0.0, 0.0, 0.0, 0.15),
        (0.15, 0.15, 0.0, 0.0),
        (0.0, 0.0, 0.12, 0.12),
    ],
)
def test_a_crop_matches_its_original_both_ways(original: Image.Image, sides: tuple[float, float, float, float]) -> None:
    copy = crop(original, *sides)
    a, b = windows_of(original), windows_of(copy)
    # Its whole-picture hash has moved away (what the name's whash sees) ...
    assert (whash(original) ^ whash(copy)).bit_count() > 0
    # ... but a window of one is a stored window of the other, both ways round.
    assert crops.match(whash(copy), b, whash(original), a, 0) is not None
    assert crops.match(whash(original), a, whash(copy), b, 0) is not None


def test_unrelated_pictures_do_not_match_and_whole_matches_are_confirmed() -> None:
    pictures = [photo((600, 400), seed) for seed in range(6)]
    hashes = [(whash(p), windows_of(p)) for p in pictures]
    for i, (ha, wa) in enumerate(hashes):
        for hb, wb in hashes[i + 1 :]:
            assert crops.match(ha, wa, hb, wb, 4) is None
    (ha, wa), (hb, wb) = hashes[0], hashes[1]
    # Names within the distance, pictures not: whash alone would say near; the windows say no.
    assert crops.match(ha, wa, ha ^ 0b11, wb, 4) is None
    assert crops.match(ha, wa, ha ^ 0b11, wa, 4) == ("whole", 2)
    assert crops.match(ha, [], ha ^ 0b11, wb, 4) == ("whole", 2)  # nothing to confirm with: the hash decides


def _exif(make: str, model: str, taken: datetime | None, sub: str | None = None) -> dict[str, str]:
    fields = {"Make": make, "Model": model}
    if taken is not None:
        fields["DateTimeOriginal"] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if sub is not None:
        fields["SubsecTimeOriginal"] = sub
    return {"exif": json.dumps(fields)}


def test_a_burst_is_one_camera_at_moments_a_few_seconds_apart() -> None:
    t = datetime(2024, 5, 1, 10, 0, 0)
    frames = [shot(_exif("Canon", "EOS R6", t + timedelta(seconds=i))) for i in range(5)]
    assert frames[0] == Shot("Canon EOS R6", t)
    assert is_burst(frames)
    assert not is_burst(frames[:1])
    assert not is_burst([*frames[:2], shot(_exif("Nikon", "Z6", t))])  # two cameras
    assert not is_burst([frames[0], frames[0]])  # copies of one shot share its moment
    assert not is_burst([frames[0], shot(_exif("Canon", "EOS R6", t + BURST_GAP + timedelta(seconds=1)))])
    assert not is_burst([frames[0], shot(_exif("Canon", "EOS R6", None))])  # undated
    assert not is_burst([shot({}), shot({})])
    # Frames within one second are told apart by the fraction of a second.
    fast = [shot(_exif("Apple", "iPhone 15", t, sub)) for sub in ("10", "43", "76")]
    assert fast[1].taken == t + timedelta(seconds=0.43) and is_burst(fast)


def test_shot_reads_what_the_thumbnail_chunk_keeps() -> None:
    """The chunk written at ingest carries make, model and the sub-IFD's dates."""
    from watcherd.decode.chunks import describe

    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "EOS R6"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 10:00:07"
    exif.get_ifd(0x8769)[0x9291] = "25"
    buf = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buf, format="JPEG", exif=exif.tobytes())
    decoded = imaging.decode(buf.getvalue(), ("JPEG",), 10**7)
    text = describe(
        decoded, filename="a.jpg", width=64, height=48, hash_hex="0" * 16, algorithm="whash", hash_size=8,
        sha256="", file_size=1,
    )  # fmt: skip
    assert shot(text) == Shot("Canon EOS R6", datetime(2024, 5, 1, 10, 0, 7, 250000))


def test_the_dct_matrix_is_orthonormal() -> None:
    d = windows._dct()
    assert np.allclose(d @ d.T, np.eye(d.shape[0]))


def test_window_hashes_are_each_windows_dct_hash_bit_for_bit(original: Image.Image) -> None:
    """All windows at once give exactly what each window's hash is by itself (libraries keep
    these hashes: a faster computation must not change one bit), on a photo, noise and a flat
    picture, whose equal coefficients sit on the median."""
    rng = np.random.default_rng(5)
    flat = Image.new("RGB", (64, 40), (128, 128, 128))
    noise = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    for picture in (imaging.thumbnail(imaging.normalize(original), 64), noise, flat):
        grey = picture.convert("L")
        w, h = grey.size
        expected = []
        for left, top, right, bottom in crops.WINDOWS:
            box = (w * left, h * top, w * (1 - right), h * (1 - bottom))
            pixels = np.asarray(grey.resize((crops.SIDE, crops.SIDE), Image.Resampling.LANCZOS, box=box), float)
            low = (windows._dct() @ pixels @ windows._dct().T).ravel()
            expected.append(int("".join("1" if b else "0" for b in low > np.median(low)), 2))
        assert windows.window_hashes(picture) == expected
