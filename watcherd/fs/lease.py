"""The writer lease: one watcherd writes a library, across every host that shares it.

The lease is a small JSON file in ``ROOT/.watcherd/`` created with O_EXCL (atomic on
local disks, SMB and NFSv3+), holding host, pid, a random token and a heartbeat time.
The holder rewrites it every ``heartbeat`` seconds and reads it back; a beat that
cannot be written or does not read back pauses its writing until one does (the share
may be gone), and a lease found in another's name stops it.

A lease whose heartbeat time looks older than ``heartbeat * stale_after`` seconds is
not taken on that word alone (the holder's clock is not ours, and a client's cache
may show an old copy): the taker watches the file for ``heartbeat * stale_after``
seconds by its own clock and takes it over only if its content never changed and
every read succeeded. A lease whose holder is a dead process on this same host is
taken at once. The lease also says who holds it (``Role``): a daemon or scan starting
while a change command holds it for its write waits for the command, and a daemon
starting while a scan runs waits for the scan, not refusing to start (and staying down
under systemd) as it does beside another daemon.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from watcherd.core.config import Config
from watcherd.core.documents import DaemonState
from watcherd.core.errors import LockedError
from watcherd.core.filters import TEMP_PREFIX
from watcherd.fs.layout import lease_path

log = logging.getLogger("watcherd")


class Role(str, Enum):
    """Who holds a lease (its ``role``): a daemon (``run``), a ``scan`` (or ``rebuild``), or a
    change command applied without a daemon, which holds it for the moment it writes."""

    DAEMON = "daemon"
    SCAN = "scan"
    COMMAND = "command"


COMMAND_WAIT = 60.0  # seconds a daemon, a scan or another command waits for a command's lease before refusing


@dataclass(frozen=True)
class Holder:
    """What a lease file says about its holder."""

    host: str
    pid: int
    token: str
    since: float
    heartbeat: float
    role: str = ""  # a Role's value ("" in a lease of an earlier version)

    @property
    def answers_requests(self) -> bool:
        """Does it apply the changes commands hand it (``requests``)? A daemon and a scan do (and
        a holder of an earlier version, which was one of them); a command applies its own only."""
        return self.role != Role.COMMAND.value

    def age(self, now: float) -> float:
        """Seconds since the last heartbeat."""
        return max(0.0, now - self.heartbeat)


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill(pid, 0) would end that process on Windows: the heartbeat alone decides there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_holder(path: Path) -> Holder | None:
    """The current holder, or None when there is no readable lease."""
    try:
        return parse(Path(path).read_bytes())
    except OSError:
        return None


def parse(raw: bytes) -> Holder | None:
    """What a lease file's bytes say, or None when they are no lease."""
    try:
        data = json.loads(raw.decode("utf-8"))
        return Holder(
            host=str(data["host"]),
            pid=int(data["pid"]),
            token=str(data["token"]),
            since=float(data["since"]),
            heartbeat=float(data["heartbeat"]),
            role=str(data.get("role") or ""),
        )
    except (ValueError, KeyError, TypeError):
        return None


def is_live(holder: Holder, heartbeat: float, stale_after: int, now: float) -> bool:
    """Whether a holder still counts as running."""
    if holder.host == socket.gethostname() and not _pid_alive(holder.pid):
        return False
    return holder.age(now) <= heartbeat * stale_after


def describe(holder: Holder | None, heartbeat: float, stale_after: int, now: float) -> DaemonState | None:
    """The ``daemon`` object of ``status --json``."""
    if holder is None:
        return None
    return {
        "running": is_live(holder, heartbeat, stale_after, now),
        "pid": holder.pid,
        "host": holder.host,
        "since": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(holder.since)),
        "heartbeat_age": round(holder.age(now), 1),
    }


class Lease:
    """Take, renew and release the writer lease of one library."""

    def __init__(
        self,
        path: Path,
        heartbeat: float,
        stale_after: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        role: Role | None = None,
    ) -> None:
        self.path = Path(path)
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self.token = secrets.token_hex(8)
        self.since = time.time()
        self.held = False
        self.clock = clock
        self.sleep = sleep if sleep is not None else time.sleep  # as it is now, not at import
        self.role = role

    def _payload(self) -> bytes:
        return json.dumps(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "token": self.token,
                "since": self.since,
                "heartbeat": time.time(),
                **({"role": self.role.value} if self.role is not None else {}),
            }
        ).encode()

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, self._payload())
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def _patience(self, holder: Holder) -> float:
        """How long to wait for ``holder``'s live lease to be let go before refusing (0: refuse
        at once, as a second daemon is)."""
        if holder.role == Role.COMMAND.value and self.role is not None:
            return COMMAND_WAIT  # a command lets go once its change is written
        if holder.role == Role.SCAN.value and self.role is Role.DAEMON:
            return math.inf  # a scan ends (or dies, and its lease goes stale); the start-up scan catches up
        return 0.0

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Take the lease or raise LockedError naming the holder; False (nothing taken) when
        ``stop`` is set while waiting for a command or a scan to let it go."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        attempts = 0
        waiting_since: float | None = None
        while attempts < 3:
            attempts += 1
            if self._create():
                self.held = True
                return True
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise LockedError(f"cannot read the lease {self.path} ({exc.strerror}); not taking it") from None
            holder = parse(raw)
            now = time.time()
            if holder is not None and is_live(holder, self.heartbeat, self.stale_after, now):
                patience = self._patience(holder)
                if patience > 0:
                    if waiting_since is None:
                        waiting_since = self.clock()
                        doing = "scanning the library" if holder.role == Role.SCAN.value else "applying a change"
                        log.info("watcherd pid %d on %s is %s; waiting for it", holder.pid, holder.host, doing)
                    if self.clock() - waiting_since < patience:
                        if stop is not None and stop.is_set():
                            return False
                        attempts -= 1  # not a try: the holder lets go when it is done
                        self.sleep(min(self.heartbeat / 2, 0.2 if patience == COMMAND_WAIT else 1.0))
                        continue
                raise LockedError(
                    f"library is locked by watcherd pid {holder.pid} on {holder.host} "
                    f"(last heartbeat {holder.age(now):.0f}s ago)"
                )
            dead_here = holder is not None and holder.host == socket.gethostname() and not _pid_alive(holder.pid)
            if not dead_here and not self._watch_stale(raw, holder):
                continue  # it went away meanwhile: race for a fresh create
            # Stale: set it aside under a unique name (only one contender's rename can
            # succeed on the same file), then race for a fresh O_EXCL create.
            aside = self.path.with_name(f"{self.path.name}.stale-{secrets.token_hex(4)}")
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.path, aside)
                with contextlib.suppress(OSError):
                    os.unlink(aside)
        raise LockedError(f"cannot take the lease {self.path}: another process keeps taking it")

    def _watch_stale(self, raw: bytes, holder: Holder | None) -> bool:
        """Watch a lease that looks stale for ``stale_after`` heartbeats, by this host's clock.

        True when its content never changed and every read succeeded (it may be taken
        over); False when it went away; LockedError when it changed (its holder lives)
        or could not be read (a lease we failed to read is never taken).
        """
        wait = self.heartbeat * self.stale_after
        who = f"watcherd pid {holder.pid} on {holder.host}" if holder is not None else "an unreadable lease"
        log.info("the lease of %s looks stale; watching it for %.0fs before taking it over", who, wait)
        start = self.clock()
        while self.clock() - start < wait:
            self.sleep(min(self.heartbeat / 2, 1.0))
            try:
                now = self.path.read_bytes()
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise LockedError(f"cannot read the lease {self.path} ({exc.strerror}); not taking it") from None
            if now != raw:
                raise LockedError(f"library is locked by {who}: its heartbeat is advancing")
        return True

    def renew(self) -> bool:
        """Write a fresh heartbeat and read it back; False if the lease is no longer ours.

        Raises OSError when the beat cannot be written, or does not read back as written
        (the share is gone, or a client shows a copy of its own): the holder must not
        write while that lasts.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            if not self.path.parent.is_dir():
                raise  # the whole folder is out of reach: nothing is known
            self.held = False
            return False
        holder = parse(raw)
        if holder is None:
            raise OSError(errno.EIO, "the lease does not read as a lease", str(self.path))
        if holder.token != self.token:
            self.held = False
            return False
        tmp = self.path.with_name(f"{TEMP_PREFIX}{self.path.name}-{self.token}")
        payload = self._payload()
        tmp.write_bytes(payload)
        os.replace(tmp, self.path)
        if self.path.read_bytes() != payload:
            raise OSError(errno.EIO, "the heartbeat just written does not read back", str(self.path))
        return True

    def release(self) -> None:
        """Give the lease up if it is still ours."""
        if not self.held:
            return
        holder = read_holder(self.path)
        if holder is not None and holder.token == self.token:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        self.held = False


def live_holder(cfg: Config, now: float | None = None) -> Holder | None:
    """Who holds the library's lease, if a live process does."""
    holder = read_holder(lease_path(cfg))
    live = holder is not None and is_live(holder, cfg.heartbeat, cfg.stale_after, time.time() if now is None else now)
    return holder if live else None


def writer_live(cfg: Config, now: float | None = None) -> bool:
    """Does a live process hold the library's lease?"""
    return live_holder(cfg, now) is not None


class Heartbeat(threading.Thread):
    """Renews a held lease on its own thread, so a long decode, scan or change never lets it
    go stale.

    A beat that cannot be written or does not read back sets ``paused``: the holder writes
    nothing while it is set (the share may be gone, and another host may take the lease
    once it looks stale). The first beat that works again clears it and sets ``resumed``;
    a lease found in another's name sets ``lost`` (and ``stop``, when given).
    """

    def __init__(self, lease: Lease, stop: threading.Event | None = None) -> None:
        super().__init__(name="watcherd-heartbeat", daemon=True)
        self.lease = lease
        self.interval = lease.heartbeat
        self.stop = stop
        self.lost = False
        self.paused = threading.Event()
        self.resumed = threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                ok = self.lease.renew()
            except OSError as exc:
                if not self.paused.is_set():
                    self.paused.set()
                    log.error("cannot renew the lease (%s): writing nothing until it can", exc.strerror or exc)
                continue
            if not ok:
                self.lost = True
                log.error("the library's lease was taken by another process; stopping")
                if self.stop is not None:
                    self.stop.set()
                return
            if self.paused.is_set():
                log.warning("the lease is renewed again")
                self.paused.clear()
                self.resumed.set()

    def confirm(self) -> None:
        """Raise LockedError unless the lease is still this holder's; while beats cannot be
        written, wait for one that can, as long as another host would wait before taking the
        lease over. (Before each commit of a scan or a command.)"""
        deadline = time.monotonic() + self.lease.heartbeat * self.lease.stale_after
        while self.paused.is_set() and not self.lost and time.monotonic() < deadline:
            self._done.wait(min(self.interval / 4, 0.25))
        if self.lost:
            raise LockedError("another process took the library's lease; stopping before writing more")
        if self.paused.is_set():
            raise LockedError("cannot renew the library's lease; stopping before writing more")

    def close(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join(timeout=5)


@contextlib.contextmanager
def holding(lease: Lease) -> Iterator[Heartbeat]:
    """Take ``lease`` (or raise LockedError), beat while the block runs, let it go after."""
    lease.acquire()
    with beating(lease) as beat:
        yield beat


@contextlib.contextmanager
def beating(lease: Lease, stop: threading.Event | None = None) -> Iterator[Heartbeat]:
    """Beat for the lease just taken while the block runs; let it go after."""
    beat = Heartbeat(lease, stop)
    beat.start()
    try:
        yield beat
    finally:
        beat.close()
        lease.release()
