"""The persisted near-duplicate index answers exactly the brute-force answer, stale or not."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import made_up_record
from watcherd.catalog import Catalog, schema
from watcherd.catalog.hashes import NearLogReader, hash_rows, load_hashes
from watcherd.commands import duplicates, search
from watcherd.core.config import Config
from watcherd.core.errors import IndexFileError, UsageError
from watcherd.core.records import ImageRecord, State
from watcherd.near import persisted, reader
from watcherd.near.builder import Maintainer, build
from watcherd.near.groups import pair_round
from watcherd.near.index import MAX_RADIUS, NearIndex, brute_force, groups
from watcherd.near.persisted import NearStore, Tables, index_path


def _random(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    near = base[: n // 5].copy()
    for k in range(near.size):
        for b in rng.choice(64, size=rng.integers(0, 12), replace=False):
            near[k] ^= np.uint64(1) << np.uint64(int(b))
    return np.concatenate([base, near])


def _crowded(n: int, seed: int) -> np.ndarray:
    """Hashes whose chunks take only a handful of values: long runs, many repeats."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**16, size=(4, 3), dtype=np.uint64)
    picks = rng.integers(0, 3, size=(n, 4))
    out = np.zeros(n, dtype=np.uint64)
    for c in range(4):
        out |= values[c][picks[:, c]] << np.uint64(16 * c)
    flips = rng.integers(0, 64, size=n).astype(np.uint64)
    out[: n // 3] ^= np.uint64(1) << flips[: n // 3]
    return out


def _answer(tables: Tables, q: int, r: int) -> list[tuple[int, int]]:
    pos, dist = tables.search(q, r)
    return sorted(zip(pos.tolist(), dist.tolist(), strict=True), key=lambda t: (t[1], t[0]))


@pytest.mark.parametrize("make", [_random, _crowded])
def test_written_and_mapped_tables_equal_brute_force_at_every_radius(make: object, tmp_path: Path) -> None:
    hashes = make(2000, 7)  # type: ignore[operator]
    built = Tables.build("e", 0, np.arange(hashes.size, dtype=np.int64), hashes, np.zeros(hashes.size, bool))
    built.write(tmp_path / "index.bin")
    mapped = Tables.load(tmp_path / "index.bin")
    assert isinstance(mapped.sorted, np.memmap) or isinstance(mapped.sorted.base, np.memmap)
    rng = np.random.default_rng(3)
    qs = [int(hashes[i]) for i in rng.integers(0, hashes.size, 12)] + [int(x) for x in rng.integers(0, 2**63, 4)]
    for r in range(MAX_RADIUS + 1):
        for q in qs:
            want = [(h.index, h.distance) for h in brute_force(hashes, q, r)]
            assert _answer(built, q, r) == want
            assert _answer(mapped, q, r) == want
    assert [p.name for p in tmp_path.iterdir()] == ["index.bin"]  # no temporary left behind


def test_empty_and_cut_short_files(tmp_path: Path) -> None:
    empty = Tables.build("e", 0, np.empty(0, np.int64), np.empty(0, np.uint64), np.empty(0, bool))
    empty.write(tmp_path / "index.bin")
    assert _answer(Tables.load(tmp_path / "index.bin"), 5, 16) == []
    full = Tables.build("e", 0, np.arange(100, dtype=np.int64), _random(100, 1), np.zeros(120, bool))
    full.write(tmp_path / "index.bin")
    data = (tmp_path / "index.bin").read_bytes()
    (tmp_path / "index.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexFileError, match="cut short"):
        Tables.load(tmp_path / "index.bin")


def _record(h: int, i: int, *, low: bool = False) -> ImageRecord:
    return made_up_record(h, f"t{i % 3}", sha256="", tags=[f"t{i % 3}", "64x64"], low_information=low)


def _truth(cfg: Config, q: int, r: int) -> list[tuple[int, int]]:
    rowids, hashes, _ = load_hashes(cfg.database_path)
    return [(int(rowids[h.index]), h.distance) for h in brute_force(hashes, q, r)]


def _names(cfg: Config) -> dict[int, tuple[str, str]]:
    rowids, _, _ = load_hashes(cfg.database_path)
    return hash_rows(cfg.database_path, [int(r) for r in rowids])


def _check(store: NearStore, cfg: Config, qs: list[int], *, pure: bool = True) -> None:
    """NearStore, and the numpy-free reader of the published file (unless it cannot answer
    alone: ``pure`` False), both give exactly the brute-force answer at every radius."""
    names = _names(cfg)
    log = NearLogReader(cfg.database_path)
    try:
        for r in range(MAX_RADIUS + 1):
            for q in qs:
                want = _truth(cfg, q, r)
                got = [(m.row, m.distance) for m in store.query(q, r)]
                assert sorted(got, key=lambda t: (t[1], t[0])) == got
                assert got == want, (q, r)
                read = reader.similar(index_path(cfg.state_dir), log, q, r)
                if pure:
                    assert read == [(*names[row], d) for row, d in want], (q, r)
                else:
                    assert read is None
    finally:
        log.close()


def test_catalog_changes_reach_queries_through_the_log(cfg: Config, catalog: Catalog) -> None:
    hashes = [int(h) for h in _random(300, 11)]
    with catalog.transaction():
        for i, h in enumerate(hashes):
            catalog.put_image(_record(h, i, low=i % 17 == 0))
    store = NearStore.open(index_path(cfg.state_dir), cfg.database_path)
    qs = [hashes[0], hashes[5] ^ 0b1011, hashes[299], 12345]
    _check(store, cfg, qs)
    assert store.rebuilds == 1 and index_path(cfg.state_dir).exists()
    # Adds, a missing image, a rename (moved to another folder), a forget: all through the log.
    with catalog.transaction():
        for i in range(5):
            catalog.put_image(_record(hashes[0] ^ (1 << i), 1000 + i))
        gone = catalog.image(f"64x64_{hashes[5]:016x}_.png")
        assert gone is not None
        catalog.put_image(dataclasses.replace(gone, state=State.MISSING))
        moved = catalog.image(f"64x64_{hashes[299]:016x}_.png")
        assert moved is not None
        catalog.put_image(dataclasses.replace(moved, path="thumbs/elsewhere/" + moved.name))
        catalog.delete_image(f"64x64_{hashes[1]:016x}_.png")
    _check(store, cfg, [*qs, hashes[1]])
    assert store.rebuilds == 1  # answered from the index plus the delta
    hits = search.similar(cfg, f"{hashes[299]:016x}", 0)
    assert [h["path"] for h in hits] == [f"thumbs/elsewhere/64x64_{hashes[299]:016x}_.png"]
    assert search.similar(cfg, f"{hashes[5]:016x}", 0) == []
    store.close()


def test_the_writer_folds_the_log_and_open_stores_follow(cfg: Config, catalog: Catalog) -> None:
    hashes = [int(h) for h in _random(200, 12)]
    with catalog.transaction():
        for i, h in enumerate(hashes[:100]):
            catalog.put_image(_record(h, i))
    keeper = Maintainer(cfg.state_dir, cfg.database_path, quiet=10.0, most=1000, background=False)
    assert keeper.tick(catalog, now=0.0)  # no index yet: built at once
    store = NearStore.open(index_path(cfg.state_dir), cfg.database_path)
    _check(store, cfg, hashes[:3])
    with catalog.transaction():
        for i, h in enumerate(hashes[100:]):
            catalog.put_image(_record(h, 100 + i))
    assert not keeper.tick(catalog, now=1.0)  # changed just now: wait for quiet
    assert not keeper.tick(catalog, now=5.0)
    assert keeper.tick(catalog, now=12.0)  # quiet for 10 s: folded and the log trimmed
    assert catalog._query("SELECT count(*) FROM near_log") == [(0,)]
    _check(store, cfg, hashes[150:153])  # the open store maps the new index
    assert store.rebuilds == 0
    with catalog.transaction():
        for i in range(3):
            catalog.put_image(_record(hashes[0] ^ (3 << i), 500 + i))
    keeper.most = 2
    assert keeper.tick(catalog, now=12.5)  # a long log is folded without waiting
    _check(store, cfg, [hashes[0]])
    assert store.rebuilds == 0
    store.close()


def test_a_rederived_catalog_voids_the_index(cfg: Config, catalog: Catalog) -> None:
    hashes = [int(h) for h in _random(50, 13)]
    with catalog.transaction():
        for i, h in enumerate(hashes):
            catalog.put_image(_record(h, i))
    with NearStore.open(index_path(cfg.state_dir), cfg.database_path) as store:
        _check(store, cfg, hashes[:2])
    with catalog.transaction():
        schema.create_derived(catalog.conn)  # row ids are new: the old index means nothing
    with NearStore.open(index_path(cfg.state_dir), cfg.database_path) as store:
        _check(store, cfg, hashes[:2])
        assert store.rebuilds == 1


def test_a_long_delta_is_folded_by_a_reader(cfg: Config, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = [int(h) for h in _random(60, 14)]
    with catalog.transaction():
        for i, h in enumerate(hashes[:30]):
            catalog.put_image(_record(h, i))
    with NearStore.open(index_path(cfg.state_dir), cfg.database_path) as store:
        _check(store, cfg, hashes[:1])
    with catalog.transaction():
        for i, h in enumerate(hashes[30:]):
            catalog.put_image(_record(h, 30 + i))
    monkeypatch.setattr(persisted, "READER_REBUILD", 10)
    with NearStore.open(index_path(cfg.state_dir), cfg.database_path) as store:
        _check(store, cfg, hashes[40:42])
        assert store.rebuilds == 1
    with NearStore.open(index_path(cfg.state_dir), cfg.database_path) as store:
        _check(store, cfg, hashes[40:42])
        assert store.rebuilds == 0  # the reader published what it built


def test_the_numpy_free_reader_steps_aside_when_the_file_cannot_answer_alone(
    cfg: Config, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = [int(h) for h in _random(80, 15)]
    with catalog.transaction():
        for i, h in enumerate(hashes[:40]):
            catalog.put_image(_record(h, i))
    path = index_path(cfg.state_dir)
    log = NearLogReader(cfg.database_path)
    try:
        assert reader.similar(path, log, hashes[0], 4) is None  # no index yet
        assert [h["name"] for h in search.similar(cfg, f"{hashes[0]:016x}", 0)] == [f"64x64_{hashes[0]:016x}_.png"]
        assert reader.similar(path, log, hashes[0], 4) is not None  # NearStore published one
        with catalog.transaction():
            for i, h in enumerate(hashes[40:]):
                catalog.put_image(_record(h, 40 + i))
        monkeypatch.setattr(reader, "READER_REBUILD", 10)  # 40 entries behind: too far
        assert reader.similar(path, log, hashes[50], 4) is None
        monkeypatch.setattr(reader, "READER_REBUILD", 1000)
        monkeypatch.setattr(reader, "PURE_LIMIT", 0)  # too many candidates for a Python loop
        assert reader.similar(path, log, hashes[0], 16) is None
        want = [(*_names(cfg)[row], d) for row, d in _truth(cfg, hashes[0], 16)]
        got = search.similar(cfg, f"{hashes[0]:016x}", 16)  # answered by NearStore instead
        assert [(h["name"], h["path"], h["distance"]) for h in got] == want
        monkeypatch.setattr(reader, "PURE_LIMIT", 250_000)
        path.write_bytes(path.read_bytes()[: reader.HEADER + 100])  # cut short: not used
        assert reader.similar(path, log, hashes[50], 4) is None
        with catalog.transaction():
            schema.create_derived(catalog.conn)  # a new epoch voids the file
        assert reader.similar(path, log, hashes[50], 4) is None
        with pytest.raises(UsageError, match="distance"):
            reader.similar(path, log, hashes[50], 17)
    finally:
        log.close()


def _groups_in_memory(cfg: Config, r: int) -> list[tuple[list[str], int]]:
    """``dupes --near`` as it was: tables built in memory over every present, informative hash."""
    rowids, hashes, low = load_hashes(cfg.database_path)
    rowids, hashes = rowids[~low], hashes[~low]
    names = _names(cfg)
    return sorted(
        (sorted(names[int(rowids[m])][0] for m in members), widest) for members, widest in groups(NearIndex(hashes), r)
    )


def test_dupes_near_from_the_persisted_index_equals_the_tables_built_in_memory(cfg: Config, catalog: Catalog) -> None:
    base = [int(h) for h in _random(120, 16)]
    # Families of look-alikes, some links only through a middle member, and low-information ones.
    hashes = base + [base[i] ^ (1 << (i % 64)) for i in range(0, 120, 3)] + [base[0] ^ 0b111, base[0] ^ 0b111000]
    with catalog.transaction():
        for i, h in enumerate(hashes):
            catalog.put_image(_record(h, i, low=i % 11 == 0))

    def check() -> None:
        for r in (0, 1, 3, 4, 6, 9):
            got = sorted((g["names"], g["max_distance"]) for g in duplicates.near_groups(cfg, r))
            assert got == _groups_in_memory(cfg, r), r
            assert r == 0 or got  # not an empty comparison

    check()  # nothing paired yet: every pair is computed by the bulk self-join
    build(index_path(cfg.state_dir), cfg.database_path)
    assert pair_round(catalog, index_path(cfg.state_dir)) > 100
    assert catalog.conn.execute("SELECT count(*) FROM near_pending").fetchone() == (0,)
    check()  # the kept pairs
    with catalog.transaction():  # through the log: adds, a missing image, a forget, a newly low one
        catalog.put_image(_record(base[5] ^ 0b11, 900))
        catalog.put_image(_record(base[7] ^ 0b1, 901, low=True))
        gone = catalog.image(f"64x64_{base[3]:016x}_.png")
        assert gone is not None
        catalog.put_image(dataclasses.replace(gone, state=State.MISSING))
        catalog.delete_image(f"64x64_{base[6]:016x}_.png")
        dull = catalog.image(f"64x64_{base[9]:016x}_.png")
        assert dull is not None
        catalog.put_image(dataclasses.replace(dull, low_information=True))
    with NearStore.open(index_path(cfg.state_dir), cfg.database_path) as store:
        assert store.present(skip_low=True).rows.size < len(hashes) + 2
        assert store.rebuilds == 0  # the index plus its log
    check()  # two images wait: the reader pairs them through the index and its log
    assert pair_round(catalog, index_path(cfg.state_dir)) == 1  # the low-information one never waits
    check()
