"""The stored window hashes in the catalog (``crop_hashes`` and its log) and their persisted index."""

from __future__ import annotations

import dataclasses
import sqlite3

import numpy as np

from tests.helpers import made_up_record
from watcherd.catalog import Catalog
from watcherd.catalog.hashes import CROPS, NearLogReader
from watcherd.core import crops
from watcherd.core.config import Config
from watcherd.core.records import ImageRecord, State
from watcherd.near import reader as nearfile
from watcherd.near.builder import Maintainer
from watcherd.near.persisted import NearStore, index_path


def _windows(rng: np.random.Generator, near: list[int] | None = None) -> list[int]:
    """Random window hashes; with ``near``, each a few bits from those."""
    if near is None:
        return [int(x) for x in rng.integers(0, 2**64, size=len(crops.WINDOWS), dtype=np.uint64)]
    return [h ^ (1 << int(rng.integers(64))) ^ (1 << int(rng.integers(64))) for h in near]


def _record(i: int, windows: list[int], *, low: bool = False) -> ImageRecord:
    return made_up_record(i, None, low_information=low, crops=crops.join(windows))


def _stored(cfg: Config) -> list[tuple[int, str, int]]:
    """(row, name, unsigned hash) of every present stored window, straight from SQL."""
    with sqlite3.connect(cfg.database_path) as con:
        rows = con.execute("SELECT rowid, name, hash FROM crop_hashes WHERE present = 1").fetchall()
    return [(int(r), str(n), int(h) & (2**64 - 1)) for r, n, h in rows]


def _truth(cfg: Config, queries: list[int], r: int) -> list[tuple[str, str, int, int]]:
    """``similar_many``'s answer by brute force: each row's nearest query within r."""
    found = {}
    for row, name, h in _stored(cfg):
        best = min(((h ^ q).bit_count(), i) for i, q in enumerate(queries))
        if best[0] <= r:
            found[row] = (name, best)
    hits = sorted(found.items(), key=lambda kv: (kv[1][1][0], kv[0]))
    return [(name, f"thumbs/{name}", d, i) for _, (name, (d, i)) in hits]


def test_each_present_image_stores_its_first_windows_and_forgets_them(cfg: Config, catalog: Catalog) -> None:
    rng = np.random.default_rng(1)
    ws = _windows(rng)
    with catalog.transaction():
        catalog.put_image(_record(1, ws))
        catalog.put_image(_record(2, []))  # no window hashes: nothing stored
    assert sorted(h for _, _, h in _stored(cfg)) == sorted(ws[: crops.STORED])
    with catalog.transaction():
        catalog.delete_image(_record(1, ws).name)
    assert _stored(cfg) == []


def test_the_crop_index_answers_exactly_through_its_log(cfg: Config, catalog: Catalog) -> None:
    rng = np.random.default_rng(2)
    windows = [_windows(rng) for _ in range(150)]
    with catalog.transaction():
        for i, ws in enumerate(windows):
            catalog.put_image(_record(i, ws, low=i % 13 == 0))
    keeper = Maintainer(cfg.state_dir, cfg.database_path, background=False, source=CROPS)
    assert keeper.tick(catalog, now=0.0) and index_path(cfg.state_dir, CROPS).exists()
    with catalog.transaction():  # after the index: a look-alike added, one missing, one forgotten
        catalog.put_image(_record(500, _windows(rng, windows[3])))
        gone = catalog.image(_record(7, windows[7]).name)
        assert gone is not None
        catalog.put_image(dataclasses.replace(gone, state=State.MISSING))
        catalog.delete_image(_record(9, windows[9]).name)
    asked = [windows[3][0], windows[3][1] ^ 0b101, windows[7][2], windows[9][0], 12345]
    log = NearLogReader(cfg.database_path, CROPS)
    try:
        for r in (0, 2, 4, 8, 12):
            want = _truth(cfg, asked, r)
            assert nearfile.similar_many(index_path(cfg.state_dir, CROPS), log, asked, r) == want
            assert r < 8 or len({name for name, *_ in want}) >= 2  # not an empty comparison
    finally:
        log.close()
    with NearStore.open(index_path(cfg.state_dir, CROPS), cfg.database_path, source=CROPS) as store:
        names = store.where([row for row, _, _ in _stored(cfg)])
        for r in (0, 4, 8):  # the numpy reader: the same answer
            read = [(*names[row], d, i) for row, d, i in store.query_many(asked, r)]
            assert read == _truth(cfg, asked, r)
        present = store.present()
        got = present.query_many(np.array(asked, dtype=np.uint64), 8)
        one_by_one = sorted((qi, h.index, h.distance) for qi, q in enumerate(asked) for h in present.query(q, 8))
        assert sorted(zip(*(a.tolist() for a in got), strict=True)) == one_by_one
        added = {row for row, name, _ in _stored(cfg) if name == _record(500, []).name}  # from the log
        assert added & {int(present.rows[i]) for _, i, _ in one_by_one}
        assert store.rebuilds == 0
