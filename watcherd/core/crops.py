"""Window hashes: what finds a cropped copy of a picture; their windows, text and matching rules (pure).

A crop changes the frame every perceptual hash is computed over, so the name's whash
of a copy cropped by 10% on every side is typically 8 bits away from the original's
(measured: ``tests/benchmarks/quality.py``). A window hash is the hash of one part
of the picture, given as the fraction cut off each edge (left, top, right, bottom):
the copy's whole picture is one window of the original, and the original's centre is
one window of the copy. Every image gets the same list of windows (``WINDOWS``):

- ``STORED`` (the first windows, in the persisted crop index): the whole picture and
  its central 80% and 70%;
- the rest, only ever used to query: the windows a crop of the image would be (the
  image as the original: up to 10% off every side, 15% off one side or one corner),
  and where an original's stored central windows lie inside the image (the image as
  the crop).

Two images match by crop when a window of one and a stored window of the other are
within ``CROP_DISTANCE`` bits. The hash of a window is a DCT hash (pHash's rule: the 8x8
lowest frequencies of a 32x32 grey picture, each bit set when its coefficient is above
their median), computed from the thumbnail (``decode.windows``, in the sandbox), so any
thumbnail watcherd made gives back its window hashes, and the hash is far more selective
than whash on real pictures (no pair of unrelated pictures within 12 bits in the
benchmark). The windows, the hash and the distance were chosen by measuring (README,
"How far is near?")."""

from __future__ import annotations

import base64

__all__ = [
    "AS_ORIGINAL",
    "CROP_DISTANCE",
    "HEX",
    "LOW",
    "MIN_SIDE",
    "PREFIX",
    "SIDE",
    "STORED",
    "TEXT_LENGTH",
    "VERIFY_DISTANCE",
    "VERSION",
    "WINDOWS",
    "Match",
    "Window",
    "crop_distance",
    "join",
    "match",
    "split",
    "split_bytes",
]

# (left, top, right, bottom): the fraction of the width or height cut off each edge.
Window = tuple[float, float, float, float]

# Bumped whenever WINDOWS or the hash changes: hashes of another version are recomputed.
VERSION = 1
# Window hashes of two pictures this close (bits) mean one is a crop of the other.
CROP_DISTANCE = 6
# A whole-picture match (the names' whash within the distance asked) is confirmed when
# both pictures have window hashes and their whole-picture window hashes are this close:
# whash alone says "bright above, dark below" of many unrelated pictures.
VERIFY_DISTANCE = 16
# Thumbnails whose shorter side is under this many pixels get no window hashes.
MIN_SIDE = 24

SIDE = 32  # the grey picture each window is resampled to
LOW = 8  # the lowest LOW x LOW frequencies make the 64 bits


def _compose_inverse(crop: Window, window: Window) -> Window:
    """Where ``window`` of an original lies in the copy cropped by ``crop`` (fractions of the copy)."""
    left, top, right, bottom = crop
    w, h = 1 - left - right, 1 - top - bottom
    return ((window[0] - left) / w, (window[1] - top) / h, (window[2] - right) / w, (window[3] - bottom) / h)


def _crop_paths() -> list[tuple[float, list[Window]]]:
    """Each kind of crop searched for, as its largest amount and the crops at a few amounts."""
    paths: list[tuple[float, list[Window]]] = []
    steps = (1 / 3, 2 / 3, 1.0)
    paths.append((0.10, [(a * 0.10,) * 4 for a in steps]))  # every side
    for k in range(4):
        side = [[0.0] * 4 for _ in steps]
        corner = [[0.0] * 4 for _ in steps]
        for i, a in enumerate(steps):
            side[i][k] = a * 0.15
            corner[i][k] = corner[i][(k + 1) % 4] = a * 0.15
        paths.append((0.15, [(s[0], s[1], s[2], s[3]) for s in side]))
        paths.append((0.15, [(c[0], c[1], c[2], c[3]) for c in corner]))
    return paths


def _windows() -> tuple[Window, ...]:
    stored: list[Window] = [(0.0, 0.0, 0.0, 0.0), (0.10,) * 4, (0.15,) * 4]
    out = list(stored)
    paths = _crop_paths()
    for _, crops in paths:
        out += crops  # this image as the original: the windows its crops would be
    for _, crops in paths:
        for crop in crops:  # this image as the crop: where the original's stored windows lie
            for window in stored[1:]:
                inner = _compose_inverse(crop, window)
                if min(inner) >= -1e-9:
                    out.append((max(0.0, inner[0]), max(0.0, inner[1]), max(0.0, inner[2]), max(0.0, inner[3])))
    unique: list[Window] = []
    for w in out:
        r = (round(w[0], 4), round(w[1], 4), round(w[2], 4), round(w[3], 4))
        if r not in unique:
            unique.append(r)
    return tuple(unique)


WINDOWS: tuple[Window, ...] = _windows()
STORED = 3  # WINDOWS[:STORED] go into the persisted crop index
# The windows that are crops of the whole picture (the image as the original; the whole
# picture first): matched against another image's whole-picture window they find it when it
# is such a crop. ``dupes --near`` asks these only: every pair is asked from both sides.
_CROPS = {tuple(round(x, 4) for x in crop) for _, path in _crop_paths() for crop in path}
AS_ORIGINAL: tuple[int, ...] = tuple(i for i, w in enumerate(WINDOWS) if i == 0 or w in _CROPS)
# The stored windows and the crop windows come first and are kept as hex (the catalog's
# trigger copies them into ``crop_hashes``, so ``dupes --near`` reads them without JSON).
HEX = max(AS_ORIGINAL) + 1


PREFIX = f"v{VERSION}:"
# The stored windows as hex (SQL reads them: the catalog's trigger), the rest as base64.
TEXT_LENGTH = len(PREFIX) + 16 * HEX + 4 * -(-8 * (len(WINDOWS) - HEX) // 3)


def join(hashes: list[int]) -> str:
    """Window hashes as the text kept in a record and a thumbnail chunk: ``v1:``, the first
    ``HEX`` windows as 16 hex digits each, then the others as base64 of 8 big-endian bytes each."""
    if not hashes:
        return ""
    rest = b"".join(h.to_bytes(8, "big") for h in hashes[HEX:])
    return PREFIX + "".join(f"{h:016x}" for h in hashes[:HEX]) + base64.b64encode(rest).decode()


def split_bytes(text: str | None) -> bytes | None:
    """The hashes of ``join``'s text as 8 big-endian bytes each; None when absent, malformed or of another version."""
    if not text or len(text) != TEXT_LENGTH or not text.startswith(PREFIX):
        return None
    digits = text[len(PREFIX) : len(PREFIX) + 16 * HEX]
    if digits.strip("0123456789abcdef"):
        return None
    try:
        raw = bytes.fromhex(digits) + base64.b64decode(text[len(PREFIX) + 16 * HEX :], validate=True)
    except ValueError:
        return None
    return raw if len(raw) == 8 * len(WINDOWS) else None


def split(text: str | None) -> list[int]:
    """The hashes of ``join``'s text; none when absent, malformed or of another version."""
    raw = split_bytes(text)
    if raw is None:
        return []
    return [int.from_bytes(raw[i : i + 8], "big") for i in range(0, len(raw), 8)]


Match = tuple[str, int]  # ("whole", whash bits) or ("crop", window hash bits)


def crop_distance(query: list[int], stored: list[int]) -> int | None:
    """The smallest distance between a window of ``query`` and a stored window of the other, if both have any."""
    if not query or not stored:
        return None
    return min((q ^ s).bit_count() for q in query for s in stored[:STORED])


def match(hash_a: int, windows_a: list[int], hash_b: int, windows_b: list[int], distance: int) -> Match | None:
    """How picture b matches picture a (a is the query), or None: what ``similar`` decides.

    ``whole`` when the names' hashes are within ``distance`` (and the whole-picture window
    hashes agree, when both pictures have them); else ``crop`` when a window of a and a
    stored window of b are within ``CROP_DISTANCE``.
    """
    whole = (hash_a ^ hash_b).bit_count()
    if whole <= distance and (
        not windows_a or not windows_b or (windows_a[0] ^ windows_b[0]).bit_count() <= VERIFY_DISTANCE
    ):
        return ("whole", whole)
    crop = crop_distance(windows_a, windows_b)
    if crop is not None and crop <= CROP_DISTANCE:
        return ("crop", crop)
    return None
