"""A real Samba share on this one machine: smbd, hosts in namespaces, FUSE SMB mounts.

The pieces (all Debian's): ``smbd`` serves a library folder from a network namespace
of its own; each "host" is another network namespace, joined to the server's by a
veth pair, whose processes run in a UTS namespace with the host's own hostname; a host
mounts the share with ``rclone mount :smb:`` (this kernel has no ``cifs`` module, and
FUSE works here). The addresses exist only inside those namespaces, so nothing leaves
the machine. Every piece has its own folder under the test's ``tmp_path`` (smbd's
config, state, logs; rclone's cache) and is torn down by the fixture that made it:
mounts unmounted, processes ended by their pid, namespaces deleted.

Where a piece cannot be had (not root, no smbd or rclone, no /dev/fuse, namespaces
refused), the test is skipped with the reason.

Why rclone rather than smbnetfs: rclone takes the server, port, user and password on
its command line (no per-user config in ``~/.smb``), mounts one share at a chosen
folder, and its caching is explicit and documented (``--vfs-cache-mode``,
``--vfs-write-back``, ``--dir-cache-time``, ``--attr-timeout``), so the tests can
state it; smbnetfs browses a whole network under one mount and caches by its own rules.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import START_UP_DONE, wait_for

PASSWORD = "watcherd-test"
SHARE = "lib"

# The client's caching, as the tests mount and as the README recommends: writes go
# through a local cache (SQLite's snapshot needs random access), and reach the server
# half a second after the file is closed; listings and attributes are trusted for
# one second. The lease's heartbeat must be longer than the write-back delay. One
# upload at a time: Debian's rclone 1.60.1 crashed once here ("fatal error: sync:
# unlock of unlocked mutex" in its SMB backend) with the default four.
RCLONE_CACHE: tuple[str, ...] = ("--vfs-cache-mode", "writes", "--vfs-write-back", "0.5s")
RCLONE_CACHE += ("--dir-cache-time", "1s", "--attr-timeout", "1s", "--transfers", "1")
# A server that went away is said at once (EIO), not after rclone's minute of retries.
RCLONE_CACHE += ("--contimeout", "2s", "--timeout", "5s", "--low-level-retries", "1")


def missing_pieces() -> str | None:
    """Why the share tests cannot run here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return "the Samba share tests need Linux namespaces"
    if os.geteuid() != 0:
        return "the Samba share tests need root (network namespaces, smbd, FUSE mounts)"
    for tool in ("smbd", "smbpasswd", "rclone", "ip", "nsenter", "unshare", "fusermount3"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install samba rclone fuse3 iproute2)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    return None


def _run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class Host:
    """One machine of the test: a network namespace with its hostname (none: the test's own)."""

    name: str
    netns: str | None = None
    address: str | None = None
    server_address: str | None = None
    mounts: list[Path] = field(default_factory=list)

    def argv(self, *command: str) -> list[str]:
        """``command`` as this host runs it (its network, its hostname)."""
        if self.netns is None:
            return list(command)
        return [
            "nsenter",
            f"--net=/run/netns/{self.netns}",
            "unshare",
            "--uts",
            "sh",
            "-c",
            'hostname "$0" && exec "$@"',
            self.name,
            *command,
        ]

    def run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on this host and wait for it."""
        return subprocess.run(self.argv(*command), capture_output=True, text=True, timeout=timeout, check=False)

    def watcherd(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``watcherd ARGS`` on this host."""
        return self.run(sys.executable, "-m", "watcherd", *args, timeout=timeout)

    def popen(self, *command: str, log: Path) -> subprocess.Popen[bytes]:
        """Start ``command`` on this host, its stdout and stderr to ``log``."""
        with open(log, "ab") as out:
            return subprocess.Popen(self.argv(*command), stdin=subprocess.DEVNULL, stdout=out, stderr=out)

    def pids(self) -> list[int]:
        """Every process in this host's network namespace."""
        assert self.netns is not None
        return [int(p) for p in _run("ip", "netns", "pids", self.netns).split()]

    def kill_all(self) -> None:
        """The host dies: SIGKILL to every process in its namespace (its mounts' clients included)."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not self.pids(), timeout=30, what=f"the processes of {self.name} to die")


class Network:
    """A server namespace and host namespaces joined to it by veth pairs (one /30 each)."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)  # interface names: at most 15 characters
        self.server_ns = f"wd{self.tag}s"
        self.hosts: list[Host] = []
        self.made: list[str] = []

    def __enter__(self) -> Network:
        try:
            _run("ip", "netns", "add", self.server_ns)
        except RuntimeError as exc:
            pytest.skip(f"cannot make a network namespace here: {exc}")
        self.made.append(self.server_ns)
        _run("ip", "-n", self.server_ns, "link", "set", "lo", "up")
        return self

    def host(self, name: str) -> Host:
        """A new host namespace named ``name`` (its hostname), linked to the server."""
        i = len(self.hosts) + 1
        ns = f"wd{self.tag}h{i}"
        _run("ip", "netns", "add", ns)
        self.made.append(ns)
        here, there = f"wd{self.tag}a{i}", f"wd{self.tag}b{i}"
        _run("ip", "link", "add", here, "type", "veth", "peer", "name", there)
        _run("ip", "link", "set", here, "netns", self.server_ns)
        _run("ip", "link", "set", there, "netns", ns)
        server_address, address = f"10.203.{i}.1", f"10.203.{i}.2"
        _run("ip", "-n", self.server_ns, "addr", "add", f"{server_address}/30", "dev", here)
        _run("ip", "-n", ns, "addr", "add", f"{address}/30", "dev", there)
        for namespace, link in ((self.server_ns, here), (ns, there), (ns, "lo")):
            _run("ip", "-n", namespace, "link", "set", link, "up")
        host = Host(name, ns, address, server_address)
        self.hosts.append(host)
        return host

    def __exit__(self, *exc: object) -> None:
        for ns in reversed(self.made):
            with contextlib.suppress(RuntimeError):
                for pid in _run("ip", "netns", "pids", ns).split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            with contextlib.suppress(RuntimeError):
                _run("ip", "netns", "del", ns)


class SambaServer:
    """smbd serving ``folder`` as the share ``lib``, from the server namespace, with its own config and state."""

    def __init__(self, network: Network, folder: Path, base: Path) -> None:
        self.network = network
        self.folder = folder
        self.base = base
        self.conf = base / "smb.conf"
        self.log = base / "smbd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def configure(self, addresses: list[str]) -> None:
        """Write smb.conf (settings the README documents) and the user's password."""
        state = self.base / "state"
        dirs = {k: state / k for k in ("private", "lock", "state", "cache", "pid", "ncalrpc", "binddns")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"""[global]
  server role = standalone server
  disable netbios = yes
  smb ports = 445
  interfaces = {" ".join(f"{a}/30" for a in addresses)}
  bind interfaces only = yes
  server min protocol = SMB2_10
  map to guest = never
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  log file = {self.base}/smbd.%m.log
  log level = 1
  passdb backend = tdbsam:{dirs["private"]}/passdb.tdb
  private dir = {dirs["private"]}
  lock directory = {dirs["lock"]}
  state directory = {dirs["state"]}
  cache directory = {dirs["cache"]}
  pid directory = {dirs["pid"]}
  ncalrpc dir = {dirs["ncalrpc"]}
  binddns dir = {dirs["binddns"]}

[{SHARE}]
  path = {self.folder}
  read only = no
  # Each client's own locks and leases: watcherd needs none of them, and oplocks
  # would let a client cache a file another host is changing.
  oplocks = no
  level2 oplocks = no
  strict sync = yes
"""
        )
        proc = subprocess.run(
            ["smbpasswd", "-c", str(self.conf), "-s", "-a", "root"],
            input=f"{PASSWORD}\n{PASSWORD}\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            pytest.skip(f"smbpasswd cannot add the test user: {proc.stderr.strip()}")

    def start(self) -> None:
        """Start smbd and wait until it listens on every host's link."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.network.server_ns,
                    "smbd",
                    "--foreground",
                    "--no-process-group",
                    "--debug-stdout",
                    f"--configfile={self.conf}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # smbd ends its process group when it stops: not ours
            )
        wait_for(self._listening, timeout=30, what="smbd to listen")

    def _listening(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"smbd exited {self.proc.returncode}:\n{self.log.read_text(errors='replace')}")
        out = _run("ip", "netns", "exec", self.network.server_ns, "ss", "-Hltn", "sport = :445")
        return out.count(":445") >= len(self.network.hosts)

    def stop(self) -> None:
        """Stop smbd (its children too): the share goes away."""
        if self.proc is None:
            return
        for pid in _run("ip", "netns", "pids", self.network.server_ns).split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
        self.proc.wait(timeout=30)
        wait_for(
            lambda: not _run("ip", "netns", "pids", self.network.server_ns).split(), timeout=30, what="smbd to stop"
        )
        self.proc = None


class Mount:
    """``rclone mount :smb:lib`` at ``point`` for ``host``: the share as that host sees it."""

    def __init__(self, host: Host, point: Path, base: Path, *options: str) -> None:
        self.host = host
        self.point = point
        self.base = base
        self.options = options or RCLONE_CACHE
        self.log = base / f"rclone-{host.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Mount and wait until the share's root is listed through it."""
        self.point.mkdir(parents=True, exist_ok=True)
        obscured = _run("rclone", "obscure", PASSWORD).strip()
        assert self.host.server_address is not None
        self.proc = self.host.popen(
            "rclone",
            "mount",
            f":smb:{SHARE}",
            str(self.point),
            "--config",
            "/dev/null",
            "--smb-host",
            self.host.server_address,
            "--smb-user",
            "root",
            "--smb-pass",
            obscured,
            "--cache-dir",
            str(self.base / f"rclone-cache-{self.host.name}"),
            *self.options,
            "--log-level",
            "INFO",
            log=self.log,
        )
        self.host.mounts.append(self.point)
        wait_for(self._mounted, timeout=30, what=f"rclone to mount the share on {self.host.name}")

    def _mounted(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"rclone exited {self.proc.returncode}:\n{self.log.read_text(errors='replace')}")
        return os.path.ismount(self.point)

    def stop(self) -> None:
        """Unmount (lazily, so a dead client does not hang) and end rclone."""
        subprocess.run(["fusermount3", "-u", "-z", str(self.point)], capture_output=True, timeout=30, check=False)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
            self.proc = None


@dataclass
class Share:
    """The whole set-up: the server's real folder, the server, and two hosts with their mounts."""

    folder: Path
    server: SambaServer
    a: Host
    b: Host
    mount_a: Mount
    mount_b: Mount
    base: Path

    def mounted(self, host: Host) -> Path:
        """Where ``host`` sees the library."""
        return (self.mount_a if host is self.a else self.mount_b).point


@contextlib.contextmanager
def samba_share(base: Path, *, rclone_options: tuple[str, ...] = ()) -> Iterator[Share]:
    """smbd serving ``base/server/lib``; host-a and host-b, each with the share mounted."""
    why = missing_pieces()
    if why is not None:
        pytest.skip(why)
    folder = base / "server" / "lib"
    folder.mkdir(parents=True)
    with Network() as network:
        a, b = network.host("host-a"), network.host("host-b")
        server = SambaServer(network, folder, base / "server")
        server.configure([h.server_address for h in (a, b) if h.server_address is not None])
        mounts = [Mount(h, base / h.name / "mnt", base, *rclone_options) for h in (a, b)]
        try:
            server.start()
            for m in mounts:
                m.start()
            yield Share(folder, server, a, b, mounts[0], mounts[1], base)
        finally:
            for m in mounts:
                m.stop()
            server.stop()


def wait_visible(path: Path, timeout: float = 30.0) -> None:
    """Wait until ``path`` exists (as seen through a mount, after its caches expire)."""
    wait_for(path.exists, timeout=timeout, what=f"{path} to appear")


class HostDaemon:
    """``watcherd run ROOT -c CONF`` on ``host``, its log in a file."""

    def __init__(self, host: Host, root: Path, conf: Path, log: Path) -> None:
        self.host = host
        self.log = log
        self.proc = host.popen(sys.executable, "-m", "watcherd", "run", str(root), "-c", str(conf), log=log)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_started(self, timeout: float = 60.0) -> None:
        """Wait for the start-up scan to be done; fail if the process exited."""
        wait_for(
            lambda: START_UP_DONE in self.log_text() or self.proc.poll() is not None,
            timeout=timeout,
            what=f"the daemon on {self.host.name} to start",
        )
        if self.proc.poll() is not None:
            raise AssertionError(f"the daemon on {self.host.name} exited {self.proc.returncode}:\n{self.log_text()}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM unless it has exited; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def share_config(path: Path, database: Path | None, **extra: object) -> Path:
    """A host's config, as ``etc/watcherd-share.yaml`` with short timings (no root: given on the command line)."""
    lines = {
        "observer": "polling",
        "publish_interval": 1,
        "settle": 1,
        "heartbeat": 1,
        "stale_after": 3,
        **extra,
    }
    if database is not None:
        lines["database"] = str(database)
    path.write_text("".join(f"{k}: {v}\n" for k, v in lines.items()))
    return path
