"""``watcherd scan --cluster`` across hosts: the scheduler, two workers and the writer each in a
network namespace of its own, joined by veth pairs through the scheduler's namespace (which
routes between them), every worker seeing the library bind-mounted at another path in a mount
namespace of its own (``cluster.root``). A worker's host is killed mid-scan; the library ends
up bit for bit as a local scan makes it.

The namespaces are ``tests.share_support.Network``'s; nothing leaves the machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster_support import (
    Hosts,
    copy_library,
    cross_host_missing,
    library_facts,
    needs_distributed,
    slow_library,
)
from tests.helpers import wait_for
from tests.share_support import Network

pytestmark = [needs_distributed, pytest.mark.timeout(600)]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every process of the test runs in its namespaces; this process starts no thread."""
    yield


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    why = cross_host_missing()
    if why is not None:
        pytest.skip(why)
    with Network() as net:
        h = Hosts(net, tmp_path)
        try:
            yield h
        finally:
            h.close()


def _registered(log: Path, address: str | None) -> bool:
    return (
        re.search(rf"Register worker.*tcp://{re.escape(address or '')}:", log.read_text(errors="replace")) is not None
    )


def test_workers_on_other_hosts_see_the_library_elsewhere_and_one_host_dies_mid_scan(
    hosts: Hosts, tmp_path: Path
) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    slow_library(here, 30)
    copy_library(here, there)
    view = tmp_path / "mnt" / "library"  # empty here: only the workers' mounts fill it
    doomed = hosts.add_worker(view, there)
    hosts.add_worker(view, there)
    assert _registered(hosts.log, doomed.address)
    conf = tmp_path / "watcherd.yaml"
    conf.write_text(f"settle: 0\ncluster:\n  root: {view}\n  batch_files: 2\n  in_flight: 2\n")
    log = tmp_path / "writer.log"
    address = hosts.address(hosts.writer)
    proc = hosts.writer.popen(
        sys.executable, "-m", "watcherd", "scan", str(there), "-c", str(conf), "--cluster", address, log=log
    )
    try:
        wait_for(lambda: list((there / "originals").glob("*.png")), timeout=180, what="a first file filed")
        assert proc.poll() is None  # mid-scan
        doomed.kill_all()  # the host dies: its worker and its nanny
        assert proc.wait(timeout=240) == 0, log.read_text()
    finally:
        proc.kill()
        proc.wait()
    assert re.search(rf"Remove worker.*tcp://{re.escape(doomed.address or '')}:", hosts.log.read_text())
    err = log.read_text()
    assert "Traceback" not in err and "check cluster.root" not in err, err
    assert re.search(r"decoded \d+ files on the cluster", err), err
    local = subprocess.run(
        [sys.executable, "-m", "watcherd", "scan", str(here), "-c", str(conf)], capture_output=True, timeout=240
    )
    assert local.returncode == 0, local.stderr
    facts = library_facts(there)
    assert facts == library_facts(here)
    assert len(facts["images"]) + len(facts["collisions"]) == 30
    assert not any(view.iterdir())  # the workers' view was theirs alone
