"""``watcherd scan --cluster`` as a process against ``dask scheduler`` and two ``dask worker``
processes (each under its nanny, as users run them) on 127.0.0.1: the same library as a
local scan, a worker killed mid-batch, the scheduler lost mid-scan, an unreachable one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_support import copy_library, library_facts, make_library, needs_distributed
from tests.helpers import encode, scene, sigint_default, wait_for, write

pytestmark = [needs_distributed, pytest.mark.timeout(300)]

DASK = str(Path(sys.executable).parent / "dask")
WORKER = ("--no-dashboard", "--death-timeout", "20")


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """The test's own client keeps distributed's event loop thread for the life of the process."""
    yield


class Cluster:
    """A scheduler and two nanny workers as separate processes, and a client to watch them."""

    def __init__(self, tmp: Path) -> None:
        from distributed import Client

        tmp.mkdir(parents=True, exist_ok=True)
        info = tmp / "scheduler.json"
        quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.scheduler = subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
            **quiet,
        )
        self.workers = [
            subprocess.Popen(
                [DASK, "worker", "--scheduler-file", str(info), "--nthreads", "1", "--host", "127.0.0.1", *WORKER],
                **quiet,
            )
            for _ in range(2)
        ]
        wait_for(info.exists, timeout=60, what="the scheduler to start")
        self.address = str(wait_for(lambda: json.loads(info.read_text() or "{}").get("address"), timeout=60))
        self.client = Client(self.address, timeout=30)  # type: ignore[no-untyped-call]
        self.client.wait_for_workers(2, timeout=60)

    def busy(self) -> list[str]:
        """Workers running a task now."""
        processing: dict[str, Any] = self.client.processing()  # type: ignore[no-untyped-call]
        return [worker for worker, tasks in processing.items() if tasks]

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
        for proc in [*self.workers, self.scheduler]:
            proc.terminate()
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "dask")
    try:
        yield c
    finally:
        c.close()


def scanning(root: Path, *args: str) -> subprocess.Popen[str]:
    """``watcherd scan ROOT ARGS`` started as a process (its output caught), for a test to act during it."""
    cmd = [sys.executable, "-m", "watcherd", "scan", str(root), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def scan(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcherd", "scan", str(root), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def slow_library(root: Path, n: int) -> None:
    """Pictures big enough that a batch of four keeps a worker busy for a while."""
    for i in range(n):
        write(root / "thumbs" / ("a", "b")[i % 2] / f"big{i:02d}.png", encode(scene((1600, 1200), seed=700 + i), "PNG"))


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "watcherd.yaml"
    path.write_text("settle: 0\n" + text)
    return str(path)


def test_scan_on_a_cluster_of_nanny_workers_matches_a_local_scan(cluster: Cluster, tmp_path: Path) -> None:
    make_library(tmp_path / "here")
    copy_library(tmp_path / "here", tmp_path / "there")
    conf = config(tmp_path, "cluster:\n  batch_files: 4\n")
    local = scan(tmp_path / "here", "-c", conf, "--json")
    remote = scan(tmp_path / "there", "-c", conf, "--json", "--cluster", cluster.address)
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["counts"] == json.loads(local.stdout)["counts"]
    assert library_facts(tmp_path / "there") == library_facts(tmp_path / "here")
    # distributed's own log lines stay out of watcherd's stderr.
    assert "distributed" not in remote.stderr and "Traceback" not in remote.stderr
    assert "decoded 26 files on the cluster" in remote.stderr


SLOW = 16  # big pictures: with batches of four, two in flight, a killed worker has some in hand


def test_a_worker_killed_mid_batch_loses_nothing(cluster: Cluster, tmp_path: Path) -> None:
    slow_library(tmp_path / "here", SLOW)
    copy_library(tmp_path / "here", tmp_path / "there")
    conf = config(tmp_path, "cluster:\n  batch_files: 4\n  in_flight: 2\n")
    proc = scanning(tmp_path / "there", "-c", conf, "--cluster", cluster.address)
    try:
        # The moment a worker has a batch of ours in hand, kill its process (the nanny starts another).
        busy = wait_for(lambda: cluster.busy(), timeout=120, what="a batch")
        pid = cluster.client.run(os.getpid, workers=busy[:1])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert scan(tmp_path / "here", "-c", conf).returncode == 0
    there = library_facts(tmp_path / "there")
    assert there == library_facts(tmp_path / "here")
    assert len(there["images"]) == SLOW and "Traceback" not in err


def test_losing_the_scheduler_stops_cleanly_and_the_next_scan_continues(cluster: Cluster, tmp_path: Path) -> None:
    slow_library(tmp_path / "here", SLOW)
    copy_library(tmp_path / "here", tmp_path / "there")
    conf = config(tmp_path, "cluster:\n  batch_files: 2\n  in_flight: 1\n")
    proc = scanning(tmp_path / "there", "-c", conf, "--cluster", cluster.address)
    try:
        wait_for(lambda: list((tmp_path / "there" / "originals").glob("*.png")), timeout=120, what="a first ingest")
        cluster.scheduler.kill()
        _, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    lines = [line for line in err.splitlines() if " INFO " not in line and " WARNING " not in line]
    assert proc.returncode == 6
    assert len(lines) == 1 and lines[0].startswith("watcherd: error: lost the cluster at tcp://127.0.0.1:"), err
    done = library_facts(tmp_path / "there")["images"]
    assert 0 < len(done) < SLOW
    # The next scan (here without the cluster) continues where the lost one stopped.
    assert scan(tmp_path / "there", "-c", conf).returncode == 0
    assert scan(tmp_path / "here", "-c", conf).returncode == 0
    assert library_facts(tmp_path / "there") == library_facts(tmp_path / "here")


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path: Path) -> None:
    make_library(tmp_path / "lib", n=2)
    proc = scan(tmp_path / "lib", "--cluster", "tcp://127.0.0.1:9")
    assert proc.returncode == 2
    assert proc.stderr.startswith("watcherd: error: cannot reach the cluster scheduler at tcp://127.0.0.1:9")
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert library_facts(tmp_path / "lib")["images"] == []


def test_ctrl_c_stops_a_cluster_scan_and_the_next_scan_finishes_it(cluster: Cluster, tmp_path: Path) -> None:
    """A person stops a long ``scan --cluster`` at the terminal, while the cluster has a batch of
    it in hand: one Ctrl-C ends it with 130 and no traceback, and the next scan (here local)
    continues to the same library as an uninterrupted one."""
    slow_library(tmp_path / "here", 12)
    copy_library(tmp_path / "here", tmp_path / "there")
    conf = config(tmp_path, "cluster:\n  batch_files: 2\n  in_flight: 1\n")
    cmd = [sys.executable, "-m", "watcherd", "scan", str(tmp_path / "there"), "-c", conf, "--cluster", cluster.address]
    # A session of its own, as a shell gives a job: Ctrl-C goes to the whole group.
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=sigint_default)
    try:
        wait_for(lambda: cluster.busy(), timeout=120, what="a batch on the cluster")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "distributed" not in err, err
    assert len(library_facts(tmp_path / "there")["images"]) < 12  # it really was stopped midway
    assert scan(tmp_path / "there", "-c", conf).returncode == 0
    assert scan(tmp_path / "here", "-c", conf).returncode == 0
    assert library_facts(tmp_path / "there") == library_facts(tmp_path / "here")
