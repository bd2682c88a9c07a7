"""A catalog written by watcherd 0.1.0 (tests/data/v0.1-library) opens unchanged."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from sqlitedict import SqliteDict

from watcherd.catalog import Catalog, CatalogReader
from watcherd.catalog.reads import encode
from watcherd.core.collisionrecords import CollisionKind, CollisionRecord
from watcherd.core.records import ErrorRecord, ImageRecord, State

V01 = Path(__file__).resolve().parents[2] / "data" / "v0.1-library"


def _raw(db: Path, table: str) -> dict[str, Any]:
    con = sqlite3.connect(db)
    try:
        return {k: json.loads(v) for k, v in con.execute(f'SELECT key, value FROM "{table}"')}
    finally:
        con.close()


def test_every_record_of_0_1_reads_back_to_the_same_json() -> None:
    db = V01 / ".watcherd" / "catalog.sqlite"
    images, collisions, errors = _raw(db, "images"), _raw(db, "collisions"), _raw(db, "errors")
    assert len(images) == 5 and len(collisions) == 1 and len(errors) == 1
    for key, value in images.items():
        rec = ImageRecord.from_json(value)
        assert rec.name == key and rec.to_json() == value
        assert encode(rec.to_json()) == encode(value)
    for value in collisions.values():
        assert CollisionRecord.from_json(value).to_json() == value
    for value in errors.values():
        assert ErrorRecord.from_json(value).to_json() == value


def test_a_0_1_catalog_reads_as_typed_records(tmp_path: Path) -> None:
    db = V01 / ".watcherd" / "catalog.sqlite"
    with CatalogReader(db) as cat:
        by_name = {r.name: r for r in cat.images()}
        dragged = by_name["320x240_00000011ffefefff_.png"]
        assert dragged.path == "thumbs/orange/320x240_00000011ffefefff_.png"
        assert dragged.tags == ["cats", "320x240"]  # "orange" was untagged
        assert dragged.state is State.PRESENT and dragged.original == "originals/320x240_00000011ffefefff_.jpg"
        assert by_name["200x300_000006e70f0fffff_.png"].state is State.MISSING
        assert by_name["50x40_0000000000000000_.png"].low_information
        source = by_name["100x100_000000e1fafbfbff_.png"]
        assert source.source and source.original == "source/s.jpg" and source.source_stat is not None
        (col,) = cat.collisions()
        assert col.kind is CollisionKind.EXACT and col.newcomer.filename == "again.jpg"
        (err,) = cat.errors()
        assert err.path == "thumbs/bad.jpg" and not err.transient
        assert cat.counts() == {
            "present": 4,
            "missing": 1,
            "low_information": 1,
            "tags": 6,
            "collisions": 1,
            "errors": 1,
        }


def test_the_writer_opens_a_0_1_catalog_and_sqlitedict_still_reads_it(tmp_path: Path) -> None:
    db = tmp_path / "catalog.sqlite"
    shutil.copy(V01 / ".watcherd" / "catalog.sqlite", db)
    before = _raw(db, "images")
    with Catalog(db) as cat:
        rec = cat.image("240x160_00001038beffefef_.png")
        assert rec is not None
        rec.tags.append("seen")
        with cat.transaction():
            cat.put_image(rec)
    after = _raw(db, "images")
    assert after["240x160_00001038beffefef_.png"] == {**before["240x160_00001038beffefef_.png"], "tags": rec.tags}
    assert {k: v for k, v in after.items() if k != rec.name} == {k: v for k, v in before.items() if k != rec.name}
    with SqliteDict(str(db), tablename="images", decode=json.loads, flag="r") as plain:
        assert plain[rec.name]["tags"] == rec.tags
        assert sorted(plain.keys()) == sorted(before)
