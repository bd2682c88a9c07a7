"""Window hashes of a thumbnail (a PIL image in, hashes out): the windows and rules are ``core.crops``."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from watcherd.core.crops import LOW, MIN_SIDE, SIDE, WINDOWS, Window

__all__ = ["window_hash", "window_hashes"]


@lru_cache(maxsize=1)
def _dct() -> NDArray[np.float64]:
    """The first LOW rows of the orthonormal DCT-II matrix of size SIDE."""
    n = np.arange(SIDE)
    k = np.arange(LOW)[:, None]
    m = np.cos(math.pi * (2 * n[None, :] + 1) * k / (2 * SIDE)) * math.sqrt(2 / SIDE)
    m[0] /= math.sqrt(2)
    return m


def window_hash(grey: Image.Image, window: Window) -> int:
    """The 64-bit DCT hash of one window of a grey (mode L) picture."""
    w, h = grey.size
    left, top, right, bottom = window
    box = (w * left, h * top, w * (1 - right), h * (1 - bottom))
    pixels = np.asarray(grey.resize((SIDE, SIDE), Image.Resampling.LANCZOS, box=box), dtype=np.float64)
    d = _dct()
    low = (d @ pixels @ d.T).ravel()
    value = 0
    for bit in (low > np.median(low)).tolist():
        value = value << 1 | bit
    return value


def window_hashes(picture: Image.Image, windows: tuple[Window, ...] = WINDOWS) -> list[int]:
    """The hash of every window of ``picture`` (a thumbnail), in order; none when it is too small."""
    if min(picture.size) < MIN_SIDE:
        return []
    grey = picture.convert("L")
    return [window_hash(grey, w) for w in windows]
