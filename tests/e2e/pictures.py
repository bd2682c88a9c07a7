"""Pictures and libraries for the review page's tests and screenshots, drawn with Pillow.

``landscape`` looks like a photo (sky, sun, hills, trees, grain) so that previews,
differences and screenshots show what a person would see; ``showcase_library`` holds a
collision between a camera original and a recompressed copy, a near group of three (the
camera original, an upscaled copy, a slightly cropped one) and a HEIC collision.
"""

from __future__ import annotations

import io
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageDraw, ImageFilter

from tests.helpers import encode, write

pillow_heif.register_heif_opener()


def landscape(size: tuple[int, int] = (960, 640), seed: int = 0) -> Image.Image:
    """A photo-like RGB picture: a sky gradient, a sun, layered hills, trees and sensor grain."""
    rng = random.Random(seed)
    w, h = size
    top = (rng.randrange(40, 120), rng.randrange(90, 170), rng.randrange(170, 240))
    low = (rng.randrange(200, 255), rng.randrange(150, 220), rng.randrange(120, 190))
    sky = Image.linear_gradient("L").resize((w, h))
    im = Image.composite(Image.new("RGB", size, low), Image.new("RGB", size, top), sky)
    draw = ImageDraw.Draw(im)
    sx, sy, r = rng.randrange(w // 5, 4 * w // 5), rng.randrange(h // 10, h // 3), max(8, w // rng.randrange(14, 22))
    draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=(255, 236, 180))
    horizon = rng.uniform(0.3, 0.6)
    for layer in range(4):
        base = h * (horizon + 0.12 * layer)
        shade = 40 + 25 * (3 - layer)
        colour = (shade // 2 + rng.randrange(30), shade + rng.randrange(50), shade // 2 + rng.randrange(30))
        points = [(0.0, float(h))]
        phase, amplitude = rng.uniform(0, 6.3), h * rng.uniform(0.04, 0.2)
        for x in range(0, w + 40, 40):
            points.append(
                (float(x), base + amplitude * math.sin(phase + x / w * rng.uniform(3, 7)) + rng.uniform(-8, 8))
            )
        points.append((float(w), float(h)))
        draw.polygon(points, fill=colour)
        for _ in range(5 + 3 * layer):
            tx, ty = rng.randrange(w), int(base + rng.uniform(0, h * 0.1))
            th = int(h * (0.05 + 0.03 * layer))
            dark = (colour[0] // 2, colour[1] // 2, colour[2] // 2)
            draw.polygon([(tx, ty - th), (tx - th // 3, ty), (tx + th // 3, ty)], fill=dark)
    # A lake and a house, somewhere: large shapes that tell one picture from another.
    lx, ly = rng.randrange(w // 2), rng.randrange(h // 2, h - h // 6)
    draw.ellipse((lx, ly, lx + rng.randrange(w // 4, w // 2), ly + rng.randrange(h // 12, h // 6)), fill=(70, 110, 160))
    hx, hy, hw = rng.randrange(w - w // 6), rng.randrange(h // 2, h - h // 5), rng.randrange(w // 12, w // 6)
    draw.rectangle((hx, hy, hx + hw, hy + hw * 2 // 3), fill=(rng.randrange(150, 230), 70, 50))
    draw.polygon([(hx - hw // 8, hy), (hx + hw // 2, hy - hw // 2), (hx + hw + hw // 8, hy)], fill=(60, 40, 40))
    im = im.filter(ImageFilter.GaussianBlur(0.6))
    grain = Image.effect_noise(size, 18).convert("RGB")
    return Image.blend(im, grain, 0.06)


def exif_of(camera: tuple[str, str], taken: str, size: tuple[int, int]) -> bytes:
    """EXIF as a camera writes it: make, model, date taken, the size it recorded, a place."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = camera
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = taken
    sub[ExifTags.Base.ExifImageWidth], sub[ExifTags.Base.ExifImageHeight] = size
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (46.0, 33.0, 29.4)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (7.0, 58.0, 51.6)
    return exif.tobytes()


def camera_jpeg(im: Image.Image, taken: str = "2019:06:02 10:11:12") -> bytes:
    """``im`` as the camera's own JPEG."""
    return encode(im, "JPEG", quality=92, exif=exif_of(("Canon", "Canon EOS 80D"), taken, im.size))


def heic(im: Image.Image) -> bytes:
    """``im`` as a HEIC file (libheif, through pillow-heif)."""
    out = io.BytesIO()
    im.save(out, format="HEIF", quality=85)
    return out.getvalue()


def tiff16(im: Image.Image) -> bytes:
    """``im`` as a 16-bit greyscale TIFF (a scanner's), which no browser shows."""
    grey = np.asarray(im.convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(grey), "TIFF")


def scan(root: Path) -> None:
    subprocess.run([sys.executable, "-m", "watcherd", "scan", str(root)], check=True, capture_output=True, timeout=120)


def showcase_library(root: Path, size: tuple[int, int] = (960, 640)) -> Path:
    """Two scans: a collision (camera original, then a re-save as PNG without EXIF), a near group
    of three (camera original, an upscaled copy, a slightly cropped one), a HEIC collision, a
    16-bit TIFF collision and an exact duplicate (the same bytes in another folder)."""
    pair, group, phone, scanned, twice = (landscape(size, seed) for seed in (1, 2, 3, 4, 6))
    w, h = size
    first = {
        "thumbs/holiday/IMG_2041.JPG": camera_jpeg(pair),
        "thumbs/holiday/IMG_2077.JPG": camera_jpeg(group, "2019:06:03 18:40:02"),
        "thumbs/phone/IMG_5120.HEIC": heic(phone),
        "thumbs/scans/scan-0042.tif": tiff16(scanned),
        "thumbs/holiday/IMG_2090.JPG": camera_jpeg(twice, "2019:06:04 09:00:00"),
    }
    second = {
        "thumbs/downloads/IMG_2041.png": encode(pair, "PNG"),
        "thumbs/downloads/wallpaper.jpg": encode(
            group.resize((w * 2, h * 2), Image.Resampling.LANCZOS), "JPEG", quality=95
        ),
        "thumbs/shared/IMG_2077 crop.png": encode(group.crop((4, 3, w - 4, h - 3)), "PNG"),
        "thumbs/shared/IMG_5120.jpg": encode(phone, "JPEG", quality=80),
        "thumbs/scans/scan-0042.png": encode(scanned.convert("L"), "PNG"),
        "thumbs/shared/IMG_2090.JPG": first["thumbs/holiday/IMG_2090.JPG"],  # the same bytes: exact
    }
    for batch in (first, second):
        for rel, data in batch.items():
            write(root / rel, data)
        scan(root)
    return root
