"""Speed figures, each beside a baseline measured in the same run.

    python -m tests.benchmarks.bench                 # the README table's sizes
    python -m tests.benchmarks.bench --smoke         # tiny sizes, seconds (what CI runs)

Corpora are generated here, deterministically; nothing is downloaded. Prints one row
per figure: watcherd's number, the baseline's, their ratio, and the issue's target.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import io
import json
import math
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import imagehash
import numpy as np
from numpy.typing import NDArray
from PIL import Image, PngImagePlugin

from tests.benchmarks.corpus import jpeg, photo
from tests.helpers import running_daemon, table, wait_for
from watcherd.catalog import open_for_writing
from watcherd.catalog.hashes import Source
from watcherd.core import crops
from watcherd.core.config import Config
from watcherd.core.records import ImageRecord, State
from watcherd.decode.chunks import read_text
from watcherd.decode.sandbox import DecoderPool
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile
from watcherd.near.index import NearIndex

Row = tuple[str, str, str, str, str]
T = TypeVar("T")


def _sig(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, never rounded to 0 and never in exponent notation."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _p50(queries: list[int], fn: Callable[[int], object]) -> float:
    """Median seconds of ``fn`` over the queries."""
    samples = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def near_query(n: int, queries: int) -> list[Row]:
    """p50 of an exact radius-4 query: the index vs a numpy XOR+popcount scan (and pybktree)."""
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    t = time.perf_counter()
    index = NearIndex(hashes)
    build = time.perf_counter() - t
    qs = [int(hashes[i]) ^ (1 << int(rng.integers(64))) for i in rng.integers(0, n, queries)]

    p50 = functools.partial(_p50, qs)

    ours = p50(lambda q: index.query(q, 4))
    scan = p50(lambda q: np.nonzero(np.bitwise_count(hashes ^ np.uint64(q)) <= 4)[0])
    rows: list[Row] = [
        (
            f"near query r<=4, {n:,} hashes (p50)",
            f"{_sig(ours * 1e3)} ms",
            f"numpy scan {_sig(scan * 1e3)} ms",
            f"{_sig(scan / ours)}x faster",
            "≥10x numpy; ≤1 ms at 1M, ≤10 ms at 10M",
        ),
        (f"near index build, {n:,} hashes", f"{_sig(build)} s", "—", "—", "loads fast"),
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
            f"{_sig(ours_small * 1e3)} ms",
            f"pybktree {_sig(bk * 1e3)} ms (built in {_sig(tree_build)} s)",
            f"{_sig(bk / ours_small)}x faster",
            "≥100x",
        )
    )
    return rows


def _jpeg(size: tuple[int, int], seed: int) -> bytes:
    return jpeg(photo(size, seed), 90)


def _pinned(cpus: set[int], fn: Callable[[], T]) -> T:
    """Run ``fn`` on the given CPUs only (worker processes spawned inside inherit it)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        return fn()
    finally:
        os.sched_setaffinity(0, before)


def _daemon_rate(tmp: Path, corpus: list[bytes], workers: int, decode: str) -> tuple[float, list[str]]:
    """Seconds for the daemon's ingest path (DecoderPool + Pipeline.process_all), and the hashes."""
    root = tmp / f"lib-{decode}-{workers}"
    root.mkdir()
    cfg = dataclasses.replace(Config(), workers=workers, decode=decode).with_root(root)
    catalog = open_for_writing(cfg).catalog
    try:
        with DecoderPool(cfg.worker_count, cfg.decode_timeout, cfg.decode_memory) as pool:
            pipeline = Pipeline(cfg, catalog, render=pool)
            warm = [_jpeg((600, 400), 10_000 + i) for i in range(workers)]  # start the workers untimed
            for i, data in enumerate(warm):
                (cfg.thumbs_dir / f"warm{i}.jpg").write_bytes(data)
            list(pipeline.process_all(sorted(cfg.thumbs_dir.glob("warm*.jpg"))))
            paths = []
            for i, data in enumerate(corpus):
                p = cfg.thumbs_dir / f"{i:04d}.jpg"
                p.write_bytes(data)
                os.utime(p, (1_600_000_000, 1_600_000_000))
                paths.append(p)
            t = time.perf_counter()
            names = [result.name or "" for result in pipeline.process_all(paths)]
            return time.perf_counter() - t, [n.split("_")[1] for n in names]
    finally:
        catalog.close()


def ingest(count: int, size: tuple[int, int]) -> list[Row]:
    """Images/s of the daemon's ingest path vs the plain loop, on one core and on two."""
    corpus = [_jpeg(size, seed) for seed in range(count)]
    one = {min(os.sched_getaffinity(0))}
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        paths = []
        for i, data in enumerate(corpus):
            p = src / f"{i}.jpg"
            p.write_bytes(data)
            paths.append(p)

        def loop() -> float:
            t = time.perf_counter()
            for p in paths:
                im = Image.open(p)
                str(imagehash.whash(im))
                im.thumbnail((64, 64))
                im.save(io.BytesIO(), format="PNG")
            return time.perf_counter() - t

        t_loop = _pinned(one, loop)
        runs = {}
        for label, workers, decode, cpus in (
            ("reference, 1 core", 1, "reference", one),
            (f"reference, {cores} workers on {cores} cores", cores, "reference", None),
            ("decode: fast, 1 core", 1, "fast", one),
        ):
            if cpus is None and cores < 2:
                continue
            job = functools.partial(_daemon_rate, Path(tmp), corpus, workers, decode)
            runs[label] = _pinned(cpus, job) if cpus else job()
    mp = size[0] * size[1] / 1e6
    rows: list[Row] = []
    targets = {"reference, 1 core": "≥0.9x", "decode: fast, 1 core": "≥4x"}
    for label, (seconds, _) in runs.items():
        rows.append(
            (
                f"ingest {_sig(mp, 2)} MP JPEG q90, {label}",
                f"{_sig(count / seconds)} img/s",
                f"plain loop, 1 core: {_sig(count / t_loop)} img/s",
                f"{_sig(t_loop / seconds)}x",
                targets.get(label, "≥1.7x with 2 cores"),
            )
        )
    ref, fast = runs["reference, 1 core"][1], runs["decode: fast, 1 core"][1]
    bits = [(int(a, 16) ^ int(b, 16)).bit_count() for a, b in zip(ref, fast, strict=True)]
    rows.append(
        (
            f"decode: fast vs reference names, {count} photos",
            f"mean {statistics.mean(bits):.2f} bits, max {max(bits)} bits differ",
            "reference hashes",
            "—",
            "published",
        )
    )
    return rows


def _catalog(root: Path, n: int, folders: int = 50, *, windows: bool = False) -> Config:
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
                    h = f"{int(hashes[i]):016x}"
                    name = f"64x64_{h}_.png"
                    folder = tags[i % folders]
                    record = ImageRecord(
                        name=name,
                        hash=h,
                        width=64,
                        height=64,
                        path=f"thumbs/{folder}/{name}",
                        state=State.PRESENT,
                        first_seen="",
                        last_seen="",
                        sha256="",
                        tags=[folder, tags[(i * 7) % 50], "64x64"],
                    )
                    if windows and i > 0:
                        record.crops = crops.join([int(x) for x in rng.integers(0, 2**64, per, dtype=np.uint64)])
                    catalog.put_image(record)
    finally:
        catalog.close()
    return cfg


def cli_latency(n: int, root: Path | None = None) -> list[Row]:
    """End-to-end CLI processes on a catalog of ``n`` images vs ``python -c pass``."""
    with tempfile.TemporaryDirectory() as tmp:
        if root is None:
            root = Path(tmp)
            _catalog(root, n)

        def run(*args: str) -> float:
            return _best(lambda: subprocess.run([sys.executable, *args], capture_output=True, check=True), 3)

        base = run("-c", "pass")
        rows = []
        name = _paths(Config().with_root(root))[0][0]
        for args in (["status"], ["tags"], ["find", "--tag", "tag3"], ["similar", name]):
            t = run("-m", "watcherd", args[0], str(root), *args[1:], "--json")
            rows.append(
                (
                    f"`{' '.join(args)}` with {n:,} images",
                    f"{_sig(t * 1e3)} ms",
                    f"python -c pass {_sig(base * 1e3)} ms",
                    f"{_sig(t / base)}x",
                    "≤300 ms at 100k, ≤1 s at 1M" if args[0] != "similar" else "—",
                )
            )
        return rows


def _scandir_walk(top: Path) -> int:
    """The baseline for scans: count the files under ``top`` with a bare os.scandir walk."""
    count, stack = 0, [str(top)]
    while stack:
        for e in os.scandir(stack.pop()):
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            else:
                count += 1
    return count


_RSS_OF_CHILD = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True, check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def _timed_process(args: list[str], repeat: int) -> tuple[float, float]:
    """(best wall time of ``args`` as a process, its largest peak RSS in MB), measured from a parent."""
    best, peak = math.inf, 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _RSS_OF_CHILD, *args], capture_output=True, check=True, text=True)
        best = min(best, time.perf_counter() - t)
        peak = max(peak, int(done.stdout.split()[-1]) / 1024)
    return best, peak


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
        cfg = _catalog(root, catalog_n, windows=True)
        build, all_hashes = _synthetic_index(cfg, WHOLE, n, 5)
        crop_build, _ = _synthetic_index(cfg, CROPS, crops.STORED * n, 6)
        rng = np.random.default_rng(5)
        names = [name for name, _ in _paths(cfg)]
        plain, windowed = names[0], names[1]
        base, base_rss = _timed_process([sys.executable, "-c", "pass"], 5)
        whole, whole_rss = _timed_process([sys.executable, "-m", "watcherd", "similar", str(root), plain, "--json"], 5)
        ours, rss = _timed_process([sys.executable, "-m", "watcherd", "similar", str(root), windowed, "--json"], 5)
        store = NearStore.open(index_path(cfg.state_dir), cfg.database_path)
        qs = [int(all_hashes[i]) ^ (1 << int(rng.integers(64))) for i in rng.integers(0, n, queries)]

        p50 = functools.partial(_p50, qs)

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
            f"{_sig(whole * 1e3)} ms, peak RSS {_sig(whole_rss)} MB",
            f"python -c pass {_sig(base * 1e3)} ms, peak RSS {_sig(base_rss)} MB",
            f"{_sig(whole / base)}x",
            target,
        ),
        (
            f"`similar NAME`, crops searched too ({len(crops.WINDOWS)} windows), {n:,} images",
            f"{_sig(ours * 1e3)} ms, peak RSS {_sig(rss)} MB",
            f"names' index only {_sig(whole * 1e3)} ms",
            f"{_sig(ours / whole)}x",
            "≤2x the names' index only",
        ),
        (
            f"persisted indexes, {n:,} images",
            f"{_sig(size + crop_size)} MB (names {_sig(size)} MB + crops {_sig(crop_size)} MB)",
            f"names' index only {_sig(size)} MB",
            f"{_sig((size + crop_size) / size)}x",
            "≤4x the names' index only",
        ),
        (
            f"review-page query r<=4 + names, {n:,} indexed hashes, in process (p50)",
            f"{_sig(in_process * 1e3)} ms",
            f"numpy scan {_sig(scan * 1e3)} ms",
            f"{_sig(scan / in_process)}x faster",
            "≤20 ms at 30M",
        ),
        (
            f"persisted near index build + write, {n:,} hashes (crop index: {crops.STORED * n:,})",
            f"{_sig(build)} s ({_sig(size)} MB file); crops {_sig(crop_build)} s",
            "—",
            "—",
            "minutes, not hours",
        ),
    ]


def reconcile_startup(n: int) -> list[Row]:
    """Start-up reconcile of ``n`` catalogued canonical thumbnails vs an os.scandir walk."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = _catalog(root, n)
        for rec in table(cfg.database_path, "images"):
            p = root / rec["path"]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()

        t_walk = _best(functools.partial(_scandir_walk, cfg.thumbs_dir), 3)
        catalog = open_for_writing(cfg).catalog
        try:
            t = time.perf_counter()
            report = reconcile(Pipeline(cfg, catalog), reason="bench", settle=0.5)
            t_ours = time.perf_counter() - t
        finally:
            catalog.close()
        assert set(report.counts) <= {"unchanged"}, report.counts  # nothing decoded
    return [
        (
            f"start-up reconcile, {n:,} catalogued thumbnails",
            f"{_sig(t_ours)} s",
            f"scandir walk {_sig(t_walk)} s",
            f"{_sig(t_ours / t_walk)}x the walk",
            "≤3x the walk; nothing decoded",
        )
    ]


def folder_rename(n: int) -> list[Row]:
    """A folder of ``n`` catalogued thumbnails renamed under a running daemon: time until every record follows."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lib"
        root.mkdir()
        cfg = _catalog(root, n, folders=1)
        for _, rel in _paths(cfg):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).touch()
        conf = Path(tmp) / "w.yaml"
        conf.write_text("settle: 0.5\n")
        with running_daemon(root, conf, Path(tmp) / "daemon.log", start_timeout=300):
            t = time.perf_counter()
            os.rename(cfg.thumbs_dir / "tag0", cfg.thumbs_dir / "renamed")
            wait_for(lambda: _moved(cfg, "thumbs/renamed/") == n, timeout=600, interval=0.05, what="records")
            seconds = time.perf_counter() - t
    return [(f"folder of {n:,} thumbnails renamed", f"{_sig(seconds)} s until every record follows", "—", "—", "≤5 s")]


def _paths(cfg: Config) -> list[tuple[str, str]]:
    with sqlite3.connect(cfg.database_path) as con:
        return con.execute("SELECT name, path FROM listing").fetchall()


def _moved(cfg: Config, prefix: str) -> int:
    with sqlite3.connect(cfg.database_path, timeout=30) as con:
        q = "SELECT count(*) FROM listing WHERE present = 1 AND substr(path, 1, ?) = ?"
        return int(con.execute(q, (len(prefix), prefix)).fetchone()[0])


def daemon_memory(n: int) -> list[Row]:
    """RSS of ``watcherd run`` over ``n`` catalogued thumbnails: peak through start-up, then idle.

    Also gives the CLI figures at this size, on the same library.
    """
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lib"
        root.mkdir()
        cfg = _catalog(root, n)
        for _, rel in _paths(cfg):
            try:
                os.close(os.open(root / rel, os.O_CREAT | os.O_WRONLY, 0o644))
            except FileNotFoundError:
                (root / rel).parent.mkdir(parents=True)
                os.close(os.open(root / rel, os.O_CREAT | os.O_WRONLY, 0o644))
        conf = Path(tmp) / "w.yaml"
        conf.write_text("settle: 0.5\n")
        log = Path(tmp) / "daemon.log"
        with running_daemon(root, conf, log, start_timeout=1800) as daemon:
            time.sleep(5)  # the idle figure: RSS a while after the start-up scan
            status = Path(f"/proc/{daemon.pid}/status").read_text()
        mem = {
            k: int(v.split()[0]) // 1024
            for k, v in (line.split(":", 1) for line in status.splitlines())
            if k in ("VmRSS", "VmHWM")
        }
        rows = [
            (
                f"daemon RSS, {n:,} catalogued images",
                f"{mem['VmRSS']} MB idle, {mem['VmHWM']} MB peak (start-up scan and export)",
                "—",
                "—",
                "≤250 MB",
            )
        ]
        return rows + cli_latency(n, root)


def _gone(path: Path) -> bool:
    return not path.exists()


def latency(samples: int, settle: float) -> list[Row]:
    """Drop-to-thumbnail latency of a 1 MP JPEG with the daemon idle."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lib"
        root.mkdir()
        conf = Path(tmp) / "w.yaml"
        conf.write_text(f"settle: {settle}\n")
        waits = []
        with running_daemon(root, conf):
            for i in range(samples):
                data = _jpeg((1200, 800), 500 + i)
                dest = root / "thumbs" / f"{i}.jpg"
                t = time.perf_counter()
                dest.write_bytes(data)
                wait_for(functools.partial(_gone, dest), timeout=30, interval=0.005, what=f"{dest.name} ingested")
                waits.append(time.perf_counter() - t)
                time.sleep(0.3)  # the figure is for an idle daemon: let it finish the move first
    p50 = statistics.median(waits)
    return [
        (
            "drop-to-thumbnail, 1 MP JPEG, idle (p50)",
            f"{p50 * 1e3:.0f} ms",
            f"settle {settle * 1e3:.0f} ms",
            f"settle + {(p50 - settle) * 1e3:.0f} ms",
            "≤ settle + 150 ms",
        )
    ]


def _small_pngs(n: int, folder: Path) -> None:
    """``n`` small PNGs of coarse random blocks (64x48), as a burst would bring; their hashes
    differ, so each is an image of its own (a few may still collide, and are counted)."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        blocks = rng.integers(0, 256, size=(6, 8), dtype=np.uint8)
        pixels = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))
        Image.fromarray(pixels, "L").save(folder / f"s{i:05d}.png")


def _plain_loop_rate(paths: list[Path]) -> float:
    """Images per second for the plain loop (open, whash, thumbnail, save) on one core."""
    out = io.BytesIO()
    t = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            im.load()
            imagehash.whash(im, hash_size=8)
            small = im.copy()
            small.thumbnail((64, 64))
            small.save(out, format="PNG")
            out.seek(0)
    return len(paths) / (time.perf_counter() - t)


def burst(n: int) -> list[Row]:
    """``n`` small PNGs copied into the tree of a running daemon at once: files per second until
    every one is recorded and filed, against the plain decoding loop on the same files."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lib"
        (root / "thumbs").mkdir(parents=True)
        staging = Path(tmp) / "staging"
        _small_pngs(n, staging)
        files = sorted(staging.iterdir())
        loop = _plain_loop_rate(files[: min(n, 2000)])
        conf = Path(tmp) / "w.yaml"
        conf.write_text("settle: 0.5\n")
        db = root / ".watcherd" / "catalog.sqlite"
        with running_daemon(root, conf):
            dest = root / "thumbs" / "burst"
            t = time.perf_counter()
            shutil.copytree(staging, dest)
            wait_for(lambda: _filed(db) == n, timeout=3600, interval=0.5, what="every file recorded and filed")
            seconds = time.perf_counter() - t
    rate = n / seconds
    return [
        (
            f"burst of {n:,} small PNGs copied in at once (64x48), until all filed",
            f"{_sig(rate)} files/s",
            f"plain loop, 1 core: {_sig(loop)} files/s",
            f"{_sig(rate / loop)}x",
            "≥300 files/s; nothing lost",
        )
    ]


def tagfiles_cost(n: int) -> list[Row]:
    """What sidecars and ``user.xdg.tags`` cost per image: ``n`` small PNGs in 10 folders ingested in
    this process with both off, then every image's files written by the writer's own code, then
    checked again unchanged (read, merge, compare)."""
    from watcherd.filing import tagfiles
    from watcherd.fs import fsops

    with tempfile.TemporaryDirectory() as tmp:
        off = dataclasses.replace(Config(), sidecars="none", xattr_tags=False).with_root(Path(tmp) / "lib")
        _small_pngs(n, off.thumbs_dir / "staging")
        for i, path in enumerate(sorted((off.thumbs_dir / "staging").iterdir())):
            (off.thumbs_dir / f"d{i % 10}").mkdir(exist_ok=True)
            path.rename(off.thumbs_dir / f"d{i % 10}" / path.name)
        with open_for_writing(off).catalog as catalog:
            t = time.perf_counter()
            reconcile(Pipeline(off, catalog), reason="scan", settle=0)
            ingest_ms = (time.perf_counter() - t) * 1000 / n
            records = list(catalog.images())
            files = tagfiles.TagFiles(dataclasses.replace(off, sidecars="xmp", xattr_tags=True), catalog)
            t = time.perf_counter()
            for rec in records:
                files.write(rec)
            for folder in {Path(tmp) / "lib" / "originals"}:
                fsops.fsync_dir(folder)
            write_ms = (time.perf_counter() - t) * 1000 / len(records)
            t = time.perf_counter()
            for rec in records:
                files.write(rec)
            check_ms = (time.perf_counter() - t) * 1000 / len(records)
    return [
        (
            f"sidecar + user.xdg.tags of {len(records):,} images, written",
            f"{_sig(write_ms)} ms/image",
            f"ingest in one process: {_sig(ingest_ms)} ms/image",
            f"{_sig(write_ms / ingest_ms)}x",
            "—",
        ),
        (
            f"sidecar + user.xdg.tags of {len(records):,} images, already current",
            f"{_sig(check_ms)} ms/image",
            f"ingest in one process: {_sig(ingest_ms)} ms/image",
            f"{_sig(check_ms / ingest_ms)}x",
            "—",
        ),
    ]


def _filed(db: Path) -> int:
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


def adoption(n: int) -> list[Row]:
    """``n`` thumbnails of ours and no catalog (a restored backup): ``watcherd scan`` adopts them all,
    against an os.scandir walk of the same tree."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lib"
        (root / "thumbs").mkdir(parents=True)
        _small_pngs(min(n, 500), Path(tmp) / "staging")
        conf = Path(tmp) / "w.yaml"
        conf.write_text("settle: 0\n")
        # Make real thumbnails once, then copy them under made-up hashes: adoption reads
        # only the chunks, so every copy is a distinct thumbnail of ours.
        seed_root = Path(tmp) / "seed"
        shutil.copytree(Path(tmp) / "staging", seed_root / "thumbs")
        subprocess.run([sys.executable, "-m", "watcherd", "scan", str(seed_root), "-c", str(conf)], check=True)
        made = sorted((seed_root / "thumbs").glob("*_.png"))
        for i in range(n):
            src = made[i % len(made)]
            text = read_text(src.read_bytes())
            h = f"{i:016x}"
            text["hash"] = h
            text["sha256"] = hashlib.sha256(h.encode()).hexdigest()
            info = PngImagePlugin.PngInfo()
            for k, v in text.items():
                info.add_text(k, v)
            folder = root / "thumbs" / f"f{i % 100:02d}"
            folder.mkdir(exist_ok=True)
            with Image.open(src) as im:
                im.save(folder / f"{text['width']}x{text['height']}_{h}_.png", pnginfo=info)

        t_walk = _best(functools.partial(_scandir_walk, root / "thumbs"), 3)
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "watcherd", "scan", str(root), "-c", str(conf), "--json"],
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t
        counts = json.loads(out.stdout)["counts"]
        assert counts.get("adopted") == n, counts
    return [
        (
            f"adopt {n:,} thumbnails without a catalog (watcherd scan)",
            f"{_sig(seconds)} s",
            f"scandir walk {_sig(t_walk)} s",
            f"{_sig(seconds / t_walk)}x the walk",
            "≤60 s at 100k on 2 cores",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), as in CI")
    parser.add_argument("--large", action="store_true", help="also 1M-image figures (builds a 1M catalog: ~10 min)")
    args = parser.parse_args()
    if args.smoke:
        rows = near_query(20_000, 20) + ingest(2, (600, 400)) + cli_latency(500) + reconcile_startup(500)
        rows += similar_at_scale(20_000, 500, 20)
        rows += folder_rename(200) + latency(3, 0.2) + burst(200) + adoption(300)
    else:
        rows = near_query(1_000_000, 200) + near_query(10_000_000, 50) + ingest(12, (3000, 2000))
        rows += cli_latency(100_000) + reconcile_startup(100_000) + folder_rename(10_000) + latency(15, 0.5)
        rows += burst(20_000) + adoption(100_000)
        rows += similar_at_scale(1_000_000, 20_000, 200) + similar_at_scale(30_000_000, 20_000, 200)
        if args.large:
            rows += daemon_memory(1_000_000)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| figure | watcherd | baseline (same run) | ratio | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
