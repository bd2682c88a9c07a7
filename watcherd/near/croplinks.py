"""Crop links: which images are crops of each other, from their window hashes (numpy, no SQL).

Two images are linked when a crop window of one (``core.crops.AS_ORIGINAL``: the windows a
copy cropped by up to 10% per side, or 15% off one side or corner, would be) is within
``core.crops.CROP_DISTANCE`` bits of the other's whole-picture window. The relation is
looked at from both sides, so it is symmetric: whichever image arrived first, the same
links are found. ``links_of`` finds the links of a few images (the writer's pairing
rounds, a reader's waiting images) by comparing them with every image; ``all_links``
finds every link in bulk, a block of images' crop windows in a multi-index at a time.
Whole-picture pairs (the names' hashes) are confirmed by the whole-picture windows
(``confirmed``), as ``similar`` confirms them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from watcherd.core.crops import AS_ORIGINAL, CROP_DISTANCE, VERIFY_DISTANCE

__all__ = ["BLOCK", "FEW", "Link", "all_links", "confirmed", "confirmed_mask", "links_of"]

Link = tuple[int, int, int]  # (i, j, window distance): positions i < j of the two images
BLOCK = 50_000  # images whose crop windows make one multi-index in memory (50,000 x 28 windows: ~70 MB)
FEW = 2_000  # more images than this at once: every link is computed in bulk instead

_ASKS = np.array(AS_ORIGINAL, dtype=np.intp)


def links_of(asks: NDArray[np.uint64], which: list[int]) -> list[Link]:
    """The crop links of the images at positions ``which`` with every image (``asks``: one row of
    window hashes an image, ``crops.HEX`` wide, the whole picture first)."""
    if not which or asks.shape[0] == 0:
        return []
    if len(which) > FEW:
        wanted = np.zeros(asks.shape[0], bool)
        wanted[which] = True
        return [link for link in all_links(asks) if wanted[link[0]] or wanted[link[1]]]
    wholes = asks[:, 0]
    crops = asks[:, _ASKS]
    found: dict[tuple[int, int], int] = {}
    for p in which:
        as_original = np.bitwise_count(crops[p][:, None] ^ wholes[None, :]).min(axis=0)  # the others as its crops
        as_crop = np.bitwise_count(crops ^ wholes[p]).min(axis=1)  # it as a crop of the others
        near = np.minimum(as_original, as_crop)
        for q in np.flatnonzero(near <= CROP_DISTANCE).tolist():
            if q != p:
                key = (min(p, q), max(p, q))
                found[key] = min(found.get(key, 64), int(near[q]))
    return [(i, j, d) for (i, j), d in sorted(found.items())]


def all_links(asks: NDArray[np.uint64]) -> list[Link]:
    """Every crop link among the images of ``asks``: a block of images' crop windows in a
    multi-index, asked by every image's whole-picture window (28 times fewer questions than
    the other way round)."""
    from watcherd.near.persisted import Tables

    n = asks.shape[0]
    if n == 0:
        return []
    wholes = np.ascontiguousarray(asks[:, 0])
    found: dict[tuple[int, int], int] = {}
    for start in range(0, n, BLOCK):
        asked = np.ascontiguousarray(asks[start : start + BLOCK][:, _ASKS]).ravel()
        table = Tables.build(None, 0, np.arange(asked.size, dtype=np.int64), asked, np.zeros(asked.size, bool))
        whole_of, hit, dist = table.search_many(wholes, CROP_DISTANCE)
        for w, h, d in zip(whole_of.tolist(), (start + hit // _ASKS.size).tolist(), dist.tolist(), strict=True):
            if w != h:
                key = (min(w, h), max(w, h))
                found[key] = min(found.get(key, 64), int(d))
    return [(i, j, d) for (i, j), d in sorted(found.items())]


def confirmed(pairs: list[tuple[str, str, int]], wholes: dict[str, int]) -> list[tuple[str, str, int]]:
    """The whole-picture pairs whose whole-picture windows agree (within ``VERIFY_DISTANCE``),
    or of which a side has no window hashes: ``core.crops.match``'s rule for a whole match."""
    out = []
    for a, b, d in pairs:
        wa, wb = wholes.get(a), wholes.get(b)
        if wa is None or wb is None or (wa ^ wb).bit_count() <= VERIFY_DISTANCE:
            out.append((a, b, d))
    return out


def confirmed_mask(
    i: NDArray[np.int64], j: NDArray[np.int64], wholes: NDArray[np.uint64], has: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """``confirmed`` for pairs of positions in bulk (``has``: which positions have window hashes)."""
    agree = np.bitwise_count(wholes[i] ^ wholes[j]) <= VERIFY_DISTANCE
    return np.asarray(~has[i] | ~has[j] | agree)
