"""Crop links kept as pairs: the groups read (kept, pending or in bulk) equal the brute-force groups at every step."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from watcherd.catalog import Catalog
from watcherd.catalog.schema import PAIR_RADIUS
from watcherd.commands import duplicates, search
from watcherd.core import crops
from watcherd.core.config import Config
from watcherd.core.records import ImageRecord, State
from watcherd.near import croplinks
from watcherd.near.builder import build
from watcherd.near.groups import components, pair_round, read_groups
from watcherd.near.reader import index_path

WIDTH = len(crops.WINDOWS)


def record(h: int, windows: list[int] | None, serial: int) -> ImageRecord:
    name = f"64x{64 + serial}_{h:016x}_.png"
    return ImageRecord(
        name=name,
        hash=f"{h:016x}",
        width=64,
        height=64 + serial,
        path=f"thumbs/a/{name}",
        state=State.PRESENT,
        first_seen="",
        last_seen="",
        crops=crops.join(windows or []),
    )


def flip(h: int, rng: random.Random, bits: int) -> int:
    for k in rng.sample(range(64), bits):
        h ^= 1 << k
    return h


def linked(wa: list[int], wb: list[int]) -> bool:
    """The crop relation by brute force: a crop window of one near the other's whole picture."""
    return (
        bool(wa and wb)
        and min(min((wa[i] ^ wb[0]).bit_count(), (wb[i] ^ wa[0]).bit_count()) for i in crops.AS_ORIGINAL)
        <= crops.CROP_DISTANCE
    )


def brute(catalog: Catalog, radius: int, within: set[str] | None = None) -> list[tuple[list[str], bool]]:
    """The groups by brute force: whole pairs within ``radius`` that the whole-picture windows
    confirm, joined by crop links; and whether a link joins two whole-picture groups."""
    live = {
        r.name: (int(r.hash, 16), crops.split(r.crops))
        for r in catalog.images()
        if r.present and not r.low_information and (within is None or r.name in within)
    }
    names = sorted(live)
    whole, links = [], []
    for k, a in enumerate(names):
        for b in names[k + 1 :]:
            (ha, wa), (hb, wb) = live[a], live[b]
            if (ha ^ hb).bit_count() <= radius and (
                not wa or not wb or (wa[0] ^ wb[0]).bit_count() <= crops.VERIFY_DISTANCE
            ):
                whole.append((a, b))
            if linked(wa, wb):
                links.append((a, b))
    group_of = {n: k for k, g in enumerate(components(whole)) for n in g}
    crossing = {n for a, b in links if group_of.get(a, a) != group_of.get(b, b) for n in (a, b)}
    return sorted((g, any(n in crossing for n in g)) for g in components([*whole, *links]))


def kept(cfg: Config, radius: int, within: set[str] | None = None) -> list[tuple[list[str], bool]]:
    found = read_groups(cfg.database_path, index_path(cfg.state_dir), radius, within=within)
    return sorted((g.names, g.crop) for g in found)


def test_crop_links_and_confirmed_pairs_follow_every_change(cfg: Config, catalog: Catalog) -> None:
    """A random mix of originals, crops of them (a crop window of one is the other's whole
    picture), look-alikes the windows confirm or refute, departures, returns, window hashes
    given later or taken away, pairing rounds and index builds: the groups read after every
    step are the brute-force groups, at radii kept and computed."""
    rng = random.Random(22)
    index = index_path(cfg.state_dir)
    serial = 0
    checked = 0
    crossed = refuted = 0
    for step in range(90):
        action = rng.choice(["add", "crop", "crop", "alike", "unconfirmed", "missing", "return", "bare", "give"])
        action = rng.choice([action, "pair", "index"]) if step % 4 == 3 else action
        images = catalog.images()
        present = [r for r in images if r.present and crops.split(r.crops)]
        with catalog.transaction():
            serial += 1
            if action == "add" or (action in ("crop", "alike", "unconfirmed") and not present):
                catalog.put_image(record(rng.getrandbits(64), [rng.getrandbits(64) for _ in range(WIDTH)], serial))
            elif action == "crop":  # a crop of a present image: its whole picture is one of the parent's crop windows
                parent = rng.choice(present)
                windows = [rng.getrandbits(64) for _ in range(WIDTH)]
                windows[0] = flip(crops.split(parent.crops)[rng.choice(crops.AS_ORIGINAL[1:])], rng, rng.randint(0, 5))
                h = flip(int(parent.hash, 16), rng, rng.randint(6, 12))  # too far for the names' hashes
                catalog.put_image(record(h, windows, serial))
            elif action in ("alike", "unconfirmed"):  # the names' hashes near; the windows agree or not
                parent = rng.choice(present)
                windows = [rng.getrandbits(64) for _ in range(WIDTH)]
                if action == "alike":
                    windows[0] = flip(crops.split(parent.crops)[0], rng, rng.randint(0, 10))
                catalog.put_image(record(flip(int(parent.hash, 16), rng, rng.randint(1, 4)), windows, serial))
            elif action == "missing" and present:
                catalog.put_image(dataclasses.replace(rng.choice(present), state=State.MISSING))
            elif action == "return":
                gone = [r for r in images if not r.present]
                if gone:
                    catalog.put_image(dataclasses.replace(rng.choice(gone), state=State.PRESENT))
            elif action == "bare" and present:  # an older watcherd's record: no window hashes
                rec = rng.choice(present)
                catalog.put_image(dataclasses.replace(rec, crops="", extra={"was": rec.crops}))
            elif action == "give":  # scan gives its window hashes back
                bare = [r for r in images if r.present and "was" in r.extra]
                if bare:
                    rec = rng.choice(bare)
                    catalog.put_image(dataclasses.replace(rec, crops=str(rec.extra["was"]), extra={}))
        if action == "pair":
            pair_round(catalog, index)
        elif action == "index":
            build(index, cfg.database_path)
        if step % 3 == 2 or action == "pair":
            for radius in (0, 4, PAIR_RADIUS, 8):
                want = brute(catalog, radius)
                assert kept(cfg, radius) == want, (step, action, radius)
                crossed += sum(crop for _, crop in want)
                checked += 1
            half = {r.name for r in catalog.images() if rng.random() < 0.5}  # arrange --under: some of them
            assert kept(cfg, 4, half) == brute(catalog, 4, half), step
    pair_round(catalog, index)
    for a, b, _ in catalog.conn.execute("SELECT a, b, d FROM near_pairs").fetchall():
        wa, wb = (crops.split(catalog.image(n).crops) for n in (a, b))  # type: ignore[union-attr]
        refuted += bool(wa and wb and (wa[0] ^ wb[0]).bit_count() > crops.VERIFY_DISTANCE)
    assert refuted == 0  # every kept whole pair is one similar would report as whole
    assert catalog.conn.execute("SELECT count(*) FROM crop_pairs").fetchone()[0] > 3
    assert checked > 60 and crossed > 20


def test_window_hashes_given_later_make_an_image_wait_and_find_its_crops(cfg: Config, catalog: Catalog) -> None:
    rng = random.Random(3)
    original = [rng.getrandbits(64) for _ in range(WIDTH)]
    cropped = [rng.getrandbits(64) for _ in range(WIDTH)]
    cropped[0] = original[crops.AS_ORIGINAL[5]] ^ 0b11
    a, b = record(0xF000_0000_0000_0000, original, 1), record(0x0000_0000_0000_0FFF, cropped, 2)
    with catalog.transaction():
        catalog.put_image(a)
        catalog.put_image(dataclasses.replace(b, crops=""))
    build(index_path(cfg.state_dir), cfg.database_path)
    assert pair_round(catalog, index_path(cfg.state_dir)) == 2
    assert kept(cfg, 4) == []
    with catalog.transaction():  # what scan's fill does: the record gains its window hashes
        catalog.put_image(b)
    assert catalog.conn.execute("SELECT name FROM near_pending").fetchall() == [(b.name,)]
    assert kept(cfg, 4) == [([a.name, b.name], True)]  # a reader pairs the waiting image itself
    assert pair_round(catalog, index_path(cfg.state_dir)) == 1
    assert catalog.conn.execute("SELECT a, b, d FROM crop_pairs").fetchall() == [(a.name, b.name, 2)]
    (group,) = duplicates.near_groups(cfg, 4)
    assert group["names"] == [a.name, b.name] and group["match"] == "crop"
    with catalog.transaction():  # a move keeps the link: only the path changed
        catalog.put_image(dataclasses.replace(b, path=f"thumbs/b/{b.name}"))
    assert catalog.conn.execute("SELECT count(*) FROM crop_pairs").fetchone() == (1,)
    assert catalog.conn.execute("SELECT count(*) FROM near_pending").fetchone() == (0,)


def test_many_waiting_images_get_their_links_in_bulk(
    cfg: Config, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(8)
    with catalog.transaction():
        for i in range(30):
            windows = [rng.getrandbits(64) for _ in range(WIDTH)]
            catalog.put_image(record(rng.getrandbits(64), windows, 2 * i))
            crop = [rng.getrandbits(64) for _ in range(WIDTH)]
            crop[0] = windows[crops.AS_ORIGINAL[1 + i % 20]] ^ (1 << i)
            catalog.put_image(record(rng.getrandbits(64), crop, 2 * i + 1))
    want = brute(catalog, 4)
    assert len(want) == 30
    monkeypatch.setattr(croplinks, "FEW", 3)  # a reader's many waiting images: every link in bulk
    assert kept(cfg, 4) == want
    monkeypatch.setattr("watcherd.near.groups.BULK_MIN", 5)
    assert pair_round(catalog, index_path(cfg.state_dir)) == 60  # the writer's bulk round
    assert catalog.conn.execute("SELECT count(*) FROM crop_pairs").fetchone() == (30,)
    assert kept(cfg, 4) == want == brute(catalog, 4)


def test_links_of_a_few_are_those_of_all_links() -> None:
    rng = np.random.default_rng(4)
    asks = rng.integers(0, 2**64, size=(200, crops.HEX), dtype=np.uint64)
    for i in range(0, 200, 7):  # image i+1 is a crop of image i
        if i + 1 < 200:
            asks[i + 1, 0] = asks[i, crops.AS_ORIGINAL[1 + i % 20]] ^ np.uint64(1 << (i % 64))
    every = croplinks.all_links(asks)
    assert len(every) == 29 and all(i + 1 == j and d <= 1 for i, j, d in every)
    few = [3, 7, 8, 50, 199]
    assert croplinks.links_of(asks, few) == [e for e in every if e[0] in few or e[1] in few]


def test_a_reader_of_a_catalog_from_before_window_hashes_computes_its_groups(cfg: Config, catalog: Catalog) -> None:
    """Until a writer opens it, a catalog kept by the previous watcherd has no crop tables: groups are computed."""
    rng = random.Random(1)
    with catalog.transaction():
        for h in (0xFF00, 0xFF01, 0xFF03, 0xAAAA_0000_0000_0000):
            catalog.put_image(record(h, [rng.getrandbits(64) for _ in range(WIDTH)], h & 0xF))
    build(index_path(cfg.state_dir), cfg.database_path)
    pair_round(catalog, index_path(cfg.state_dir))
    with catalog.transaction():
        for table in ("crop_pairs", "crop_hashes", "crop_log"):
            catalog.conn.execute(f"DROP TABLE {table}")
    names = sorted(r.name for r in catalog.images() if int(r.hash, 16) >> 16 == 0)
    assert kept(cfg, 4) == [(names, False)]
    # similar too: whole matches only, unconfirmed
    a = names[0]
    hits = search.similar(cfg, a.split("_")[1], 4, crops.split(catalog.image(a).crops))  # type: ignore[union-attr]
    assert sorted(h["name"] for h in hits) == names and {h["match"] for h in hits} == {"whole"}
