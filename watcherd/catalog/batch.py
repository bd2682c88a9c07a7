"""How a record's derived rows follow it: staged, then one statement per derived table.

Each record written is *staged* first: its fields are read out of its JSON once, into a
row of ``derive_staged`` (the ``FIELDS``, as plain columns; SQLite 3.40 parses a whole
record again for every ``json_extract``). ``STATEMENTS`` then bring every derived table in
step with all the staged records together, changing only the rows that differ (a path
that alone changed is updated in place, so a moved record's hash keeps its row and row
id: no entry in the near-duplicate log, its pairs stay). A record written alone is staged
and derived so by its ``derive_image`` trigger (``STAGE_NEW``, the statements, then its
staged row removed), in the statement that writes it; a set written at once
(``Catalog.put_images``: a folder of thumbnails moved) is staged by the writer, which the
trigger leaves alone, and derived in one go. Records are independent of each other there
(every derived row belongs to one record's name, and ``tag_totals`` only counts), so a set
leaves the tables exactly as its records written one at a time would, and both as a fresh
derivation (``schema``'s fill statements) does: ``tests/unit/catalog/test_batch.py``."""

from __future__ import annotations

import sqlite3

from watcherd.catalog import cropschema

__all__ = [
    "FIELDS",
    "STAGE",
    "STAGED_INTEGERS",
    "STAGE_NEW",
    "STATEMENTS",
    "TAGFILE_FIELDS",
    "WINDOWS",
    "complete_staging",
    "create_staging",
    "same_tagfiles",
    "staged_integers",
]


def _fields(key: str, value: str) -> dict[str, str]:
    """What the derived tables read of a record, as SQL over its key and JSON value."""
    paths = (
        f"(CASE WHEN json_type({value}, '$.paths') = 'array' THEN json_extract({value}, '$.paths') "
        f"ELSE json_array(json_extract({value}, '$.path')) END)"
    )
    return {
        "key": key,
        "path": f"ifnull(json_extract({value}, '$.path'), '')",
        "present": f"ifnull(json_extract({value}, '$.state'), '') = 'present'",
        "low": f"(CASE WHEN json_extract({value}, '$.low_information') THEN 1 ELSE 0 END)",
        "moving": f"ifnull(json_extract({value}, '$.moving_from'), '') != ''",
        "tags": f"ifnull(json_extract({value}, '$.tags'), '[]')",
        "paths": paths,
        "sha256": f"json_extract({value}, '$.sha256')",
        "filename": f"json_extract({value}, '$.original_filename')",
        "hash": f"lower(json_extract({value}, '$.hash'))",
        "crops": f"ifnull(json_extract({value}, '$.crops'), '')",
    }


FIELDS = tuple(_fields("", ""))


def _select(key: str, value: str) -> str:
    return ", ".join(f"{sql} AS {name}" for name, sql in _fields(key, value).items())


# The stored windows of each staged record as integers (``cropschema.stored_windows``: NULL
# when it has none of this version), given by the writer with a set, computed in SQL for a
# record written alone.
WINDOWS = tuple(f"w{k}" for k in range(cropschema.CROP_STORED))
# ... and its name's hash (``hash_value``), staged so too.
STAGED_INTEGERS = ("h", *WINDOWS)
_VALID_HASH = "length({h}) = 16 AND NOT {h} GLOB '*[^0-9a-f]*'"


def hash_value(hash_hex: str) -> int | None:
    """The ``hashes`` row's integer of a record's hash (lower-cased ASCII hex, 16 digits; None if
    it is not that): what SQL reads of it digit by digit for a record written alone."""
    if len(hash_hex) != 16 or not hash_hex.isascii():
        return None
    lowered = hash_hex.lower()
    if lowered.strip("0123456789abcdef"):
        return None
    value = int(lowered, 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def staged_integers(hash_hex: str, crops: str) -> tuple[int | None, ...]:
    """A record's ``STAGED_INTEGERS``, as ``Catalog.put_images`` gives them with it."""
    return (hash_value(hash_hex), *cropschema.stored_windows(crops))


def create_staging(conn: sqlite3.Connection) -> None:
    """``derive_staged``: the records of a set being written, their fields as columns, whether
    each changes what its sidecar and attributes are made from (``due``) and its stored
    windows (``WINDOWS``); empty outside ``Catalog.put_images``."""
    columns = ", ".join(
        ["key TEXT PRIMARY KEY", *FIELDS[1:], "due INTEGER", *(f"{w} INTEGER" for w in STAGED_INTEGERS)]
    )
    conn.execute(f"CREATE TABLE derive_staged ({columns})")


def complete_staging(conn: sqlite3.Connection) -> None:
    """A staging table made before ``due`` or the ``WINDOWS`` gets those columns (it holds no row
    outside a set; a writer of an earlier version names its columns and leaves them NULL)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(derive_staged)")}
    for column in ("due", *STAGED_INTEGERS):
        if column not in have:
            conn.execute(f"ALTER TABLE derive_staged ADD COLUMN {column} INTEGER")


# What a record's sidecar and extended attributes are made from: a change to any of these
# marks the image due (``tagfiles``).
TAGFILE_FIELDS = ("tags", "keywords", "path", "paths", "state", "original", "moving_from", "sha256", "source")


def same_tagfiles(old: str, new: str) -> str:
    """SQL: the JSON records ``old`` and ``new`` agree on every ``TAGFILE_FIELDS`` field."""
    return " AND ".join(f"json_extract({old}, '$.{f}') IS json_extract({new}, '$.{f}')" for f in TAGFILE_FIELDS)


# Does the record given as ``(?1, ?2)`` change what its tag files are made from? A move or a
# new tag says so from the listing row (no record parsed); only a record whose tags and path
# stay is compared field by field with the one it replaces.
_GIVEN = _fields("?1", "?2")
_DUE = (
    f"NOT EXISTS (SELECT 1 FROM listing AS l WHERE l.name = ?1 AND l.tags IS {_GIVEN['tags']} "
    f"AND l.path IS {_GIVEN['path']}) "
    f"OR NOT EXISTS (SELECT 1 FROM images AS o WHERE o.key = ?1 AND {same_tagfiles('o.value', '?2')})"
)
# Stages one record, given as parameters ``(key, value, h, w0, w1, w2)`` (``value``: the JSON text
# written; the integers: ``staged_integers``), before it is written (``due`` compares it with the
# record it replaces).
_GIVEN_INTEGERS = ", ".join(f"?{3 + k}" for k in range(len(STAGED_INTEGERS)))
STAGE = (
    f"INSERT INTO derive_staged ({', '.join(FIELDS)}, due, {', '.join(STAGED_INTEGERS)}) "
    f"SELECT {_select('?1', '?2')}, {_DUE}, {_GIVEN_INTEGERS}"
)
# Stages the record a trigger on ``images`` fires for, its integers read in SQL.
_READ_INTEGERS = [
    f"CASE WHEN {_VALID_HASH.format(h='f.hash')} THEN {cropschema.hash_integer('f.hash')} END",
    *cropschema.windows_sql("f.crops"),
]
STAGE_NEW = (
    f"INSERT INTO derive_staged ({', '.join(FIELDS)}, {', '.join(STAGED_INTEGERS)}) "
    f"SELECT f.*, {', '.join(_READ_INTEGERS)} FROM (SELECT {_select('NEW.key', 'NEW.value')}) AS f"
)


def _statements(source: str) -> list[str]:
    """Statements that bring listing, tagged, placed, contents, filenames and hashes rows in step
    with the staged records of ``source`` (aliased ``b``, with the ``FIELDS`` as columns)."""
    src = f" FROM {source} AS b"
    # No folder tag: every tag is the size tag, the part of the name before its first _.
    untagged = (
        "NOT EXISTS (SELECT 1 FROM json_each(b.tags) AS u "
        "WHERE u.type = 'text' AND u.value != substr(b.key, 1, instr(b.key, '_') - 1))"
    )
    valid_hash = "b.h IS NOT NULL"
    # A thumbnail's file name is its record's name, so a place is (folder, name).
    folder = "substr(j.value, 1, length(j.value) - length(b.key))"
    placed_at = (
        "json_each(b.paths) AS j WHERE j.type = 'text' AND b.present AND substr(j.value, -length(b.key)) = b.key"
    )
    listing = (
        "INSERT INTO listing (name, path, present, low, moving, tags, untagged) "
        f"SELECT b.key, b.path, b.present, b.low, b.moving, b.tags, {untagged}{src} WHERE true"
    )
    # Rows already there are skipped by NOT EXISTS, not by OR IGNORE: inside the trigger the
    # conflict clause of the statement that fired it (sqlitedict's INSERT OR REPLACE) wins,
    # and a replaced row would count its tag twice in ``tag_totals``.
    tagged = (
        f"INSERT INTO tagged (tag, path, name) SELECT DISTINCT j.value, b.path, b.key{src}, json_each(b.tags) AS j "
        "WHERE j.type = 'text' AND b.present AND NOT EXISTS "
        "(SELECT 1 FROM tagged AS t WHERE t.tag = j.value AND t.path = b.path AND t.name = b.key)"
    )
    placed = (
        f"INSERT INTO placed (folder, name) SELECT DISTINCT {folder}, b.key{src}, {placed_at} "
        f"AND NOT EXISTS (SELECT 1 FROM placed AS p WHERE p.folder = {folder} AND p.name = b.key)"
    )
    contents = (
        f"INSERT INTO contents (sha256, name) SELECT b.sha256, b.key{src} WHERE b.sha256 IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM contents AS c WHERE c.sha256 = b.sha256 AND c.name = b.key)"
    )
    # ``odd``: not ASCII, so lower() did not fold all of it (see ``finding``).
    filenames = (
        "INSERT INTO filenames (name, fname, odd) SELECT b.key, lower(b.filename), "
        f"length(CAST(b.filename AS BLOB)) != length(b.filename){src} WHERE b.filename IS NOT NULL"
    )
    hashes = (
        "INSERT INTO hashes (name, hash, path, present, low) "
        f"SELECT b.key, b.h, b.path, b.present, b.low{src} WHERE {valid_hash}"
    )
    cols = ("path", "present", "low", "moving", "tags", "untagged")
    changed = f"({', '.join(cols)}) IS NOT ({', '.join(f'excluded.{c}' for c in cols)})"
    # Each record's rows as its listing row (not yet changed) files them: one per tag, under its path.
    old_tagged = f"{src} CROSS JOIN listing AS o ON o.name = b.key, json_each(o.tags) AS j"
    new_tags = "SELECT value FROM json_each(b.tags) WHERE type = 'text'"
    return [
        # Before the listing rows change. Tags gone are deleted, the others follow a move by
        # an UPDATE (which leaves ``tag_totals`` alone), new ones are added.
        f"DELETE FROM tagged WHERE (tag, path, name) IN (SELECT j.value, o.path, o.name{old_tagged} "
        f"WHERE NOT (b.present AND j.value IN ({new_tags})))",
        f"UPDATE tagged SET path = (SELECT b.path{src} WHERE b.key = tagged.name) "
        f"WHERE (tag, path, name) IN (SELECT j.value, o.path, o.name{old_tagged} WHERE o.path != b.path)",
        tagged,
        f"{listing} ON CONFLICT (name) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in cols)
        + f" WHERE {changed}",
        f"DELETE FROM placed WHERE (folder, name) IN (SELECT p.folder, p.name{src} CROSS JOIN placed AS p "
        "ON p.name = b.key "
        f"WHERE p.folder NOT IN (SELECT {folder} FROM {placed_at}))",
        placed,
        f"DELETE FROM contents WHERE (sha256, name) IN (SELECT c.sha256, c.name{src} "
        "CROSS JOIN contents AS c ON c.name = b.key WHERE c.sha256 IS NOT b.sha256)",
        contents,
        f"DELETE FROM filenames WHERE name IN (SELECT b.key{src} WHERE b.filename IS NULL)",
        # Only a changed file name is written: a move costs the trigram index nothing.
        f"{filenames} ON CONFLICT (name) DO UPDATE SET fname = excluded.fname, odd = excluded.odd, folded = NULL "
        "WHERE fname IS NOT excluded.fname",
        f"DELETE FROM hashes WHERE name IN (SELECT b.key{src} WHERE NOT ({valid_hash}))",
        # A move changes the path alone: no hash is parsed again for it.
        f"UPDATE hashes SET path = (SELECT b.path{src} WHERE b.key = hashes.name) "
        f"WHERE name IN (SELECT b.key{src} CROSS JOIN hashes AS x ON x.name = b.key WHERE x.path != b.path)",
        f"{hashes} AND NOT EXISTS (SELECT 1 FROM hashes AS x WHERE x.name = b.key AND x.present = b.present "
        "AND x.low = b.low AND x.hash = b.h) "
        "ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, path = excluded.path, "
        "present = excluded.present, low = excluded.low "
        "WHERE (hash, path, present, low) IS NOT (excluded.hash, excluded.path, excluded.present, excluded.low)",
    ]


def _crop_statements(source: str) -> list[str]:
    """Statements that bring ``crop_hashes`` rows in step with the staged records of ``source``,
    whose stored windows are staged as integers (``WINDOWS``): no hex digit is read here."""
    start = len(cropschema.CROP_PREFIX) + 1
    window = "CASE s.value " + " ".join(f"WHEN {k} THEN b.{w}" for k, w in enumerate(WINDOWS)) + " END"
    asks = f"CASE WHEN s.value = 0 THEN substr(b.crops, {start}, {16 * cropschema.CROP_HEX}) END"
    cols = ("hash", "path", "present", "low", "asks")
    return [
        f"DELETE FROM crop_hashes WHERE name IN (SELECT b.key FROM {source} AS b WHERE b.{WINDOWS[0]} IS NULL)",
        # A move changes the paths alone: its rows are updated in place.
        f"UPDATE crop_hashes SET path = (SELECT b.path FROM {source} AS b WHERE b.key = crop_hashes.name) "
        f"WHERE name IN (SELECT b.key FROM {source} AS b CROSS JOIN crop_hashes AS x ON x.name = b.key "
        "WHERE x.path != b.path)",
        "INSERT INTO crop_hashes (name, slot, hash, path, present, low, asks) "
        f"SELECT b.key, s.value, {window}, b.path, b.present, b.low, {asks} "
        f"FROM {source} AS b, json_each('{list(range(cropschema.CROP_STORED))}') AS s "
        f"WHERE b.{WINDOWS[0]} IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM crop_hashes AS x WHERE x.name = b.key AND x.slot = s.value "
        f"AND x.hash = {window} AND x.present = b.present AND x.low = b.low AND x.asks IS {asks}) "
        "ON CONFLICT (name, slot) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in cols)
        + f" WHERE ({', '.join(cols)}) IS NOT ({', '.join(f'excluded.{c}' for c in cols)})",
    ]


# What ``derive_image`` and ``Catalog.put_images`` run once records are staged and written.
STATEMENTS = (*_statements("derive_staged"), *_crop_statements("derive_staged"))
