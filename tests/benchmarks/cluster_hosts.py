"""``scan --cluster`` with workers as other hosts (network and mount namespaces): 1 and 2 workers.

    sudo .venv/bin/python -m tests.benchmarks.cluster_hosts [N]

The scheduler, each worker and the writer run in network namespaces of their own joined
by veth pairs (``tests.cluster_support.Hosts``); each worker reads the library through a
bind mount at another path (``cluster.root``). Prints images per second for a local scan,
one worker and two workers, on copies of the same library of N pictures (1600x1200 PNG),
and the per-worker efficiency (two workers' rate over twice one worker's).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.cluster_support import Hosts, copy_library, cross_host_missing, slow_library
from tests.share_support import Network


def _scan(tmp: Path, library: Path, workers: int) -> float:
    """Seconds ``watcherd scan`` takes on ``library`` with ``workers`` workers on other hosts (0: local)."""
    with Network() as net:
        hosts = Hosts(net, tmp)
        try:
            view = tmp / "mnt" / "library"
            for _ in range(workers):
                hosts.add_worker(view, library)
            conf = tmp / "w.yaml"
            conf.write_text(f"settle: 0\ncluster:\n  root: {view}\n")
            args = [sys.executable, "-m", "watcherd", "scan", str(library), "-c", str(conf)]
            if workers:
                args += ["--cluster", hosts.address(hosts.writer)]
            log = tmp / "writer.log"
            t = time.perf_counter()
            proc = hosts.writer.popen(*args, log=log)
            if proc.wait(timeout=3600) != 0:
                raise SystemExit(log.read_text())
            return time.perf_counter() - t
        finally:
            hosts.close()


def main() -> None:
    why = cross_host_missing()
    if why is not None:
        raise SystemExit(why)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 48
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        slow_library(tmp / "lib", n)
        seconds = []
        for workers in (0, 1, 2):
            run = tmp / f"run{workers}"
            seconds.append(_scan(run, copy_library(tmp / "lib", run / "lib"), workers))
    local, one, two = (n / s for s in seconds)
    print(f"| scan, {n} PNG 1600x1200, local (2 decoder processes) | {local:.1f} img/s | — | — |")
    print(f"| scan --cluster, 1 worker on another host | {one:.1f} img/s | local {local:.1f} img/s | — |")
    print(
        f"| scan --cluster, 2 workers on other hosts | {two:.1f} img/s | 1 worker {one:.1f} img/s | "
        f"{two / (2 * one):.0%} per-worker efficiency |"
    )


if __name__ == "__main__":
    main()
