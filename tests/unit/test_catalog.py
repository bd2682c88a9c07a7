"""The catalog file is plain SQLite with JSON values, readable without watcherd."""

import json
import sqlite3
from pathlib import Path

import pytest
from sqlitedict import SqliteDict

from watcherd.catalog import Catalog, Record
from watcherd.errors import CatalogError


def _record(name: str = "10x10_abcd_.png", path: str = "thumbs/a/10x10_abcd_.png") -> dict[str, object]:
    return {"name": name, "path": path, "tags": ["a", "10x10"], "state": "present", "hash": "abcd"}


def test_values_are_json_readable_by_sqlitedict_and_sqlite3(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    with Catalog(db) as cat:
        cat.put_image(_record())
        cat.commit()
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


def test_connections_are_fully_synchronous(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as cat:
        conns = {id(db.conn) for db in cat._tables.values()}
        assert len(conns) == 1  # one connection, one transaction for all tables
        for db in cat._tables.values():
            assert db.conn.select_one("PRAGMA synchronous")[0] == 2  # FULL


def test_readonly_on_absent_catalog_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "absent.sqlite"
    with Catalog(db, readonly=True) as cat:
        assert list(cat.images()) == []
        assert cat.image("x") is None
        assert cat.meta("scan") is None
    assert not db.exists()


def test_path_index_follows_moves(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.put_image(_record())
        assert cat.name_at("thumbs/a/10x10_abcd_.png") == "10x10_abcd_.png"
        cat.put_image(_record(path="thumbs/b/10x10_abcd_.png"))
        assert cat.name_at("thumbs/a/10x10_abcd_.png") is None
        assert cat.name_at("thumbs/b/10x10_abcd_.png") == "10x10_abcd_.png"


def test_error_keys_survive_undecodable_names(tmp_path: Path) -> None:
    odd = "thumbs/caf\udce9\n.jpg"
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.put_error({"path": odd, "reason": "x"})
        cat.commit()
    with Catalog(tmp_path / "c.sqlite") as cat:
        rec = cat.error(odd)
        assert rec is not None and rec["path"] == odd
        cat.clear_error(odd)
        cat.commit()
        assert list(cat.errors()) == []


def test_journal_is_never_wal(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.put_image(_record())
        cat.commit()
        assert cat._tables["images"].conn.select_one("PRAGMA journal_mode")[0] == "delete"


def test_published_snapshot_is_consistent_and_replaces_the_previous_one(tmp_path: Path) -> None:
    snap = tmp_path / "shared" / "catalog.sqlite"
    snap.parent.mkdir()
    with Catalog(tmp_path / "live.sqlite") as cat:
        cat.put_image(_record())
        cat.commit()
        cat.publish(snap)
        cat.put_image(_record("2x2_bbbb_.png", "thumbs/2x2_bbbb_.png"))
        cat.commit()
        cat.publish(snap)
    assert Catalog.damage(snap) is None
    with Catalog(snap, readonly=True) as copy:
        assert {r["name"] for r in copy.images()} == {"10x10_abcd_.png", "2x2_bbbb_.png"}
    assert sorted(p.name for p in snap.parent.iterdir()) == ["catalog.sqlite"]  # no temporaries


def _expected(records: list[Record]) -> tuple[dict[str, int], dict[str, int]]:
    """Counts and tag counts computed straight from the records (the source of truth)."""
    present = [r for r in records if r["state"] == "present"]
    tag_counts: dict[str, int] = {}
    for r in present:
        for t in set(r["tags"]):
            tag_counts[t] = tag_counts.get(t, 0) + 1
    counts = {
        "present": len(present),
        "missing": len(records) - len(present),
        "low_information": sum(bool(r.get("low_information")) for r in present),
        "tags": len(tag_counts),
    }
    return counts, tag_counts


def test_derived_tables_follow_every_change_of_the_records(tmp_path: Path) -> None:
    import random

    rng = random.Random(3)
    db = tmp_path / "c.sqlite"
    cat = Catalog(db)
    records: dict[str, Record] = {}
    for step in range(400):
        name = f"10x10_{rng.randrange(60):016x}_.png"
        rec = {
            "name": name,
            "hash": name[6:22],
            "path": f"thumbs/f{rng.randrange(5)}/{name}",
            "state": rng.choice(["present", "present", "missing"]),
            "tags": rng.sample(["cute", "orange", "cat", "dog", "10x10"], rng.randrange(4)),
            "low_information": rng.random() < 0.1,
        }
        records[name] = rec
        cat.put_image(rec)
        if step % 50 == 0:
            cat.commit()
    cat.commit()
    counts, tag_counts = _expected(list(records.values()))
    got = cat.counts()
    assert {k: got[k] for k in counts} == counts
    assert dict(cat.tag_counts()) == tag_counts
    for wanted in (["cute"], ["cute", "orange"], ["dog", "cat", "10x10"]):
        expect = {n for n, r in records.items() if r["state"] == "present" and set(wanted) <= set(r["tags"])}
        assert {n for n, _, _ in cat.with_tags(wanted)} == expect
    cat.close()


def test_derived_tables_are_rebuilt_from_the_records_and_old_catalogs_are_named(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    cat = Catalog(db)
    cat.put_image({**_record(), "state": "present", "tags": ["a"]})
    cat.commit()
    cat.close()
    con = sqlite3.connect(db)
    con.execute("DROP TABLE tag_totals")  # as a catalog written before the table existed
    con.commit()
    con.close()
    with pytest.raises(CatalogError, match="older watcherd"):
        Catalog(db, readonly=True).tag_counts()
    Catalog(db).close()  # the writer opening it rebuilds every derived table
    assert Catalog(db, readonly=True).tag_counts() == [("a", 1)]


def test_present_in_lists_one_folder_not_its_subfolders(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite")
    for path in ("thumbs/a.png", "thumbs/x/b.png", "thumbs/x/y/c.png", "thumbs/x0/d.png", "thumbs/x-/e.png"):
        name = path.rsplit("/", 1)[1]
        cat.put_image({**_record(name, path), "name": name})
    cat.put_image({**_record("f.png", "thumbs/x/f.png"), "name": "f.png", "state": "missing"})
    cat.commit()
    assert cat.present_in("thumbs/") == {"a.png"}
    assert cat.present_in("thumbs/x/") == {"b.png"}
    assert cat.present_in("thumbs/x/y/") == {"c.png"}
    assert cat.present_count() == 5
    assert sorted(cat.iter_present()) == sorted(
        (p, p.rsplit("/", 1)[1])
        for p in ("thumbs/a.png", "thumbs/x/b.png", "thumbs/x/y/c.png", "thumbs/x0/d.png", "thumbs/x-/e.png")
    )
    cat.close()


def test_odd_file_names_survive_the_derived_tables_and_the_export(tmp_path: Path) -> None:
    folder = "thumbs/caf\udce9"  # a Latin-1 folder name on a UTF-8 system, as os.fsdecode gives it
    name = "10x10_abcd_.png"
    cat = Catalog(tmp_path / "c.sqlite")
    rec = {**_record(name, f"{folder}/{name}"), "tags": ["caf\udce9", "10x10"], "original_filename": "café ☕"}
    cat.put_image(rec)
    cat.commit()
    assert cat.name_at(f"{folder}/{name}") == name
    assert cat.present_in(folder + "/") == {name}
    assert dict(cat.tag_counts()) == {"caf\udce9": 1, "10x10": 1}
    assert [(n, p) for n, p, _ in cat.with_tags(["caf\udce9"])] == [(name, f"{folder}/{name}")]
    assert list(cat.iter_present()) == [(f"{folder}/{name}", name)]
    (entry,) = cat.export_entries()
    exported = json.loads("{" + entry + "}")[name]
    assert entry.isascii() and exported["tags"] == ["caf\udce9", "10x10"]
    assert exported["original_filename"] == "café ☕"
    cat.close()
