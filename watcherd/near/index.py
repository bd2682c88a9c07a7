"""Exact Hamming-radius search over 64-bit hashes by multi-index hashing.

The 64 bits are cut into four 16-bit chunks. If two hashes differ in at most ``r``
bits, then by pigeonhole at least one chunk differs in at most ``r // 4`` bits. So a
query probes, in each chunk's sorted table, every chunk value within ``r // 4`` bits
of its own, gathers those candidates and keeps the ones whose full distance is at
most ``r``. The answer is exactly the brute-force answer; only the work differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from watcherd.core.errors import UsageError
from watcherd.core.nearpairs import MAX_RADIUS
from watcherd.near.reader import CHUNK_BITS, CHUNKS, flip_masks

__all__ = ["CHUNKS", "CHUNK_BITS", "MAX_RADIUS", "Hit", "NearIndex", "brute_force", "groups"]


def _flip_masks(bits: int) -> NDArray[np.uint16]:
    """Every 16-bit mask with at most ``bits`` bits set, as an array."""
    return np.array(flip_masks(bits), dtype=np.uint16)


@dataclass(frozen=True)
class Hit:
    """One match: its position in the index and its distance."""

    index: int
    distance: int


class NearIndex:
    """Immutable index over an array of unsigned 64-bit hashes.

    Each chunk's table is a counting sort: ``_order`` lists positions by chunk value
    and ``_starts`` says where each value's run begins, all four chunks laid end to
    end. A query turns its probe values into runs and gathers them in a handful of
    array operations, with no Python loop over probes.
    """

    def __init__(self, hashes: Sequence[int] | NDArray[np.uint64]) -> None:
        self.hashes = np.asarray(hashes, dtype=np.uint64)
        n = self.hashes.size
        orders, starts = [], []
        for c in range(CHUNKS):
            chunk = ((self.hashes >> np.uint64(c * CHUNK_BITS)) & np.uint64(0xFFFF)).astype(np.uint16)
            orders.append(np.argsort(chunk, kind="stable").astype(np.uint32 if n < 2**32 else np.intp))
            counts = np.bincount(chunk, minlength=1 << CHUNK_BITS)
            starts.append(c * n + np.concatenate(([0], np.cumsum(counts)[:-1])))
        self._order = np.concatenate(orders) if orders else np.empty(0, dtype=np.uint32)
        self._starts = np.concatenate([*starts, [CHUNKS * n]]).astype(np.int64)
        self._shifts = np.array([c * CHUNK_BITS for c in range(CHUNKS)], dtype=np.uint64)
        self._offsets = np.array([c << CHUNK_BITS for c in range(CHUNKS)], dtype=np.int64)

    def __len__(self) -> int:
        return int(self.hashes.size)

    def candidates(self, query: int, radius: int) -> NDArray[np.intp]:
        """Positions that share a chunk within ``radius // 4`` bits with ``query`` (may repeat)."""
        masks = _flip_masks(radius // CHUNKS).astype(np.int64)
        values = ((np.uint64(query) >> self._shifts) & np.uint64(0xFFFF)).astype(np.int64)
        probes = ((values[:, None] ^ masks[None, :]) + self._offsets[:, None]).ravel()
        lo, hi = self._starts[probes], self._starts[probes + 1]
        lengths = hi - lo
        total = int(lengths.sum())
        if total == 0:
            return np.empty(0, dtype=np.intp)
        # Positions lo..hi-1 of every run, gathered at once: a ramp, shifted run by run.
        ends = np.cumsum(lengths)
        shift = np.repeat(lo - (ends - lengths), lengths)
        found: NDArray[np.intp] = self._order[np.arange(total, dtype=np.int64) + shift].astype(np.intp)
        return found

    def query(self, query: int, radius: int) -> list[Hit]:
        """Every indexed hash within ``radius`` bits of ``query``, nearest first."""
        if not 0 <= radius <= MAX_RADIUS:
            raise UsageError(f"the distance is from 0 to {MAX_RADIUS} bits")
        if self.hashes.size == 0:
            return []
        cand = self.candidates(query, radius)
        if cand.size == 0:
            return []
        dist = np.bitwise_count(self.hashes[cand] ^ np.uint64(query))
        keep = dist <= radius
        cand = np.unique(cand[keep])  # a hash near in two chunks was gathered twice
        dist = np.bitwise_count(self.hashes[cand] ^ np.uint64(query))
        order = np.lexsort((cand, dist))
        return [Hit(int(cand[i]), int(dist[i])) for i in order]


def brute_force(hashes: NDArray[np.uint64], query: int, radius: int) -> list[Hit]:
    """The same answer by scanning every hash (the reference the index must equal)."""
    dist = np.bitwise_count(np.asarray(hashes, dtype=np.uint64) ^ np.uint64(query))
    idx = np.nonzero(dist <= radius)[0]
    order = np.lexsort((idx, dist[idx]))
    return [Hit(int(idx[i]), int(dist[idx][i])) for i in order]


class Searchable(Protocol):
    """What ``groups`` needs: the hashes by position, and a radius query over them."""

    hashes: NDArray[np.uint64]

    def __len__(self) -> int: ...

    def query(self, query: int, radius: int) -> list[Hit]: ...


def groups(index: Searchable, radius: int) -> list[tuple[list[int], int]]:
    """Connected components of hashes linked by distances within ``radius`` (size > 1),
    each with the largest distance between any two of its members."""
    parent = list(range(len(index)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, h in enumerate(index.hashes.tolist()):
        for hit in index.query(int(h), radius):
            if hit.index > i:
                ri, rj = find(i), find(hit.index)
                if ri != rj:
                    parent[rj] = ri
    members: dict[int, list[int]] = {}
    for i in range(len(index)):
        members.setdefault(find(i), []).append(i)
    out = []
    for group in members.values():
        if len(group) > 1:
            arr = index.hashes[np.array(group)]
            widest = int(np.bitwise_count(arr[:, None] ^ arr[None, :]).max())
            out.append((group, widest))
    return out
