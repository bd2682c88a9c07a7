"""Shared by the benchmarks: the row format, best-of and median timers, a made-up catalog and
its paths, small PNGs, a whole process timed with its peak memory, a plain directory walk.

Run through ``python -m tests.benchmarks.bench`` (the whole table).
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, PngImagePlugin

from tests.benchmarks.corpus import jpeg, photo
from tests.helpers import made_up_record
from watcherd.catalog import open_for_writing
from watcherd.core import crops
from watcherd.core.config import Config

Row = tuple[str, str, str, str, str]


T = TypeVar("T")


def sig(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, never rounded to 0 and never in exponent notation."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def median_of(queries: list[int], fn: Callable[[int], object]) -> float:
    """Median seconds of ``fn`` over the queries."""
    samples = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def small_jpeg(size: tuple[int, int], seed: int) -> bytes:
    return jpeg(photo(size, seed), 90)


def pinned(cpus: set[int], fn: Callable[[], T]) -> T:
    """Run ``fn`` on the given CPUs only (worker processes spawned inside inherit it)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        return fn()
    finally:
        os.sched_setaffinity(0, before)


def make_catalog(root: Path, n: int, folders: int = 50, *, windows: bool = False) -> Config:
    """A catalog of ``n`` made-up records spread over ``folders`` folders (no files); with
    ``windows``, every record but the first has random window hashes (the first: none, as before them)."""
    cfg = Config().with_root(root)
    catalog = open_for_writing(cfg).catalog
    rng = np.random.default_rng(1)
    tags = [f"tag{i}" for i in range(50)]
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    per = len(crops.WINDOWS)
    try:
        for start in range(0, n, 10_000):
            with catalog.transaction():
                for i in range(start, min(n, start + 10_000)):
                    folder = tags[i % folders]
                    record = made_up_record(
                        int(hashes[i]), folder, sha256="", tags=[folder, tags[(i * 7) % 50], "64x64"]
                    )
                    if windows and i > 0:
                        record.crops = crops.join([int(x) for x in rng.integers(0, 2**64, per, dtype=np.uint64)])
                    catalog.put_image(record)
    finally:
        catalog.close()
    return cfg


def catalog_paths(cfg: Config) -> list[tuple[str, str]]:
    with sqlite3.connect(cfg.database_path) as con:
        return con.execute("SELECT name, path FROM listing").fetchall()


def filed_count(db: Path) -> int:
    """Images and collisions whose original has been filed."""
    try:
        con = sqlite3.connect(db, timeout=30)
        try:
            (images,) = con.execute(
                "SELECT count(*) FROM images WHERE json_extract(value, '$.moving_from') IS NULL"
            ).fetchone()
            (collisions,) = con.execute(
                "SELECT count(*) FROM collisions WHERE json_extract(value, '$.newcomer.moving_from') IS NULL"
            ).fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return 0
    return int(images) + int(collisions)


def small_pngs(n: int, folder: Path) -> None:
    """``n`` small PNGs of coarse random blocks (64x48), as a burst would bring; their hashes
    differ, so each is an image of its own (a few may still collide, and are counted)."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        blocks = rng.integers(0, 256, size=(6, 8), dtype=np.uint8)
        pixels = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))
        Image.fromarray(pixels, "L").save(folder / f"s{i:05d}.png")


def scandir_walk(top: Path, *, stat: bool = False) -> int:
    """The baseline for scans: count the files under ``top`` with a bare os.scandir walk
    (``stat``: stat every file too, as a scan does)."""
    count, stack = 0, [str(top)]
    while stack:
        for e in os.scandir(stack.pop()):
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            else:
                if stat:
                    e.stat(follow_symlinks=False)
                count += 1
    return count


# A small parent that runs the command and says how long it took and its peak RSS: the RSS a
# child reports is at least its parent's at the fork, so the parent must be smaller than it.
TIME_AND_RSS_OF_CHILD = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "subprocess.run(sys.argv[1:], capture_output=True, check=True); "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def timed_process(args: list[str], repeat: int) -> tuple[float, float]:
    """(best wall time of ``args`` as a process, its largest peak RSS in MB), timed by a small
    parent from its start to its end (the parent's own start-up is not counted)."""
    best, peak = math.inf, 0.0
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-S", "-c", TIME_AND_RSS_OF_CHILD, *args], capture_output=True, check=True, text=True
        )
        took, rss = done.stdout.split()[-2:]
        best = min(best, float(took))
        peak = max(peak, int(rss) / 1024)
    return best, peak


def made_up_thumbnails(tmp: Path, hashes: list[str], seeds: int) -> tuple[Path, Path]:
    """A library of thumbnails of ours and no catalog (a restored backup), under ``tmp``:
    ``seeds`` real thumbnails made once by ``watcherd scan``, copied under the made-up
    ``hashes`` (adoption reads only the chunks, so each copy is a distinct thumbnail of ours),
    spread over 100 folders. Returns (root, config)."""
    from watcherd.core import crops
    from watcherd.decode.chunks import read_text

    root = tmp / "lib"
    (root / "thumbs").mkdir(parents=True)
    small_pngs(min(len(hashes), seeds), tmp / "staging")
    conf = tmp / "w.yaml"
    conf.write_text("settle: 0\n")
    seed_root = tmp / "seed"
    shutil.copytree(tmp / "staging", seed_root / "thumbs")
    subprocess.run([sys.executable, "-m", "watcherd", "scan", str(seed_root), "-c", str(conf)], check=True)
    made = sorted((seed_root / "thumbs").glob("*_.png"))
    windows = np.random.default_rng(len(hashes)).integers(
        0, 2**64, size=(len(hashes), len(crops.WINDOWS)), dtype=np.uint64
    )
    for i, h in enumerate(hashes):
        src = made[i % len(made)]
        text = read_text(src.read_bytes())
        # Distinct pictures have distinct window hashes too: a seed's own would make every
        # copy of it a crop of every other (millions of crop links no library has).
        text["hash"], text["sha256"], text["crops"] = h, f"{i:064x}", crops.join(windows[i].tolist())
        info = PngImagePlugin.PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
        folder = root / "thumbs" / f"f{i % 100:02d}"
        folder.mkdir(exist_ok=True)
        with Image.open(src) as im:
            im.save(folder / f"{text['width']}x{text['height']}_{h}_.png", pnginfo=info)
    return root, conf
