"""The persisted near-duplicate index read without numpy: what ``watcherd similar`` runs.

``near.persisted`` builds and writes the index (numpy) and maps it for the review page;
this module reads the file's header and, with ``os.pread``, only the runs a query
probes, checks their candidates with ``int.bit_count`` and adds the catalog's log
after the index (the delta), in one read transaction. A command then answers without
importing numpy, which costs more than the whole search at a small radius. When the
file cannot answer alone (missing, void, far behind) or a query would check more
candidates than a Python loop does quickly, ``similar`` returns None and the caller
uses ``NearStore``. The file format and its constants are defined here, numpy-free.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from watcherd.catalog.hashes import WHOLE, NearLogReader, Source, log_now, log_state, names_of
from watcherd.core.errors import IndexFileError, UsageError
from watcherd.core.nearpairs import MAX_RADIUS

CHUNKS = 4
CHUNK_BITS = 16
MAGIC = b"watcherd-near 1\n"
HEADER = 4096
# Each array of the file, in file order: its numpy dtype (little-endian) and memoryview code.
ARRAYS: dict[str, tuple[str, Literal["Q", "q", "B", "I"]]] = {
    "hashes": ("<u8", "Q"),
    "rows": ("<i8", "q"),
    "low": ("u1", "B"),
    "starts": ("<i8", "q"),
    "order": ("<u4", "I"),
    "sorted": ("<u8", "Q"),
}
# A delta longer than this is folded into a new index by whoever queries (readers
# included); the daemon folds it much sooner (see ``near.builder.Maintainer``).
READER_REBUILD = 200_000
# Candidates a query may check in Python (about 0.1 µs each) before numpy is quicker,
# import included (40-70 ms): a radius-4 query checks ~1,000 at 1M hashes, ~30,000 at 30M.
PURE_LIMIT = 250_000


def index_path(state_dir: Path, source: Source = WHOLE) -> Path:
    """Where a library's index of ``source`` lives, given its ``.watcherd`` folder."""
    return Path(state_dir) / "near" / source.file


@lru_cache(maxsize=8)
def flip_masks(bits: int) -> tuple[int, ...]:
    """Every 16-bit mask with at most ``bits`` bits set, fewest bits first."""
    masks = [0]
    for k in range(1, bits + 1):
        for combo in itertools.combinations(range(CHUNK_BITS), k):
            masks.append(sum(1 << b for b in combo))
    return tuple(masks)


@dataclass(frozen=True)
class Match:
    """One present image within the radius: its catalog row (``hashes`` row id) and distance."""

    row: int
    distance: int


def parse_header(head: bytes, path: Path) -> dict[str, Any]:
    """The JSON header of an index file (``epoch``, ``seq``, ``n``, ``arrays``); ValueError if not one."""
    if not head.startswith(MAGIC):
        raise IndexFileError(f"{path} is not a watcherd near-duplicate index")
    try:
        meta: dict[str, Any] = json.loads(head[len(MAGIC) :].rstrip(b"\0 \n"))
    except ValueError:
        raise IndexFileError(f"{path} has no readable header") from None
    if not isinstance(meta, dict):
        raise IndexFileError(f"{path} has no readable header")
    return meta


class IndexFile:
    """One index file, open for reading; each query reads its runs with ``os.pread``.

    Not mapped: on recent kernels a fault maps a whole large folio of the page cache,
    so a mapped query's resident size grows by megabytes per run touched; a read copies
    only the bytes asked for, one system call (about a microsecond) per run.
    """

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        try:
            # The header and every read come from this one open file, whatever is renamed over it.
            meta = parse_header(os.pread(self._fd, HEADER, 0), path)
            self.epoch: str | None = meta["epoch"]
            self.seq = int(meta["seq"])
            self.n = int(meta.get("n", 0))
            size = os.fstat(self._fd).st_size
            self._at: dict[str, int] = {}
            for name, (offset, count) in meta["arrays"].items():
                if offset + count * int(ARRAYS[name][0][-1]) > size:
                    raise IndexFileError(f"{path} is cut short")
                self._at[name] = offset
            self._starts: memoryview | None = None
        except BaseException:
            os.close(self._fd)
            raise

    def load_starts(self) -> None:
        """Read the whole ``starts`` table (2 MB) at once: many queries then probe it without a read each."""
        count = CHUNKS * (1 << CHUNK_BITS) + 1
        self._starts = memoryview(os.pread(self._fd, 8 * count, self._at["starts"])).cast("q")

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)

    def _read(self, name: str, start: int, count: int) -> list[int]:
        """Items ``start`` to ``start + count`` of one array."""
        dtype, code = ARRAYS[name]
        size = int(dtype[-1])
        return memoryview(os.pread(self._fd, count * size, self._at[name] + start * size)).cast(code).tolist()

    def runs(self, query: int, radius: int) -> list[tuple[int, int]]:
        """The (start, end) of every non-empty run a query probes: one per chunk and mask."""
        runs = []
        starts = self._starts
        for c in range(CHUNKS):
            base, value = c << CHUNK_BITS, (query >> (c * CHUNK_BITS)) & 0xFFFF
            for mask in flip_masks(radius // CHUNKS):
                at = base + (value ^ mask)
                lo, hi = (starts[at], starts[at + 1]) if starts is not None else self._read("starts", at, 2)
                if hi > lo:
                    runs.append((lo, hi))
        return runs

    def search(
        self, query: int, radius: int, limit: int | None = None, runs: list[tuple[int, int]] | None = None
    ) -> dict[int, int] | None:
        """Catalog row -> distance of every indexed hash within ``radius``; None past ``limit`` candidates.
        ``runs``: the query's runs when already known."""
        runs = self.runs(query, radius) if runs is None else runs
        if sum(hi - lo for lo, hi in runs) > (PURE_LIMIT if limit is None else limit):
            return None
        found: dict[int, int] = {}
        for lo, hi in runs:
            # Distances computed by map in C; most runs hold no hit, which min() says at once.
            distances = list(map(int.bit_count, map(query.__xor__, self._read("sorted", lo, hi - lo))))
            if min(distances) > radius:
                continue
            for i, d in enumerate(distances, lo):
                if d > radius:
                    continue
                (pos,) = self._read("order", i, 1)
                (row,) = self._read("rows", pos, 1)
                found[row] = d  # a hash near in two chunks is found twice; the dict keeps it once
        return found


def similar(path: Path, log: NearLogReader, query: int, radius: int) -> list[tuple[str, str, int]] | None:
    """(name, path, distance) of every present image within ``radius``, nearest first, then by row.

    Exactly the brute-force answer, or None when this index cannot answer alone (see
    the module's docstring). The log and the names are read in one transaction of
    ``log``, so they describe one catalog state.
    """
    if not 0 <= radius <= MAX_RADIUS:
        raise UsageError(f"the distance is from 0 to {MAX_RADIUS} bits")
    if sys.byteorder != "little":  # the file is little-endian; memoryview casts are native
        return None
    try:
        index = IndexFile(path)
    except (OSError, IndexFileError, KeyError):
        return None
    try:
        return log.read(lambda conn: _answer(index, conn, query, radius, log.source))
    finally:
        index.close()


def _answer(
    index: IndexFile, conn: sqlite3.Connection, query: int, radius: int, source: Source
) -> list[tuple[str, str, int]] | None:
    found = _answer_many(index, conn, [query], radius, source)
    return None if found is None else [(name, at, d) for name, at, d, _ in found]


def similar_many(
    path: Path, log: NearLogReader, queries: list[int], radius: int
) -> list[tuple[str, str, int, int]] | None:
    """(name, path, distance, query index) of every row within ``radius`` of any of ``queries``:
    the nearest query for each row, nearest first, then by row. None when this index cannot
    answer alone, or the queries together would check more than ``PURE_LIMIT`` candidates."""
    if not 0 <= radius <= MAX_RADIUS:
        raise ValueError(f"radius must be from 0 to {MAX_RADIUS}")
    if sys.byteorder != "little":
        return None
    try:
        index = IndexFile(path)
    except (OSError, ValueError, KeyError):
        return None
    try:
        return log.read(lambda conn: _answer_many(index, conn, queries, radius, log.source))
    finally:
        index.close()


def _answer_many(
    index: IndexFile, conn: sqlite3.Connection, queries: list[int], radius: int, source: Source
) -> list[tuple[str, str, int, int]] | None:
    epoch, trimmed, head = log_state(conn, source)
    if epoch is None or index.epoch != epoch or not trimmed <= index.seq <= head or head - index.seq > READER_REBUILD:
        return None  # void, or too far behind: NearStore rebuilds it
    # Expected candidates (runs average n / 65536): past the limit, numpy answers sooner than
    # the probes could even be read here.
    expected = len(queries) * CHUNKS * len(flip_masks(radius // CHUNKS)) * index.n >> CHUNK_BITS
    if expected > PURE_LIMIT:
        return None
    if len(queries) > 1:
        index.load_starts()
    runs = [index.runs(q, radius) for q in queries]
    if sum(hi - lo for r in runs for lo, hi in r) > PURE_LIMIT:
        return None
    found: dict[int, tuple[int, int]] = {}  # row -> (distance, query index)
    for i, query in enumerate(queries):
        rows = index.search(query, radius, limit=PURE_LIMIT, runs=runs[i])
        for row, d in (rows or {}).items():
            if row not in found or d < found[row][0]:
                found[row] = (d, i)
    for row, h in log_now(conn, index.seq, source).items():
        found.pop(row, None)
        if h is not None:
            near = [((h ^ q).bit_count(), i) for i, q in enumerate(queries)]
            best = min(near)
            if best[0] <= radius:
                found[row] = best
    hits = sorted(found.items(), key=lambda kv: (kv[1][0], kv[0]))
    names = names_of(conn, [row for row, _ in hits], source)
    # Every row is in this snapshot; one that is not (an index of made-up rows) is left out.
    return [(*names[row], d, i) for row, (d, i) in hits if row in names]
