"""Hashing, normalization, thumbnails and metadata, on images drawn by the tests."""

import io
import struct
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps, PngImagePlugin

from tests.helpers import drop, encode, scene, set_tiff_tag
from watcherd.core.config import ALLOWED_FORMATS
from watcherd.core.errors import ImageError
from watcherd.decode import chunks, imaging
from watcherd.decode.rendered import RenderSpec

MAX = 89_478_485


def name_parts(data: bytes, algorithm: str = "whash", hash_size: int = 8) -> tuple[tuple[int, int], str]:
    decoded = imaging.decode(data, ALLOWED_FORMATS, MAX)
    norm = imaging.normalize(decoded.image)
    return norm.size, imaging.perceptual_hash(norm, algorithm, hash_size)


@pytest.mark.parametrize("algorithm", ["whash", "phash", "dhash", "average_hash"])
def test_plain_rgb_jpeg_hash_is_imagehash_on_the_file(tmp_path: Path, algorithm: str) -> None:
    path = drop(tmp_path / "a.jpg", seed=3)
    _, got = name_parts(path.read_bytes(), algorithm)
    func = getattr(imagehash, algorithm)
    assert got == str(func(Image.open(path), hash_size=8))


def _drawing(name: str) -> Image.Image:
    """Pictures drawn with no randomness at all (no noise, no seed)."""
    if name == "boxes":
        im = Image.new("RGB", (200, 100), "white")
        im.paste((200, 30, 30), (20, 20, 90, 80))
        im.paste((30, 30, 200), (120, 10, 180, 60))
        return im
    if name == "disc":
        im = Image.linear_gradient("L").convert("RGB")
        ImageDraw.Draw(im).ellipse((64, 48, 192, 176), fill=(240, 200, 40))
        return im
    assert name == "stripes"
    im = Image.new("RGB", (160, 120), (20, 20, 20))
    draw = ImageDraw.Draw(im)
    for x in range(0, 160, 32):
        draw.rectangle((x, 0, x + 15, 119), fill=(230, 230, 230))
    draw.line((0, 0, 159, 119), fill=(200, 0, 0), width=5)
    return im


# If one of these changes, every library's names change: computed once, pinned.
GOLDEN = [
    ("boxes", "whash", 8, "f9908080898f9fff"),
    ("boxes", "whash", 16, "ffffff81ff81808180818081808180818081808180c380ff80ffffffffffffff"),
    ("boxes", "phash", 8, "bb48c495c095b795"),
    ("boxes", "dhash", 8, "0333333333383900"),
    ("boxes", "average_hash", 8, "ffd98989898fdfff"),
    ("disc", "whash", 8, "0000183c3c3cffff"),
    ("disc", "whash", 16, "000000000000018007e007e00ff00ff00ff007e003c0ffffffffffffffffffff"),
    ("disc", "phash", 8, "9e1e616166669e9a"),
    ("disc", "dhash", 8, "0c32696969320c20"),
    ("disc", "average_hash", 8, "00003c3cbdffffff"),
    ("stripes", "whash", 8, "9696969696969696"),
    ("stripes", "whash", 16, "db249b24db24cb24d324db24d924db24db64db24db24db64db24db24db24db26"),
    ("stripes", "phash", 8, "ff158a41a152ad5e"),
    ("stripes", "dhash", 8, "5a5a5a5a5a525a5a"),
    ("stripes", "average_hash", 8, "769696a692929494"),
]


@pytest.mark.parametrize(("drawing", "algorithm", "hash_size", "expected"), GOLDEN)
def test_golden_hash_is_constant(drawing: str, algorithm: str, hash_size: int, expected: str) -> None:
    im = _drawing(drawing)
    size, got = name_parts(encode(im, "PNG"), algorithm, hash_size)
    assert size == im.size
    assert got == expected
    # The README's promise: a plain RGB picture is named by ImageHash itself.
    assert str(getattr(imagehash, algorithm)(im, hash_size=hash_size)) == expected


def test_exif_rotated_photo_is_named_as_shown() -> None:
    upright = scene((300, 200), seed=5)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    data = encode(upright, "JPEG", exif=exif.tobytes())
    (w, h), got = name_parts(data)
    assert (w, h) == (200, 300)
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert got == str(imagehash.whash(shown))


def test_transparency_is_flattened_on_white() -> None:
    im = scene((120, 80), seed=7).convert("RGBA")
    alpha = Image.new("L", im.size, 0)
    alpha.paste(255, (20, 20, 100, 60))
    im.putalpha(alpha)
    _, got = name_parts(encode(im, "PNG"))
    flat = Image.new("RGBA", im.size, "white")
    flat.alpha_composite(im)
    assert got == str(imagehash.whash(flat.convert("RGB")))


def _premultiplied_tiff(im: Image.Image) -> bytes:
    """A TIFF whose alpha is marked associated (ExtraSamples 1): Pillow opens LA as La."""
    return set_tiff_tag(encode(im, "TIFF"), 338, struct.pack("<HHIHH", 338, 3, 1, 1, 0))


def _modes() -> dict[str, bytes]:
    base = scene((96, 64), seed=11)
    arr16 = (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    frames = [scene((64, 64), seed=s).convert("P") for s in (1, 2)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return {
        "palette": encode(base.convert("P"), "PNG"),
        "palette-transparent": encode(base.convert("P"), "PNG", transparency=0),
        "grayscale": encode(base.convert("L"), "JPEG"),
        "cmyk": encode(base.convert("CMYK"), "JPEG"),
        "one-bit": encode(base.convert("1"), "PNG"),
        "la": encode(base.convert("LA"), "PNG"),
        "16-bit": encode(Image.fromarray(arr16), "PNG"),
        "32-bit-int": encode(base.convert("I"), "TIFF"),
        "float": encode(base.convert("F"), "TIFF"),
        "animated-gif": gif.getvalue(),
        "webp": encode(base, "WEBP"),
        "bmp": encode(base, "BMP"),
        "dib": encode(base, "DIB"),
        "la-tiff": encode(base.convert("LA"), "TIFF"),
        "la-premultiplied-tiff": _premultiplied_tiff(base.convert("LA")),
        "pa-tiff": encode(base.convert("PA"), "TIFF"),
        "16-bit-tiff": encode(Image.fromarray(arr16), "TIFF"),
        "heif": encode(base, "HEIF"),
        "avif": encode(base, "AVIF"),
    }


# The same scene in every mode normalizes to the same whash; the animated GIF's first
# frame is another scene. Computed once, pinned.
SCENE_11 = "0606c4c0c0f1ffff"
MODE_HASHES = {kind: SCENE_11 for kind in _modes()} | {"animated-gif": "01010707039fffff"}


def test_premultiplied_tiffs_open_in_premultiplied_modes() -> None:
    # Otherwise the cases above would not test what they are named for.
    base = scene((32, 32), seed=1)
    assert Image.open(io.BytesIO(_premultiplied_tiff(base.convert("LA")))).mode == "La"
    assert Image.open(io.BytesIO(encode(base.convert("PA"), "TIFF"))).mode == "PA"
    assert Image.open(io.BytesIO(encode(Image.new("I;16", (4, 4)), "TIFF"))).mode == "I;16"


@pytest.mark.parametrize("kind", sorted(_modes()))
def test_every_mode_hashes_and_thumbnails(kind: str) -> None:
    decoded = imaging.decode(_modes()[kind], ALLOWED_FORMATS, MAX)
    norm = imaging.normalize(decoded.image)
    assert norm.mode in ("RGB", "L")
    assert imaging.perceptual_hash(norm) == MODE_HASHES[kind]
    thumb = imaging.thumbnail(norm, 64)
    assert max(thumb.size) == 64


def test_sixteen_bit_keeps_the_top_byte() -> None:
    arr = np.full((8, 8), 0xAB12, dtype=np.uint16)
    decoded = imaging.decode(encode(Image.fromarray(arr), "PNG"), ALLOWED_FORMATS, MAX)
    norm = imaging.normalize(decoded.image)
    assert norm.getextrema() == (0xAB, 0xAB)


def test_flat_float_image_becomes_black() -> None:
    im = Image.new("F", (8, 8), 3.5)
    norm = imaging.normalize(imaging.decode(encode(im, "TIFF"), ALLOWED_FORMATS, MAX).image)
    assert norm.getextrema() == (0, 0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"hello, I am text\n", "not an image in an allowed format"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image in an allowed format"),
        (b"%PDF-1.4\n1 0 obj<<>>endobj\n", "not an image in an allowed format"),
        (b"8BPS\x00\x01" + b"\x00" * 40, "not an image in an allowed format"),
    ],
)
def test_not_images_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        imaging.decode(data, ALLOWED_FORMATS, MAX)


def test_truncated_jpeg_is_refused_and_retryable() -> None:
    data = encode(scene((400, 300), seed=1), "JPEG")
    with pytest.raises(ImageError, match="truncated") as info:
        imaging.decode(data[: len(data) // 2], ALLOWED_FORMATS, MAX)
    assert info.value.transient


def test_decompression_bomb_is_refused() -> None:
    data = encode(Image.new("L", (1000, 1000)), "PNG")
    with pytest.raises(ImageError, match="decompression bomb"):
        imaging.decode(data, ALLOWED_FORMATS, 400_000)  # warning range: > limit
    with pytest.raises(ImageError, match="decompression bomb"):
        imaging.decode(data, ALLOWED_FORMATS, 100_000)  # error range: > 2x limit


def test_formats_outside_the_allowlist_are_refused() -> None:
    data = encode(scene(seed=2), "PNG")
    with pytest.raises(ImageError, match="allowed format"):
        imaging.decode(data, ("JPEG",), MAX)


def _describe(data: bytes, filename: str = "cat.jpg") -> dict[str, str]:
    decoded = imaging.decode(data, ALLOWED_FORMATS, MAX)
    return chunks.describe(
        decoded,
        filename=filename,
        width=1,
        height=1,
        hash_hex="00",
        algorithm="whash",
        hash_size=8,
        sha256="ab",
        file_size=len(data),
    )


def test_metadata_fields_and_png_round_trip() -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    data = encode(scene(seed=4), "JPEG", xmp=xmp)
    text = _describe(data, filename="caf\udce9.jpg")
    for key in (
        "original_filename",
        "width",
        "height",
        "format",
        "format_description",
        "bands",
        "hash_decode",
        "xmp",
        "hash",
        "hash_algorithm",
        "hash_size",
        "sha256",
        "ingested",
    ):
        assert key in text, key
    assert text["original_filename"] == "caf\\xe9.jpg"
    assert text["format"] == "JPEG"
    assert text["bands"] == "R,G,B"
    assert "xmpmeta" in text["xmp"]
    png = chunks.png_bytes(Image.new("RGB", (4, 4)), text)
    assert png_text(png) == text


def test_huge_xmp_is_left_out_and_thumbnail_stays_readable() -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b"A" * (2 * 1024 * 1024) + b"</x:xmpmeta>"
    data = encode(scene(seed=4), "PNG", pnginfo=_pnginfo_xmp(xmp))
    text = _describe(data)
    assert "xmp" not in text
    assert "xmp_omitted" in text
    png = chunks.png_bytes(Image.new("RGB", (4, 4)), text)
    assert png_text(png)["xmp_omitted"] == text["xmp_omitted"]


def png_text(png: bytes) -> dict[str, str]:
    """The text chunks of a PNG, read by Pillow (not by watcherd's own reader)."""
    with Image.open(io.BytesIO(png)) as im:
        assert isinstance(im, PngImagePlugin.PngImageFile)
        return dict(im.text)


def _pnginfo_xmp(xmp: bytes) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp.decode(), zip=True)
    return info


def test_hostile_xmp_is_never_parsed() -> None:
    billion_laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">&lol2;</x:xmpmeta>'
    )
    data = encode(scene(seed=4), "JPEG", xmp=billion_laughs.encode())
    text = _describe(data)
    assert text["xmp"] == billion_laughs  # kept verbatim, entities not expanded


def test_thumbnail_fits_the_longer_side() -> None:
    thumb = imaging.thumbnail(scene((640, 200)), 64)
    assert thumb.size == (64, 20)


def _pictures() -> list[Image.Image]:
    """Noise, flat colour, scenes, gradients and slivers: the cases where block sums tie or not."""
    rng = np.random.default_rng(7)
    out: list[Image.Image] = []
    for i in range(40):
        w, h = (int(v) for v in rng.integers(1, 900, 2))
        kind = i % 5
        if kind == 0:
            out.append(Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
        elif kind == 1:
            out.append(Image.new("RGB", (w, h), tuple(int(c) for c in rng.integers(0, 256, 3))))
        elif kind == 2:
            out.append(scene((w, h), seed=i))
        elif kind == 3:
            out.append(Image.fromarray((np.add.outer(np.arange(h), np.arange(w)) % 256).astype(np.uint8)))
        else:
            out.append(scene((w, h), seed=i).convert("L"))
    out.append(Image.new("L", (1, 1), 0))
    out.append(Image.new("RGB", (2000, 3), "white"))
    return out


@pytest.mark.parametrize("hash_size", [4, 8, 16])
def test_wavelet_hash_is_imagehash_whash_bit_for_bit(hash_size: int) -> None:
    for im in _pictures():
        assert str(imaging.wavelet_hash(im, hash_size)) == str(imagehash.whash(im, hash_size=hash_size)), im.size


FAST = RenderSpec(ALLOWED_FORMATS, MAX, "#ffffff", "whash", 8, 64, decode="fast")
REFERENCE = RenderSpec(ALLOWED_FORMATS, MAX, "#ffffff", "whash", 8, 64)


def test_fast_decode_names_the_full_size_with_a_hash_close_to_reference() -> None:
    data = encode(scene((600, 400), seed=9).resize((2400, 1600)), "JPEG")
    fast = imaging.render(data, FAST, "a.jpg", "", 0.0)
    ref = imaging.render(data, REFERENCE, "a.jpg", "", 0.0)
    assert (fast.width, fast.height) == (ref.width, ref.height) == (2400, 1600)
    assert (int(fast.hash, 16) ^ int(ref.hash, 16)).bit_count() <= 8
    assert (fast.hash, ref.hash) == ("00000c00bfffffef", "00000c00bfffffef")  # pinned: fast's parameters are fixed
    assert chunks.read_text(fast.png)["hash_decode"] == "fast"
    assert chunks.read_text(ref.png)["hash_decode"] == "reference"
    assert Image.open(io.BytesIO(fast.png)).size == (64, 43)


def test_fast_decode_uses_a_draft_and_keeps_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(scene((1200, 800), seed=5), "JPEG", exif=exif.tobytes())
    decoded = imaging.decode(data, ALLOWED_FORMATS, MAX, draft_side=imaging.FAST_SIDE)
    assert decoded.size == (1200, 800) and decoded.image.size == (600, 400)  # 1/4 would leave 200 < 256
    out = imaging.render(data, FAST, "a.jpg", "", 0.0)
    assert (out.width, out.height) == (800, 1200)
    assert Image.open(io.BytesIO(out.png)).size == (43, 64)
    assert '"Orientation": "6"' in chunks.read_text(out.png)["exif"]  # the original's EXIF, as stored
