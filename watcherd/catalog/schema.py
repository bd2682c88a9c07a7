"""The catalog's tables: the key/value tables sqlitedict reads, and the derived tables.

The key/value tables (``images``, ``collisions``, ``errors``, ``meta``, ``near_decisions``) have exactly the
layout sqlitedict gives them, ``key TEXT PRIMARY KEY, value BLOB``, with JSON text as
every value, so a notebook reads them with ``SqliteDict(..., decode=json.loads)``.

The derived tables hold what the commands need as plain columns. watcherd's Python
code never writes them: a trigger on ``images`` derives them in the same statement as
each record (``batch``'s statements, which also derive a set of records written at once, in
the same transaction), so they cannot disagree with it. A catalog that lacks any part of
them (an older watcherd's) has them filled from the records when the writer opens it.
"""

from __future__ import annotations

import sqlite3

from watcherd.catalog import batch, cropschema

TABLES = ("images", "collisions", "errors", "meta", "near_decisions")
DERIVED = frozenset(
    {
        "hashes", "listing", "tagged", "tag_totals", "placed", "contents", "filenames", "filename_grams",
        "near_pairs", "near_paired", "near_pending", "crop_hashes", "crop_pairs",
    }
)  # fmt: skip
# Everything else the derived tables need; a catalog lacking any of it is re-derived.
_DERIVED_PARTS = DERIVED | {
    "derive_image", "listing_state", "placed_name", "contents_name", "tag_added", "tag_removed",
    "listing_path", "listing_untagged", "filenames_fname", "filenames_folded", "filenames_unfolded",
    "filenames_added", "filenames_removed", "filenames_changed", "near_pairs_b",
    "near_pair_added", "near_pair_changed", "near_pair_removed",
} | cropschema.PARTS  # fmt: skip
# Near-duplicate pairs are kept up to this distance: the largest the hash quality
# benchmark advises (false positives at most 0.05%), and what a new image's one index
# query covers anyway (one flipped bit per 16-bit chunk, as at 4). ``dupes --near N``
# reads them for N up to this; beyond it, groups are computed.
PAIR_RADIUS = 5


def _fill_statements() -> list[str]:
    """Statements that fill the empty derived tables (listing, tagged, placed, contents,
    filenames, hashes, crop_hashes) from every record, when a catalog is derived anew.

    Written on their own, not as ``batch``'s statements over staged records: a fresh
    derivation is the independent measure the tests hold the kept tables to."""
    key, value, source = "images.key", "images.value", "images"
    src = f" FROM {source}"
    each = f"{src},"
    state = f"ifnull(json_extract({value}, '$.state'), '')"
    present = f"({state} = 'present')"
    h = f"lower(json_extract({value}, '$.hash'))"
    low = f"(CASE WHEN json_extract({value}, '$.low_information') THEN 1 ELSE 0 END)"
    path = f"ifnull(json_extract({value}, '$.path'), '')"
    paths = (
        f"(CASE WHEN json_type({value}, '$.paths') = 'array' THEN json_extract({value}, '$.paths') "
        f"ELSE json_array(json_extract({value}, '$.path')) END)"
    )
    sha = f"json_extract({value}, '$.sha256')"
    # No folder tag: every tag is the size tag, the part of the name before its first _.
    untagged = (
        f"NOT EXISTS (SELECT 1 FROM json_each({value}, '$.tags') AS u "
        f"WHERE u.type = 'text' AND u.value != substr({key}, 1, instr({key}, '_') - 1))"
    )
    filename = f"json_extract({value}, '$.original_filename')"
    valid_hash = f"length({h}) = 16 AND NOT {h} GLOB '*[^0-9a-f]*'"
    # A thumbnail's file name is its record's name, so a place is (folder, name).
    folders = (
        f"SELECT substr(j.value, 1, length(j.value) - length({key})) AS folder, {key} AS name"
        f"{each} json_each({paths}) AS j "
        f"WHERE j.type = 'text' AND {present} AND substr(j.value, -length({key})) = {key}"
    )
    listing = (
        "INSERT INTO listing (name, path, present, low, moving, tags, untagged) "
        f"SELECT {key}, {path}, {present}, {low}, ifnull(json_extract({value}, '$.moving_from'), '') != '', "
        f"ifnull(json_extract({value}, '$.tags'), '[]'), {untagged}{src} WHERE true"
    )
    # Rows already there are skipped by NOT EXISTS, not by OR IGNORE: inside the trigger the
    # conflict clause of the statement that fired it (sqlitedict's INSERT OR REPLACE) wins,
    # and a replaced row would count its tag twice in ``tag_totals``.
    tagged = (
        f"INSERT INTO tagged (tag, path, name) SELECT DISTINCT j.value, {path}, {key}"
        f"{each} json_each({value}, '$.tags') AS j WHERE j.type = 'text' AND {present} AND NOT EXISTS "
        f"(SELECT 1 FROM tagged AS t WHERE t.tag = j.value AND t.path = {path} AND t.name = {key})"
    )
    placed = (
        f"INSERT INTO placed (folder, name) SELECT DISTINCT f.folder, f.name FROM ({folders}) AS f "
        "WHERE NOT EXISTS (SELECT 1 FROM placed AS p WHERE p.folder = f.folder AND p.name = f.name)"
    )
    contents = (
        f"INSERT INTO contents (sha256, name) SELECT {sha}, {key}{src} WHERE {sha} IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM contents AS c WHERE c.sha256 = {sha} AND c.name = {key})"
    )
    # ``odd``: not ASCII, so lower() did not fold all of it (see ``finding``).
    filenames = (
        f"INSERT INTO filenames (name, fname, odd) SELECT {key}, lower({filename}), "
        f"length(CAST({filename} AS BLOB)) != length({filename}){src} WHERE {filename} IS NOT NULL"
    )
    hashes = (
        "INSERT INTO hashes (name, hash, path, present, low) "
        f"SELECT {key}, {cropschema.hash_integer(h)}, {path}, {present}, {low}{src} WHERE {valid_hash}"
    )
    return [listing, tagged, placed, contents, filenames, hashes, cropschema.crop_fill(key, value, source)]


def _drop_tagged(key: str) -> str:
    """Drop the ``tagged`` rows of record ``key``: its listing row (not yet replaced) names
    each tag and the path they were filed under, so each is one primary-key step."""
    return (
        f"DELETE FROM tagged WHERE name = {key} AND path = (SELECT path FROM listing WHERE name = {key}) "
        f"AND tag IN (SELECT j.value FROM listing AS o, json_each(o.tags) AS j WHERE o.name = {key})"
    )


# A record written alone is staged by its trigger and derived by the same statements as a set
# (``batch``); a record already staged is one of a set, which ``Catalog.put_images`` derives.
DERIVE_TRIGGER = (
    "CREATE TRIGGER derive_image AFTER INSERT ON images "
    "WHEN NOT EXISTS (SELECT 1 FROM derive_staged WHERE key = NEW.key) BEGIN\n"
    + ";\n".join([batch.STAGE_NEW, *batch.STATEMENTS, "DELETE FROM derive_staged WHERE key = NEW.key"])
    + ";\nEND"
)


def _create_derive_trigger(conn: sqlite3.Connection) -> None:
    """``derive_image`` and the staging table its statements read."""
    conn.execute("DROP TABLE IF EXISTS derive_staged")
    batch.create_staging(conn)
    conn.execute("DROP TRIGGER IF EXISTS derive_image")
    conn.execute(DERIVE_TRIGGER)


def stage_sets(conn: sqlite3.Connection) -> None:
    """A catalog derived before sets were staged gets the staging, ``derive_image`` and the crop
    triggers as this version writes them, in place: nothing is derived again."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'derive_staged'").fetchone():
        batch.complete_staging(conn)  # the columns the trigger's statements read
        (have,) = conn.execute("SELECT ifnull(max(sql), '') FROM sqlite_master WHERE name = 'derive_image'").fetchone()
        if have != DERIVE_TRIGGER:
            conn.execute("DROP TRIGGER IF EXISTS derive_image")
            conn.execute(DERIVE_TRIGGER)
        return
    _create_derive_trigger(conn)
    for trigger in ("crop_windows_added", "crop_windows_changed", "crop_windows_removed"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    cropschema.create_crop_pair_triggers(conn)


def create_tables(conn: sqlite3.Connection) -> None:
    """The key/value tables, as sqlitedict would create them."""
    for table in TABLES:
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" (key TEXT PRIMARY KEY, value BLOB)')


_GRAM_PARTS = frozenset({"filename_grams", "filenames_added", "filenames_removed", "filenames_changed"})


def needs_derived(conn: sqlite3.Connection) -> bool:
    """Does this catalog lack any part of the derived tables (the trigram index only where FTS5 is)?"""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger', 'index')")}
    return not have >= (_DERIVED_PARTS if has_trigrams(conn) else _DERIVED_PARTS - _GRAM_PARTS)


def create_derived(conn: sqlite3.Connection) -> None:
    """(Re)build the derived tables and their triggers from the records (inside a transaction).

    ``hashes``: 64-bit hashes as INTEGERs, for near-duplicate search. ``listing``:
    path, presence, low-information flag, an interrupted-move flag, tags (JSON text)
    and whether only the size tag is left, of every image. ``placed``: one (folder,
    name) row per place a present thumbnail is in (copies included), for the scan and
    for deletions. ``contents``: (sha256, name), to know an image by its bytes.
    ``tagged``: one (tag, path, name) row per tag of each present image, so ``find``
    walks a tag's images in path order; ``tag_totals``: images per tag.
    ``filenames``: each image's original file name, lower-cased, with an index for
    prefixes and a trigram index (``filename_grams``, FTS5) for any other glob.
    """
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for trigger in ("derive_image", "forget_image", "tag_added", "tag_removed"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for table in sorted(DERIVED & have, key=lambda t: t != "filename_grams"):  # the index before its content
        conn.execute(f'DROP TABLE "{table}"')  # rebuilt together, from the records
    conn.execute(
        "CREATE TABLE hashes (name TEXT PRIMARY KEY, hash INTEGER NOT NULL, path TEXT NOT NULL, "
        "present INTEGER NOT NULL, low INTEGER NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE listing (name TEXT PRIMARY KEY, path TEXT NOT NULL, present INTEGER NOT NULL, "
        "low INTEGER NOT NULL, moving INTEGER NOT NULL, tags TEXT NOT NULL, untagged INTEGER NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE tagged (tag TEXT NOT NULL, path TEXT NOT NULL, name TEXT NOT NULL, "
        "PRIMARY KEY (tag, path, name)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX listing_state ON listing (present, low)")
    conn.execute("CREATE INDEX listing_path ON listing (path) WHERE present = 1")
    conn.execute("CREATE INDEX listing_untagged ON listing (path) WHERE present = 1 AND untagged = 1")
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
        "CREATE TABLE filenames (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, fname TEXT NOT NULL, "
        "odd INTEGER NOT NULL, folded TEXT)"
    )
    conn.execute("CREATE INDEX filenames_fname ON filenames (fname)")
    conn.execute("CREATE INDEX filenames_folded ON filenames (folded) WHERE folded IS NOT NULL")
    conn.execute("CREATE INDEX filenames_unfolded ON filenames (name) WHERE odd = 1 AND folded IS NULL")
    grams = has_trigrams(conn)
    if grams:
        conn.execute(
            "CREATE VIRTUAL TABLE filename_grams USING fts5(fname, content='filenames', content_rowid='id', "
            "tokenize='trigram case_sensitive 1', detail='none')"
        )
    cropschema.create_crop_tables(conn)
    for sql in _fill_statements():
        conn.execute(sql)
    if grams:
        _create_gram_triggers(conn)
    conn.execute("INSERT INTO tag_totals (tag, n) SELECT tag, count(*) FROM tagged GROUP BY tag")
    conn.execute(
        "CREATE TRIGGER tag_added AFTER INSERT ON tagged BEGIN "
        "INSERT INTO tag_totals (tag, n) VALUES (NEW.tag, 1) ON CONFLICT (tag) DO UPDATE SET n = n + 1; END"
    )
    conn.execute(
        "CREATE TRIGGER tag_removed AFTER DELETE ON tagged BEGIN "
        "UPDATE tag_totals SET n = n - 1 WHERE tag = OLD.tag; END"
    )
    _create_derive_trigger(conn)
    conn.execute(
        "CREATE TABLE near_pairs (a TEXT NOT NULL, b TEXT NOT NULL, d INTEGER NOT NULL, PRIMARY KEY (a, b)) "
        "WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX near_pairs_b ON near_pairs (b)")
    conn.execute("CREATE TABLE near_paired (name TEXT PRIMARY KEY) WITHOUT ROWID")
    conn.execute("CREATE TABLE near_pending (name TEXT PRIMARY KEY) WITHOUT ROWID")
    conn.execute("INSERT INTO near_pending (name) SELECT name FROM hashes WHERE present = 1 AND low = 0")
    _create_pair_triggers(conn)
    cropschema.create_crop_pair_triggers(conn)
    create_forget_trigger(conn)
    create_near_log(conn, fresh=True)
    conn.execute("INSERT OR REPLACE INTO near_meta (key, value) VALUES ('pair_radius', ?)", (PAIR_RADIUS,))


def has_trigrams(conn: sqlite3.Connection) -> bool:
    """Does this SQLite have FTS5 (whose trigram tokenizer indexes file names for infix globs)?
    Without it the trigram index is left out and such globs walk the names instead."""
    options = {str(r[0]) for r in conn.execute("PRAGMA compile_options")}
    return "ENABLE_FTS5" in options


def _create_gram_triggers(conn: sqlite3.Connection) -> None:
    """Fill the trigram index from ``filenames`` and keep it following that table."""
    conn.execute("INSERT INTO filename_grams (filename_grams) VALUES ('rebuild')")
    grams = "INSERT INTO filename_grams (filename_grams, rowid, fname) VALUES ('delete', OLD.id, OLD.fname)"
    conn.execute(
        "CREATE TRIGGER filenames_added AFTER INSERT ON filenames BEGIN "
        "INSERT INTO filename_grams (rowid, fname) VALUES (NEW.id, NEW.fname); END"
    )
    conn.execute(f"CREATE TRIGGER filenames_removed AFTER DELETE ON filenames BEGIN {grams}; END")
    conn.execute(
        f"CREATE TRIGGER filenames_changed AFTER UPDATE OF fname ON filenames BEGIN {grams}; "
        "INSERT INTO filename_grams (rowid, fname) VALUES (NEW.id, NEW.fname); END"
    )


def _create_pair_triggers(conn: sqlite3.Connection) -> None:
    """Triggers on ``hashes`` that keep the near-duplicate pairs' marks: an image that becomes
    present and not low-information waits in ``near_pending`` until the writer has recorded
    its pairs (then it is in ``near_paired``); one whose hash, presence or flag changes, or
    whose row goes, drops its pairs and marks (and waits again if it is still there). A row
    changed only in its path (a move) keeps them."""
    drop = (
        "DELETE FROM near_pairs WHERE a = OLD.name OR b = OLD.name; "
        "DELETE FROM crop_pairs WHERE a = OLD.name OR b = OLD.name; "
        "DELETE FROM near_paired WHERE name = OLD.name; DELETE FROM near_pending WHERE name = OLD.name;"
    )
    wait = "INSERT OR IGNORE INTO near_pending (name) SELECT NEW.name WHERE NEW.present = 1 AND NEW.low = 0"
    conn.execute(
        "CREATE TRIGGER near_pair_added AFTER INSERT ON hashes BEGIN "
        f"{wait} AND NOT EXISTS (SELECT 1 FROM near_paired WHERE name = NEW.name); END"
    )
    conn.execute(
        "CREATE TRIGGER near_pair_changed AFTER UPDATE ON hashes WHEN OLD.name IS NOT NEW.name OR "
        f"OLD.hash IS NOT NEW.hash OR OLD.present IS NOT NEW.present OR OLD.low IS NOT NEW.low BEGIN {drop} {wait}; END"
    )
    conn.execute(f"CREATE TRIGGER near_pair_removed AFTER DELETE ON hashes BEGIN {drop} END")


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
    # ``hashes`` is changed in place (an upsert keeps a row's id); a change of path alone is
    # not logged: the index holds no paths.
    conn.execute("DROP TRIGGER IF EXISTS near_replaced")  # of the versions that replaced rows
    changed = "OLD.rowid IS NOT NEW.rowid OR OLD.hash IS NOT NEW.hash OR OLD.present IS NOT NEW.present"
    triggers = {
        "near_added": f"AFTER INSERT ON hashes BEGIN {added}; END",
        "near_removed": f"AFTER DELETE ON hashes BEGIN {removed.format('OLD.rowid')}; END",
        "near_updated": f"AFTER UPDATE ON hashes WHEN {changed} OR OLD.low IS NOT NEW.low "
        f"BEGIN {removed.format('OLD.rowid')}; {added}; END",
    }
    for name, body in triggers.items():
        conn.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
    cropschema.create_crop_log(conn, fresh=fresh)


def create_forget_trigger(conn: sqlite3.Connection) -> None:
    """A deleted record (``forget``) takes its derived rows with it; added to older catalogs as is."""
    # Its hash row takes its near-duplicate pairs and marks with it (``near_pair_removed``).
    drops = " ".join(
        f"DELETE FROM {t} WHERE name = OLD.key;" for t in ("hashes", "placed", "contents", "filenames", "crop_hashes")
    )
    conn.execute(
        f"CREATE TRIGGER IF NOT EXISTS forget_image AFTER DELETE ON images BEGIN {_drop_tagged('OLD.key')}; {drops} "
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


def create_tagfiles_due(conn: sqlite3.Connection) -> None:
    """``tagfiles_due`` (seq, name): images whose sidecar and extended attributes are not yet known
    to match their record. A trigger marks a record in the same statement that changes what they
    are made from (``batch.TAGFILE_FIELDS``), so a crash between a commit and the files leaves the
    mark for the next start; a set written at once (``Catalog.put_images``) is marked by one
    statement of its own, the trigger leaving its staged records alone. The writer removes a mark
    once the files match (``tagfiles.TagFiles``). Older catalogs get the table empty: the first
    writer to open one marks every image (``meta.tagfiles``)."""
    conn.execute("CREATE TABLE IF NOT EXISTS tagfiles_due (seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL)")
    conn.execute("CREATE INDEX IF NOT EXISTS tagfiles_due_name ON tagfiles_due (name)")
    batch.complete_staging(conn)
    # Named anew when it left staged records alone: a writer of an earlier version, which
    # marks its sets by the trigger, makes its own again beside it (a mark twice is harmless).
    conn.execute("DROP TRIGGER IF EXISTS tagfiles_mark")
    same = batch.same_tagfiles("o.value", "NEW.value")
    conn.execute(
        "CREATE TRIGGER IF NOT EXISTS tagfiles_marked BEFORE INSERT ON images "
        "WHEN NOT EXISTS (SELECT 1 FROM derive_staged WHERE key = NEW.key) "
        f"AND NOT EXISTS (SELECT 1 FROM images AS o WHERE o.key = NEW.key AND {same}) "
        "BEGIN INSERT INTO tagfiles_due (name) VALUES (NEW.key); END"
    )


# The meta values the export holds: the order of decisions, the
# near groups decided distinct, how each decision was made.
EXPORTED_META = ("decided", "distinct_groups", "decisions_made")


def create_export_mark(conn: sqlite3.Connection) -> None:
    """``export_mark`` (one row): ``generation``, counted up by triggers in the same statement as
    every change to what the export holds (images, collisions, near decisions, the meta values
    above), and ``exported``, the generation the export file was last written at. A writer that
    finds them equal (and the file there) has nothing to export."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS export_mark "
        "(id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL, exported INTEGER)"
    )
    conn.execute("INSERT OR IGNORE INTO export_mark (id, generation, exported) VALUES (1, 0, NULL)")
    bump = "BEGIN UPDATE export_mark SET generation = generation + 1 WHERE id = 1; END"
    keys = ", ".join(f"'{k}'" for k in EXPORTED_META)
    for table in ("images", "collisions", "near_decisions", "meta"):
        for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            when = f" WHEN {row}.key IN ({keys})" if table == "meta" else ""
            name = f"export_{table}_{op.lower()}"
            if table == "images" and op == "INSERT":
                # A set written at once counts once (``Catalog.put_images``); named anew as
                # ``tagfiles_marked`` is, for the same reason.
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
                name, when = "export_image_put", " WHEN NOT EXISTS (SELECT 1 FROM derive_staged WHERE key = NEW.key)"
            conn.execute(f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {op} ON {table}{when} {bump}")
