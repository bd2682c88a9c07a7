"""Near-duplicate search at scale: the index against a BK-tree, `similar` at 1M and 30M images.

Run through ``python -m tests.benchmarks.bench`` (the whole table).
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tests.benchmarks.timing import (
    Row,
    catalog_paths,
    make_catalog,
    median_of,
    sig,
    timed_process,
)
from watcherd.catalog.hashes import Source
from watcherd.core import crops
from watcherd.core.config import Config
from watcherd.near.index import NearIndex


def near_query(n: int, queries: int) -> list[Row]:
    """p50 of an exact radius-4 query: the index vs a numpy XOR+popcount scan (and pybktree)."""
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    t = time.perf_counter()
    index = NearIndex(hashes)
    build = time.perf_counter() - t
    qs = [int(hashes[i]) ^ (1 << int(rng.integers(64))) for i in rng.integers(0, n, queries)]

    p50 = functools.partial(median_of, qs)

    ours = p50(lambda q: index.query(q, 4))
    scan = p50(lambda q: np.nonzero(np.bitwise_count(hashes ^ np.uint64(q)) <= 4)[0])
    rows: list[Row] = [
        (
            f"near query r<=4, {n:,} hashes (p50)",
            f"{sig(ours * 1e3)} ms",
            f"numpy scan {sig(scan * 1e3)} ms",
            f"{sig(scan / ours)}x faster",
            "≥10x numpy; ≤1 ms at 1M, ≤10 ms at 10M",
        ),
        (f"near index build, {n:,} hashes", f"{sig(build)} s", "—", "—", "loads fast"),
    ]
    try:
        import pybktree
    except ImportError:
        rows.append(("near query vs pybktree", "—", "pybktree not installed (pip install -e '.[bench]')", "—", "≥100x"))
        return rows
    m = min(n, 200_000)  # building a Python BK-tree of millions takes minutes
    t = time.perf_counter()
    tree = pybktree.BKTree(lambda a, b: (a ^ b).bit_count(), [int(h) for h in hashes[:m]])
    tree_build = time.perf_counter() - t
    small = NearIndex(hashes[:m])
    qs = [int(hashes[i]) ^ 1 for i in rng.integers(0, m, max(5, queries // 10))]
    bk = p50(lambda q: tree.find(q, 4))
    ours_small = p50(lambda q: small.query(q, 4))
    rows.append(
        (
            f"near query r<=4, {m:,} hashes (p50)",
            f"{sig(ours_small * 1e3)} ms",
            f"pybktree {sig(bk * 1e3)} ms (built in {sig(tree_build)} s)",
            f"{sig(bk / ours_small)}x faster",
            "≥100x",
        )
    )
    return rows


def _synthetic_index(cfg: Config, source: Source, n: int, seed: int) -> tuple[float, NDArray[np.uint64]]:
    """Build and write the index of ``source``: the catalog's rows plus random ones up to ``n``; (seconds, hashes)."""
    from watcherd.catalog.hashes import NearLogReader
    from watcherd.near.persisted import Tables, index_path

    reader = NearLogReader(cfg.database_path, source)
    epoch, head, rows, hashes, _ = reader.snapshot()
    reader.close()
    rng = np.random.default_rng(seed)
    extra = n - hashes.size
    all_rows = np.concatenate([rows, rows.max() + 1 + np.arange(extra, dtype=np.int64)])
    all_hashes = np.concatenate([hashes, rng.integers(0, 2**64, size=extra, dtype=np.uint64)])
    t = time.perf_counter()
    Tables.build(epoch, head, all_rows, all_hashes, np.zeros(n, bool)).write(index_path(cfg.state_dir, source))
    return time.perf_counter() - t, all_hashes


def similar_at_scale(n: int, catalog_n: int, queries: int) -> list[Row]:
    """``watcherd similar`` end to end, and the in-process query, over an index of ``n`` hashes.

    The catalog holds ``catalog_n`` records; the index holds their hashes at their
    catalog rows plus synthetic ones up to ``n`` (the issue allows this: a catalog of
    30M records is not needed to time a search of 30M hashes), and the crop index
    holds ``crops.STORED`` window hashes for each of them the same way. Timings are
    with the indexes in the page cache, as on a machine that answers searches. The
    first record has no window hashes: asked by its name, ``similar`` searches the
    names' index only, as before window hashes (the baseline of the crop search).
    """
    from watcherd.catalog.hashes import CROPS, WHOLE
    from watcherd.near.persisted import NearStore, index_path

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = make_catalog(root, catalog_n, windows=True)
        build, all_hashes = _synthetic_index(cfg, WHOLE, n, 5)
        crop_build, _ = _synthetic_index(cfg, CROPS, crops.STORED * n, 6)
        rng = np.random.default_rng(5)
        names = [name for name, _ in catalog_paths(cfg)]
        plain, windowed = names[0], names[1]
        base, base_rss = timed_process([sys.executable, "-c", "pass"], 5)
        whole, whole_rss = timed_process([sys.executable, "-m", "watcherd", "similar", str(root), plain, "--json"], 5)
        ours, rss = timed_process([sys.executable, "-m", "watcherd", "similar", str(root), windowed, "--json"], 5)
        store = NearStore.open(index_path(cfg.state_dir), cfg.database_path)
        qs = [int(all_hashes[i]) ^ (1 << int(rng.integers(64))) for i in rng.integers(0, n, queries)]

        p50 = functools.partial(median_of, qs)

        def review(q: int) -> object:
            hits = store.query(q, 4)
            return store.where([h.row for h in hits])

        in_process = p50(review)
        scan = p50(lambda q: np.nonzero(np.bitwise_count(all_hashes ^ np.uint64(q)) <= 4)[0])
        store.close()
        size = index_path(cfg.state_dir).stat().st_size / 2**20
        crop_size = index_path(cfg.state_dir, CROPS).stat().st_size / 2**20
    target = "≤150 ms at 1M, ≤300 ms at 30M; ≤1 GB at 30M"
    return [
        (
            f"`similar NAME` end to end, {n:,} indexed hashes",
            f"{sig(whole * 1e3)} ms, peak RSS {sig(whole_rss)} MB",
            f"python -c pass {sig(base * 1e3)} ms, peak RSS {sig(base_rss)} MB",
            f"{sig(whole / base)}x",
            target,
        ),
        (
            f"`similar NAME`, crops searched too ({len(crops.WINDOWS)} windows), {n:,} images",
            f"{sig(ours * 1e3)} ms, peak RSS {sig(rss)} MB",
            f"names' index only {sig(whole * 1e3)} ms",
            f"{sig(ours / whole)}x",
            "≤2x the names' index only",
        ),
        (
            f"persisted indexes, {n:,} images",
            f"{sig(size + crop_size)} MB (names {sig(size)} MB + crops {sig(crop_size)} MB)",
            f"names' index only {sig(size)} MB",
            f"{sig((size + crop_size) / size)}x",
            "≤4x the names' index only",
        ),
        (
            f"review-page query r<=4 + names, {n:,} indexed hashes, in process (p50)",
            f"{sig(in_process * 1e3)} ms",
            f"numpy scan {sig(scan * 1e3)} ms",
            f"{sig(scan / in_process)}x faster",
            "≤20 ms at 30M",
        ),
        (
            f"persisted near index build + write, {n:,} hashes (crop index: {crops.STORED * n:,})",
            f"{sig(build)} s ({sig(size)} MB file); crops {sig(crop_build)} s",
            "—",
            "—",
            "minutes, not hours",
        ),
    ]
