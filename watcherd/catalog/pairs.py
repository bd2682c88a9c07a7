"""The kept near-duplicate pairs: what ``dupes --near``, the review page and ``arrange`` read.

``near_pairs`` holds every pair of present, not low-information images within
``schema.PAIR_RADIUS`` bits (``a < b``, with the distance ``d``) that their whole-picture
window hashes confirm, and ``crop_pairs`` every crop link among them (``near.croplinks``),
for the images in ``near_paired``. An image that becomes present (new, returning, put back by an undo)
waits in ``near_pending`` (the ``derive_image`` trigger puts it there, in the same
transaction as its record) until the writer has looked for its pairs; an image that
leaves (missing, forgotten, merged by a near keep decision, flagged low-information)
takes its pairs and marks with it, in the same statement. So at every commit:

    pairs among present images = near_pairs  +  the pairs of the pending images

and a reader that finds images pending pairs those few itself (``neargroups``).
Functions here take an open connection: the writer's (inside its transaction) or a
reader's (inside one read transaction, so every table describes one state).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from watcherd.catalog.schema import PAIR_RADIUS

MASK64 = (1 << 64) - 1


def kept_radius(conn: sqlite3.Connection) -> int | None:
    """The radius the catalog's pairs were kept at (None: this catalog keeps none)."""
    have = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'near_pairs'").fetchone()
    if have is None:
        return None
    row = conn.execute("SELECT value FROM near_meta WHERE key = 'pair_radius'").fetchone()
    return int(row[0]) if row is not None else None


def has_links(conn: sqlite3.Connection) -> bool:
    """Does this catalog keep window hashes and crop links (a writer has opened it since they came)?"""
    (n,) = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('crop_hashes', 'crop_pairs')"
    ).fetchone()
    return int(n) == 2


def pairs_within(conn: sqlite3.Connection, radius: int) -> list[tuple[str, str, int]]:
    """Every kept pair (a, b, distance) within ``radius``.

    The names are images' canonical names, ASCII always (``naming``): read as plain text, not
    through the connection's surrogate-keeping decoder (a third of the read at 60,000 pairs)."""
    before, conn.text_factory = conn.text_factory, str
    try:
        rows: list[tuple[str, str, int]] = conn.execute(
            "SELECT a, b, d FROM near_pairs WHERE d <= ?", (radius,)
        ).fetchall()
    finally:
        conn.text_factory = before
    return rows


def pending(conn: sqlite3.Connection, most: int) -> list[tuple[str, int, int]]:
    """(name, hashes row id, unsigned hash) of up to ``most`` images whose pairs are not recorded yet."""
    rows = conn.execute(
        "SELECT p.name, h.rowid, h.hash FROM near_pending AS p JOIN hashes AS h ON h.name = p.name LIMIT ?", (most,)
    ).fetchall()
    return [(str(n), int(r), int(h) & MASK64) for n, r, h in rows]


def pending_count(conn: sqlite3.Connection, most: int) -> int:
    """How many images wait for their pairs, counted up to ``most``."""
    (n,) = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM near_pending LIMIT {int(most)})").fetchone()
    return int(n)


def present_count(conn: sqlite3.Connection) -> int:
    """How many images are present and not low-information (what pairs are kept among)."""
    (n,) = conn.execute("SELECT count(*) FROM hashes WHERE present = 1 AND low = 0").fetchone()
    return int(n)


def hashes_named(conn: sqlite3.Connection, names: list[str]) -> dict[str, int]:
    """Name -> unsigned hash of the named images that are present."""
    if not names:
        return {}
    rows = conn.execute(
        "SELECT name, hash FROM hashes WHERE present = 1 AND name IN (SELECT value FROM json_each(?))",
        (json.dumps(names),),
    ).fetchall()
    return {str(n): int(h) & MASK64 for n, h in rows}


def record(
    conn: sqlite3.Connection,
    found: Iterable[tuple[str, str, int]],
    done: list[str],
    links: Iterable[tuple[str, str, int]] = (),
) -> None:
    """The writer's part: add pairs and crop ``links`` (either order; kept as a < b) and mark ``done`` as paired."""
    conn.executemany(
        "INSERT OR IGNORE INTO near_pairs (a, b, d) VALUES (?, ?, ?)",
        ((min(a, b), max(a, b), d) for a, b, d in found if a != b),
    )
    add_links(conn, links)
    names = json.dumps(done)
    conn.execute("INSERT OR IGNORE INTO near_paired (name) SELECT value FROM json_each(?)", (names,))
    conn.execute("DELETE FROM near_pending WHERE name IN (SELECT value FROM json_each(?))", (names,))


def clear(conn: sqlite3.Connection) -> None:
    """The writer's part before a bulk self-join: no pair, no mark (``add_rows`` then ``all_paired``)."""
    conn.execute("DELETE FROM near_pairs")
    conn.execute("DELETE FROM crop_pairs")
    conn.execute("DELETE FROM near_paired")
    conn.execute("DELETE FROM near_pending")


def add_rows(conn: sqlite3.Connection, a: list[int], b: list[int], d: list[int]) -> None:
    """Add pairs given as ``hashes`` row ids (their names are looked up here) with their distances."""
    conn.execute(
        "INSERT OR IGNORE INTO near_pairs (a, b, d) SELECT min(x.name, y.name), max(x.name, y.name), p.d "
        "FROM (SELECT json_extract(value, '$[0]') AS i, json_extract(value, '$[1]') AS j, "
        "json_extract(value, '$[2]') AS d FROM json_each(?)) AS p "
        "JOIN hashes AS x ON x.rowid = p.i JOIN hashes AS y ON y.rowid = p.j WHERE x.name != y.name",
        (json.dumps(list(zip(a, b, d, strict=True))),),
    )


def all_paired(conn: sqlite3.Connection) -> None:
    """Every present, not low-information image has its pairs recorded."""
    conn.execute("INSERT OR IGNORE INTO near_paired (name) SELECT name FROM hashes WHERE present = 1 AND low = 0")
    conn.execute("DELETE FROM near_pending")


def rows_named(conn: sqlite3.Connection, names: list[str]) -> set[int]:
    """The ``hashes`` row ids of these names."""
    rows = conn.execute("SELECT rowid FROM hashes WHERE name IN (SELECT value FROM json_each(?))", (json.dumps(names),))
    return {int(r) for (r,) in rows}


def reset(conn: sqlite3.Connection) -> None:
    """Void every kept pair (kept at another radius): every present image waits to be paired again."""
    conn.execute("DELETE FROM near_pairs")
    conn.execute("DELETE FROM crop_pairs")
    conn.execute("DELETE FROM near_paired")
    conn.execute("INSERT OR IGNORE INTO near_pending (name) SELECT name FROM hashes WHERE present = 1 AND low = 0")
    conn.execute("INSERT OR REPLACE INTO near_meta (key, value) VALUES ('pair_radius', ?)", (PAIR_RADIUS,))


def crop_links(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """Every kept crop link (a, b, window distance)."""
    return [(str(a), str(b), int(d)) for a, b, d in conn.execute("SELECT a, b, d FROM crop_pairs")]


def add_links(conn: sqlite3.Connection, links: Iterable[tuple[str, str, int]]) -> None:
    """Add crop links (either order; kept as a < b)."""
    conn.executemany(
        "INSERT OR IGNORE INTO crop_pairs (a, b, d) VALUES (?, ?, ?)",
        ((min(a, b), max(a, b), d) for a, b, d in links if a != b),
    )


def wholes(conn: sqlite3.Connection, names: list[str]) -> dict[str, int]:
    """Name -> unsigned whole-picture window hash of the named images that have window hashes."""
    if not names:
        return {}
    rows = conn.execute(
        "SELECT name, hash FROM crop_hashes WHERE slot = 0 AND name IN (SELECT value FROM json_each(?))",
        (json.dumps(sorted(set(names))),),
    ).fetchall()
    return {str(n): int(h) & MASK64 for n, h in rows}
