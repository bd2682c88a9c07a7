"""The writer lease: one watcherd writes a library, across every host that shares it.

The lease is a small JSON file in ``ROOT/.watcherd/`` created with O_EXCL (atomic on
local disks, SMB and NFSv3+), holding host, pid, a random token and a heartbeat time.
The holder rewrites it every ``heartbeat`` seconds; a lease whose heartbeat is older
than ``heartbeat * stale_after`` seconds, or whose holder is a dead process on this
same host, may be taken over. The holder checks its token on every beat and stops if
someone else took the lease.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from watcherd.documents import DaemonState
from watcherd.errors import LockedError
from watcherd.filters import TEMP_PREFIX


@dataclass(frozen=True)
class Holder:
    """What a lease file says about its holder."""

    host: str
    pid: int
    token: str
    since: float
    heartbeat: float

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
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Holder(
            host=str(data["host"]),
            pid=int(data["pid"]),
            token=str(data["token"]),
            since=float(data["since"]),
            heartbeat=float(data["heartbeat"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
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

    def __init__(self, path: Path, heartbeat: float, stale_after: int) -> None:
        self.path = Path(path)
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self.token = secrets.token_hex(8)
        self.since = time.time()
        self.held = False

    def _payload(self) -> bytes:
        return json.dumps(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "token": self.token,
                "since": self.since,
                "heartbeat": time.time(),
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

    def acquire(self) -> None:
        """Take the lease or raise LockedError naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                self.held = True
                return
            holder = read_holder(self.path)
            now = time.time()
            if holder is not None and is_live(holder, self.heartbeat, self.stale_after, now):
                raise LockedError(
                    f"library is locked by watcherd pid {holder.pid} on {holder.host} "
                    f"(last heartbeat {holder.age(now):.0f}s ago)"
                )
            if holder is None:
                # Unreadable: perhaps being written right now; give it one beat.
                try:
                    age = now - os.stat(self.path).st_mtime
                except FileNotFoundError:
                    continue
                if age <= self.heartbeat * self.stale_after:
                    time.sleep(min(self.heartbeat, 1.0))
                    continue
            # Stale: set it aside under a unique name (only one contender's rename can
            # succeed on the same file), then race for a fresh O_EXCL create.
            aside = self.path.with_name(f"{self.path.name}.stale-{secrets.token_hex(4)}")
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.path, aside)
                with contextlib.suppress(OSError):
                    os.unlink(aside)
        raise LockedError(f"cannot take the lease {self.path}: another process keeps taking it")

    def renew(self) -> bool:
        """Write a fresh heartbeat; False if the lease is no longer ours."""
        holder = read_holder(self.path)
        if holder is None or holder.token != self.token:
            self.held = False
            return False
        tmp = self.path.with_name(f"{TEMP_PREFIX}{self.path.name}-{self.token}")
        tmp.write_bytes(self._payload())
        os.replace(tmp, self.path)
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
