"""Every pair of hashes within a radius, in bulk: a multi-index self-join (numpy).

The 64 bits are cut into ``m`` chunks. Two hashes within ``r`` bits differ in at
most ``r // m`` bits in at least one chunk (pigeonhole), so every such pair meets in
some chunk where one's value, with at most ``r // m`` of its bits flipped, is the
other's. For each chunk the hashes are counting-sorted by its value; for each flip
mask, every hash's partner run is found in the table of run starts at once and the
runs are gathered and checked with a full popcount, a block at a time (memory stays
bounded whatever the library's size). A pair is kept only in the first chunk where it
meets, so it comes out once, with no de-duplication pass. ``m`` is chosen per radius
and size by the work it costs: wide chunks make short runs but many flip masks.

The answer is exactly the brute-force one (tests compare them on random and crowded
data at several radii).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from math import comb

import numpy as np
from numpy.typing import NDArray

MAX_CHUNK_BITS = 22  # a run-start table of 4M entries (32 MB) at most
BLOCK = 1 << 21  # candidates checked per step
SEGMENT = 1 << 22  # sorted positions whose runs are looked up per step


def _layout(m: int) -> list[tuple[int, int]]:
    """(shift, bits) of ``m`` chunks covering 64 bits, the wider ones first."""
    base, extra = divmod(64, m)
    out, shift = [], 0
    for c in range(m):
        bits = base + (1 if c < extra else 0)
        out.append((shift, bits))
        shift += bits
    return out


def _cost(n: int, radius: int, m: int) -> float:
    """Rough work of a self-join with ``m`` chunks: run lookups plus candidates checked."""
    flips = radius // m
    work = 0.0
    for _, bits in _layout(m):
        masks = sum(comb(bits, k) for k in range(flips + 1))
        work += masks * n * (1.0 + 3.0 * n / (1 << bits))
    return work


def chunking(n: int, radius: int) -> int:
    """The number of chunks that costs the least for ``n`` hashes at ``radius``."""
    options = [m for m in range(2, 65) if -(-64 // m) <= MAX_CHUNK_BITS]
    return min(options, key=lambda m: _cost(n, radius, m))


def _masks(bits: int, flips: int) -> NDArray[np.int64]:
    """Every ``bits``-bit mask with at most ``flips`` bits set."""
    out = [0]
    for k in range(1, flips + 1):
        out += [sum(1 << b for b in combo) for combo in itertools.combinations(range(bits), k)]
    return np.array(out, dtype=np.int64)


def _popcount_chunk(x: NDArray[np.uint64], shift: int, bits: int) -> NDArray[np.uint8]:
    counted: NDArray[np.uint8] = np.bitwise_count((x >> np.uint64(shift)) & np.uint64((1 << bits) - 1))
    return counted


def pairs(
    hashes: NDArray[np.uint64], radius: int
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.uint8]]]:
    """Every pair (i, j) of positions with i < j and ``hashes[i]``, ``hashes[j]`` within
    ``radius`` bits, with its distance, in blocks; each pair exactly once."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    n = int(hashes.size)
    if n < 2:
        return
    m = chunking(n, radius)
    layout = _layout(m)
    flips = radius // m
    index_bits = max(1, int(n - 1).bit_length())
    for c, (shift, bits) in enumerate(layout):
        keys = (hashes >> np.uint64(shift)) & np.uint64((1 << bits) - 1)
        # A counting sort by chunk value, stable: sort value << index_bits | index as one integer.
        order = np.sort((keys << np.uint64(index_bits)) | np.arange(n, dtype=np.uint64))
        skeys = (order >> np.uint64(index_bits)).astype(np.int64)
        order = (order & np.uint64((1 << index_bits) - 1)).astype(np.int64)
        del keys
        starts = np.zeros((1 << bits) + 1, dtype=np.int64)
        np.cumsum(np.bincount(skeys, minlength=1 << bits), out=starts[1:])
        shashes = hashes[order]
        masks = _masks(bits, flips).tolist()
        for start in range(0, n, SEGMENT):  # a segment of positions at a time: memory stays bounded
            seg = slice(start, min(n, start + SEGMENT))
            own = skeys[seg]
            for mask in masks:
                if mask == 0:
                    pos = np.arange(seg.start, seg.stop, dtype=np.int64)
                    lo, hi = pos + 1, starts[own + 1]  # the later ones of its own run
                else:
                    # Each unordered pair once: from the side whose value is the smaller,
                    # the one without the mask's highest bit.
                    top = 1 << (mask.bit_length() - 1)
                    pick = np.flatnonzero((own & top) == 0)
                    partner = own[pick] ^ mask
                    pos, lo, hi = pick + seg.start, starts[partner], starts[partner + 1]
                yield from _gather(order, shashes, pos, lo, hi, radius, layout[:c], flips)


def _gather(
    order: NDArray[np.int64],
    shashes: NDArray[np.uint64],
    pos: NDArray[np.int64],
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    radius: int,
    earlier: list[tuple[int, int]],
    flips: int,
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.uint8]]]:
    """Check the run ``lo[k]..hi[k]`` of sorted position ``pos[k]``, a block of candidates at a time."""
    lengths = hi - lo
    busy = np.flatnonzero(lengths > 0)
    if busy.size == 0:
        return
    lengths, lo, pos = lengths[busy], lo[busy], pos[busy]
    ends = np.cumsum(lengths)
    first = 0
    while first < busy.size:
        # As many positions as fit in one block (at least one: a run is at most n long).
        base = ends[first - 1] if first else 0
        last = max(first + 1, int(np.searchsorted(ends, base + BLOCK, side="right")))
        size = lengths[first:last]
        total = int(size.sum())
        owner = np.repeat(pos[first:last], size)
        at = np.arange(total, dtype=np.int64) + np.repeat(lo[first:last] - (np.cumsum(size) - size), size)
        diff = shashes[owner] ^ shashes[at]
        dist = np.bitwise_count(diff)
        keep = dist <= radius
        if keep.any():
            owner, at, diff, dist = owner[keep], at[keep], diff[keep], dist[keep]
            once = np.ones(owner.size, dtype=bool)
            for shift, bits in earlier:  # met in an earlier chunk already: counted there
                once &= _popcount_chunk(diff, shift, bits) > flips
            i, j = order[owner[once]], order[at[once]]
            yield np.minimum(i, j), np.maximum(i, j), dist[once].astype(np.uint8)
        first = last


def all_pairs(
    hashes: NDArray[np.uint64], radius: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.uint8]]:
    """``pairs`` gathered into three arrays (i, j, distance)."""
    parts = list(pairs(hashes, radius))
    if not parts:
        empty = np.empty(0, np.int64)
        return empty, empty.copy(), np.empty(0, np.uint8)
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def brute_pairs(hashes: NDArray[np.uint64], radius: int) -> set[tuple[int, int, int]]:
    """The same pairs by comparing every two hashes (the reference, for tests)."""
    h = np.asarray(hashes, dtype=np.uint64)
    out: set[tuple[int, int, int]] = set()
    for i in range(h.size - 1):
        dist = np.bitwise_count(h[i + 1 :] ^ h[i])
        for k in np.nonzero(dist <= radius)[0].tolist():
            out.add((i, i + 1 + k, int(dist[k])))
    return out
