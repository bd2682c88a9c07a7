"""Cluster scan figures: 1 and 2 LocalCluster workers against a local scan of the same files,
the writer's ceiling when decoding is free, and a projection for 30 M images.

    python -m tests.benchmarks.cluster_bench
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from tests.benchmarks.corpus import jpeg, photo
from tests.benchmarks.timing import sig
from watcherd.catalog import open_for_writing
from watcherd.core.config import ClusterConfig, Config
from watcherd.decode import imaging
from watcherd.decode.cluster import quiet
from watcherd.decode.newimage import Fetched, spec_for
from watcherd.flow.pipeline import Pipeline
from watcherd.run.scan import scan_once

Row = tuple[str, str, str, str, str]
ARCHIVE = 30_000_000


def _library(root: Path, corpus: list[bytes]) -> Path:
    for i, data in enumerate(corpus):
        p = root / "thumbs" / f"f{i % 4}" / f"{i:05d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (1_600_000_000, 1_600_000_000))
    return root


def _cfg(root: Path, workers: int = 0) -> Config:
    return dataclasses.replace(Config(), settle=0.0, workers=workers, cluster=ClusterConfig(batch_files=8)).with_root(
        root
    )


def _scan_rate(root: Path, count: int, cluster: str | None, workers: int = 0) -> float:
    report = scan_once(_cfg(root, workers), cluster=cluster)
    assert report.counts.get("ingested", 0) + report.counts.get("collision", 0) == count, report.counts
    return count / report.seconds


class _PreRendered:
    """A remote whose answers are ready: the writer alone is measured."""

    def __init__(self, answers: dict[Path, Fetched]) -> None:
        self.answers = answers
        self.lookahead = 64

    def submit(self, path: Path) -> _PreRendered._Ready:
        return self._Ready(self.answers[path])

    class _Ready:
        def __init__(self, fetched: Fetched) -> None:
            self.fetched = fetched

        def result(self) -> Fetched:
            return self.fetched

        def cancel(self) -> None:
            pass


def writer_ceiling(tmp: Path, count: int) -> float:
    """Images/s the writer publishes, records and files when every decode is already done."""
    root = _library(tmp / "ceiling", [jpeg(photo((600, 400), seed=i), 90) for i in range(count)])
    cfg = _cfg(root)
    spec = spec_for(cfg)
    paths = sorted((root / "thumbs").rglob("*.jpg"))
    answers = {}
    for p in paths:
        st = p.stat()
        data = p.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        answers[p] = Fetched((st.st_size, st.st_mtime_ns), sha, imaging.render(data, spec, p.name, sha, 0.0))
    catalog = open_for_writing(cfg).catalog
    try:
        pipeline = Pipeline(cfg, catalog, remote=_PreRendered(answers))
        t = time.perf_counter()
        done = sum(1 for r in pipeline.process_all(paths) if r.name)
        seconds = time.perf_counter() - t
    finally:
        catalog.close()
    assert done == count
    return count / seconds


def cluster_scan(count: int, size: tuple[int, int] = (3000, 2000), ceiling_count: int = 1000) -> list[Row]:
    """Rows: local scan, cluster scans on 1 and 2 workers, the writer's ceiling, the 30 M projection."""
    from distributed import LocalCluster

    quiet()
    logging.getLogger("watcherd").setLevel(logging.WARNING)
    corpus = [jpeg(photo(size, seed=i), 90) for i in range(count)]
    cores = len(os.sched_getaffinity(0))
    mp = size[0] * size[1] / 1e6
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        base = _library(tmp / "base", corpus)
        warm = _library(tmp / "warm", [jpeg(photo((300, 200), seed=99), 90)])
        local = _scan_rate(Path(shutil.copytree(base, tmp / "local")), count, None, cores)
        for n in (1, 2):
            with LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
            ) as cluster:
                address = str(cluster.scheduler_address)
                scan_once(_cfg(warm), cluster=address)  # each worker's sandbox starts untimed
                shutil.rmtree(warm / ".watcherd")
                rates[n] = _scan_rate(Path(shutil.copytree(base, tmp / f"cluster{n}")), count, address)
        ceiling = writer_ceiling(tmp, ceiling_count)
    label = f"{sig(mp)} MP JPEG q90, {count} files"
    rows: list[Row] = [
        (f"scan, {label}, local ({cores} decoder processes)", f"{sig(local)} img/s", "—", "—", "baseline"),
    ]
    for n, rate in rates.items():
        rows.append(
            (
                f"scan --cluster, {label}, {n} worker{'s' if n > 1 else ''} (LocalCluster, 1 thread each)",
                f"{sig(rate)} img/s",
                f"local scan {sig(local)} img/s",
                f"{sig(rate / local)}x; {sig(rate / n / rates[1] * 100)}% per-worker efficiency",
                "—",
            )
        )
    share = (1 / ceiling) / (1 / rates[max(rates)])
    rows.append(
        (
            "writer's ceiling: publish + record + file, decoding done (600x400 JPEG)",
            f"{sig(ceiling)} img/s",
            f"cluster scan, {max(rates)} workers: {sig(rates[max(rates)])} img/s",
            f"writer's share {sig(share * 100)}% of the scan's time",
            "—",
        )
    )
    per_worker = rates[1]
    cap = ceiling / per_worker
    plans = []
    for n in (1, 8, 32, 128):
        rate = min(n * per_worker, ceiling)
        plans.append(f"N={n}: {sig(ARCHIVE / rate / 86400)} d")
    rows.append(
        (
            f"projection, {ARCHIVE // 1_000_000} M images like these on N one-core workers",
            "; ".join(plans),
            f"{sig(per_worker)} img/s per worker, writer ceiling {sig(ceiling)} img/s",
            f"the writer caps it at N ≈ {cap:.0f}",
            "—",
        )
    )
    return rows


if __name__ == "__main__":
    for row in cluster_scan(48):
        print("| " + " | ".join(row) + " |")
