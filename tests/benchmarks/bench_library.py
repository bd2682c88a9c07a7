"""The library's bookkeeping: CLI answers, start-up scans, a renamed folder, the daemon's
memory, sidecars, adoption.

Run through ``python -m tests.benchmarks.bench`` (the whole table).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.benchmarks.timing import (
    Row,
    best,
    catalog_paths,
    made_up_thumbnails,
    make_catalog,
    scandir_walk,
    sig,
    small_pngs,
)
from tests.helpers import running_daemon, table, wait_for
from watcherd.catalog import open_for_writing
from watcherd.core.config import Config
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile


def cli_latency(n: int, root: Path | None = None) -> list[Row]:
    """End-to-end CLI processes on a catalog of ``n`` images vs ``python -c pass``."""
    with tempfile.TemporaryDirectory() as tmp:
        if root is None:
            root = Path(tmp)
            make_catalog(root, n)

        def run(*args: str) -> float:
            return best(lambda: subprocess.run([sys.executable, *args], capture_output=True, check=True), 3)

        base = run("-c", "pass")
        rows = []
        name = catalog_paths(Config().with_root(root))[0][0]
        for args in (["status"], ["tags"], ["find", "--tag", "tag3"], ["similar", name]):
            t = run("-m", "watcherd", args[0], str(root), *args[1:], "--json")
            rows.append(
                (
                    f"`{' '.join(args)}` with {n:,} images",
                    f"{sig(t * 1e3)} ms",
                    f"python -c pass {sig(base * 1e3)} ms",
                    f"{sig(t / base)}x",
                    "≤300 ms at 100k, ≤1 s at 1M" if args[0] != "similar" else "—",
                )
            )
        return rows


def reconcile_startup(n: int) -> list[Row]:
    """Start-up reconcile of ``n`` catalogued canonical thumbnails vs an os.scandir walk."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = make_catalog(root, n)
        for rec in table(cfg.database_path, "images"):
            p = root / rec["path"]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()

        t_walk = best(functools.partial(scandir_walk, cfg.thumbs_dir), 3)
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
            f"{sig(t_ours)} s",
            f"scandir walk {sig(t_walk)} s",
            f"{sig(t_ours / t_walk)}x the walk",
            "≤3x the walk; nothing decoded",
        )
    ]


def folder_rename(n: int) -> list[Row]:
    """A folder of ``n`` catalogued thumbnails renamed under a running daemon: time until every record follows."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lib"
        root.mkdir()
        cfg = make_catalog(root, n, folders=1, windows=True)  # as a real library has them since issue 22
        for _, rel in catalog_paths(cfg):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).touch()
        conf = Path(tmp) / "w.yaml"
        conf.write_text("settle: 0.5\n")
        with running_daemon(root, conf, Path(tmp) / "daemon.log", start_timeout=300):
            t = time.perf_counter()
            os.rename(cfg.thumbs_dir / "tag0", cfg.thumbs_dir / "renamed")
            wait_for(lambda: _moved(cfg, "thumbs/renamed/") == n, timeout=600, interval=0.05, what="records")
            seconds = time.perf_counter() - t
    return [
        (
            f"folder of {n:,} thumbnails renamed",
            f"{sig(seconds)} s until every record follows",
            "—",
            "—",
            "≤1 s (issue 21)",
        )
    ]


def rename_statements(n: int) -> list[Row]:
    """Where a renamed folder's write goes: ``n`` records with window hashes moved to another
    folder (their new tag added), written as ``Catalog.put_images`` writes a set, each step
    timed on its own, in process."""
    from watcherd.catalog import Catalog, batch
    from watcherd.catalog.reads import encode

    with tempfile.TemporaryDirectory(dir=os.environ.get("WATCHERD_BENCH_DIR")) as tmp:
        cfg = make_catalog(Path(tmp), n, folders=1, windows=True)
        catalog = Catalog(cfg.database_path)
        try:
            records = list(catalog.images())
            for rec in records:
                rec.place_at(rec.path.replace("thumbs/tag0/", "thumbs/renamed/"), keep_others=False)
                rec.tags = [*rec.tags, "renamed"]
            steps: list[tuple[str, float]] = []
            t = time.perf_counter()
            values = [(r.name, encode(r.to_json())) for r in records]
            staged = [(*v, *batch.staged_integers(r.hash, r.crops)) for v, r in zip(values, records, strict=True)]
            steps.append(("records encoded", time.perf_counter() - t))
            conn = catalog.conn
            with catalog.transaction():
                t = time.perf_counter()
                conn.executemany(batch.STAGE, staged)
                steps.append(("staged", time.perf_counter() - t))
                t = time.perf_counter()
                conn.executemany('INSERT OR REPLACE INTO "images" (key, value) VALUES (?, ?)', values)
                steps.append(("`images` rows", time.perf_counter() - t))
                for sql in batch.STATEMENTS:
                    t = time.perf_counter()
                    conn.execute(sql)
                    steps.append((f"`{' '.join(sql.split()[:3])}`", time.perf_counter() - t))
                conn.execute("DELETE FROM derive_staged")
                t = time.perf_counter()
            steps.append(("commit", time.perf_counter() - t))
        finally:
            catalog.close()
    head = f"{n:,} moved records with window hashes:"
    return [(f"{head} {what}", f"{sig(seconds * 1e3)} ms", "—", "—", "—") for what, seconds in steps]


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
        cfg = make_catalog(root, n)
        for _, rel in catalog_paths(cfg):
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


def tagfiles_cost(n: int) -> list[Row]:
    """What sidecars and ``user.xdg.tags`` cost per image: ``n`` small PNGs in 10 folders ingested in
    this process with both off, then every image's files written by the writer's own code, then
    checked again unchanged (read, merge, compare)."""
    from watcherd.filing import tagfiles
    from watcherd.fs import fsops

    with tempfile.TemporaryDirectory() as tmp:
        off = dataclasses.replace(Config(), sidecars="none", xattr_tags=False).with_root(Path(tmp) / "lib")
        small_pngs(n, off.thumbs_dir / "staging")
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
            f"{sig(write_ms)} ms/image",
            f"ingest in one process: {sig(ingest_ms)} ms/image",
            f"{sig(write_ms / ingest_ms)}x",
            "—",
        ),
        (
            f"sidecar + user.xdg.tags of {len(records):,} images, already current",
            f"{sig(check_ms)} ms/image",
            f"ingest in one process: {sig(ingest_ms)} ms/image",
            f"{sig(check_ms / ingest_ms)}x",
            "—",
        ),
    ]


def adoption(n: int) -> list[Row]:
    """``n`` thumbnails of ours and no catalog (a restored backup): ``watcherd scan`` adopts them all,
    against an os.scandir walk of the same tree."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("WATCHERD_BENCH_DIR")) as tmp:
        # Random hashes, as scale.adoption_and_rescan: consecutive numbers (0, 1, 2, ...) make
        # every thumbnail a near-duplicate of thousands of others, and the first pairing of
        # 100,000 such took 160 s of a 200 s adoption on 2026-12-07; no library of pictures is so.
        hashes = np.random.default_rng(11).integers(0, 2**64, size=n, dtype=np.uint64)
        root, conf = made_up_thumbnails(Path(tmp), [f"{int(h):016x}" for h in hashes], 500)
        t_walk = best(functools.partial(scandir_walk, root / "thumbs", stat=True), 3)
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
            f"{sig(seconds)} s",
            f"stat walk {sig(t_walk)} s",
            f"{sig(seconds / t_walk)}x the walk",
            "≤100x the walk",
        )
    ]


def window_fill(n: int) -> list[Row]:
    """``n`` small images catalogued, then their records written as an older watcherd left them (no
    window hashes): the time until every one has them again, given by ``watcherd scan`` (a whole
    process) and by the daemon (from its start: its start-up scan, then its idle fill)."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("WATCHERD_BENCH_DIR")) as tmp:
        root = Path(tmp) / "lib"
        small_pngs(n, root / "thumbs" / "x")
        subprocess.run([sys.executable, "-m", "watcherd", "scan", str(root)], check=True, capture_output=True)
        db = root / ".watcherd" / "catalog.sqlite"

        def without_windows() -> None:  # whole rows written again, as sqlitedict writes them
            with sqlite3.connect(db) as con:
                con.execute(
                    "INSERT OR REPLACE INTO images (key, value) SELECT key, json_remove(value, '$.crops') FROM images"
                )
                con.execute("DELETE FROM meta WHERE key = 'windowless'")

        def windowed() -> int:
            with sqlite3.connect(db, timeout=30) as con:
                return int(con.execute("SELECT count(*) FROM crop_hashes WHERE slot = 0 AND present = 1").fetchone()[0])

        without_windows()
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "watcherd", "scan", str(root)], check=True, capture_output=True)
        by_scan = time.perf_counter() - t
        assert windowed() == n
        without_windows()
        conf = Path(tmp) / "w.yaml"
        conf.write_text("settle: 0.5\n")
        t = time.perf_counter()
        with running_daemon(root, conf, Path(tmp) / "daemon.log", start_timeout=300):
            wait_for(lambda: windowed() == n, timeout=600, interval=0.05, what="window hashes")
            by_daemon = time.perf_counter() - t
    return [
        (
            f"window hashes given to {n:,} images catalogued without them, by the daemon from its start",
            f"{sig(by_daemon)} s",
            f"watcherd scan {sig(by_scan)} s",
            f"{sig(by_daemon / by_scan)}x",
            "—",
        )
    ]
