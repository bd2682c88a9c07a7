"""The catalog file is plain SQLite with JSON values, readable without watcherd."""

import json
import sqlite3
from pathlib import Path

import pytest
from sqlitedict import SqliteDict

from watcherd.catalog import Catalog, CatalogReader
from watcherd.catalog.vetting import damage
from watcherd.core.errors import CatalogError
from watcherd.core.records import ErrorRecord, ImageRecord, State


def _record(
    name: str = "10x10_abcd_.png",
    path: str = "thumbs/a/10x10_abcd_.png",
    *,
    state: State = State.PRESENT,
    tags: list[str] | None = None,
    low_information: bool = False,
) -> ImageRecord:
    return ImageRecord(
        name=name,
        hash="abcd",
        width=10,
        height=10,
        path=path,
        state=state,
        first_seen="2026-01-01T00:00:00+00:00",
        last_seen="2026-01-01T00:00:00+00:00",
        tags=["a", "10x10"] if tags is None else tags,
        low_information=low_information,
    )


def _put(cat: Catalog, *records: ImageRecord) -> None:
    with cat.transaction():
        for rec in records:
            cat.put_image(rec)


def test_values_are_json_readable_by_sqlitedict_and_sqlite3(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    with Catalog(db) as cat:
        _put(cat, _record())
    with SqliteDict(str(db), tablename="images", decode=json.loads, flag="r") as plain:
        assert plain["10x10_abcd_.png"]["tags"] == ["a", "10x10"]
    con = sqlite3.connect(db)
    try:
        (raw,) = con.execute("SELECT value FROM images").fetchone()
        assert isinstance(raw, str) and raw.startswith("{")  # JSON text, never a pickle
        (path,) = con.execute("SELECT json_extract(value, '$.path') FROM images").fetchone()
        assert path == "thumbs/a/10x10_abcd_.png"
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"images", "collisions", "errors", "meta"} <= tables
    finally:
        con.close()


def test_the_connection_is_fully_synchronous_and_never_wal(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as cat:
        _put(cat, _record())
        assert cat.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_transaction_that_raises_leaves_nothing_behind(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    with Catalog(db) as cat:
        _put(cat, _record("1x1_aaaa_.png", "thumbs/1x1_aaaa_.png"))
        with pytest.raises(ValueError), cat.transaction():
            cat.put_image(_record("2x2_bbbb_.png", "thumbs/2x2_bbbb_.png"))
            cat.put_error(ErrorRecord("thumbs/x.jpg", "bad", False, 1, 1, "t", "t"))
            raise ValueError("half way")
        assert cat.image("2x2_bbbb_.png") is None and cat.errors() == []
        assert cat.name_at("thumbs/2x2_bbbb_.png") is None  # the derived rows went with it
    with CatalogReader(db) as reader:
        assert [r.name for r in reader.images()] == ["1x1_aaaa_.png"]


def test_a_nested_block_that_raises_undoes_only_its_own_writes(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as cat:
        with cat.transaction():
            cat.put_image(_record("1x1_aaaa_.png", "thumbs/1x1_aaaa_.png"))
            with pytest.raises(ValueError), cat.transaction():
                cat.put_image(_record("2x2_bbbb_.png", "thumbs/2x2_bbbb_.png"))
                raise ValueError("one file failed")
            cat.put_image(_record("3x3_cccc_.png", "thumbs/3x3_cccc_.png"))
        assert sorted(r.name for r in cat.images()) == ["1x1_aaaa_.png", "3x3_cccc_.png"]
        assert cat.changes == 2


def test_writing_outside_a_transaction_is_refused(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as cat, pytest.raises(CatalogError, match="outside a transaction"):
        cat.put_image(_record())


def test_reading_an_absent_catalog_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "absent.sqlite"
    with CatalogReader(db) as cat:
        assert list(cat.images()) == []
        assert cat.image("x") is None
        assert cat.meta("scan") is None
        assert cat.counts()["present"] == 0
    assert not db.exists()


def test_path_index_follows_moves(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as cat:
        _put(cat, _record())
        assert cat.name_at("thumbs/a/10x10_abcd_.png") == "10x10_abcd_.png"
        _put(cat, _record(path="thumbs/b/10x10_abcd_.png"))
        assert cat.name_at("thumbs/a/10x10_abcd_.png") is None
        assert cat.name_at("thumbs/b/10x10_abcd_.png") == "10x10_abcd_.png"


def test_error_keys_survive_undecodable_names(tmp_path: Path) -> None:
    odd = "thumbs/caf\udce9\n.jpg"
    with Catalog(tmp_path / "c.sqlite") as cat, cat.transaction():
        cat.put_error(ErrorRecord(odd, "x", False, None, None, "t", "t"))
    with Catalog(tmp_path / "c.sqlite") as cat:
        rec = cat.error(odd)
        assert rec is not None and rec.path == odd
        with cat.transaction():
            cat.clear_error(odd)
        assert cat.errors() == []


def test_published_snapshot_is_consistent_and_replaces_the_previous_one(tmp_path: Path) -> None:
    snap = tmp_path / "shared" / "catalog.sqlite"
    snap.parent.mkdir()
    with Catalog(tmp_path / "live.sqlite") as cat:
        _put(cat, _record())
        cat.publish(snap)
        _put(cat, _record("2x2_bbbb_.png", "thumbs/2x2_bbbb_.png"))
        cat.publish(snap)
    assert damage(snap) is None
    with CatalogReader(snap) as copy:
        assert {r.name for r in copy.images()} == {"10x10_abcd_.png", "2x2_bbbb_.png"}
    assert sorted(p.name for p in snap.parent.iterdir()) == ["catalog.sqlite"]  # no temporaries


def _expected(records: list[ImageRecord]) -> tuple[dict[str, int], dict[str, int]]:
    """Counts and tag counts computed straight from the records (the source of truth)."""
    present = [r for r in records if r.present]
    tag_counts: dict[str, int] = {}
    for r in present:
        for t in set(r.tags):
            tag_counts[t] = tag_counts.get(t, 0) + 1
    counts = {
        "present": len(present),
        "missing": len(records) - len(present),
        "low_information": sum(r.low_information for r in present),
        "tags": len(tag_counts),
    }
    return counts, tag_counts


def test_derived_tables_follow_every_change_of_the_records(tmp_path: Path) -> None:
    import random

    rng = random.Random(3)
    db = tmp_path / "c.sqlite"
    cat = Catalog(db)
    records: dict[str, ImageRecord] = {}
    for _ in range(8):
        with cat.transaction():
            for _ in range(50):
                name = f"10x10_{rng.randrange(60):016x}_.png"
                rec = _record(
                    name,
                    f"thumbs/f{rng.randrange(5)}/{name}",
                    state=rng.choice([State.PRESENT, State.PRESENT, State.MISSING]),
                    tags=rng.sample(["cute", "orange", "cat", "dog", "10x10"], rng.randrange(4)),
                    low_information=rng.random() < 0.1,
                )
                rec.hash = name[6:22]
                records[name] = rec
                cat.put_image(rec)
    counts, tag_counts = _expected(list(records.values()))
    got = cat.counts()
    assert {k: got[k] for k in counts} == counts
    assert dict(cat.tag_counts()) == tag_counts
    for wanted in (["cute"], ["cute", "orange"], ["dog", "cat", "10x10"]):
        expect = {n for n, r in records.items() if r.present and set(wanted) <= set(r.tags)}
        assert {n for n, _, _ in cat.with_tags(wanted)} == expect
    cat.close()


def test_derived_tables_are_rebuilt_from_the_records_and_old_catalogs_are_named(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    cat = Catalog(db)
    _put(cat, _record(tags=["a"]))
    cat.close()
    con = sqlite3.connect(db)
    con.execute("DROP TABLE tag_totals")  # as a catalog written before the table existed
    con.commit()
    con.close()
    with CatalogReader(db) as old, pytest.raises(CatalogError, match="older watcherd"):
        old.tag_counts()
    Catalog(db).close()  # the writer opening it rebuilds every derived table
    with CatalogReader(db) as reader:
        assert reader.tag_counts() == [("a", 1)]


def test_present_in_lists_one_folder_not_its_subfolders(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite")
    for path in ("thumbs/a.png", "thumbs/x/b.png", "thumbs/x/y/c.png", "thumbs/x0/d.png", "thumbs/x-/e.png"):
        _put(cat, _record(path.rsplit("/", 1)[1], path))
    _put(cat, _record("f.png", "thumbs/x/f.png", state=State.MISSING))
    assert cat.present_in("thumbs/") == {"a.png"}
    assert cat.present_in("thumbs/x/") == {"b.png"}
    assert cat.present_in("thumbs/x/y/") == {"c.png"}
    assert cat.placed_count() == 5
    assert sorted(cat.iter_placed()) == sorted(
        (p, p.rsplit("/", 1)[1])
        for p in ("thumbs/a.png", "thumbs/x/b.png", "thumbs/x/y/c.png", "thumbs/x0/d.png", "thumbs/x-/e.png")
    )
    cat.close()


def test_odd_file_names_survive_the_derived_tables_and_the_export(tmp_path: Path) -> None:
    folder = "thumbs/caf\udce9"  # a Latin-1 folder name on a UTF-8 system, as os.fsdecode gives it
    name = "10x10_abcd_.png"
    cat = Catalog(tmp_path / "c.sqlite")
    rec = _record(name, f"{folder}/{name}", tags=["caf\udce9", "10x10"])
    rec.original_filename = "café ☕"
    _put(cat, rec)
    assert cat.name_at(f"{folder}/{name}") == name
    assert cat.present_in(folder + "/") == {name}
    assert dict(cat.tag_counts()) == {"caf\udce9": 1, "10x10": 1}
    assert [(n, p) for n, p, _ in cat.with_tags(["caf\udce9"])] == [(name, f"{folder}/{name}")]
    assert list(cat.iter_placed()) == [(f"{folder}/{name}", name)]
    (entry,) = cat.export_entries()
    exported = json.loads("{" + entry + "}")[name]
    assert entry.isascii() and exported["tags"] == ["caf\udce9", "10x10"]
    assert exported["original_filename"] == "café ☕"
    cat.close()


def test_after_commit_and_on_rollback_follow_the_transaction_and_its_savepoints(catalog: Catalog) -> None:
    seen: list[str] = []
    with catalog.transaction():
        catalog.after_commit(lambda: seen.append("outer said"))
        catalog.on_rollback(lambda: seen.append("outer taken back"))
        with pytest.raises(ValueError), catalog.transaction():  # a savepoint that rolls back
            catalog.after_commit(lambda: seen.append("inner said"))
            catalog.on_rollback(lambda: seen.append("inner taken back"))
            raise ValueError
        assert seen == ["inner taken back"]  # at once, and only the savepoint's own
        with catalog.transaction():  # a savepoint released into the outer block
            catalog.after_commit(lambda: seen.append("released said"))
        assert seen == ["inner taken back"]  # nothing is said before the outermost commit
    assert seen == ["inner taken back", "outer said", "released said"]

    seen.clear()
    with pytest.raises(KeyboardInterrupt), catalog.transaction():
        catalog.after_commit(lambda: seen.append("said"))
        with catalog.transaction():
            catalog.on_rollback(lambda: seen.append("first taken back"))
        catalog.on_rollback(lambda: seen.append("second taken back"))
        raise KeyboardInterrupt
    assert seen == ["second taken back", "first taken back"]  # newest first, nothing said

    seen.clear()
    catalog.after_commit(lambda: seen.append("now"))  # outside a transaction: at once
    catalog.on_rollback(lambda: seen.append("never"))
    with catalog.transaction():
        pass
    assert seen == ["now"]


def test_the_export_mark_counts_what_the_export_holds_and_is_no_change_itself(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as cat:
        start, exported = cat.export_generation()
        assert exported is None  # never exported
        _put(cat, _record())
        generation, _ = cat.export_generation()
        assert generation > start
        with cat.transaction():
            cat.set_meta("scan", {"finished": "now"})  # when the last scan ran: not in the export
        assert cat.export_generation()[0] == generation
        changes = cat.changes
        cat.mark_exported(generation)
        # Counted as a change, the daemon would export and publish again at every interval.
        assert cat.export_generation() == (generation, generation) and cat.changes == changes


def test_an_image_waiting_for_its_pairs_takes_new_window_hashes(tmp_path: Path) -> None:
    import random

    from watcherd.core import crops

    rng = random.Random(5)
    rec = _record("10x10_00000000000000ab_.png", "thumbs/a/10x10_00000000000000ab_.png")
    rec.hash = "00000000000000ab"
    with Catalog(tmp_path / "c.sqlite") as cat:
        for _ in range(2):  # the second write changes the windows of an image still in near_pending
            rec.crops = crops.join([rng.getrandbits(64) for _ in crops.WINDOWS])
            _put(cat, rec)
        assert cat.conn.execute("SELECT name FROM near_pending").fetchall() == [(rec.name,)]
        assert cat.image(rec.name) == rec


def test_knowing_that_no_image_lacks_window_hashes_reads_no_table(tmp_path: Path) -> None:
    """Every scan asks it: at a million images a read of ``crop_hashes`` (with its windows' text)
    would cost a second, so the usual answer comes from counts by index, in a new catalog and
    in one made before the index (the writer adds it when it opens one)."""
    from watcherd.core import crops

    db = tmp_path / "c.sqlite"
    with Catalog(db) as catalog:
        rec = _record()
        rec.crops = crops.join(list(range(1, len(crops.WINDOWS) + 1)))
        _put(catalog, rec)
        catalog.conn.execute("DROP INDEX crop_hashes_whole")  # as a catalog from before it
    with Catalog(db) as catalog:
        said: list[str] = []
        catalog.conn.set_trace_callback(said.append)
        assert catalog.lacking_windows(crops.PREFIX) == []
        catalog.conn.set_trace_callback(None)
        for sql in said:
            plan = [str(row[3]) for row in catalog.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            assert [step for step in plan if step.startswith("SCAN")] == [], (sql, plan)
