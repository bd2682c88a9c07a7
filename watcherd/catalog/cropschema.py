"""The derived tables of window hashes: ``crop_hashes`` (the crop index's rows), its log, and the kept crop links.

``crop_hashes`` holds one row per stored window of each image with window hashes
(``core.crops.STORED`` of them: the whole picture and its central 80% and 70%); the
row of slot 0 (the whole picture) also keeps the first ``core.crops.HEX`` windows as
hex (``asks``), which the crop links are computed from without reading records. The
trigger on ``images`` changes only the rows that differ (a move changes a path and logs
nothing), as for ``hashes``; ``crop_log`` is its change log, read by the crop index
(``near/crops.bin``) as ``near_log`` is by the names' index.

``crop_pairs`` holds the crop links among present, not low-information images (``a < b``,
``d`` the window distance), kept with the near pairs: an image waiting in
``near_pending`` waits for both, and an image whose whole-picture window hashes change
(given by ``scan`` to an image catalogued before, or gone) drops its pairs and waits
again, so its crop links are found.
"""

from __future__ import annotations

import re
import sqlite3
import struct

__all__ = [
    "CROP_HEX",
    "CROP_LENGTH",
    "CROP_PREFIX",
    "CROP_STORED",
    "PARTS",
    "WINDOWLESS",
    "create_crop_log",
    "create_crop_pair_triggers",
    "create_crop_tables",
    "create_whole_index",
    "crop_fill",
    "hash_integer",
    "stored_windows",
    "valid_windows",
    "windows_sql",
]

# The window hashes of ``core.crops`` that go into ``crop_hashes``: STORED of them, 16 hex
# digits each after the prefix, in a text of TEXT_LENGTH (tests check these equal crops' values).
CROP_PREFIX = "v1:"
CROP_LENGTH = 947
CROP_STORED = 3
# The ``meta`` key of the present images whose thumbnails are too small for window hashes:
# ``{"prefix": CROP_PREFIX, "names": [...]}``, written by the writer at the end of a pass that
# decoded every image lacking them (``flow.cropfill``), so ``lacking_windows`` counts them.
WINDOWLESS = "windowless"
CROP_HEX = 29  # the windows written as hex: slot 0's row keeps them (``asks``) for the crop links

# What a catalog needs of these tables (``schema.needs_derived``).
PARTS = frozenset(
    {"crop_hashes", "crop_hashes_name", "crop_pairs", "crop_pairs_b", "crop_windows_added", "crop_windows_changed",
     "crop_windows_removed"}
)  # fmt: skip


_HEX = "0123456789abcdef"
_NOT_HEX = re.compile("[^0-9a-f]")
_SIGNED = struct.Struct(f">{CROP_STORED}q")


def hash_integer(text: str) -> str:
    """SQL for the signed 64-bit integer of 16 hex digits in ``text`` (SQLite has no hex parser)."""
    return " | ".join(f"((instr('{_HEX}', substr({text}, {i + 1}, 1)) - 1) << {60 - 4 * i})" for i in range(16))


def valid_windows(crops: str) -> str:
    """SQL: the text ``crops`` holds window hashes of this version (its shape and its hex digits)."""
    start = len(CROP_PREFIX) + 1
    return (
        f"substr({crops}, 1, {len(CROP_PREFIX)}) = '{CROP_PREFIX}' AND length({crops}) = {CROP_LENGTH} "
        f"AND NOT substr({crops}, {start}, {16 * CROP_HEX}) GLOB '*[^0-9a-f]*'"
    )


def windows_sql(crops: str) -> list[str]:
    """SQL for each stored window of the text ``crops`` as ``crop_hashes`` keeps it (NULL when the
    text is not ``valid_windows``): what ``stored_windows`` gives in Python."""
    start = len(CROP_PREFIX) + 1
    return [
        f"CASE WHEN {valid_windows(crops)} THEN {hash_integer(f'substr({crops}, {start + 16 * k}, 16)')} END"
        for k in range(CROP_STORED)
    ]


def stored_windows(crops: str) -> tuple[int | None, ...]:
    """``windows_sql`` in Python: the stored windows of a record's ``crops`` as signed 64-bit
    integers (SQLite's), or NULLs when the text is not ``valid_windows``. Staged by the writer
    with a set of records, so SQL need not read 16 hex digits one by one for each window."""
    start = len(CROP_PREFIX)
    if (
        len(crops) != CROP_LENGTH
        or not crops.startswith(CROP_PREFIX)
        or _NOT_HEX.search(crops, start, start + 16 * CROP_HEX)
    ):
        return (None,) * CROP_STORED
    return _SIGNED.unpack(bytes.fromhex(crops[start : start + 16 * CROP_STORED]))


def crop_fill(key: str, value: str, source: str) -> str:
    """The statement that fills an empty ``crop_hashes`` from the records of ``source``
    (``schema._fill_statements``'s part)."""
    crops = f"ifnull(json_extract({value}, '$.crops'), '')"
    start = len(CROP_PREFIX) + 1
    valid = (
        f"substr({crops}, 1, {len(CROP_PREFIX)}) = '{CROP_PREFIX}' AND length({crops}) = {CROP_LENGTH} "
        f"AND NOT substr({crops}, {start}, {16 * CROP_HEX}) GLOB '*[^0-9a-f]*'"
    )
    state = f"ifnull(json_extract({value}, '$.state'), '')"
    low = f"(CASE WHEN json_extract({value}, '$.low_information') THEN 1 ELSE 0 END)"
    path = f"ifnull(json_extract({value}, '$.path'), '')"
    return (
        "INSERT INTO crop_hashes (name, slot, hash, path, present, low, asks) "
        f"SELECT {key}, s.value, {hash_integer(f'substr({crops}, {start} + 16 * s.value, 16)')}, "
        f"{path}, {state} = 'present', {low}, "
        f"CASE WHEN s.value = 0 THEN substr({crops}, {start}, {16 * CROP_HEX}) END"
        f" FROM {source}, json_each('{list(range(CROP_STORED))}') AS s WHERE {valid}"
    )


def create_crop_tables(conn: sqlite3.Connection) -> None:
    """Create ``crop_hashes`` and ``crop_pairs`` (empty) and the triggers that make an image whose
    whole-picture windows change wait for its pairs again."""
    conn.execute(
        "CREATE TABLE crop_hashes (name TEXT NOT NULL, slot INTEGER NOT NULL, hash INTEGER NOT NULL, "
        "path TEXT NOT NULL, present INTEGER NOT NULL, low INTEGER NOT NULL, asks TEXT)"
    )
    conn.execute("CREATE UNIQUE INDEX crop_hashes_name ON crop_hashes (name, slot)")
    create_whole_index(conn)
    conn.execute(
        "CREATE TABLE crop_pairs (a TEXT NOT NULL, b TEXT NOT NULL, d INTEGER NOT NULL, PRIMARY KEY (a, b)) "
        "WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX crop_pairs_b ON crop_pairs (b)")


def create_whole_index(conn: sqlite3.Connection) -> None:
    """``crop_hashes_whole``: the whole-picture rows by presence, so whether every present image
    has its window hashes is a count by index (``CatalogReader.lacking_windows``, every scan), not
    a read of the table with its windows' text. An older catalog gets it when the writer opens it."""
    conn.execute("CREATE INDEX IF NOT EXISTS crop_hashes_whole ON crop_hashes (present) WHERE slot = 0")


def create_crop_pair_triggers(conn: sqlite3.Connection) -> None:
    """An image whose whole-picture window row comes, goes or changes its windows drops its
    pairs (near and crop) and waits for them again when it is present."""

    def again(who: str) -> str:
        return (
            f"DELETE FROM near_pairs WHERE a = {who}.name OR b = {who}.name; "
            f"DELETE FROM crop_pairs WHERE a = {who}.name OR b = {who}.name; "
            f"DELETE FROM near_paired WHERE name = {who}.name; "
            # NOT EXISTS, not OR IGNORE alone: fired by an upsert, the trigger's conflict clause is
            # the upsert's (ABORT), and an image already waiting would fail its record's write.
            f"INSERT OR IGNORE INTO near_pending (name) SELECT name FROM hashes "
            f"WHERE name = {who}.name AND present = 1 AND low = 0 "
            f"AND NOT EXISTS (SELECT 1 FROM near_pending WHERE name = {who}.name);"
        )

    conn.execute(
        f"CREATE TRIGGER crop_windows_added AFTER INSERT ON crop_hashes WHEN NEW.slot = 0 BEGIN {again('NEW')} END"
    )
    conn.execute(
        "CREATE TRIGGER crop_windows_changed AFTER UPDATE ON crop_hashes WHEN NEW.slot = 0 AND "
        f"(OLD.hash IS NOT NEW.hash OR OLD.asks IS NOT NEW.asks) BEGIN {again('NEW')} END"
    )
    conn.execute(
        f"CREATE TRIGGER crop_windows_removed AFTER DELETE ON crop_hashes WHEN OLD.slot = 0 BEGIN {again('OLD')} END"
    )


def create_crop_log(conn: sqlite3.Connection, *, fresh: bool = False) -> None:
    """The change log of ``crop_hashes`` (as ``near_log`` is of ``hashes``), for the crop index;
    its trimmed position is ``near_meta``'s ``crop_trimmed``."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS crop_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "row INTEGER NOT NULL, hash INTEGER, present INTEGER, low INTEGER)"
    )
    if fresh:
        conn.execute("DELETE FROM crop_log")
    conn.execute(
        "INSERT OR IGNORE INTO near_meta (key, value) "
        "VALUES ('crop_trimmed', (SELECT ifnull(max(seq), 0) FROM crop_log))"
    )
    added = "INSERT INTO crop_log (row, hash, present, low) VALUES (NEW.rowid, NEW.hash, NEW.present, NEW.low)"
    removed = "INSERT INTO crop_log (row) VALUES (OLD.rowid)"
    changed = "OLD.hash IS NOT NEW.hash OR OLD.present IS NOT NEW.present OR OLD.low IS NOT NEW.low"
    triggers = {
        "crop_added": f"AFTER INSERT ON crop_hashes BEGIN {added}; END",
        "crop_removed": f"AFTER DELETE ON crop_hashes BEGIN {removed}; END",
        # A change of path (a move) alone is not logged: the index holds no paths.
        "crop_updated": f"AFTER UPDATE ON crop_hashes WHEN {changed} BEGIN {removed}; {added}; END",
    }
    for name, body in triggers.items():
        conn.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
