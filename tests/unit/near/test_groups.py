"""Near-duplicate groups kept as images come and go equal the brute-force groups, at every step."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from tests.helpers import made_up_record
from watcherd.catalog import Catalog
from watcherd.catalog.schema import PAIR_RADIUS
from watcherd.commands import duplicates
from watcherd.core.config import Config
from watcherd.core.records import ImageRecord, State
from watcherd.near import join as nearjoin
from watcherd.near.builder import build
from watcherd.near.groups import components, pair_round, read_groups
from watcherd.near.reader import index_path


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**64, size=n, dtype=np.uint64)


def crowded_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Few distinct chunk values and families of near copies: long runs, many repeats."""
    base = rng.integers(0, 4, size=(n, 4)).astype(np.uint64) * np.uint64(0x1111)
    h = base[:, 0] | (base[:, 1] << np.uint64(16)) | (base[:, 2] << np.uint64(32)) | (base[:, 3] << np.uint64(48))
    flips = rng.integers(0, 64, size=(n, 3)).astype(np.uint64)
    for k in range(3):
        h ^= np.where(rng.random(n) < 0.5, np.uint64(1) << flips[:, k], np.uint64(0))
    out: np.ndarray = h
    return out


@pytest.mark.parametrize("radius", [0, 1, 3, 4, 5, 7, 10, 16])
@pytest.mark.parametrize("kind", ["random", "crowded"])
def test_the_self_join_finds_exactly_the_brute_force_pairs(kind: str, radius: int) -> None:
    rng = np.random.default_rng(radius)
    make = random_hashes if kind == "random" else crowded_hashes
    base = make(rng, 400)
    near = base[:150] ^ (np.uint64(1) << rng.integers(0, 64, size=150).astype(np.uint64))
    hashes = np.concatenate([base, near, base[:20]])  # and exact repeats
    i, j, d = nearjoin.all_pairs(hashes, radius)
    got = list(zip(i.tolist(), j.tolist(), d.tolist(), strict=True))
    assert len(got) == len(set(got))  # each pair once
    assert set(got) == nearjoin.brute_pairs(hashes, radius)


def test_the_self_join_blocks_bound_its_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nearjoin, "BLOCK", 7)  # a block smaller than one run: split run by run
    monkeypatch.setattr(nearjoin, "SEGMENT", 50)
    hashes = crowded_hashes(np.random.default_rng(1), 300)
    i, j, d = nearjoin.all_pairs(hashes, 5)
    assert set(zip(i.tolist(), j.tolist(), d.tolist(), strict=True)) == nearjoin.brute_pairs(hashes, 5)


def record(h: int, low: bool = False) -> ImageRecord:
    return made_up_record(h, low_information=low)


def brute_groups(catalog: Catalog, radius: int, within: set[str] | None = None) -> list[tuple[list[str], int]]:
    live = {r.name: int(r.hash, 16) for r in catalog.images() if r.present and not r.low_information}
    live = {n: h for n, h in live.items() if within is None or n in within}
    names = sorted(live)
    edges = [(a, b) for k, a in enumerate(names) for b in names[k + 1 :] if (live[a] ^ live[b]).bit_count() <= radius]
    out = []
    for group in components(edges):
        hs = [live[n] for n in group]
        out.append((group, max((x ^ y).bit_count() for x in hs for y in hs)))
    return sorted(out)


def kept_groups(cfg: Config, radius: int, within: set[str] | None = None) -> list[tuple[list[str], int]]:
    found = read_groups(cfg.database_path, index_path(cfg.state_dir), radius, within=within)
    return sorted((g.names, g.span) for g in found)


def test_groups_follow_images_arriving_leaving_and_coming_back(cfg: Config, catalog: Catalog) -> None:
    """A random mix of arrivals, departures, returns, forgets, moves, index builds and pairing
    rounds: after every step the groups read are the brute-force groups, at several radii."""
    rng = random.Random(5)
    nrng = np.random.default_rng(5)
    families = [int(h) for h in crowded_hashes(nrng, 40)] + [int(h) for h in random_hashes(nrng, 40)]
    index = index_path(cfg.state_dir)
    checked = 0
    for step in range(70):
        action = rng.choice(["add", "add", "near", "missing", "return", "forget", "low", "move", "pair", "index"])
        present = [r for r in catalog.images() if r.present]
        missing = [r for r in catalog.images() if not r.present]
        with catalog.transaction():
            if action == "add":
                catalog.put_image(record(rng.choice(families) ^ rng.getrandbits(64) * (rng.random() < 0.3)))
            elif action == "near" and present:
                h = int(rng.choice(present).hash, 16)
                for _ in range(rng.randint(1, 3)):
                    h ^= 1 << rng.randrange(64)
                catalog.put_image(record(h))
            elif action == "missing" and present:
                catalog.put_image(dataclasses.replace(rng.choice(present), state=State.MISSING))
            elif action == "return" and missing:
                catalog.put_image(dataclasses.replace(rng.choice(missing), state=State.PRESENT))
            elif action == "forget" and missing:
                catalog.delete_image(rng.choice(missing).name)
            elif action == "low" and present:
                rec = rng.choice(present)
                catalog.put_image(dataclasses.replace(rec, low_information=not rec.low_information))
            elif action == "move" and present:
                rec = rng.choice(present)
                catalog.put_image(dataclasses.replace(rec, path=f"thumbs/b{step}/{rec.name}", tags=[f"b{step}"]))
        if action == "pair":
            pair_round(catalog, index)
        elif action == "index":
            build(index, cfg.database_path)
        if step % 3 == 0 or action == "pair":
            for radius in (0, 2, 4, PAIR_RADIUS, 8):
                assert kept_groups(cfg, radius) == brute_groups(catalog, radius), (step, action, radius)
                checked += 1
            half = {r.name for r in catalog.images() if rng.random() < 0.5}  # arrange --under: some of them
            for radius in (4, 8):
                assert kept_groups(cfg, radius, half) == brute_groups(catalog, radius, half), (step, radius)
    assert catalog.conn.execute("SELECT count(*) FROM near_pairs").fetchone()[0] > 0
    assert checked > 50


def test_a_removed_middle_splits_its_group(cfg: Config, catalog: Catalog) -> None:
    a, b, c = 0x0F0F_0000_0000_0000, 0x0F0F_0000_0000_0007, 0x0F0F_0000_0000_003F  # a-b 3, b-c 3, a-c 6
    with catalog.transaction():
        for h in (a, b, c):
            catalog.put_image(record(h))
    build(index_path(cfg.state_dir), cfg.database_path)
    assert pair_round(catalog, index_path(cfg.state_dir)) == 3
    assert [g for g, _ in kept_groups(cfg, 4)] == [[record(a).name, record(b).name, record(c).name]]
    with catalog.transaction():
        middle = catalog.image(record(b).name)
        assert middle is not None
        catalog.put_image(dataclasses.replace(middle, state=State.MISSING))
    assert kept_groups(cfg, 4) == []  # a and c are 6 apart: no group left
    assert catalog.conn.execute("SELECT count(*) FROM near_pairs").fetchone() == (0,)
    with catalog.transaction():
        catalog.put_image(dataclasses.replace(middle, state=State.PRESENT))
    assert [g for g, _ in kept_groups(cfg, 4)] == [[record(a).name, record(b).name, record(c).name]]  # it waits
    assert pair_round(catalog, index_path(cfg.state_dir)) == 1


def test_an_image_waits_in_the_same_transaction_and_a_rolled_back_round_keeps_it_waiting(
    cfg: Config, catalog: Catalog
) -> None:
    waiting = "SELECT count(*) FROM near_pending"
    with pytest.raises(RuntimeError), catalog.transaction():
        catalog.put_image(record(1))
        assert catalog.conn.execute(waiting).fetchone() == (1,)
        raise RuntimeError
    assert catalog.conn.execute(waiting).fetchone() == (0,)  # rolled back with its record
    with catalog.transaction():
        catalog.put_image(record(1))
        catalog.put_image(record(3))
    build(index_path(cfg.state_dir), cfg.database_path)
    with pytest.raises(RuntimeError), catalog.transaction():
        pair_round(catalog, index_path(cfg.state_dir))  # a savepoint of this transaction
        assert catalog.conn.execute(waiting).fetchone() == (0,)
        raise RuntimeError
    assert catalog.conn.execute(waiting).fetchone() == (2,)
    assert catalog.conn.execute("SELECT count(*) FROM near_pairs").fetchone() == (0,)
    assert pair_round(catalog, index_path(cfg.state_dir)) == 2
    assert catalog.conn.execute("SELECT a, b, d FROM near_pairs").fetchall() == [(record(1).name, record(3).name, 1)]


def test_a_round_waits_for_an_index_and_many_waiting_images_are_paired_in_bulk(
    cfg: Config, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    with catalog.transaction():
        for h in range(0, 40, 3):
            catalog.put_image(record(h))
    assert pair_round(catalog, index_path(cfg.state_dir)) == 0  # no index yet: they wait
    assert kept_groups(cfg, 2) == brute_groups(catalog, 2)  # a reader pairs them itself
    monkeypatch.setattr("watcherd.near.groups.BULK_MIN", 5)
    assert pair_round(catalog, index_path(cfg.state_dir)) == 14  # the self-join, no index needed
    assert kept_groups(cfg, 2) == brute_groups(catalog, 2)


def test_dupes_near_and_arrange_read_the_kept_groups(cfg: Config, catalog: Catalog) -> None:
    with catalog.transaction():
        for h in (0xFF00, 0xFF01, 0xFF03, 0xAAAA_0000_0000_0000):
            catalog.put_image(record(h))
    build(index_path(cfg.state_dir), cfg.database_path)
    pair_round(catalog, index_path(cfg.state_dir))
    (group,) = duplicates.near_groups(cfg, 4)
    assert group["names"] == [record(h).name for h in (0xFF00, 0xFF01, 0xFF03)] and group["max_distance"] == 2


def test_a_move_keeps_the_hash_row_its_pairs_and_the_near_log(cfg: Config, catalog: Catalog) -> None:
    with catalog.transaction():
        for h in (0xF0, 0xF1):
            catalog.put_image(record(h))
    build(index_path(cfg.state_dir), cfg.database_path)
    pair_round(catalog, index_path(cfg.state_dir))
    conn = catalog.conn
    before = conn.execute("SELECT rowid, name FROM hashes ORDER BY name").fetchall()
    (logged,) = conn.execute("SELECT count(*) FROM near_log").fetchone()
    with catalog.transaction():
        for rec in list(catalog.images()):
            catalog.put_image(dataclasses.replace(rec, path=f"thumbs/moved/{rec.name}", tags=["moved", "64x64"]))
    assert conn.execute("SELECT rowid, name FROM hashes ORDER BY name").fetchall() == before
    assert conn.execute("SELECT count(*) FROM near_log").fetchone() == (logged,)
    assert conn.execute("SELECT count(*) FROM near_pairs").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM near_pending").fetchone() == (0,)
    assert conn.execute("SELECT DISTINCT path LIKE 'thumbs/moved/%' FROM hashes").fetchall() == [(1,)]


def test_dupes_pages_are_slices_of_the_whole_listing(cfg: Config, catalog: Catalog) -> None:
    """``dupes --near N --limit L --offset K`` gives exactly items K..K+L of the full listing,
    wherever the page starts or ends (only the page's groups are looked at on disk)."""
    from watcherd.commands.library import Library

    with catalog.transaction():
        bases = (0, 0xFFFF << 48, 0xFFFF << 32, 0xFFFF << 16, 0xF0F0F0F0 << 32, 0x0F0F0F0F << 32, 0x00FF00FF00FF0000)
        for k, base in enumerate(bases):  # seven groups of look-alikes, of several widths
            for bit in range(k % 3 + 2):
                catalog.put_image(record(base | ((1 << bit) - 1)))
    build(index_path(cfg.state_dir), cfg.database_path)
    pair_round(catalog, index_path(cfg.state_dir))
    library = Library(cfg)
    whole = library.dupes(4)
    assert len(whole) == 7
    for offset in range(9):
        for limit in (0, 1, 3, 10, None):
            assert (
                library.dupes(4, limit=limit, offset=offset)
                == whole[offset : None if limit is None else offset + limit]
            )
