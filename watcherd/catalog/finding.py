"""``find`` in SQL: one statement walks the smallest criterion's index, the others are index probes.

Every criterion of a ``TagQuery`` names a set of present images that an index can
list: a tag's rows in ``tagged`` (kept in path order), the union of ``--any`` tags,
the images with only their size tag (``listing_untagged``, in path order), or the
original file names that match a glob (``filenames``: its index for a literal
prefix, its trigram index ``filename_grams`` for a literal run of three or more
characters). The plan walks one of them (the *driver*) and checks every other
criterion of each row it meets by a primary-key probe, so no record's JSON is read
and no Python runs per record. A driver kept in path order streams: the first rows
come at once and ``LIMIT`` stops the walk. A driver that is not (a union of tags, a
file-name match) is sorted by path first, so it is chosen only when it is small, or
when it is the only criterion that narrows anything.

File names: the pattern is case-folded (Python's ``casefold``) and matched against
the lower-cased name. SQLite's ``lower`` folds ASCII only, so a name with other
characters (``odd``) is matched in the form Python's casefold gives it (``folded``,
which the writer stores beside it; folded here for a row some other writer left
without): exactly the per-record rule of earlier versions, which tests compare with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

COUNT_CAP = 20_000  # a file-name or untagged set counted up to here: beyond it, it is "large"
_WILD = "*?["


@dataclass(frozen=True)
class TagQuery:
    """What ``find`` looks for: tags all of, any of and none of, no folder tag, an original file name."""

    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    none_of: tuple[str, ...] = ()
    untagged: bool = False
    filename: str | None = None  # a glob, matched case-insensitively

    @property
    def empty(self) -> bool:
        """No criterion at all."""
        return not (self.all_of or self.any_of or self.none_of or self.untagged or self.filename is not None)


def as_json(value: str) -> str:
    """A string parameter for ``json_extract(?, '$')``: SQLite then holds it exactly as the
    derived columns hold it, lone surrogates included (plain binding cannot carry them)."""
    return json.dumps(value)


class Reader(Protocol):
    """What a plan needs of a ``CatalogReader``: its queries and the fold function."""

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...

    def _stream(self, sql: str, args: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]: ...

    def fold_function(self) -> None: ...


@dataclass(frozen=True)
class Driver:
    """A set of present images a plan can walk: its size (an estimate beyond ``COUNT_CAP``),
    whether it comes in path order, the SQL that lists its names (or walks ``listing``)."""

    kind: str  # tag, any, untagged, filename, all
    size: int
    ordered: bool
    arg: Any = None


def literal_prefix(pattern: str) -> str:
    """The characters of a glob before its first wildcard."""
    cut = min((i for i in (pattern.find(c) for c in _WILD) if i >= 0), default=len(pattern))
    return pattern[:cut]


def longest_literal(pattern: str) -> int:
    """Length of the longest run of plain characters in a glob (``[...]`` counts as a wildcard)."""
    best = run = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c in "*?":
            run = 0
        elif c == "[":
            end = pattern.find("]", i + 2)  # ``[]...]`` holds a literal ]
            if end < 0:
                run += 1  # an unclosed [ is a plain character to GLOB
            else:
                i, run = end, 0
        else:
            run += 1
        best = max(best, run)
        i += 1
    return best


def fold(value: bytes | None) -> bytes | None:
    """Python's casefold in SQL (SQLite's lower() knows only ASCII), called on the text's bytes
    (``watcherd_fold(CAST(x AS BLOB))``): a name holding bytes that were not UTF-8 (kept as lone
    surrogates) cannot reach Python as text, and goes back as the bytes SQLite holds for it."""
    if not isinstance(value, bytes):
        return value
    return value.decode("utf-8", "surrogatepass").casefold().encode("utf-8", "surrogatepass")


def _capped(reader: Reader, sql: str, args: tuple[Any, ...]) -> int:
    rows = reader._query(f"SELECT count(*) FROM ({sql} LIMIT {COUNT_CAP})", args)
    return int(rows[0][0]) if rows else 0


# A file name as Python folds it: ``fname`` (SQLite's lower(), ASCII only) for an ASCII name,
# else ``folded`` (Python's casefold, written by the writer), else Python's fold here.
_FOLDED = (
    "(CASE WHEN NOT f.odd THEN f.fname WHEN f.folded IS NOT NULL THEN f.folded "
    "ELSE CAST(watcherd_fold(CAST(f.fname AS BLOB)) AS TEXT) END)"
)


def _filename_names(pattern: str, grams: bool = True) -> tuple[str, tuple[Any, ...]] | None:
    """SQL listing the names whose file name matches ``pattern`` (already folded) from an
    index, or None when no index narrows it (no literal prefix, no run of 3 characters)."""
    odd = (
        "SELECT name FROM filenames INDEXED BY filenames_folded WHERE folded GLOB ? AND folded IS NOT NULL "
        "UNION ALL SELECT name FROM filenames INDEXED BY filenames_unfolded WHERE odd = 1 AND folded IS NULL "
        "AND CAST(watcherd_fold(CAST(fname AS BLOB)) AS TEXT) GLOB ?"
    )
    if literal_prefix(pattern):
        plain = "SELECT name FROM filenames WHERE fname GLOB ? AND odd = 0"
    elif grams and longest_literal(pattern) >= 3:
        plain = (
            "SELECT f.name FROM filename_grams AS g CROSS JOIN filenames AS f ON f.id = g.rowid "
            "WHERE g.fname GLOB ? AND f.odd = 0"
        )
    else:
        return None
    return f"{plain} UNION ALL {odd}", (pattern, pattern, pattern)


def plan(reader: Reader, query: TagQuery, limit: int | None, offset: int) -> tuple[str, tuple[Any, ...]] | None:
    """The one SQL statement that answers ``query`` (None: certainly nothing matches)."""
    totals = dict(
        reader._query(
            "SELECT tag, n FROM tag_totals WHERE tag IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted({*query.all_of, *query.any_of})),),
        )
    )
    drivers: list[Driver] = []
    for tag in sorted(set(query.all_of)):
        drivers.append(Driver("tag", int(totals.get(tag, 0)), True, tag))
    if query.any_of:
        drivers.append(Driver("any", sum(int(totals.get(t, 0)) for t in set(query.any_of)), False))
    pattern = query.filename.casefold() if query.filename is not None else None
    if pattern is not None:
        reader.fold_function()
        grams = reader._query("SELECT 1 FROM sqlite_master WHERE name = 'filename_grams'")
        listed = _filename_names(pattern, bool(grams))
        if listed is not None:
            drivers.append(Driver("filename", _capped(reader, listed[0], listed[1]), False, listed))
    if query.untagged:
        walk = "SELECT 1 FROM listing INDEXED BY listing_untagged WHERE present = 1 AND untagged = 1"
        drivers.append(Driver("untagged", _capped(reader, walk, ()), True))
    if any(d.size == 0 for d in drivers):
        return None
    everyone = reader._query("SELECT ifnull(max(rowid), 0) FROM listing")
    every = Driver("all", int(everyone[0][0]) if everyone else 0, True)
    driver = _choose(drivers, every, limit, offset)

    where, args = [], []
    # Probes name the driver's own columns when it has them (a tag's rows): a row that fails
    # one is dropped before its listing row is even looked up.
    src = "d" if driver.kind == "tag" else "l"
    probe = f"SELECT 1 FROM tagged AS t WHERE t.path = {src}.path AND t.name = {src}.name AND t.tag "
    for tag in sorted(set(query.all_of)):
        if driver.kind != "tag" or driver.arg != tag:
            where.append(f"EXISTS ({probe}= json_extract(?, '$'))")
            args.append(as_json(tag))
    if query.any_of and driver.kind != "any":
        where.append(f"EXISTS ({probe}IN (SELECT value FROM json_each(?)))")
        args.append(json.dumps(sorted(set(query.any_of))))
    if query.none_of:
        where.append(f"NOT EXISTS ({probe}IN (SELECT value FROM json_each(?)))")
        args.append(json.dumps(sorted(set(query.none_of))))
    if pattern is not None and driver.kind != "filename":
        where.append(f"EXISTS (SELECT 1 FROM filenames AS f WHERE f.name = {src}.name AND {_FOLDED} GLOB ?)")
        args.append(pattern)
    where.append("l.present = 1")
    if query.untagged:
        where.append("l.untagged = 1")
    cols, tail = "l.name, l.path, l.tags", f" LIMIT {-1 if limit is None else int(limit)} OFFSET {int(offset)}"
    cond = " AND ".join(where)
    if driver.kind == "tag":
        sql = (
            f"SELECT {cols} FROM tagged AS d CROSS JOIN listing AS l ON l.name = d.name "
            f"WHERE d.tag = json_extract(?, '$') AND {cond} ORDER BY d.path, d.name"
        )
        return sql + tail, (as_json(driver.arg), *args)
    if driver.kind in ("untagged", "all"):
        index = "listing_untagged" if driver.kind == "untagged" else "listing_path"
        return f"SELECT {cols} FROM listing AS l INDEXED BY {index} WHERE {cond} ORDER BY l.path{tail}", tuple(args)
    if driver.kind == "any":
        names = "SELECT DISTINCT name FROM tagged WHERE tag IN (SELECT value FROM json_each(?))"
        head: tuple[Any, ...] = (json.dumps(sorted(set(query.any_of))),)
    else:
        names, head = driver.arg
    sql = f"SELECT {cols} FROM ({names}) AS d CROSS JOIN listing AS l ON l.name = d.name WHERE {cond} ORDER BY l.path"
    return sql + tail, (*head, *args)


def _choose(drivers: list[Driver], every: Driver, limit: int | None, offset: int) -> Driver:
    """The cheapest driver: rows walked (probes) against rows sorted, as the query needs them."""
    ordered = min((d for d in drivers if d.ordered), key=lambda d: d.size, default=every)
    unordered = min((d for d in drivers if not d.ordered), key=lambda d: d.size, default=None)
    if unordered is None or unordered.size >= ordered.size:
        return ordered
    hits = min(d.size for d in drivers)  # at most this many rows match
    walk = ordered.size
    if limit is not None:
        # Matches are spread along the walk: it stops once offset + limit of them are met.
        walk = min(ordered.size, (offset + limit) * ordered.size // max(hits, 1))
    return ordered if walk <= 2 * unordered.size else unordered


def rows(reader: Reader, query: TagQuery, limit: int | None, offset: int) -> Iterator[tuple[str, str, list[str]]]:
    """(name, path, tags) of the matches, by path, streamed."""
    statement = plan(reader, query, limit, offset)
    if statement is None:
        return
    for name, path, tags in reader._stream(*statement):
        yield str(name), str(path), json.loads(tags)


def count(reader: Reader, query: TagQuery) -> int:
    """How many present images match ``query`` (the same plan, counted in SQL)."""
    statement = plan(reader, query, None, 0)
    if statement is None:
        return 0
    sql, args = statement
    found = reader._query(f"SELECT count(*) FROM ({sql})", args)
    return int(found[0][0]) if found else 0
