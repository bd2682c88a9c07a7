"""The persisted near-duplicate index: multi-index tables in one memory-mapped file.

``ROOT/.watcherd/near/index.bin`` holds the tables of ``near.index`` for every present
image, built at one position (``seq``) of the catalog's ``near_log``; the log after
that position is the delta a query scans by brute force. So an index answers exactly
even when it is behind, and a query reads only the pages it touches.

File layout (little-endian, every array at a 4096-byte boundary)::

    header   4096 bytes: b"watcherd-near 1\\n" then JSON {epoch, seq, n, built, arrays}
    hashes   u8[n]              present hashes, by catalog row id
    rows     i8[n]              the ``hashes`` row id of each position
    low      u1[n]              low-information flag of each position
    starts   i8[4 * 65536 + 1]  where each (chunk, value) run begins in order/sorted
    order    u4[4 n]            positions, each chunk's counting sort laid end to end
    sorted   u8[4 n]            hashes[order]: a run's candidates are read contiguously

A new index is written to a temporary file, fsynced and renamed over the old one, so
a reader maps either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from watcherd.catalog.hashes import WHOLE, NearLogReader, Source
from watcherd.core.errors import IndexFileError, UsageError
from watcherd.near.index import CHUNK_BITS, CHUNKS, MAX_RADIUS, Hit, _flip_masks
from watcherd.near.reader import ARRAYS, HEADER, MAGIC, READER_REBUILD, Match, index_path, parse_header

VALUES = 1 << CHUNK_BITS
# Queries ``Tables.search_many`` spreads over threads from (a pairing round's few stay in one), and
# the most threads it uses.
THREADED_MIN = 4096
MAX_THREADS = 4

_DTYPES = {name: dtype for name, (dtype, _) in ARRAYS.items()}
__all__ = ["READER_REBUILD", "Match", "NearStore", "Present", "Tables", "index_path"]


class Tables:
    """The arrays of one index, in memory or mapped from its file (read-only)."""

    def __init__(self, epoch: str | None, seq: int, arrays: dict[str, NDArray[Any]]) -> None:
        self.epoch, self.seq = epoch, seq
        self.hashes: NDArray[np.uint64] = arrays["hashes"]
        self.rows: NDArray[np.int64] = arrays["rows"]
        self.low: NDArray[np.uint8] = arrays["low"]
        self.starts: NDArray[np.int64] = arrays["starts"]
        self.order: NDArray[np.uint32] = arrays["order"]
        self.sorted: NDArray[np.uint64] = arrays["sorted"]

    def __len__(self) -> int:
        return int(self.hashes.size)

    @classmethod
    def build(
        cls, epoch: str | None, seq: int, rows: NDArray[np.int64], hashes: NDArray[np.uint64], low: NDArray[np.bool_]
    ) -> Tables:
        """Counting-sort tables in memory (O(n): numpy's stable sort of uint16 is a radix sort)."""
        arrays = dict(_tables(np.asarray(hashes, dtype=np.uint64)))
        arrays["rows"] = np.asarray(rows, dtype=np.int64)
        arrays["low"] = np.asarray(low, dtype=np.uint8)
        return cls(epoch, seq, arrays)

    @classmethod
    def load(cls, path: Path) -> Tables:
        """Map an index file; raises ``ValueError`` or ``OSError`` when it is not one."""
        with open(path, "rb") as f:
            meta = parse_header(f.read(HEADER), path)
        mapped = np.memmap(path, dtype=np.uint8, mode="r")
        arrays = {}
        for name, (offset, count) in meta["arrays"].items():
            dtype = np.dtype(_DTYPES[name])
            end = offset + count * dtype.itemsize
            if end > mapped.size:
                raise IndexFileError(f"{path} is cut short")
            arrays[name] = mapped[offset:end].view(dtype)
        return cls(meta["epoch"], int(meta["seq"]), arrays)

    def write(self, path: Path) -> None:
        """Write atomically: a temporary file beside ``path``, fsynced, then renamed over it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        n = len(self)
        layout: dict[str, tuple[int, int]] = {}
        offset = HEADER
        for name in _DTYPES:
            count = int(getattr(self, name).size)
            layout[name] = (offset, count)
            offset += -(-count * np.dtype(_DTYPES[name]).itemsize // HEADER) * HEADER
        meta = {"epoch": self.epoch, "seq": self.seq, "n": n, "built": time.time(), "arrays": layout}
        head = MAGIC + json.dumps(meta).encode() + b"\n"
        if len(head) > HEADER:
            raise IndexFileError(f"{path}: the index header would be too long")
        from watcherd.fs.fsops import fsync_dir, temp_path  # only a writer pays for these imports

        tmp = temp_path(path.parent, ".near")  # a reserved name: a crash's leftover is swept at start-up
        try:
            with open(tmp, "wb") as f:
                f.write(head.ljust(HEADER, b"\0"))
                for name in _DTYPES:
                    start, _ = layout[name]
                    f.seek(start)
                    f.write(np.ascontiguousarray(getattr(self, name), dtype=_DTYPES[name]).tobytes())
                f.truncate(offset)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(path.parent)

    def search(self, query: int, radius: int) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
        """(positions, distances) of every indexed hash within ``radius`` bits, unordered."""
        n = len(self)
        if n == 0:
            return np.empty(0, np.intp), np.empty(0, np.int64)
        masks = _flip_masks(radius // CHUNKS).astype(np.int64)
        q = np.uint64(query)
        values = np.array([(query >> (c * CHUNK_BITS)) & 0xFFFF for c in range(CHUNKS)], dtype=np.int64)
        offsets = np.arange(CHUNKS, dtype=np.int64) << CHUNK_BITS
        probes = ((values[:, None] ^ masks[None, :]) + offsets[:, None]).ravel()
        lo, hi = self.starts[probes], self.starts[probes + 1]
        lengths = hi - lo
        total = int(lengths.sum())
        if total == 0:
            return np.empty(0, np.intp), np.empty(0, np.int64)
        # Entries lo..hi-1 of every run at once: a ramp, shifted run by run.
        ends = np.cumsum(lengths)
        at = np.arange(total, dtype=np.int64) + np.repeat(lo - (ends - lengths), lengths)
        dist = np.bitwise_count(self.sorted[at] ^ q)
        keep = dist <= radius
        # A hash near in two chunks is found twice: keep each position once.
        pos, first = np.unique(self.order[at[keep]], return_index=True)
        return pos.astype(np.intp), dist[keep][first].astype(np.int64)

    def search_many(
        self, queries: NDArray[np.uint64], radius: int, block: int = 512
    ) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int64]]:
        """(query index, position, distance) of every indexed hash within ``radius`` of each query,
        each pair once, unordered: ``search`` for many queries at once, ``block`` queries at a time
        (small blocks keep the arrays in the caches: 512 was five times quicker than 32,768).
        Many queries are spread over threads, one per core: NumPy lets go of the interpreter's
        lock in each step, so the blocks run side by side (100,000 crop-link questions on 2 cores:
        1.75 s -> 0.97 s); the answer is the same, in the same order."""
        queries = np.asarray(queries, dtype=np.uint64)
        if len(self) == 0 or queries.size == 0:
            return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0, np.int64)
        masks = _flip_masks(radius // CHUNKS).astype(np.int64)
        starts = range(0, queries.size, block)

        def one(start: int) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int64]]:
            return self._search_block(queries[start : start + block], start, radius, masks)

        workers = min(os.cpu_count() or 1, MAX_THREADS)
        if workers > 1 and queries.size >= THREADED_MIN:
            with ThreadPoolExecutor(workers, thread_name_prefix="watcherd-near") as pool:
                found = list(pool.map(one, starts))
        else:
            found = [one(start) for start in starts]
        return (
            np.concatenate([f[0] for f in found]),
            np.concatenate([f[1] for f in found]),
            np.concatenate([f[2] for f in found]),
        )

    def _search_block(
        self, q: NDArray[np.uint64], start: int, radius: int, masks: NDArray[np.int64]
    ) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int64]]:
        """``search_many`` for the queries ``q`` (the ones from ``start`` on)."""
        offsets = np.arange(CHUNKS, dtype=np.int64) << CHUNK_BITS
        values = np.stack(
            [((q >> np.uint64(c * CHUNK_BITS)) & np.uint64(0xFFFF)).astype(np.int64) for c in range(CHUNKS)], axis=1
        )
        probes = ((values[:, :, None] ^ masks[None, None, :]) + offsets[None, :, None]).ravel()  # query, chunk, mask
        lo, hi = self.starts[probes], self.starts[probes + 1]
        lengths = hi - lo
        total = int(lengths.sum())
        if total == 0:
            return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0, np.int64)
        ends = np.cumsum(lengths)
        at = np.arange(total, dtype=np.int64) + np.repeat(lo - (ends - lengths), lengths)
        who = np.repeat(np.arange(q.size, dtype=np.intp), lengths.reshape(q.size, -1).sum(axis=1))
        dist = np.bitwise_count(self.sorted[at] ^ q[who])
        keep = dist <= radius
        pos = self.order[at[keep]].astype(np.intp)
        who, dist = who[keep], dist[keep].astype(np.int64)
        pair = np.unique(who.astype(np.int64) * len(self) + pos, return_index=True)[1]
        return who[pair] + start, pos[pair], dist[pair]


def _tables(hashes: NDArray[np.uint64]) -> dict[str, NDArray[Any]]:
    n = hashes.size
    orders, sorted_, starts = [], [], []
    for c in range(CHUNKS):
        chunk = ((hashes >> np.uint64(c * CHUNK_BITS)) & np.uint64(0xFFFF)).astype(np.uint16)
        order = np.argsort(chunk, kind="stable").astype(np.uint32)
        del chunk
        counts = np.bincount(
            ((hashes >> np.uint64(c * CHUNK_BITS)) & np.uint64(0xFFFF)).astype(np.intp), minlength=VALUES
        )
        starts.append(c * n + np.concatenate(([0], np.cumsum(counts)[:-1])))
        orders.append(order)
        sorted_.append(hashes[order])
    return {
        "hashes": hashes,
        "starts": np.concatenate([*starts, [CHUNKS * n]]).astype(np.int64),
        "order": np.concatenate(orders) if n else np.empty(0, np.uint32),
        "sorted": np.concatenate(sorted_) if n else np.empty(0, np.uint64),
    }


def _delta_view(
    entries: NDArray[np.void],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.uint64], NDArray[np.uint8]]:
    """(every row the delta touches, rows present after it, their hashes, their low flags)."""
    rows = entries["row"].astype(np.int64)
    if rows.size == 0:
        return rows, rows, np.empty(0, np.uint64), np.empty(0, np.uint8)
    # The last entry of each row is its state now.
    rev = rows[::-1]
    touched, first_rev = np.unique(rev, return_index=True)
    last = rows.size - 1 - first_rev
    now = entries[last]
    added = now["kind"] == 1
    return touched, touched[added], now["hash"][added].astype(np.uint64), now["low"][added].astype(np.uint8)


class Present:
    """The present hashes now (an index plus the log after it) as one searchable set.

    What ``near.index.groups`` walks for ``dupes --near``: positions ``0..len-1`` are the
    index's positions the log left alone, then the rows the log added; ``query`` gives
    exactly what a ``NearIndex`` over ``hashes`` would, without building one.
    """

    def __init__(self, tables: Tables, entries: NDArray[np.void], *, skip_low: bool) -> None:
        touched, added_rows, added_hashes, added_low = _delta_view(entries)
        keep = ~np.isin(tables.rows, touched) if touched.size else np.ones(len(tables), bool)
        if skip_low:
            keep &= tables.low == 0
            extra = added_low == 0
            added_rows, added_hashes = added_rows[extra], added_hashes[extra]
        kept = np.nonzero(keep)[0]
        self._tables = tables
        self._compact = np.full(len(tables), -1, np.int64)  # index position -> position here
        self._compact[kept] = np.arange(kept.size)
        self._added, self._offset = added_hashes, kept.size
        self.rows: NDArray[np.int64] = np.concatenate([tables.rows[kept], added_rows])
        self.hashes: NDArray[np.uint64] = np.concatenate([tables.hashes[kept], added_hashes])

    def __len__(self) -> int:
        return int(self.hashes.size)

    def query_many(
        self, queries: NDArray[np.uint64], radius: int
    ) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int64]]:
        """(query index, position here, distance) of every hash of the set within ``radius`` of each
        query, each pair once, unordered: ``query`` for many queries at once."""
        queries = np.asarray(queries, dtype=np.uint64)
        who, pos, dist = self._tables.search_many(queries, radius)
        here = self._compact[pos]
        ok = here >= 0
        who, here, dist = who[ok], here[ok], dist[ok]
        if self._added.size and queries.size:
            near = np.bitwise_count(queries[:, None] ^ self._added[None, :]).astype(np.int64)
            qi, ai = np.nonzero(near <= radius)
            who = np.concatenate([who, qi.astype(np.intp)])
            here = np.concatenate([here, ai.astype(np.intp) + self._offset])
            dist = np.concatenate([dist, near[qi, ai]])
        return who, here, dist

    def query(self, query: int, radius: int) -> list[Hit]:
        """Every hash of the set within ``radius`` bits of ``query``, nearest first (then by position)."""
        pos, dist = self._tables.search(query, radius)
        here = self._compact[pos]
        ok = here >= 0
        near = np.bitwise_count(self._added ^ np.uint64(query)).astype(np.int64)
        extra = np.nonzero(near <= radius)[0]
        at = np.concatenate([here[ok], extra + self._offset])
        dist = np.concatenate([dist[ok], near[extra]])
        order = np.lexsort((at, dist))
        return [Hit(int(at[i]), int(dist[i])) for i in order]


class NearStore:
    """A library's persisted index plus the catalog log that brings it up to date.

    Open once and query many times (the review page): each query reads the log after
    the index's position (one indexed SQL range), so answers follow the catalog at
    once; when the writer has published a newer index, the store maps it.
    """

    def __init__(self, path: Path, catalog_path: Path, *, save: bool = True, source: Source = WHOLE) -> None:
        self.path = Path(path)
        self.save = save
        self.rebuilds = 0  # indexes this store built itself (a missing or void one)
        self._log = NearLogReader(catalog_path, source)
        self._tables: Tables | None = None

    @classmethod
    def open(cls, path: Path, catalog_path: Path, *, save: bool = True, source: Source = WHOLE) -> NearStore:
        """A store over the index at ``path`` for the catalog at ``catalog_path``.

        ``save``: write an index this store has to build (missing, or void) for the
        next reader; when the folder cannot be written it is kept in memory only.
        ``source``: which hashes (``WHOLE``, the names', or ``CROPS``, the stored windows).
        """
        return cls(path, catalog_path, save=save, source=source)

    def close(self) -> None:
        """Close the catalog connection and drop the mapping."""
        self._log.close()
        self._tables = None

    def __enter__(self) -> NearStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _usable(tables: Tables | None, epoch: str | None, trimmed: int, head: int) -> bool:
        """Can the log bring ``tables`` up to date? Not if it was built for another
        derivation of ``hashes`` (epoch), if the log after it has been trimmed, or if
        it is ahead of this catalog (a published snapshot older than the live one)."""
        return tables is not None and epoch is not None and tables.epoch == epoch and trimmed <= tables.seq <= head

    def _map(self) -> Tables | None:
        try:
            return Tables.load(self.path)
        except (OSError, IndexFileError, KeyError):
            return None

    def current(self) -> tuple[Tables, NDArray[np.void]]:
        """An index and the log entries after it that together are the catalog now."""
        tables = self._tables if self._tables is not None else self._map()
        epoch, trimmed, head, entries = self._log.delta(tables.seq if tables is not None else 0)
        if epoch is None:  # an older catalog no writer has opened since: no log to trust
            return self.rebuild(save=False), entries[:0]
        if not self._usable(tables, epoch, trimmed, head) or entries.size > READER_REBUILD:
            fresh = self._map()  # the writer may have published a newer one
            if fresh is not None and self._usable(fresh, epoch, trimmed, head):
                tables = fresh
                epoch, trimmed, head, entries = self._log.delta(fresh.seq)
            if not self._usable(tables, epoch, trimmed, head) or entries.size > READER_REBUILD:
                ahead = tables is not None and tables.epoch == epoch and tables.seq > head
                tables = self.rebuild(save=not ahead)  # never replace a newer index with an older one
                entries = self._log.delta(tables.seq)[3]
        assert tables is not None  # usable implies an index
        self._tables = tables
        return tables, entries

    def rebuild(self, *, save: bool = True) -> Tables:
        """Build the index from the catalog now, and publish it (when ``save`` and writable)."""
        epoch, head, rows, hashes, low = self._log.snapshot()
        tables = Tables.build(epoch, head, rows, hashes, low)
        self.rebuilds += 1
        if save and self.save and epoch is not None:
            with contextlib.suppress(OSError):
                tables.write(self.path)
                tables = Tables.load(self.path)  # mapped: the built arrays' memory goes back
        self._tables = tables
        return tables

    def query(self, query: int, radius: int) -> list[Match]:
        """Every present image within ``radius`` bits of ``query``, nearest first (then by row)."""
        if not 0 <= radius <= MAX_RADIUS:
            raise UsageError(f"the distance is from 0 to {MAX_RADIUS} bits")
        tables, entries = self.current()
        pos, dist = tables.search(query, radius)
        rows = tables.rows[pos]
        touched, added_rows, added_hashes, _ = _delta_view(entries)
        if touched.size:
            stay = ~np.isin(rows, touched)
            rows, dist = rows[stay], dist[stay]
            near = np.bitwise_count(added_hashes ^ np.uint64(query)).astype(np.int64)
            keep = near <= radius
            rows, dist = np.concatenate([rows, added_rows[keep]]), np.concatenate([dist, near[keep]])
        order = np.lexsort((rows, dist))
        return [Match(int(rows[i]), int(dist[i])) for i in order]

    def query_many(self, queries: list[int], radius: int) -> list[tuple[int, int, int]]:
        """(row, distance, query index) of every present row within ``radius`` of any of ``queries``:
        the nearest query for each row, nearest first (then by row)."""
        if not 0 <= radius <= MAX_RADIUS:
            raise ValueError(f"radius must be from 0 to {MAX_RADIUS}")
        tables, entries = self.current()
        asked = np.array(queries, dtype=np.uint64)
        who, pos, dist = tables.search_many(asked, radius)
        rows = tables.rows[pos]
        touched, added_rows, added_hashes, _ = _delta_view(entries)
        if touched.size:
            stay = ~np.isin(rows, touched)
            who, rows, dist = who[stay], rows[stay], dist[stay]
            near = np.bitwise_count(asked[:, None] ^ added_hashes[None, :]).astype(np.int64)
            qi, ai = np.nonzero(near <= radius)
            who = np.concatenate([who, qi.astype(np.intp)])
            rows = np.concatenate([rows, added_rows[ai]])
            dist = np.concatenate([dist, near[qi, ai]])
        order = np.lexsort((who, rows, dist))
        best: dict[int, tuple[int, int]] = {}
        for i in order.tolist():
            best.setdefault(int(rows[i]), (int(dist[i]), int(who[i])))
        return sorted(((r, d, q) for r, (d, q) in best.items()), key=lambda t: (t[1], t[0]))

    def present(self, *, skip_low: bool = False) -> Present:
        """Every present hash now (low-information ones left out with ``skip_low``), searchable."""
        tables, entries = self.current()
        return Present(tables, entries, skip_low=skip_low)

    def where(self, rows: list[int]) -> dict[int, tuple[str, str]]:
        """Row -> (name, path) for rows a query returned."""
        return self._log.where(rows)
