"""Near-duplicate groups read from the kept pairs, and the writer's rounds that keep them.

A group of look-alikes at distance N is a connected component of the pairs within N
among present, not low-information images (``dupes --near N``, the review page's near
queue, ``arrange by-similarity``). For N up to ``PAIR_RADIUS`` a reader takes the
pairs the writer keeps (``catalog.pairs``) plus, for the few images still waiting
for theirs, one batched index query, and joins the components in Python: no numpy
and no per-image query on the usual path. Beyond ``PAIR_RADIUS``, or when many images
wait (a catalog just upgraded), the pairs are computed by the bulk self-join
(``nearjoin``). Every read happens in one read transaction, so the pairs, the waiting
images and the index's log describe one state of the catalog.

The writer (``pair_round``, from the daemon's maintenance tick and at the end of a
scan) records the pairs of the waiting images in one transaction: one batched query
of the persisted index plus its log for a few, the bulk self-join for many.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from watcherd.catalog import pairs
from watcherd.catalog.hashes import NearLogReader, names_of
from watcherd.catalog.schema import PAIR_RADIUS
from watcherd.errors import CatalogError

if TYPE_CHECKING:
    from watcherd.catalog.store import Catalog
    from watcherd.nearstore import Tables

__all__ = ["PAIR_RADIUS", "Group", "components", "pair_round", "read_groups"]

READER_PENDING = 20_000  # waiting images a reader pairs itself; more: it computes every pair
BULK_MIN = 5_000  # the writer pairs fewer waiting images one by one (batched), more in bulk


@dataclass(frozen=True)
class Group:
    """One group of look-alikes: its names (sorted), their paths, the widest distance inside it."""

    names: list[str]
    paths: list[str]
    span: int


def components(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components (two members or more) of the graph ``edges`` makes, each sorted."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    out: dict[str, list[str]] = {}
    for x in parent:
        out.setdefault(root(x), []).append(x)
    return [sorted(m) for m in out.values() if len(m) > 1]


def span(hashes: list[int]) -> int:
    """The largest distance between any two of ``hashes``."""
    if len(hashes) > 64:
        import numpy as np

        arr = np.array(hashes, dtype=np.uint64)
        return int(max(int(np.bitwise_count(arr[i] ^ arr[i + 1 :]).max()) for i in range(arr.size - 1)))
    return max(((a ^ b).bit_count() for i, a in enumerate(hashes) for b in hashes[i + 1 :]), default=0)


def read_groups(db: Path, index: Path, radius: int, *, within: set[str] | None = None) -> list[Group]:
    """The groups at ``radius`` now (only among ``within`` when given), read in one transaction."""
    if not Path(db).exists():
        return []
    reader = NearLogReader(db)

    def read(conn: sqlite3.Connection) -> list[Group]:
        edges = [(a, b) for a, b, _ in edges_within(conn, index, radius)]
        if within is not None:
            edges = [(a, b) for a, b in edges if a in within and b in within]
        found = components(edges)
        info = pairs.members(conn, [n for g in found for n in g])
        out = []
        for names in found:
            names = [n for n in names if n in info]  # every member is present: the pairs say so
            out.append(Group(names, [info[n][1] for n in names], span([info[n][0] for n in names])))
        return out

    try:
        return reader.read(read)
    finally:
        reader.close()


def edges_within(conn: sqlite3.Connection, index: Path, radius: int) -> list[tuple[str, str, int]]:
    """Every pair (a, b, distance) of present, not low-information images within ``radius``."""
    kept = pairs.kept_radius(conn)
    if kept is not None and radius <= kept:
        waiting = pairs.pending_count(conn, READER_PENDING + 1)
        have = pairs.pairs_within(conn, radius)
        if waiting == 0:
            return have
        if waiting <= READER_PENDING:
            extra = pending_pairs(conn, index, pairs.pending(conn, waiting), radius)
            if extra is not None:
                return have + extra
    return every_pair(conn, radius)


def every_pair(conn: sqlite3.Connection, radius: int) -> list[tuple[str, str, int]]:
    """Every pair within ``radius`` among present, not low-information images: the bulk self-join."""
    from watcherd.catalog.hashes import present_hashes
    from watcherd.nearjoin import all_pairs

    rows, hashes = present_hashes(conn)
    i, j, d = all_pairs(hashes, radius)
    if i.size == 0:
        return []
    a, b = rows[i], rows[j]
    names = names_of(conn, sorted({*a.tolist(), *b.tolist()}))
    return [(names[x][0], names[y][0], int(k)) for x, y, k in zip(a.tolist(), b.tolist(), d.tolist(), strict=True)]


def _mapped(index: Path) -> Tables | None:
    from watcherd.nearstore import Tables

    try:
        return Tables.load(index)
    except (OSError, ValueError, KeyError):
        return None


def pending_pairs(
    conn: sqlite3.Connection, index: Path, waiting: list[tuple[str, int, int]], radius: int
) -> list[tuple[str, str, int]] | None:
    """The pairs within ``radius`` of the ``waiting`` images (name, row, hash) with every present,
    not low-information image: one batched query of the persisted index plus its log, read on
    ``conn`` (None when the index cannot be brought up to date: missing, void, trimmed)."""
    if not waiting:
        return []
    import numpy as np

    from watcherd.catalog.hashes import read_delta
    from watcherd.nearstore import NearStore, Tables, _delta_view

    tables = _mapped(index)
    epoch, trimmed, head, entries = read_delta(conn, tables.seq if tables is not None else 0)
    if tables is None or not NearStore._usable(tables, epoch, trimmed, head):
        return None
    touched, added_rows, added_hashes, added_low = _delta_view(entries)
    queries = np.array([h for _, _, h in waiting], dtype=np.uint64)
    own = np.array([r for _, r, _ in waiting], dtype=np.int64)
    who, pos, dist = tables.search_many(queries, radius)
    rows = tables.rows[pos]
    keep = (tables.low[pos] == 0) & (rows != own[who])
    if touched.size:
        keep &= ~np.isin(rows, touched)
    who, rows, dist = who[keep], rows[keep], dist[keep]
    fresh = added_low == 0
    if fresh.any():
        delta = Tables.build(None, 0, added_rows[fresh], added_hashes[fresh], np.zeros(int(fresh.sum()), bool))
        dwho, dpos, ddist = delta.search_many(queries, radius)
        drows = delta.rows[dpos]
        other = drows != own[dwho]
        who = np.concatenate([who, dwho[other]])
        rows = np.concatenate([rows, drows[other]])
        dist = np.concatenate([dist, ddist[other]])
    names = names_of(conn, sorted(set(rows.tolist())))
    return [
        (waiting[q][0], names[r][0], int(d))
        for q, r, d in zip(who.tolist(), rows.tolist(), dist.tolist(), strict=True)
        if r in names
    ]


def pair_round(catalog: Catalog, index: Path) -> int:
    """Record the pairs of the images waiting for them, in one writer transaction; how many
    images were paired (0 also when the index must be built first: they wait, readers pair them)."""
    conn = catalog.conn
    try:
        if pairs.pending_count(conn, 1) == 0:
            return 0
        with catalog.transaction():
            waiting = pairs.pending_count(conn, 10**12)
            if waiting >= BULK_MIN and waiting * 100 >= pairs.present_count(conn):
                pairs.replace_all(conn, every_pair(conn, PAIR_RADIUS))
                return waiting
            batch = pairs.pending(conn, waiting)
            found = pending_pairs(conn, index, batch, PAIR_RADIUS)
            if found is None:
                return 0
            pairs.record(conn, found, [name for name, _, _ in batch])
            return len(batch)
    except sqlite3.Error as exc:
        raise CatalogError(f"cannot keep the near-duplicate pairs in {catalog.path}: {exc}") from None
