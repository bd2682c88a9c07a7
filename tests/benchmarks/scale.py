"""Every question instant at a million images (issue 21): each figure beside a baseline from the same run.

    python -m tests.benchmarks.scale                       # 1M and 3M images, the 30M projection
    python -m tests.benchmarks.scale --sizes 1000000       # one size
    python -m tests.benchmarks.scale --smoke               # tiny sizes, seconds

For each size a library is made up (records written as JSON, the derived tables made
from them as an upgrade would, no image files): 3% of its images are near copies of
another (1 to 3 bits apart), 0.1% are low-information, 2% are missing; tags ``f00`` ..
``f19`` (one twentieth each, the folders), ``sixth`` (one sixth, never with ``f00``),
``tag0`` .. ``tag6`` and the size tag; original file names ``IMG_0000123.JPG``,
``holiday 123.jpeg`` and ``Straße 123.png``. Commands are timed as whole processes
(best of three, peak RSS of the process), beside ``python -c pass``. Where a 30M
library does not fit the machine, the 30M figure is projected from the 1M and 3M
ones, linearly in the library's size. Then the bookkeeping rows: a burst of small PNGs
into a running daemon beside the plain one-core decode+hash+thumbnail loop, adoption
and rescan of 100k thumbnails beside a stat walk of the same tree, and a folder of 10k
thumbnails renamed under a running daemon.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.benchmarks.bench import burst, folder_rename
from tests.benchmarks.timing import Row, best, scandir_walk, sig, timed_process
from watcherd.catalog import Catalog
from watcherd.catalog.schema import create_tables
from watcherd.core.config import Config
from watcherd.near.builder import build
from watcherd.near.groups import pair_round
from watcherd.near.reader import index_path

TAG_A, TAG_B = "f00", "sixth"  # one twentieth and one sixth of the library; never together


def made_up_exif(i: int) -> dict[str, object]:
    """What image ``i``'s record keeps of its EXIF (``core.exif.Exif``): two in three from a camera."""
    if i % 3 == 2:
        return {"count": 0, "fields": {}}
    fields = {
        "Make": "Canon" if i % 3 else "NIKON CORPORATION",
        "Model": "Canon EOS 80D" if i % 3 else "NIKON D750",
        "DateTimeOriginal": f"2021:05:{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:{i * 7 % 60:02d}",
        "DateTime": "2021:06:01 00:00:00",
    }
    return {"count": 10 + i % 20, "fields": fields}


def _member_thumbnails(root: Path, names: list[str]) -> int:
    """A thumbnail on disk for each of ``names``, its chunks what its record says (a library as it is:
    a near listing reads them when the records keep no EXIF); how many were written."""
    from PIL import Image, PngImagePlugin

    picture = Image.new("RGB", (64, 64), "gray")
    with sqlite3.connect(Config().with_root(root).database_path) as con:
        rows = con.execute(
            "SELECT value FROM images WHERE key IN (SELECT value FROM json_each(?))", (json.dumps(names),)
        ).fetchall()
    for (value,) in rows:
        rec = json.loads(value)
        fields = dict(rec["exif"]["fields"])
        fields.update({f"Other{k}": "1" for k in range(rec["exif"]["count"] - len(fields))})
        info = PngImagePlugin.PngInfo()
        for key, text in (
            ("width", "64"),
            ("height", "64"),
            ("file_size", str(rec["file_size"])),
            ("sha256", rec["sha256"]),
            ("software", "watcherd"),
            ("exif", json.dumps(fields)),
        ):
            info.add_text(key, text)
        path = root / rec["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path, pnginfo=info)
    return len(rows)


def make_library(root: Path, n: int, seed: int = 21) -> dict[str, float]:
    """A made-up library of ``n`` records at ``root``; seconds spent writing and deriving."""
    cfg = Config().with_root(root)
    cfg.database_path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    near = (np.arange(n) % 100 < 3) & (np.arange(n) >= 100)
    flips = rng.integers(0, 64, size=(n, 3)).astype(np.uint64)
    how_many = rng.integers(1, 4, size=n)
    copies = hashes[np.maximum(np.arange(n) - 50, 0)]
    for k in range(3):
        copies ^= np.where(how_many > k, np.uint64(1) << flips[:, k], np.uint64(0))
    hashes = np.where(near, copies, hashes)
    t = time.perf_counter()
    conn = sqlite3.connect(cfg.database_path, isolation_level=None)
    create_tables(conn)
    conn.execute("BEGIN")
    names = ["IMG_{:07d}.JPG", "IMG_{:07d}.JPG", "IMG_{:07d}.JPG", "holiday {}.jpeg", "Straße {}.png"]
    seen: set[str] = set()
    for start in range(0, n, 50_000):
        rows = []
        for i in range(start, min(n, start + 50_000)):
            h = f"{int(hashes[i]):016x}"
            name = f"64x64_{h}_.png"
            if name in seen:
                continue
            seen.add(name)
            folder = f"f{i % 20:02d}"
            tags = [folder, f"tag{i % 7}", *(["sixth"] if i % 6 == 1 else []), "64x64"]
            record = {
                "name": name,
                "hash": h,
                "algorithm": "whash",
                "hash_size": 8,
                "decode": "reference",
                "width": 64,
                "height": 64,
                "format": "JPEG",
                "sha256": f"{i:064x}",
                "file_size": 1000 + i % 5000,
                "original_filename": names[i % 5].format(i),
                "tags": tags,
                "path": f"thumbs/{folder}/{name}",
                "original": f"originals/{name[:-4]}.jpg",
                "moving_from": None,
                "source": False,
                "low_information": i % 997 == 5,
                "state": "missing" if i % 50 == 7 else "present",
                "first_seen": f"2024-01-01T00:00:{i % 60:02d}+00:00",
                "last_seen": "2024-01-01T00:00:00+00:00",
                "exif": made_up_exif(i),
            }
            rows.append((name, json.dumps(record, sort_keys=True, ensure_ascii=True)))
        conn.executemany("INSERT INTO images (key, value) VALUES (?, ?)", rows)
    library = {"algorithm": "whash", "hash_size": 8, "decode": "reference", "created_by": "watcherd"}
    conn.execute("INSERT INTO meta (key, value) VALUES ('library', ?)", (json.dumps(library),))
    conn.execute("COMMIT")
    conn.close()
    written = time.perf_counter() - t
    t = time.perf_counter()
    Catalog(cfg.database_path).close()  # derives every table from the records, as an upgrade does
    return {"written": written, "derived": time.perf_counter() - t}


def _groups(root: Path, radius: int) -> list[str]:
    return sorted(g["id"] for g in _listing(root, radius) if g["kind"] == "near")


def _listing(root: Path, radius: int = 4) -> list[dict[str, Any]]:
    """What ``dupes --near RADIUS --json`` prints, as a process."""
    out = subprocess.run(
        [sys.executable, "-m", "watcherd", "dupes", str(root), "--near", str(radius), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(out.stdout))


def _per_image_queries(root: Path, sample: int) -> float:
    """Seconds the previous ``dupes --near 4`` would spend: one index query per image, ``sample``
    timed, scaled to the library."""
    from watcherd.near.persisted import NearStore

    cfg = Config().with_root(root)
    with NearStore.open(index_path(cfg.state_dir), cfg.database_path) as store:
        present = store.present(skip_low=True)
        picks = np.random.default_rng(3).integers(0, len(present), size=min(sample, len(present)))
        t = time.perf_counter()
        for i in picks.tolist():
            present.query(int(present.hashes[i]), 4)
        return (time.perf_counter() - t) * len(present) / max(len(picks), 1)


def _unpaired(root: Path) -> None:
    """A library made before: its pairs and index dropped, as a catalog just upgraded has none."""
    from watcherd.catalog import pairs

    cfg = Config().with_root(root)
    index_path(cfg.state_dir).unlink(missing_ok=True)
    catalog = Catalog(cfg.database_path)
    try:
        with catalog.transaction():
            pairs.clear(catalog.conn)
            pairs.reset(catalog.conn)
    finally:
        catalog.close()


def library_rows(n: int, repeat: int = 3, reuse: Path | None = None) -> tuple[list[Row], dict[str, float]]:
    """The questions asked of a library of ``n`` images; the rows, and the figures to project.
    With ``reuse``, the library made there by an earlier run (its pairs dropped) is asked again."""
    rows: list[Row] = []
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("WATCHERD_BENCH_DIR")) as tmp:
        root = reuse if reuse is not None else Path(tmp) / "lib"
        if reuse is not None and (root / ".watcherd" / "catalog.sqlite").exists():
            _unpaired(root)
            made = {"derived": float("nan")}
        else:
            (root / "thumbs").mkdir(parents=True, exist_ok=True)
            made = make_library(root, n)
        cfg = Config().with_root(root)
        base, _ = timed_process([sys.executable, "-c", "pass"], repeat)
        py = f"python -c pass {sig(base * 1e3)} ms"
        rows.append((f"catalog derived from {n:,} records (an upgrade)", f"{sig(made['derived'])} s", "—", "—", "once"))

        def process(label: str, args: list[str], target: str, key: str) -> None:
            t, rss = timed_process([sys.executable, "-m", "watcherd", *args], repeat)
            figures[key], figures[key + " rss"] = t, rss
            rows.append((label, f"{sig(t * 1e3)} ms, peak RSS {sig(rss)} MB", py, f"{sig(t / base)}x", target))

        # Nothing paired yet (a catalog just upgraded): a reader computes every pair in bulk.
        computed = _groups(root, 4)
        process(
            f"`dupes --near 4`, {n:,} images, computed (bulk self-join)",
            ["dupes", str(root), "--near", "4", "--json"],
            "≤5 s and ≤1 GB at 1M",
            "dupes computed",
        )
        t = time.perf_counter()
        build(index_path(cfg.state_dir), cfg.database_path)
        index_s = time.perf_counter() - t
        before = _per_image_queries(root, 20_000)
        figures["per-image"] = before
        rows.append(
            (
                f"`dupes --near 4` the previous way (one index query per image), {n:,} images",
                f"{sig(before)} s (20,000 queries timed, scaled)",
                "—",
                f"computed now: {sig(before / figures['dupes computed'])}x faster",
                "—",
            )
        )
        catalog = Catalog(cfg.database_path)
        try:
            t = time.perf_counter()
            paired = pair_round(catalog, index_path(cfg.state_dir))
            pairs_s = time.perf_counter() - t
            (kept,) = catalog.conn.execute("SELECT count(*) FROM near_pairs").fetchone()
        finally:
            catalog.close()
        figures["pairs"] = pairs_s
        rows.append(
            (
                f"first pairing of {paired:,} images (bulk self-join, r≤5), index build",
                f"{sig(pairs_s)} s ({kept:,} pairs); index {sig(index_s)} s",
                "—",
                "—",
                "once",
            )
        )
        read = _groups(root, 4)
        assert read == computed, "kept groups differ from the computed ones"
        process(
            f"`dupes --near 4`, {n:,} images, groups kept ({len(read):,} groups)",
            ["dupes", str(root), "--near", "4", "--json"],
            "≤0.2 s at 1M",
            "dupes read",
        )
        process(
            f"`dupes --near 4 --limit 100` (first 100 of {len(read):,} groups), {n:,} images",
            ["dupes", str(root), "--near", "4", "--limit", "100", "--json"],
            "≤0.2 s at 1M",
            "dupes first 100",
        )
        # The same listing with each member's thumbnail on disk, as in a library: its records keep
        # what the keeper rule reads of EXIF, then (the baseline) they do not and it is read from
        # the thumbnails, as for records from before it was kept. The two listings are the same.
        written = _member_thumbnails(root, [name for group in _listing(root) for name in group["names"]])
        process(
            f"`dupes --near 4`, whole listing, {written:,} thumbnails on disk, records keep EXIF",
            ["dupes", str(root), "--near", "4", "--json"],
            "≤0.2 s at 1M",
            "dupes read, thumbnails there",
        )
        kept_exif = _listing(root)
        with sqlite3.connect(cfg.database_path) as con:
            con.execute("UPDATE images SET value = json_remove(value, '$.exif')")
        process(
            f"`dupes --near 4`, whole listing, {written:,} thumbnails on disk, records from before EXIF was kept",
            ["dupes", str(root), "--near", "4", "--json"],
            "— (the thumbnails are read: the baseline)",
            "dupes read, thumbnails read",
        )
        assert _listing(root) == kept_exif, "records' EXIF and thumbnails' give other listings"
        rows.append(
            (
                "whole listing: records keep EXIF, against thumbnails read",
                f"{sig(figures['dupes read, thumbnails there'] * 1e3)} ms",
                f"{sig(figures['dupes read, thumbnails read'] * 1e3)} ms",
                f"{sig(figures['dupes read, thumbnails read'] / figures['dupes read, thumbnails there'])}x faster",
                "—",
            )
        )
        r = str(root)
        process(
            f"`find --tag {TAG_A} --tag {TAG_B}` ({n // 20:,} and {n // 6:,} images, none in both)",
            ["find", r, "--tag", TAG_A, "--tag", TAG_B, "--json"],
            "≤150 ms at 1M",
            "find two tags",
        )
        process(
            f"`find --filename 'img_00123*'`, {n:,} images",
            ["find", r, "--filename", "img_00123*", "--json"],
            "≤150 ms at 1M",
            "find prefix",
        )
        process(
            f"`find --filename '*oliday 1234*'`, {n:,} images",
            ["find", r, "--filename", "*oliday 1234*", "--json"],
            "≤150 ms at 1M",
            "find infix",
        )
        process(
            f"`find --tag {TAG_A} --limit 100` (first 100 of {n // 20:,})",
            ["find", r, "--tag", TAG_A, "--limit", "100", "--json"],
            "≤150 ms at 1M",
            "find first 100",
        )
        process(
            f"`find --any tag1 --any tag2 --not {TAG_B} --limit 100`, {n:,} images",
            ["find", r, "--any", "tag1", "--any", "tag2", "--not", TAG_B, "--limit", "100", "--json"],
            "≤150 ms at 1M",
            "find any first 100",
        )
        process(
            f"`find --tag {TAG_A}` (all {n // 20:,}, streamed JSON)",
            ["find", r, "--tag", TAG_A, "--json"],
            "—",
            "find all of a tag",
        )
        size = sum(f.stat().st_size for f in cfg.database_path.parent.iterdir() if f.is_file())
        rows.append((f"catalog size, {n:,} images", f"{sig(size / 2**20)} MB", "—", "—", "—"))
    return rows, figures


def projection(small: int, big: int, at_small: dict[str, float], at_big: dict[str, float], to: int) -> list[Row]:
    """Each figure at ``to`` images, straight on from the ones at ``small`` and ``big``."""
    rows: list[Row] = []
    for key, v1 in at_small.items():
        v2 = at_big.get(key)
        if v2 is None:
            continue
        guess = v2 + (v2 - v1) * (to - big) / (big - small)
        unit = "MB" if key.endswith("rss") else "s"
        rows.append(
            (
                f"{key}, projected to {to:,} images",
                f"{sig(max(guess, v2))} {unit}",
                f"{sig(v1)} {unit} at {small:,}, {sig(v2)} {unit} at {big:,}",
                "linear in size",
                "—",
            )
        )
    return rows


def adoption_and_rescan(n: int) -> list[Row]:
    """``n`` thumbnails of ours and no catalog: ``watcherd scan`` adopts them; then scans again
    with the catalog current. Both whole processes, beside a stat walk of the tree."""
    from tests.benchmarks.timing import made_up_thumbnails

    with tempfile.TemporaryDirectory(dir=os.environ.get("WATCHERD_BENCH_DIR")) as tmp:
        # Random hashes: consecutive numbers as hashes (0, 1, 2, ...) would make every
        # thumbnail a near-duplicate of thousands of others, as no library of pictures is.
        hashes = np.random.default_rng(11).integers(0, 2**64, size=n, dtype=np.uint64)
        root, conf = made_up_thumbnails(Path(tmp), [f"{int(h):016x}" for h in hashes], 200)
        walk = best(functools.partial(scandir_walk, root / "thumbs", stat=True), 3)
        scan = [sys.executable, "-m", "watcherd", "scan", str(root), "-c", str(conf), "--json"]
        t = time.perf_counter()
        out = subprocess.run(scan, check=True, capture_output=True, text=True)
        adopt = time.perf_counter() - t
        assert json.loads(out.stdout)["counts"].get("adopted") == n, out.stdout
        rescan = best(lambda: subprocess.run(scan, check=True, capture_output=True), 3)
    return [
        (
            f"adopt {n:,} thumbnails without a catalog (`watcherd scan`, whole process)",
            f"{sig(adopt)} s",
            f"stat walk {sig(walk)} s",
            f"{sig(adopt / walk)}x the walk",
            "≤100x the walk",
        ),
        (
            f"rescan of {n:,} with the catalog current (`watcherd scan`, whole process)",
            f"{sig(rescan)} s",
            f"stat walk {sig(walk)} s",
            f"{sig(rescan / walk)}x the walk",
            "≤2x the walk",
        ),
    ]


def crop_links_round(n: int, waiting: int = 20) -> list[Row]:
    """What keeping crop links costs the writer per image at ``n`` images: ``croplinks.links_of``
    (each waiting image's windows against every image's) on made-up window hashes, beside
    one query of the names' index for the same images (the whole-picture pairs' cost)."""
    from watcherd.core.crops import HEX
    from watcherd.near.croplinks import links_of
    from watcherd.near.persisted import Tables

    rng = np.random.default_rng(22)
    asks = rng.integers(0, 2**64, size=(n, HEX), dtype=np.uint64)
    which = rng.choice(n, size=waiting, replace=False).tolist()
    links_of(asks, which[:1])  # the pages touched once
    t = time.perf_counter()
    links_of(asks, which)
    links = time.perf_counter() - t
    wholes = np.ascontiguousarray(asks[:, 0])
    table = Tables.build(None, 0, np.arange(n, dtype=np.int64), wholes, np.zeros(n, bool))
    t = time.perf_counter()
    table.search_many(wholes[which], 5)
    names = time.perf_counter() - t
    return [
        (
            f"crop links of {waiting} waiting images among {n:,} (a pairing round's share, per image)",
            f"{sig(links / waiting * 1e3)} ms",
            f"names' index query {sig(names / waiting * 1e3)} ms",
            f"{sig(links / max(names, 1e-9))}x",
            "— (linear in the library: see docs/benchmarks.md)",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--sizes", type=int, nargs="*", help="library sizes (default 1000000 3000000)")
    parser.add_argument("--no-bookkeeping", action="store_true", help="only the library questions")
    parser.add_argument("--reuse", type=Path, help="keep each size's library under this folder, and reuse it")
    args = parser.parse_args()
    sizes = args.sizes or ([3_000, 9_000] if args.smoke else [1_000_000, 3_000_000])
    rows: list[Row] = []
    figures: dict[int, dict[str, float]] = {}
    for n in sizes:
        reuse = args.reuse / f"lib{n}" if args.reuse is not None else None
        got, figures[n] = library_rows(n, repeat=1 if args.smoke else 3, reuse=reuse)
        rows += got
        print(f"done {n:,}", file=sys.stderr, flush=True)
    if len(sizes) >= 2:
        rows += projection(sizes[-2], sizes[-1], figures[sizes[-2]], figures[sizes[-1]], 30_000_000)
    if not args.no_bookkeeping:
        small = args.smoke
        rows += burst(200 if small else 5_000)
        rows += adoption_and_rescan(300 if small else 100_000)
        rows += folder_rename(200 if small else 10_000)
        rows += crop_links_round(3_000 if small else max(sizes))
    print("| figure | watcherd | baseline (same run) | ratio | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
