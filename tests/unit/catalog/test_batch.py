"""Records written as a set (``put_images``) leave every derived table as the same records written one at a time."""

from __future__ import annotations

import copy
import random
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from watcherd.catalog import Catalog, schema
from watcherd.core import crops
from watcherd.core.errors import CatalogError
from watcherd.core.records import ImageRecord, State

TAGS = ["cats", "dogs", "orange", "Ärger", "tag with space", "10x10"]
FILENAMES = ["IMG_0001.JPG", "straße.PNG", "\u212aelvin.gif", None, "bad\udcff name.jpg"]
FOLDERS = ["thumbs/a/", "thumbs/b/", "thumbs/a/c/", "thumbs/é/"]
# Every derived table and mark, as rows compared without order; ``hashes`` and ``crop_hashes``
# without their row ids (a set's new rows may number otherwise), the logs by what they log.
TABLES = {
    "listing": "SELECT * FROM listing",
    "tagged": "SELECT * FROM tagged",
    "tag_totals": "SELECT * FROM tag_totals WHERE n > 0",
    "placed": "SELECT * FROM placed",
    "contents": "SELECT * FROM contents",
    "filenames": "SELECT name, fname, odd, folded FROM filenames",
    "hashes": "SELECT name, hash, path, present, low FROM hashes",
    "crop_hashes": "SELECT name, slot, hash, path, present, low, asks FROM crop_hashes",
    "near_pending": "SELECT * FROM near_pending",
    "tagfiles_due": "SELECT name FROM tagfiles_due",
    "near_log": "SELECT hash, present, low FROM near_log",
    "crop_log": "SELECT hash, present, low FROM crop_log",
    "images": "SELECT key, value FROM images",
    "derive_staged": "SELECT * FROM derive_staged",
}
FRESH = ("listing", "tagged", "tag_totals", "placed", "contents", "filenames", "hashes", "crop_hashes")


def _changed(rng: random.Random, name: str, rec: ImageRecord | None) -> ImageRecord:
    """A new record for ``name``, or ``rec`` changed as a move, a copy, a tag edit or a re-decode would."""
    if rec is None or rng.random() < 0.2:
        rec = ImageRecord(
            name=name, hash=name[6:22], width=10, height=10, path=f"{rng.choice(FOLDERS)}{name}",
            state=State.PRESENT, first_seen="2026-01-01T00:00:00+00:00", last_seen="2026-01-01T00:00:00+00:00",
        )  # fmt: skip
    rec = copy.deepcopy(rec)
    if rng.random() < 0.5:
        rec.place_at(f"{rng.choice(FOLDERS)}{name}", keep_others=rng.random() < 0.3)
    if rng.random() < 0.15:
        rec.state = State.MISSING
    rec.tags = rng.sample(TAGS, rng.randrange(4)) + (["cats"] if rng.random() < 0.1 else [])  # a tag twice, at times
    rec.low_information = rng.random() < 0.1
    rec.original_filename = rng.choice(FILENAMES)
    rec.sha256 = rng.choice([None, f"{rng.getrandbits(256):064x}", rec.sha256])
    rec.hash = rng.choice(
        [rec.hash, f"{rng.getrandbits(64):016x}", f"{rng.getrandbits(64):016X}", "not hex", "\uff46" * 16]
    )
    rec.moving_from = rng.choice([None, "", "source/x.jpg"])
    windows = [rng.getrandbits(64) for _ in crops.WINDOWS]
    text = crops.join(windows)
    at = rng.randrange(len("v1:"), len("v1:") + 16 * crops.HEX)
    rec.crops = rng.choice(
        [
            "",
            rec.crops,
            text,
            "v1:broken",
            text[:at] + rng.choice("gA ") + text[at + 1 :],  # a digit that is not one
            text[:-4] + "!!!!",  # its tail broken: SQL reads only the digits, so Python must too
            text[:at] + text[at + 1 :],  # one short
        ]
    )
    return rec


def _rows(db: Path, tables: tuple[str, ...] | None = None) -> dict[str, Counter[tuple[object, ...]]]:
    con = sqlite3.connect(db)
    con.text_factory = bytes  # odd file names, byte for byte
    try:
        return {t: Counter(con.execute(sql).fetchall()) for t, sql in TABLES.items() if tables is None or t in tables}
    finally:
        con.close()


def test_a_set_of_records_derives_what_one_at_a_time_derives(tmp_path: Path) -> None:
    rng = random.Random(21)
    one, many = Catalog(tmp_path / "one.sqlite"), Catalog(tmp_path / "many.sqlite")
    records: dict[str, ImageRecord] = {}
    try:
        for _ in range(12):
            batch = []
            for i in rng.sample(range(50), rng.randrange(1, 40)):
                name = f"10x10_{i:016x}_.png"
                records[name] = _changed(rng, name, records.get(name))
                batch.append(records[name])
            with one.transaction():
                for rec in batch:
                    one.put_image(rec)
            with many.transaction():
                many.put_images(batch)
            assert one.changes == many.changes
    finally:
        one.close()
        many.close()
    written = _rows(tmp_path / "many.sqlite")
    assert written == _rows(tmp_path / "one.sqlite")
    assert not written["derive_staged"]  # staging holds nothing once a set is written
    assert sum(written["crop_hashes"].values()) and sum(written["filenames"].values())  # not an empty comparison
    con = sqlite3.connect(tmp_path / "many.sqlite")
    with con:
        schema.create_derived(con)  # a fresh derivation from the records agrees too
    con.close()
    Catalog(tmp_path / "many.sqlite").close()  # which folds the odd file names as the writer opens it
    assert _rows(tmp_path / "many.sqlite", FRESH) == {t: written[t] for t in FRESH}


def test_a_moved_record_keeps_its_hash_row_and_logs_nothing(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as catalog:
        rec = _changed(random.Random(1), "10x10_00000000000000ab_.png", None)
        rec.hash, rec.state = "00000000000000ab", State.PRESENT
        with catalog.transaction():
            catalog.put_image(rec)
        before = catalog.conn.execute("SELECT rowid FROM hashes").fetchall()
        logged = catalog.conn.execute("SELECT count(*) FROM near_log").fetchone()
        moved = copy.deepcopy(rec)
        moved.place_at(f"thumbs/elsewhere/{rec.name}", keep_others=False)
        with catalog.transaction():
            catalog.put_images([rec, moved])  # a name given twice: its last record is written
        assert catalog.conn.execute("SELECT rowid FROM hashes").fetchall() == before
        assert catalog.conn.execute("SELECT count(*) FROM near_log").fetchone() == logged
        assert catalog.conn.execute("SELECT path FROM listing").fetchall() == [(moved.path,)]


def test_a_set_that_fails_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from watcherd.catalog import batch

    with Catalog(tmp_path / "c.sqlite") as catalog:
        recs = [_changed(random.Random(i), f"10x10_{i:016x}_.png", None) for i in range(5)]
        monkeypatch.setattr(batch, "STATEMENTS", (*batch.STATEMENTS, "SELECT no_such_function()"))
        with pytest.raises(CatalogError), catalog.transaction():
            catalog.put_images(recs)
        counts = [catalog.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("images", "listing")]
        assert counts == [0, 0]
        assert catalog.conn.execute("SELECT count(*) FROM derive_staged").fetchone()[0] == 0


def test_each_statement_is_driven_by_the_staged_records(tmp_path: Path) -> None:
    """A set of 100 records must not cost a walk of a million rows: no statement scans a table but the staging."""
    from watcherd.catalog import batch

    with Catalog(tmp_path / "c.sqlite") as catalog:
        for sql in batch.STATEMENTS:
            plan = [str(row[3]) for row in catalog.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            scans = [
                s for s in plan if s.startswith("SCAN") and s.split(" USING ")[0] != "SCAN b" and "VIRTUAL" not in s
            ]
            assert scans == [], (sql, plan)


def test_a_catalog_derived_before_sets_were_staged_is_brought_up_in_place(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    rng = random.Random(8)
    recs = [_changed(rng, f"10x10_{i:016x}_.png", None) for i in range(6)]
    with Catalog(db) as catalog, catalog.transaction():
        for rec in recs:
            catalog.put_image(rec)
    con = sqlite3.connect(db)
    with con:  # as an older watcherd left it: no staging, the trigger unguarded
        con.execute("DROP TABLE derive_staged")
        (sql,) = con.execute("SELECT sql FROM sqlite_master WHERE name = 'derive_image'").fetchone()
        con.execute("DROP TRIGGER derive_image")
        con.execute(sql.replace(" WHEN NOT EXISTS (SELECT 1 FROM derive_staged WHERE key = NEW.key)", ""))
    (epoch,) = con.execute("SELECT value FROM near_meta WHERE key = 'epoch'").fetchone()
    con.close()
    kept = tuple(t for t in TABLES if t != "derive_staged")
    before = _rows(db, kept)
    with Catalog(db) as catalog:
        assert catalog.conn.execute("SELECT value FROM near_meta WHERE key = 'epoch'").fetchone() == (epoch,)
        assert _rows(db, kept) == before  # nothing derived again
        moved = [copy.deepcopy(r) for r in recs]
        for rec in moved:
            rec.place_at(f"thumbs/moved/{rec.name}", keep_others=False)
        catalog.put_images(moved)
    with Catalog(tmp_path / "one.sqlite") as one, one.transaction():
        for rec in [*recs, *moved]:
            one.put_image(rec)
    assert _rows(db, FRESH) == _rows(tmp_path / "one.sqlite", FRESH)


def test_a_catalog_from_before_set_marks_is_brought_in_step_when_the_writer_opens_it(tmp_path: Path) -> None:
    """A catalog whose tag-file mark and export count were row triggers for every record (and
    whose staging had no ``due``): the writer renames them to leave staged records alone, adds
    the column, and a set is then marked and counted once per record, as before."""
    db = tmp_path / "c.sqlite"
    Catalog(db).close()
    con = sqlite3.connect(db)
    with con:
        con.execute("DROP TRIGGER tagfiles_marked")
        con.execute("DROP TRIGGER export_image_put")
        con.execute(
            "CREATE TRIGGER tagfiles_mark BEFORE INSERT ON images WHEN NOT EXISTS (SELECT 1 FROM images AS o "
            "WHERE o.key = NEW.key AND o.value IS NEW.value) "
            "BEGIN INSERT INTO tagfiles_due (name) VALUES (NEW.key); END"
        )
        con.execute(
            "CREATE TRIGGER export_images_insert AFTER INSERT ON images "
            "BEGIN UPDATE export_mark SET generation = generation + 1 WHERE id = 1; END"
        )
        con.execute("ALTER TABLE derive_staged DROP COLUMN due")
    con.close()
    recs = [_changed(random.Random(i), f"10x10_{i:016x}_.png", None) for i in range(5)]
    with Catalog(db) as catalog:
        triggers = {r[0] for r in catalog.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert {"tagfiles_marked", "export_image_put"} <= triggers
        assert not {"tagfiles_mark", "export_images_insert"} & triggers
        (before,) = catalog.conn.execute("SELECT generation FROM export_mark").fetchone()
        with catalog.transaction():
            catalog.put_images(recs)
        marked = Counter(r[0] for r in catalog.conn.execute("SELECT name FROM tagfiles_due"))
        assert marked == Counter(r.name for r in recs)
        (after,) = catalog.conn.execute("SELECT generation FROM export_mark").fetchone()
        assert after > before
        with catalog.transaction():
            catalog.put_images(recs)  # the same records again: nothing to mark
        assert Counter(r[0] for r in catalog.conn.execute("SELECT name FROM tagfiles_due")) == marked
