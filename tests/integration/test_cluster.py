"""``scan --cluster`` on a real LocalCluster of worker processes (nannies included) on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_support import copy_library, library_facts, make_library, needs_distributed
from tests.helpers import table, wait_for
from tests.integration.test_daemon import Running
from watcherd.catalog import open_for_writing
from watcherd.core.config import ClusterConfig, Config
from watcherd.decode import remote
from watcherd.decode.cluster import KILLED, ClusterDecoder, connect
from watcherd.decode.rendered import RenderSpec
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile
from watcherd.run.scan import scan_once

pytestmark = [needs_distributed, pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """distributed keeps its event loop and offload threads for the life of the process."""
    yield


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """Two single-threaded worker processes under nannies; a task that kills two workers is given up."""
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # a free port: 8787, the default, may be anyone's
            silence_logs=50,
        ) as cluster,
    ):
        yield str(cluster.scheduler_address)


def lib_config(library: Path, **cluster: Any) -> Config:
    return dataclasses.replace(Config(), settle=0.0, cluster=ClusterConfig(**cluster)).with_root(library)


def test_a_cluster_scan_matches_a_local_scan(scheduler: str, tmp_path: Path) -> None:
    make_library(tmp_path / "here")
    copy_library(tmp_path / "here", tmp_path / "there")
    local = scan_once(lib_config(tmp_path / "here"))
    # Small batches and few in flight: several batches, the writer waiting on some of them.
    remote_report = scan_once(lib_config(tmp_path / "there", batch_files=4, in_flight=2), cluster=scheduler)
    assert remote_report.counts == local.counts
    assert remote_report.counts["ingested"] == 25 and remote_report.counts["collision"] == 1
    there = library_facts(tmp_path / "there")
    assert there == library_facts(tmp_path / "here")
    assert [path for path, _ in there["errors"]] == ["thumbs/cats/broken.jpg"]


def test_workers_see_the_library_under_cluster_root(scheduler: str, tmp_path: Path) -> None:
    make_library(tmp_path / "lib", n=6)
    (tmp_path / "mnt").symlink_to(tmp_path / "lib")  # the share as the workers mount it
    cfg = lib_config(tmp_path / "lib", root=str(tmp_path / "mnt"), batch_files=2)
    conn = connect(scheduler, 1)
    catalog = open_for_writing(cfg).catalog
    try:
        pipeline = Pipeline(cfg, catalog, remote=ClusterDecoder(conn, cfg))
        report = reconcile(pipeline, reason="scan", settle=0.0)
    finally:
        catalog.close()
        conn.close()
    assert report.counts["ingested"] == 7
    assert pipeline.decoder.remote_used == 8  # every picture (the collision too) decoded on a worker


def kill_on_poison(paths: list[str], spec: RenderSpec, limits: remote.Limits, now: float) -> Any:
    """A task that kills its worker process (not just the sandbox) when a batch holds a poisoned file."""
    if any("poison" in p for p in paths):
        os.kill(os.getpid(), signal.SIGKILL)
    return remote.decode_batch(paths, spec, limits, now)


def test_a_file_that_kills_workers_is_decoded_here_in_the_sandbox_and_the_rest_on_the_cluster(
    scheduler: str, tmp_path: Path
) -> None:
    make_library(tmp_path / "lib", n=6)
    cats = tmp_path / "lib" / "thumbs" / "cats"
    (cats / "pic000.png").rename(cats / "poison.png")  # a picture whose batches kill their worker
    (cats / "poison-bytes.jpg").write_bytes(b"no picture, and it kills workers too")
    cfg = lib_config(tmp_path / "lib", batch_files=4)
    conn = connect(scheduler, 1)
    catalog = open_for_writing(cfg).catalog
    try:
        decoder = ClusterDecoder(conn, cfg, task=kill_on_poison)
        pipeline = Pipeline(cfg, catalog, remote=decoder)
        report = reconcile(pipeline, reason="scan", settle=0.0)
    finally:
        catalog.close()
        conn.close()
    # Split down to single files, never sent again: the writer's sandbox decides.
    assert decoder.killed >= 2 and decoder.split >= 2
    assert report.counts["ingested"] == 7 and report.counts["error"] == 2
    facts = library_facts(tmp_path / "lib")
    assert "poison.png" in [rec["original_filename"] for rec in table(cfg.database_path, "images")]
    (reason,) = [r for path, r in facts["errors"] if path == "thumbs/cats/poison-bytes.jpg"]
    assert reason.startswith("not an image")  # what the sandbox found, as in a local scan
    assert (cats / "poison-bytes.jpg").exists()  # left where it was
    assert KILLED not in [r for _, r in facts["errors"]]


def _run_until_like(cfg: Config, expected: dict[str, Any], caplog: pytest.LogCaptureFixture) -> list[str]:
    """Run the daemon until its library has the expected facts; return what it logged."""
    assert cfg.root is not None
    root = cfg.root

    def like() -> bool:
        try:
            return library_facts(root) == expected
        except OSError:  # a thumbnail the daemon is writing just now (its temporary): look again
            return False

    with caplog.at_level(logging.INFO, logger="watcherd"):
        running = Running(cfg)
        running.thread.start()
        try:
            wait_for(like, timeout=120, what="the start-up scan to finish")
        finally:
            running.stop.set()
            running.thread.join(timeout=60)
    assert not running.thread.is_alive() and running.error is None and running.code == 0
    return [r.getMessage() for r in caplog.records if r.name == "watcherd"]


def test_run_decodes_a_large_start_up_backlog_on_the_cluster(
    scheduler: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_library(tmp_path / "here", n=12)
    copy_library(tmp_path / "here", tmp_path / "there")
    scan_once(lib_config(tmp_path / "here"))
    said = _run_until_like(
        lib_config(tmp_path / "there", address=scheduler, backlog=5), library_facts(tmp_path / "here"), caplog
    )
    assert "14 new files wait (cluster.backlog is 5): decoding them on the cluster" in said
    (used,) = [int(m.split()[1]) for m in said if m.startswith("decoded ") and m.endswith("on the cluster")]
    assert used >= 12  # the pictures (the inbox stays in source/ and is not counted as waiting)


def test_run_decodes_a_small_backlog_here_without_asking_the_cluster(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_library(tmp_path / "here", n=4)
    copy_library(tmp_path / "here", tmp_path / "there")
    scan_once(lib_config(tmp_path / "here"))
    # No scheduler listens there: a daemon that tried to connect would say so.
    cfg = lib_config(tmp_path / "there", address="tcp://127.0.0.1:9", backlog=100)
    said = _run_until_like(cfg, library_facts(tmp_path / "here"), caplog)
    assert not [m for m in said if "cluster" in m]


def test_run_decodes_here_when_the_cluster_is_unreachable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_library(tmp_path / "here", n=4)
    copy_library(tmp_path / "here", tmp_path / "there")
    scan_once(lib_config(tmp_path / "here"))
    cfg = lib_config(tmp_path / "there", address="tcp://127.0.0.1:9", backlog=1)
    said = _run_until_like(cfg, library_facts(tmp_path / "here"), caplog)
    (warning,) = [m for m in said if "cannot reach the cluster scheduler" in m]
    assert warning.startswith("6 new files wait, but ") and warning.endswith("; decoding them here")
