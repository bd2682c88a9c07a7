"""Window hashes of a thumbnail (a PIL image in, hashes out): the windows and rules are ``core.crops``."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from watcherd.core.crops import LOW, MIN_SIDE, SIDE, WINDOWS, Window

__all__ = ["window_hashes"]


@lru_cache(maxsize=1)
def _dct() -> NDArray[np.float64]:
    """The first LOW rows of the orthonormal DCT-II matrix of size SIDE."""
    n = np.arange(SIDE)
    k = np.arange(LOW)[:, None]
    m = np.cos(math.pi * (2 * n[None, :] + 1) * k / (2 * SIDE)) * math.sqrt(2 / SIDE)
    m[0] /= math.sqrt(2)
    return m


def window_hashes(picture: Image.Image, windows: tuple[Window, ...] = WINDOWS) -> list[int]:
    """The 64-bit DCT hash of every window of ``picture`` (a thumbnail), in order; none when it
    is too small. Each window is resampled from the grey picture to SIDE x SIDE, its LOW x LOW
    lowest frequencies taken, and each bit set when its coefficient is above their median:
    all windows at once, in one product of arrays."""
    if min(picture.size) < MIN_SIDE:
        return []
    grey = picture.convert("L")
    w, h = grey.size
    # The resampled windows' bytes side by side, made one array at once (an array per window
    # cost a third of the time: NumPy's view of a PIL image is slower than the resampling).
    raw = b"".join(
        grey.resize((SIDE, SIDE), Image.Resampling.LANCZOS, box=_box(w, h, window)).tobytes() for window in windows
    )
    resized = np.frombuffer(raw, dtype=np.uint8).reshape(len(windows), SIDE, SIDE).astype(np.float64)
    d = _dct()
    low = (d @ resized @ d.T).reshape(len(windows), LOW * LOW)
    bits = low > np.median(low, axis=1, keepdims=True)
    return [int(v) for v in np.packbits(bits, axis=1).view(">u8").ravel()]


def _box(w: int, h: int, window: Window) -> tuple[float, float, float, float]:
    """The part of a ``w`` x ``h`` picture a window is, as PIL's box."""
    left, top, right, bottom = window
    return (w * left, h * top, w * (1 - right), h * (1 - bottom))
