"""Near-duplicate groups read from the kept pairs, and the writer's rounds that keep them.

A group of look-alikes at distance N is a connected component of the pairs within N
(confirmed by the whole-picture window hashes, as ``similar`` confirms them) and of the
crop links (``near.croplinks``, at any N) among present, not low-information images
(``dupes --near N``, the review page's near queue, ``arrange by-similarity``). For N up
to ``PAIR_RADIUS`` a reader takes the pairs the writer keeps (``catalog.pairs``) plus,
for the few images still waiting for theirs, one batched index query, and joins the
components in Python: no numpy and no per-image query on the usual path. Beyond
``PAIR_RADIUS``, or when many images wait (a catalog just upgraded), the pairs are
computed by the bulk self-join (``near.join``). Every read happens in one read
transaction, so the pairs, the waiting images and the index's log describe one state of
the catalog.

The writer (``pair_round``, from ``builder.Upkeep``: the daemon's side jobs and the end of a
scan) records the pairs and crop links of the waiting images in one transaction: one
batched query of the persisted index plus its log and one comparison of their windows with
every image's for a few, the bulk self-join and ``croplinks.all_links`` for many.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from watcherd.catalog import pairs
from watcherd.catalog.hashes import NearLogReader, names_of
from watcherd.catalog.schema import PAIR_RADIUS
from watcherd.core.errors import CatalogError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from watcherd.catalog.store import Catalog
    from watcherd.near.croplinks import Link
    from watcherd.near.persisted import Tables

__all__ = ["PAIR_RADIUS", "Group", "components", "pair_round", "read_groups", "with_links"]

READER_PENDING = 20_000  # waiting images a reader pairs itself; more: it computes every pair
BULK_MIN = 5_000  # the writer pairs fewer waiting images one by one (batched), more in bulk


class Group(NamedTuple):
    """One group of look-alikes: its names (sorted), the widest distance inside it, and whether a
    crop link joins some of its members (not look-alikes as whole pictures). Where its members
    are is looked up by whoever shows them (``dupes`` looks up a page's only). A tuple: a
    million images make 30,000 of them, built in C."""

    names: list[str]
    span: int
    crop: bool = False


def components(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components (two members or more) of the graph ``edges`` makes, each sorted.

    An edge whose two ends meet no other edge is a component by itself (most pairs of
    look-alikes are): those are taken as they are, the rest joined by union-find."""
    edges = list(edges)
    degree = Counter(chain(map(itemgetter(0), edges), map(itemgetter(1), edges)))  # counted in C
    alone: list[list[str]] = []
    joined: list[tuple[str, str]] = []
    for a, b in edges:
        if a != b and degree[a] == 1 and degree[b] == 1:
            alone.append([a, b] if a < b else [b, a])
        else:
            joined.append((a, b))
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in joined:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    out: dict[str, list[str]] = {}
    for x in parent:
        out.setdefault(root(x), []).append(x)
    return alone + [sorted(m) for m in out.values() if len(m) > 1]


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
        kept = kept_components(conn, index, radius, within)
        found, distance = kept if kept is not None else (bulk_components(conn, radius, within), {})
        # A group that is one kept pair (most of them) is as wide as the pair; only the others'
        # hashes are read (at a million images: 60,000 names fewer to look up).
        widths = [distance.get((names[0], names[1])) if len(names) == 2 and not crop else None for names, crop in found]
        hashes = pairs.hashes_named(conn, [n for (g, _), w in zip(found, widths, strict=True) if w is None for n in g])
        out = []
        for (names, crop), width in zip(found, widths, strict=True):
            if width is None:
                names = [n for n in names if n in hashes]  # every member is present: the pairs say so
                width = span([hashes[n] for n in names])
            out.append(Group(names, width, crop))
        return out

    try:
        return reader.read(read)
    finally:
        reader.close()


NamedLink = tuple[str, str, int]  # (a, b, window distance), a < b


def with_links(whole: list[list[str]], links: Iterable[NamedLink]) -> list[tuple[list[str], bool]]:
    """The groups of look-alikes ``whole`` joined by crop links: each group, and whether a link
    joins members that are not look-alikes as whole pictures."""
    links = list(links)
    if not links:
        return [(names, False) for names in whole]
    group_of = {n: k for k, g in enumerate(whole) for n in g}
    edges = [(g[0], n) for g in whole for n in g[1:]]
    crossing: set[str] = set()
    for a, b, _ in links:
        edges.append((a, b))
        if a not in group_of or group_of[a] != group_of.get(b):
            crossing.add(a)
    return [(names, any(n in crossing for n in names)) for names in components(edges)]


def kept_components(
    conn: sqlite3.Connection, index: Path, radius: int, within: set[str] | None = None
) -> tuple[list[tuple[list[str], bool]], dict[tuple[str, str], int]] | None:
    """The groups from the kept pairs and crop links, plus those of the images still waiting for
    theirs, and each pair's distance (None when they cannot answer: beyond the kept radius, too
    many waiting, no usable index)."""
    kept = pairs.kept_radius(conn)
    if kept is None or radius > kept or not pairs.has_links(conn):
        return None
    waiting = pairs.pending_count(conn, READER_PENDING + 1)
    if waiting > READER_PENDING:
        return None
    edges = pairs.pairs_within(conn, radius)
    links = pairs.crop_links(conn)
    if waiting:
        batch = pairs.pending(conn, waiting)
        extra = pending_pairs(conn, index, batch, radius)
        if extra is None:
            return None
        edges += [(min(a, b), max(a, b), d) for a, b, d in extra]  # kept as a < b, as the kept ones
        links += pending_links(conn, [name for name, _, _ in batch])
    if within is not None:
        edges = [e for e in edges if e[0] in within and e[1] in within]
        links = [e for e in links if e[0] in within and e[1] in within]
    distance = {(a, b): d for a, b, d in edges}
    return with_links(components((a, b) for a, b, _ in edges), links), distance


def pending_links(conn: sqlite3.Connection, names: list[str]) -> list[NamedLink]:
    """The crop links of the named images with every present, not low-information image."""
    if not names:
        return []
    import numpy as np

    from watcherd.catalog.hashes import present_windows, window_rows
    from watcherd.near.croplinks import links_of

    rows, asks = present_windows(conn)
    which = np.flatnonzero(np.isin(rows, np.array(window_rows(conn, names), dtype=np.int64)))
    return _named(conn, rows, links_of(asks, which.tolist()))


def bulk_links(conn: sqlite3.Connection, within: set[str] | None = None) -> list[NamedLink]:
    """Every crop link among present, not low-information images (only among ``within`` when given)."""
    import numpy as np

    from watcherd.catalog.hashes import present_windows, window_rows
    from watcherd.near.croplinks import all_links

    if not pairs.has_links(conn):
        return []
    rows, asks = present_windows(conn)
    if within is not None:
        keep = np.isin(rows, np.array(window_rows(conn, sorted(within)), dtype=np.int64))
        rows, asks = rows[keep], asks[keep]
    return _named(conn, rows, all_links(asks))


def _named(conn: sqlite3.Connection, rows: NDArray[np.int64], found: list[Link]) -> list[NamedLink]:
    """Links between positions as links between names (a < b)."""
    from watcherd.catalog.hashes import CROPS

    names = names_of(conn, sorted({int(rows[k]) for i, j, _ in found for k in (i, j)}), CROPS)
    out = []
    for i, j, d in found:
        a, b = names[int(rows[i])][0], names[int(rows[j])][0]
        out.append((min(a, b), max(a, b), d))
    return out


def bulk_components(
    conn: sqlite3.Connection, radius: int, within: set[str] | None = None
) -> list[tuple[list[str], bool]]:
    """The groups computed from every present, not low-information hash by the bulk self-join
    (pairs confirmed by the whole-picture windows), joined as they come (memory follows the
    library, not the number of pairs), then joined by every crop link."""
    import numpy as np

    from watcherd.catalog.hashes import present_hashes, row_wholes
    from watcherd.near.croplinks import confirmed_mask
    from watcherd.near.join import pairs as join

    rows, hashes = present_hashes(conn)
    if within is not None:
        wanted = pairs.rows_named(conn, sorted(within))
        keep = np.isin(rows, np.array(sorted(wanted), dtype=np.int64))
        rows, hashes = rows[keep], hashes[keep]
    if pairs.has_links(conn):
        wholes, has = row_wholes(conn, rows)
    else:  # a catalog no writer has opened since window hashes came: none to confirm with
        wholes, has = np.zeros(rows.size, np.uint64), np.zeros(rows.size, bool)
    parent = np.arange(rows.size, dtype=np.int64)
    for i, j, _ in join(hashes, radius):
        agree = confirmed_mask(i, j, wholes, has)
        _union(parent, i[agree], j[agree])
    roots = _roots(parent)
    sizes = np.bincount(roots, minlength=rows.size)
    grouped = np.flatnonzero(sizes[roots] > 1)
    out: dict[int, list[str]] = {}
    if grouped.size:
        names = names_of(conn, rows[grouped].tolist())
        for at, root in zip(grouped.tolist(), roots[grouped].tolist(), strict=True):
            out.setdefault(root, []).append(names[int(rows[at])][0])
    return with_links([sorted(m) for m in out.values()], bulk_links(conn, within))


def _roots(parent: NDArray[np.int64]) -> NDArray[np.int64]:
    """Each position's root, with the paths halved until every entry points at its root."""
    import numpy as np

    while True:
        up = parent[parent]
        if np.array_equal(up, parent):
            return parent
        parent[:] = up


def _union(parent: NDArray[np.int64], i: NDArray[np.int64], j: NDArray[np.int64]) -> None:
    """Join the sets of each (i, j), all at once: the larger root points at the smaller, again
    until every pair shares a root (a root written twice in one step keeps one of the writes)."""
    import numpy as np

    while i.size:
        ri, rj = _roots_of(parent, i), _roots_of(parent, j)
        apart = ri != rj
        i, j, ri, rj = i[apart], j[apart], ri[apart], rj[apart]
        parent[np.maximum(ri, rj)] = np.minimum(ri, rj)


def _roots_of(parent: NDArray[np.int64], at: NDArray[np.int64]) -> NDArray[np.int64]:
    import numpy as np

    while True:
        up = parent[at]
        if np.array_equal(up, at):
            return at
        at = up


def _mapped(index: Path) -> Tables | None:
    from watcherd.near.persisted import Tables

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
    from watcherd.near.persisted import NearStore, Tables, _delta_view

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
    from watcherd.near.croplinks import confirmed

    names = names_of(conn, sorted(set(rows.tolist())))
    found = [
        (waiting[q][0], names[r][0], int(d))
        for q, r, d in zip(who.tolist(), rows.tolist(), dist.tolist(), strict=True)
        if r in names
    ]
    return confirmed(found, pairs.wholes(conn, [n for a, b, _ in found for n in (a, b)]))


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
                _pair_all(conn)
                return waiting
            batch = pairs.pending(conn, waiting)
            found = pending_pairs(conn, index, batch, PAIR_RADIUS)
            if found is None:
                return 0
            names = [name for name, _, _ in batch]
            pairs.record(conn, found, names, pending_links(conn, names))
            return len(batch)
    except sqlite3.Error as exc:
        raise CatalogError(f"cannot keep the near-duplicate pairs in {catalog.path}: {exc}") from None


def _pair_all(conn: sqlite3.Connection) -> None:
    """Every pair and crop link anew by the bulk self-join and ``croplinks.all_links``, written a
    block at a time (the writer's part)."""
    from watcherd.catalog.hashes import present_hashes, row_wholes
    from watcherd.near.croplinks import confirmed_mask
    from watcherd.near.join import pairs as join

    rows, hashes = present_hashes(conn)
    wholes, has = row_wholes(conn, rows)
    pairs.clear(conn)
    for i, j, d in join(hashes, PAIR_RADIUS):
        agree = confirmed_mask(i, j, wholes, has)
        i, j, d = i[agree], j[agree], d[agree]
        for at in range(0, i.size, 100_000):
            part = slice(at, at + 100_000)
            pairs.add_rows(conn, rows[i[part]].tolist(), rows[j[part]].tolist(), d[part].tolist())
    pairs.add_links(conn, bulk_links(conn))
    pairs.all_paired(conn)
