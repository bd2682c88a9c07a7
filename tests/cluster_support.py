"""What the cluster tests share: a varied library, and the facts two scans of it must agree on."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.helpers import encode, scene, table, wait_for, write
from tests.share_support import Host, Network, _run

needs_distributed = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="dask.distributed is not installed (pip install -e '.[test]' installs it)",
)


def make_library(root: Path, n: int = 24) -> None:
    """Pictures in tagged folders and a source inbox, a duplicate (a collision) and a file that is no image."""
    for i in range(n):
        folder = ("cats", "dogs/old", "birds")[i % 3]
        fmt, suffix = ("JPEG", "jpg") if i % 4 else ("PNG", "png")
        write(root / "thumbs" / folder / f"pic{i:03d}.{suffix}", encode(scene(seed=500 + i), fmt))
    write(root / "source" / "inbox.jpg", encode(scene(seed=900)))
    write(root / "thumbs" / "dogs" / "again.jpg", encode(scene(seed=501)))  # pic001's bytes: a collision
    write(root / "thumbs" / "cats" / "broken.jpg", b"this is no picture")


def copy_library(root: Path, to: Path) -> Path:
    """The same files under another root."""
    shutil.copytree(root, to, symlinks=True)
    return to


def _pixels(path: Path) -> str:
    with Image.open(path) as im:
        return hashlib.sha256(im.tobytes()).hexdigest()


def library_facts(root: Path) -> dict[str, Any]:
    """Names, tags, originals, errors and files of a library, free of timestamps."""
    db = root / ".watcherd" / "catalog.sqlite"
    images = sorted(
        (r["path"], r["name"], tuple(r["tags"]), r["sha256"], r.get("original"), r["state"])
        for r in table(db, "images")
    )
    errors = sorted((r["path"], r["reason"]) for r in table(db, "errors"))
    collisions = sorted((c["id"], c["name"], c["kind"], c["newcomer"].get("original")) for c in table(db, "collisions"))
    files = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith(".watcherd/"):
            # A thumbnail's text chunks carry the time it was made: its pixels are what must agree.
            files[rel] = (
                _pixels(p)
                if p.suffix == ".png" and rel.startswith("thumbs/")
                else hashlib.sha256(p.read_bytes()).hexdigest()
            )
    return {"images": images, "errors": errors, "collisions": collisions, "files": files}


DASK = str(Path(sys.executable).parent / "dask")
PORT = 8786


def cross_host_missing() -> str | None:
    """Why workers cannot be run as other hosts here (namespaces), or None."""
    if sys.platform != "linux":
        return "network and mount namespaces are Linux's"
    for tool in ("ip", "nsenter", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "namespaces need root"
    return None


class Hosts:
    """A scheduler's namespace routing between a writer's host and worker hosts."""

    def __init__(self, net: Network, tmp: Path) -> None:
        self.net, self.tmp = net, tmp
        _run("ip", "netns", "exec", net.server_ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.writer = self._host("writer")
        self.workers: list[Host] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = tmp / "scheduler.log"
        server = ["nsenter", f"--net=/run/netns/{net.server_ns}"]
        with open(self.log, "ab") as out:
            self.scheduler = subprocess.Popen(
                [*server, DASK, "scheduler", "--host", "0.0.0.0", "--port", str(PORT), "--no-dashboard"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    def _host(self, name: str) -> Host:
        host = self.net.host(name)
        _run("ip", "-n", host.netns or "", "route", "add", "default", "via", host.server_address or "")
        return host

    def address(self, host: Host) -> str:
        """The scheduler as ``host`` reaches it."""
        return f"tcp://{host.server_address}:{PORT}"

    def add_worker(self, view: Path, library: Path) -> Host:
        """A worker host whose own mount namespace shows ``library`` at ``view``."""
        host = self._host(f"worker{len(self.workers) + 1}")
        view.mkdir(parents=True, exist_ok=True)
        mount = 'mount --bind "$0" "$1" && shift && exec "$@"'
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, str(library), str(view)]
        command += [DASK, "worker", self.address(host), "--host", host.address or "", "--nthreads", "1"]
        command += ["--no-dashboard", "--death-timeout", "20"]
        self.procs.append(host.popen(*command, log=self.tmp / f"{host.name}.log"))
        self.workers.append(host)
        wait_for(
            lambda: f"tcp://{host.address}:" in self.log.read_text(errors="replace"),
            timeout=240,  # a worker and its nanny start in seconds; on a loaded machine, in minutes
            what=f"{host.name} to join the scheduler",
        )
        return host

    def close(self) -> None:
        for proc in [*self.procs, self.scheduler]:
            proc.kill()
            proc.wait(timeout=30)


def slow_library(root: Path, n: int) -> None:
    """Pictures big enough that a batch keeps a worker busy for a while."""
    for i in range(n):
        write(root / "thumbs" / ("a", "b")[i % 2] / f"big{i:02d}.png", encode(scene((1600, 1200), seed=800 + i), "PNG"))
