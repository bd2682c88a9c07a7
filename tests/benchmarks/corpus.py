"""Deterministic photograph-like pictures and their near-duplicates, drawn here (nothing downloaded).

A "photo" is a 1/f noise landscape (structure at every scale, as in real scenes)
coloured by a random palette, with a horizon, a few soft objects and sensor grain,
so JPEG sizes, decode times and hash behaviour resemble camera pictures rather than
flat drawings.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter


def photo(size: tuple[int, int], seed: int) -> Image.Image:
    """An RGB picture of ``size``; every seed gives a different scene."""
    rng = np.random.default_rng(seed)
    w, h = size
    field = np.zeros((h, w), dtype=np.float32)
    for octave in range(2, 9):  # 1/f noise: coarse shapes strong, fine texture weak
        cells = 2**octave
        coarse = rng.standard_normal((max(2, cells * h // w), cells)).astype(np.float32)
        up = Image.fromarray(coarse, mode="F").resize((w, h), Image.Resampling.BICUBIC)
        field += np.asarray(up) / octave**1.3
    horizon = int(h * rng.uniform(0.3, 0.7))
    field[:horizon] += np.linspace(1.5, 0.5, horizon, dtype=np.float32)[:, None] * rng.uniform(0.5, 2)
    field = (field - field.min()) / (np.ptp(field) + 1e-6)
    palette = rng.uniform(0, 255, (4, 3))
    idx = field * 3
    lo = np.floor(idx).astype(int).clip(0, 2)
    frac = (idx - lo)[..., None]
    rgb = palette[lo] * (1 - frac) + palette[lo + 1] * frac
    im = Image.fromarray(rgb.clip(0, 255).astype(np.uint8), mode="RGB")
    layer = Image.new("RGB", size)
    mask = Image.new("L", size, 0)
    draw, mdraw = ImageDraw.Draw(layer), ImageDraw.Draw(mask)
    for _ in range(int(rng.integers(2, 6))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(horizon // 2, h))
        rx, ry = int(rng.integers(w // 20, w // 5)), int(rng.integers(h // 20, h // 4))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse((x0 - rx, y0 - ry, x0 + rx, y0 + ry), fill=colour)
        mdraw.ellipse((x0 - rx, y0 - ry, x0 + rx, y0 + ry), fill=int(rng.integers(150, 256)))
    im.paste(layer, (0, 0), mask.filter(ImageFilter.GaussianBlur(max(1, w // 300))))
    grain = rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    out = np.asarray(im, dtype=np.float32) + grain
    return Image.fromarray(out.clip(0, 255).astype(np.uint8), mode="RGB")


def jpeg(im: Image.Image, quality: int = 90, **params: object) -> bytes:
    """JPEG bytes."""
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, **params)
    return buf.getvalue()


def png(im: Image.Image) -> bytes:
    """PNG bytes (fast compression: the benchmark measures hashing, not zlib)."""
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


Variant = Callable[[Image.Image, np.random.Generator], bytes]


def _resize(im: Image.Image, rng: np.random.Generator) -> bytes:
    f = rng.uniform(0.5, 1.5)
    return jpeg(im.resize((round(im.width * f), round(im.height * f)), Image.Resampling.LANCZOS))


def _quality(im: Image.Image, rng: np.random.Generator) -> bytes:
    return jpeg(im, int(rng.integers(30, 96)))


def _crop(im: Image.Image, rng: np.random.Generator) -> bytes:
    fx, fy = rng.uniform(0, 0.05, 2)
    left, top = int(im.width * fx * rng.uniform()), int(im.height * fy * rng.uniform())
    right, bottom = im.width - int(im.width * fx) + left, im.height - int(im.height * fy) + top
    return jpeg(im.crop((left, top, min(right, im.width), min(bottom, im.height))))


def _brightness(im: Image.Image, rng: np.random.Generator) -> bytes:
    return jpeg(ImageEnhance.Brightness(im).enhance(1 + rng.choice([-1, 1]) * rng.uniform(0.05, 0.2)))


def _png_round_trip(im: Image.Image, rng: np.random.Generator) -> bytes:
    return png(Image.open(io.BytesIO(jpeg(im, int(rng.integers(70, 96))))))


def _text(im: Image.Image, rng: np.random.Generator) -> bytes:
    marked = im.copy()
    draw = ImageDraw.Draw(marked)
    x, y = int(im.width * rng.uniform(0.05, 0.6)), int(im.height * rng.uniform(0.8, 0.92))
    for i, word in enumerate(("© watcherd", "2026")):
        draw.text((x, y + 12 * i), word, fill=(255, 255, 255))
    return jpeg(marked)


def _exif_rotated(im: Image.Image, rng: np.random.Generator) -> bytes:
    """The same picture stored sideways with an orientation tag (a phone photo)."""
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    return jpeg(im.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())


VARIANTS: dict[str, Variant] = {
    "resize 50-150%": _resize,
    "JPEG q30-95": _quality,
    "crop <=5%": _crop,
    "brightness +-20%": _brightness,
    "JPEG -> PNG": _png_round_trip,
    "text overlay": _text,
    "EXIF-rotated": _exif_rotated,
}
