"""The catalog's tables: the key/value tables sqlitedict reads, and the derived tables.

The key/value tables (``images``, ``collisions``, ``errors``, ``meta``, ``near_decisions``) have exactly the
layout sqlitedict gives them, ``key TEXT PRIMARY KEY, value BLOB``, with JSON text as
every value, so a notebook reads them with ``SqliteDict(..., decode=json.loads)``.

The derived tables hold what the commands need as plain columns. watcherd's Python
code never writes them: a trigger on ``images`` derives them in the same statement as
each record, so they cannot disagree with it. A catalog that lacks any part of them
(an older watcherd's) has them rebuilt from the records when the writer opens it.
"""

from __future__ import annotations

import sqlite3

TABLES = ("images", "collisions", "errors", "meta", "near_decisions")
DERIVED = frozenset({"hashes", "listing", "tagged", "tag_totals", "placed", "contents", "crop_hashes"})
# Everything else the derived tables need; a catalog lacking any of it is re-derived.
_DERIVED_PARTS = DERIVED | {
    "derive_image", "listing_state", "placed_name", "contents_name", "tag_added", "tag_removed",
    "crop_hashes_name",
}  # fmt: skip
# The window hashes of ``crops`` that go into ``crop_hashes``: crops.STORED of them, 16 hex digits
# each after the prefix, in a text of crops.TEXT_LENGTH (tests check these equal crops' values).
CROP_PREFIX = "v1:"
CROP_LENGTH = 947
CROP_STORED = 3
CROP_HEX = 29  # the windows written as hex: slot 0's row keeps them (``asks``) for dupes --near

_HEX = "0123456789abcdef"


def _hash_integer(text: str) -> str:
    """SQL for the signed 64-bit integer of 16 hex digits in ``text`` (SQLite has no hex parser)."""
    return " | ".join(f"((instr('{_HEX}', substr({text}, {i + 1}, 1)) - 1) << {60 - 4 * i})" for i in range(16))


def _derive_statements(key: str, value: str, source: str | None) -> list[str]:
    """INSERTs that derive listing, tagged and hashes rows from records.

    Used twice: with ``NEW.key``/``NEW.value`` as the body of the trigger, and with
    a ``FROM images`` source to fill the tables for an existing catalog.
    """
    src = f" FROM {source}" if source else ""
    state = f"ifnull(json_extract({value}, '$.state'), '')"
    h = f"lower(json_extract({value}, '$.hash'))"
    low = f"(CASE WHEN json_extract({value}, '$.low_information') THEN 1 ELSE 0 END)"
    path = f"ifnull(json_extract({value}, '$.path'), '')"
    paths = (
        f"(CASE WHEN json_type({value}, '$.paths') = 'array' THEN json_extract({value}, '$.paths') "
        f"ELSE json_array(json_extract({value}, '$.path')) END)"
    )
    sha = f"json_extract({value}, '$.sha256')"
    crops = f"ifnull(json_extract({value}, '$.crops'), '')"
    return [
        "INSERT OR REPLACE INTO listing (name, path, present, low, moving, tags) "
        f"SELECT {key}, {path}, {state} = 'present', {low}, "
        f"ifnull(json_extract({value}, '$.moving_from'), '') != '', "
        f"ifnull(json_extract({value}, '$.tags'), '[]'){src}",
        f"INSERT OR IGNORE INTO tagged (tag, name) SELECT j.value, {key}"
        f"{src + ',' if source else ' FROM'} json_each({value}, '$.tags') AS j "
        f"WHERE j.type = 'text' AND {state} = 'present'",
        # A thumbnail's file name is its record's name, so a place is (folder, name).
        f"INSERT OR IGNORE INTO placed (folder, name) SELECT substr(j.value, 1, length(j.value) - length({key})), {key}"
        f"{src + ',' if source else ' FROM'} json_each({paths}) AS j "
        f"WHERE j.type = 'text' AND {state} = 'present' AND substr(j.value, -length({key})) = {key}",
        f"INSERT OR IGNORE INTO contents (sha256, name) SELECT {sha}, {key}{src} WHERE {sha} IS NOT NULL",
        "INSERT OR REPLACE INTO hashes (name, hash, path, present, low) "
        f"SELECT {key}, {_hash_integer(h)}, {path}, {state} = 'present', {low}{src} "
        f"WHERE length({h}) = 16 AND NOT {h} GLOB '*[^0-9a-f]*'",
        # The stored window hashes (``crops``): one row per window, what finds cropped copies.
        "INSERT INTO crop_hashes (name, slot, hash, path, present, low, asks) "
        f"SELECT {key}, s.value, {_hash_integer(f'substr({crops}, {len(CROP_PREFIX) + 1} + 16 * s.value, 16)')}, "
        f"{path}, {state} = 'present', {low}, "
        f"CASE WHEN s.value = 0 THEN substr({crops}, {len(CROP_PREFIX) + 1}, {16 * CROP_HEX}) END"
        f"{src + ',' if source else ' FROM'} json_each('{list(range(CROP_STORED))}') AS s "
        f"WHERE substr({crops}, 1, {len(CROP_PREFIX)}) = '{CROP_PREFIX}' "
        f"AND length({crops}) = {CROP_LENGTH} "
        f"AND NOT substr({crops}, {len(CROP_PREFIX) + 1}, {16 * CROP_HEX}) GLOB '*[^0-9a-f]*'",
    ]


def create_tables(conn: sqlite3.Connection) -> None:
    """The key/value tables, as sqlitedict would create them."""
    for table in TABLES:
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" (key TEXT PRIMARY KEY, value BLOB)')


def needs_derived(conn: sqlite3.Connection) -> bool:
    """Does this catalog lack any part of the derived tables?"""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger', 'index')")}
    return not have >= _DERIVED_PARTS


def create_derived(conn: sqlite3.Connection) -> None:
    """(Re)build the derived tables and their triggers from the records (inside a transaction).

    ``hashes``: 64-bit hashes as INTEGERs, for near-duplicate search. ``listing``:
    path, presence, low-information flag, an interrupted-move flag and tags (JSON
    text) of every image. ``placed``: one (folder, name) row per place a present
    thumbnail is in (copies included), for the scan and for deletions. ``contents``:
    (sha256, name), to know an image by its bytes. ``tagged``: one (tag, name) row
    per tag of each present image; ``tag_totals``: images per tag.
    """
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for trigger in ("derive_image", "forget_image", "tag_added", "tag_removed"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for table in DERIVED & have:
        conn.execute(f'DROP TABLE "{table}"')  # rebuilt together, from the records
    conn.execute(
        "CREATE TABLE hashes (name TEXT PRIMARY KEY, hash INTEGER NOT NULL, path TEXT NOT NULL, "
        "present INTEGER NOT NULL, low INTEGER NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE listing (name TEXT PRIMARY KEY, path TEXT NOT NULL, present INTEGER NOT NULL, "
        "low INTEGER NOT NULL, moving INTEGER NOT NULL, tags TEXT NOT NULL)"
    )
    conn.execute("CREATE TABLE tagged (tag TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (tag, name)) WITHOUT ROWID")
    conn.execute("CREATE INDEX tagged_name ON tagged (name)")
    conn.execute("CREATE INDEX listing_state ON listing (present, low)")
    conn.execute("CREATE TABLE tag_totals (tag TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID")
    conn.execute(
        "CREATE TABLE placed (folder TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (folder, name)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX placed_name ON placed (name)")
    conn.execute(
        "CREATE TABLE contents (sha256 TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (sha256, name)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX contents_name ON contents (name)")  # the trigger's delete, per record
    conn.execute(
        "CREATE TABLE crop_hashes (name TEXT NOT NULL, slot INTEGER NOT NULL, hash INTEGER NOT NULL, "
        "path TEXT NOT NULL, present INTEGER NOT NULL, low INTEGER NOT NULL, asks TEXT)"
    )
    conn.execute("CREATE INDEX crop_hashes_name ON crop_hashes (name)")
    for sql in _derive_statements("images.key", "images.value", "images"):
        conn.execute(sql)
    conn.execute("INSERT INTO tag_totals (tag, n) SELECT tag, count(*) FROM tagged GROUP BY tag")
    conn.execute(
        "CREATE TRIGGER tag_added AFTER INSERT ON tagged BEGIN "
        "INSERT INTO tag_totals (tag, n) VALUES (NEW.tag, 1) ON CONFLICT (tag) DO UPDATE SET n = n + 1; END"
    )
    conn.execute(
        "CREATE TRIGGER tag_removed AFTER DELETE ON tagged BEGIN "
        "UPDATE tag_totals SET n = n - 1 WHERE tag = OLD.tag; END"
    )
    body = ";\n".join(_derive_statements("NEW.key", "NEW.value", None))
    conn.execute(
        "CREATE TRIGGER derive_image AFTER INSERT ON images BEGIN\n"
        "DELETE FROM tagged WHERE name = NEW.key;\n"
        "DELETE FROM hashes WHERE name = NEW.key;\n"
        "DELETE FROM placed WHERE name = NEW.key;\n"
        "DELETE FROM contents WHERE name = NEW.key;\n"
        "DELETE FROM crop_hashes WHERE name = NEW.key;\n"
        f"{body};\nEND"
    )
    create_forget_trigger(conn)
    create_near_log(conn, fresh=True)


def create_near_log(conn: sqlite3.Connection, *, fresh: bool = False) -> None:
    """The change log of ``hashes`` that the persisted near-duplicate index reads as its delta.

    Every row added to ``hashes`` is logged with its hash and flags, every row removed
    (deleted, or replaced by a newer row of the same name) as a NULL hash, in commit
    order (``seq``). An index built at ``seq`` S plus the log after S is the present
    state exactly. ``near_meta`` holds a random ``epoch`` (new whenever ``hashes`` is
    re-derived and its row ids change meaning) and ``trimmed``, the last ``seq`` the
    writer has dropped from the log once an index covering it was published.
    ``fresh``: ``hashes`` was just rebuilt, so every index built before is void.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS near_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "row INTEGER NOT NULL, hash INTEGER, present INTEGER, low INTEGER)"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS near_meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID")
    if fresh:
        conn.execute("DELETE FROM near_log")
        conn.execute("DELETE FROM near_meta")
    conn.execute("INSERT OR IGNORE INTO near_meta (key, value) VALUES ('epoch', lower(hex(randomblob(8))))")
    conn.execute(
        "INSERT OR IGNORE INTO near_meta (key, value) VALUES ('trimmed', (SELECT ifnull(max(seq), 0) FROM near_log))"
    )
    removed = "INSERT INTO near_log (row) VALUES ({})"
    added = "INSERT INTO near_log (row, hash, present, low) VALUES (NEW.rowid, NEW.hash, NEW.present, NEW.low)"
    triggers = {
        # INSERT OR REPLACE deletes the old row without firing delete triggers: log it first.
        "near_replaced": "BEFORE INSERT ON hashes BEGIN INSERT INTO near_log (row) "
        "SELECT rowid FROM hashes WHERE name = NEW.name; END",
        "near_added": f"AFTER INSERT ON hashes BEGIN {added}; END",
        "near_removed": f"AFTER DELETE ON hashes BEGIN {removed.format('OLD.rowid')}; END",
        "near_updated": f"AFTER UPDATE ON hashes BEGIN {removed.format('OLD.rowid')}; {added}; END",
    }
    for name, body in triggers.items():
        conn.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
    # The same log of ``crop_hashes`` (rows are only ever inserted and deleted), for the crop index.
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
    crop_triggers = {
        "crop_added": "AFTER INSERT ON crop_hashes BEGIN INSERT INTO crop_log (row, hash, present, low) "
        "VALUES (NEW.rowid, NEW.hash, NEW.present, NEW.low); END",
        "crop_removed": "AFTER DELETE ON crop_hashes BEGIN INSERT INTO crop_log (row) VALUES (OLD.rowid); END",
        "crop_updated": "AFTER UPDATE ON crop_hashes BEGIN INSERT INTO crop_log (row) VALUES (OLD.rowid); "
        "INSERT INTO crop_log (row, hash, present, low) VALUES (NEW.rowid, NEW.hash, NEW.present, NEW.low); END",
    }
    for name, body in crop_triggers.items():
        conn.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")


def create_forget_trigger(conn: sqlite3.Connection) -> None:
    """A deleted record (``forget``) takes its derived rows with it; added to older catalogs as is."""
    tables = ("tagged", "hashes", "placed", "contents", "crop_hashes")
    drops = " ".join(f"DELETE FROM {t} WHERE name = OLD.key;" for t in tables)
    conn.execute(
        f"CREATE TRIGGER IF NOT EXISTS forget_image AFTER DELETE ON images BEGIN {drops} "
        "DELETE FROM listing WHERE name = OLD.key; END"
    )


def create_near_merged(conn: sqlite3.Connection) -> None:
    """``near_merged`` (sha256, id): the bytes of each image a near keep decision merged, so a
    new file is checked against them by one index probe. Derived by triggers on
    ``near_decisions`` like the tables above; filled from the records when first created."""
    have = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'near_merged'").fetchone()
    if have is not None:
        return
    conn.execute(
        "CREATE TABLE near_merged (sha256 TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (sha256, id)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX near_merged_id ON near_merged (id)")
    rows = (
        "INSERT OR IGNORE INTO near_merged (sha256, id) SELECT json_extract(j.value, '$.record.sha256'), {key} "
        "FROM {source}json_each({value}, '$.merged') AS j WHERE json_extract(j.value, '$.record.sha256') IS NOT NULL"
    )
    conn.execute(rows.format(key="near_decisions.key", value="near_decisions.value", source="near_decisions, "))
    conn.execute(
        "CREATE TRIGGER near_merged_put AFTER INSERT ON near_decisions BEGIN "
        "DELETE FROM near_merged WHERE id = NEW.key; "
        f"{rows.format(key='NEW.key', value='NEW.value', source='')}; END"
    )
    conn.execute(
        "CREATE TRIGGER near_merged_drop AFTER DELETE ON near_decisions BEGIN "
        "DELETE FROM near_merged WHERE id = OLD.key; END"
    )
