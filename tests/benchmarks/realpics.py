"""Real pictures for the hash quality benchmark, and the edits people make to them.

The pictures are Debian's desktop wallpapers (``PACKAGES``, installed with apt-get
when missing and this runs as root) plus the benchmark's generated sample photos
(``corpus.photo``). Near-copies of one picture in the packages (the same picture at
three sizes, light and dark versions, colour variants) keep one member (``SKIP``);
pictures that are flat once transparency is flattened (low information: watcherd
leaves them out of near-duplicate groups) are dropped when hashed. Each picture is
brought to at most ``LONG_SIDE`` pixels on its long side and saved as JPEG q90: that
file is the original, and every edit starts from the same pixels.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from tests.benchmarks.corpus import jpeg, photo
from watcherd.decode import imaging

PACKAGES = ("mate-backgrounds", "gnome-backgrounds", "ukui-wallpapers", "lomiri-wallpapers-20.04")
BACKGROUNDS = Path("/usr/share/backgrounds")
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# Another copy of a picture kept: other sizes, the light member of light/dark pairs,
# colour variants of one drawing; vnc-*.webp are a few flat pixels.
SKIP = frozenset(
    {
        "Elephants_3840x2160.jpg",
        "Elephants_5640x3172.jpg",
        "MATE-Stripes-Light.png",
        "Ubuntu-Mate-Dark-no-logo.png",
        "Ubuntu-Mate-Radioactive-no-logo.png",
        "Ubuntu-Mate-Warm-no-logo.png",
        "vnc-l.webp",
    }
)
LONG_SIDE = 1600


def install() -> None:
    """Install the wallpaper packages that are missing (apt-get, as root); say so when that cannot be done."""
    missing = []
    for package in PACKAGES:
        state = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
        if "install ok installed" not in state.stdout:
            missing.append(package)
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(f"install {' '.join(missing)} first (apt-get install {' '.join(missing)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def wallpapers() -> list[Path]:
    """The distinct wallpapers the packages installed, by path."""
    out = []
    for path in sorted(BACKGROUNDS.rglob("*")):
        name = path.name
        if path.suffix.lower() in SUFFIXES and name not in SKIP and not name.endswith("-d.webp"):
            out.append(path)
    return out


def _as_original(im: Image.Image) -> Image.Image:
    im = imaging.normalize(im)
    im = im.convert("RGB") if im.mode != "RGB" else im.copy()
    im.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
    return im


def pictures(photos: int) -> list[tuple[str, Image.Image]]:
    """(name, RGB picture) of every wallpaper, then ``photos`` generated sample photos."""
    out = []
    for path in wallpapers():
        with Image.open(path) as im:
            im.load()
            out.append((f"{path.parent.name}/{path.name}", _as_original(im)))
    out += [(f"photo{seed}", photo((1200, 800), seed)) for seed in range(photos)]
    return out


def crop(im: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    """``im`` with these fractions of its width or height cut off each edge."""
    w, h = im.size
    return im.crop((round(w * left), round(h * top), w - round(w * right), h - round(h * bottom)))


Edit = Callable[[Image.Image, np.random.Generator], bytes]


def _cropped(left: float, top: float, right: float, bottom: float) -> Edit:
    return lambda im, rng: jpeg(crop(im, left, top, right, bottom))


def _one_side(amount: float) -> Edit:
    def edit(im: Image.Image, rng: np.random.Generator) -> bytes:
        sides = [0.0] * 4
        sides[int(rng.integers(4))] = amount
        return jpeg(crop(im, *sides))

    return edit


def _one_corner(amount: float) -> Edit:
    def edit(im: Image.Image, rng: np.random.Generator) -> bytes:
        sides = [0.0] * 4
        k = int(rng.integers(4))
        sides[k] = sides[(k + 1) % 4] = amount  # two adjacent sides: a corner
        return jpeg(crop(im, *sides))

    return edit


def _resize(im: Image.Image, rng: np.random.Generator) -> bytes:
    f = rng.uniform(0.5, 1.5)
    return jpeg(im.resize((round(im.width * f), round(im.height * f)), Image.Resampling.LANCZOS))


def _quality(im: Image.Image, rng: np.random.Generator) -> bytes:
    return jpeg(im, int(rng.integers(30, 96)))


def _brightness(im: Image.Image, rng: np.random.Generator) -> bytes:
    return jpeg(ImageEnhance.Brightness(im).enhance(1 + rng.choice([-1, 1]) * rng.uniform(0.05, 0.2)))


def _text(im: Image.Image, rng: np.random.Generator) -> bytes:
    """A caption in the lower part, a fourteenth of the height tall."""
    marked = im.copy()
    font = ImageFont.load_default(size=max(12, im.height // 14))
    x, y = int(im.width * rng.uniform(0.05, 0.4)), int(im.height * rng.uniform(0.75, 0.85))
    ImageDraw.Draw(marked).text((x, y), "© watcherd 2026", fill=(255, 255, 255), font=font)
    return jpeg(marked)


def _png(im: Image.Image, rng: np.random.Generator) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg(im, int(rng.integers(70, 96))))).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _random_crop(kind: str) -> Edit:
    """A crop of a random amount: up to 10% every side, up to 15% off one side or one corner."""

    def edit(im: Image.Image, rng: np.random.Generator) -> bytes:
        sides = [0.0] * 4
        k = int(rng.integers(4))
        if kind == "every":
            sides = [float(rng.uniform(0.02, 0.10))] * 4
        elif kind == "side":
            sides[k] = float(rng.uniform(0.02, 0.15))
        else:
            sides[k] = sides[(k + 1) % 4] = float(rng.uniform(0.02, 0.15))
        return jpeg(crop(im, *sides))

    return edit


EDITS: dict[str, Edit] = {
    "crop 5% every side": _cropped(0.05, 0.05, 0.05, 0.05),
    "crop 10% every side": _cropped(0.10, 0.10, 0.10, 0.10),
    "crop 10% left and top": _cropped(0.10, 0.10, 0.0, 0.0),
    "crop 15% one side": _one_side(0.15),
    "crop 15% one corner": _one_corner(0.15),
    "crop 20% every side": _cropped(0.20, 0.20, 0.20, 0.20),
    "crop 2-10% every side": _random_crop("every"),
    "crop 2-15% one side": _random_crop("side"),
    "crop 2-15% one corner": _random_crop("corner"),
    "resize 50-150%": _resize,
    "JPEG q30-95": _quality,
    "brightness +-20%": _brightness,
    "JPEG -> PNG": _png,
    "text overlay": _text,
}
# What watcherd promises to find at the default settings (the "done when").
PROMISED = (
    "crop 5% every side",
    "crop 10% every side",
    "crop 10% left and top",
    "crop 15% one side",
    "crop 15% one corner",
    "crop 2-10% every side",
    "crop 2-15% one side",
    "crop 2-15% one corner",
)
