"""``find`` answered from indexes equals the per-record answer, on random catalogs, for every plan."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from watcherd.catalog import Catalog, finding
from watcherd.catalog.finding import TagQuery
from watcherd.catalog.reads import connect
from watcherd.commands import queries
from watcherd.core.config import Config
from watcherd.core.records import ImageRecord, State

TAGS = ["cats", "dogs", "orange", "2023x", "Ärger", "tag with space", "x"]
ASKED = [*TAGS, "nobody"]  # a tag no image has: the plan knows the answer is empty
NAMES = [
    "IMG_0001.JPG", "img_0002.jpg", "Garfield.png", "ÄRGER.jpg", "straße.PNG", "\u212aelvin.gif", "dsc.jpeg", None,
    "bad\udcff name.jpg",  # bytes that were not UTF-8, kept as a lone surrogate
]  # fmt: skip
PATTERNS = ["img*", "*.jpg", "*0002*", "garf*", "ärger*", "*RGER*", "strasse*", "k*", "*elvin*", "*.[jp]*", "?sc*", "*"]


def reference(db: Path, query: TagQuery) -> list[tuple[str, str, list[str]]]:
    """The per-record answer: every record's JSON read in SQL, the file name folded by Python."""
    con = connect(db)
    con.create_function("fold", 1, finding.fold, deterministic=True)
    rows = con.execute(
        "SELECT key, json_extract(value, '$.path'), json_extract(value, '$.tags'), "
        "json_extract(value, '$.original_filename') FROM images WHERE json_extract(value, '$.state') = 'present'"
    ).fetchall()
    out = []
    for name, path, tags_text, filename in rows:
        tags = [t for t in json.loads(tags_text) if isinstance(t, str)]
        size = name.split("_")[0]
        if not set(query.all_of) <= set(tags):
            continue
        if query.any_of and not set(query.any_of) & set(tags):
            continue
        if set(query.none_of) & set(tags):
            continue
        if query.untagged and any(t != size for t in tags):
            continue
        if query.filename is not None:
            as_bytes = filename.encode("utf-8", "surrogatepass") if filename is not None else None
            (ok,) = con.execute("SELECT CAST(fold(?) AS TEXT) GLOB ?", (as_bytes, query.filename.casefold())).fetchone()
            if not ok:
                continue
        out.append((name, path, json.loads(tags_text)))
    con.close()
    return sorted(out, key=lambda r: r[1])


def fill(catalog: Catalog, rng: random.Random, n: int) -> None:
    with catalog.transaction():
        for _i in range(n):
            h = f"{rng.getrandbits(64):016x}"
            size = rng.choice(["64x64", "320x240"])
            name = f"{size}_{h}_.png"
            folder = rng.choice(["cats", "dogs", "cats/orange", "", "2023", "Ärger"])
            tags = [*rng.sample(TAGS, rng.randint(0, 3)), size]
            catalog.put_image(
                ImageRecord(
                    name=name,
                    hash=h,
                    width=64,
                    height=64,
                    path=f"thumbs/{folder + '/' if folder else ''}{name}",
                    state=State.PRESENT if rng.random() < 0.8 else State.MISSING,
                    first_seen="",
                    last_seen="",
                    tags=tags,
                    original_filename=rng.choice(NAMES),
                )
            )


def random_query(rng: random.Random) -> TagQuery:
    while True:
        query = TagQuery(
            tuple(rng.sample(ASKED, rng.choice([0, 0, 1, 1, 2]))),
            tuple(rng.sample(ASKED, rng.choice([0, 0, 1, 2, 3]))),
            tuple(rng.sample(ASKED, rng.choice([0, 0, 0, 1, 2]))),
            rng.random() < 0.15,
            rng.choice([None, None, *PATTERNS]),
        )
        if not query.empty:
            return query


def test_find_equals_the_per_record_answer_for_every_plan(
    cfg: Config, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(finding, "COUNT_CAP", 5)  # small sets counted as large too: every plan is taken
    rng = random.Random(21)
    plans: set[str] = set()
    for _ in range(4):
        fill(catalog, rng, rng.randint(20, 60))
        # Rewrite some records (moved, tags changed, gone, forgotten): the triggers keep up.
        with catalog.transaction():
            for rec in list(catalog.images())[:: rng.randint(3, 6)]:
                rec.tags = [*rng.sample(TAGS, 1), rec.name.split("_")[0]]
                rec.path = f"thumbs/moved/{rec.name}"
                rec.original_filename = rng.choice(NAMES)
                catalog.put_image(rec)
            for rec in list(catalog.images())[:: rng.randint(7, 11)]:
                catalog.delete_image(rec.name)
        # Rows another writer left without Python's fold: folded here when matched.
        catalog.conn.execute("UPDATE filenames SET folded = NULL WHERE id % 3 = 0")
        for _ in range(150):
            query = random_query(rng)
            want = reference(cfg.database_path, query)
            assert list(catalog.find(query)) == want, query
            limit, offset = rng.choice([None, 0, 1, 3, 100]), rng.choice([0, 0, 1, 5])
            end = None if limit is None else offset + limit
            assert list(catalog.find(query, limit=limit, offset=offset)) == want[offset:end], (query, limit, offset)
            statement = finding.plan(catalog, query, limit, offset)
            plans.add("none" if statement is None else statement[0].split(" WHERE ")[0].split(" FROM ", 1)[1][:40])
    kinds = {p.split()[0] for p in plans}
    assert {"none", "tagged", "listing", "(SELECT"} <= kinds, plans
    assert any("listing_untagged" in p for p in plans) and any("listing_path" in p for p in plans), plans
    assert any("DISTINCT" in p for p in plans) and any("filename_grams" in p or "filenames" in p for p in plans), plans


def test_walks_an_index_in_path_order_without_sorting(catalog: Catalog) -> None:
    fill(catalog, random.Random(1), 30)
    conn = catalog.conn
    for query in (TagQuery(all_of=("cats",)), TagQuery(none_of=("cats",)), TagQuery(untagged=True)):
        statement = finding.plan(catalog, query, 100, 0)
        assert statement is not None
        steps = " | ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + statement[0], statement[1]))
        walked = steps.replace("SCAN l USING INDEX", "").replace("SCAN json_each", "")  # the index, the tag list
        assert "TEMP B-TREE" not in steps and "SCAN" not in walked, steps


def test_file_names_come_from_their_indexes(catalog: Catalog) -> None:
    fill(catalog, random.Random(2), 30)
    catalog.fold_function()
    conn = catalog.conn
    prefix, infix = "INDEX filenames_fname (fname>? AND fname<?)", "SCAN g VIRTUAL TABLE INDEX 0:G"
    for pattern, index in (("img*", prefix), ("*0002*", infix)):
        statement = finding.plan(catalog, TagQuery(filename=pattern), None, 0)
        assert statement is not None
        steps = " | ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + statement[0], statement[1]))
        assert index in steps, steps


def test_globs_literal_parts() -> None:
    assert finding.literal_prefix("abc*d") == "abc" and finding.literal_prefix("*x") == ""
    assert finding.longest_literal("*ab[xyz]cde?f") == 3
    assert finding.longest_literal("[]abcd]") == 0 and finding.longest_literal("ab[c") == 4


def test_limit_and_offset_are_checked(catalog: Catalog) -> None:
    from watcherd.core.errors import UsageError

    with pytest.raises(UsageError, match="must not be negative"):
        queries.find(catalog, TagQuery(all_of=("x",)), limit=-1)


def test_without_fts5_infix_globs_walk_the_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from watcherd.catalog import schema

    monkeypatch.setattr(schema, "has_trigrams", lambda conn: False)  # an SQLite built without FTS5
    catalog = Catalog(tmp_path / "c.sqlite")
    try:
        fill(catalog, random.Random(4), 40)
        assert catalog.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'filename_grams'").fetchone() is None
        assert not schema.needs_derived(catalog.conn)  # nothing missing: opened again, not derived again
        for pattern in ("*0002*", "*RGER*", "img*"):
            query = TagQuery(filename=pattern)
            assert list(catalog.find(query)) == reference(tmp_path / "c.sqlite", query)
    finally:
        catalog.close()
