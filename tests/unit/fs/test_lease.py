"""The writer lease: one holder, a clear refusal, takeover of stale leases."""

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from watcherd.core.errors import LockedError
from watcherd.fs.lease import Holder, Lease, Role, describe, is_live, read_holder


def test_second_taker_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    first = Lease(tmp_path / "lock", heartbeat=5, stale_after=3)
    first.acquire()
    second = Lease(tmp_path / "lock", heartbeat=5, stale_after=3)
    with pytest.raises(LockedError, match=f"pid {os.getpid()} on {socket.gethostname()}"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()
    assert not (tmp_path / "lock").exists()


def test_a_daemon_waits_for_a_commands_lease_and_refuses_another_daemons(tmp_path: Path) -> None:
    """A change command holds the lease for the moment it writes: a daemon (or scan) starting
    then waits for it instead of refusing to start (and staying down under systemd); it still
    refuses another daemon's at once, and a command's that outlasts its wait."""
    lock = tmp_path / "lock"
    command = Lease(lock, heartbeat=5, stale_after=3, role=Role.COMMAND)
    command.acquire()
    assert (holder := read_holder(lock)) is not None and holder.role == "command"
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the command finishes its change while the daemon waits
        waits.append(seconds)
        if len(waits) == 3:
            command.release()

    daemon = Lease(lock, heartbeat=5, stale_after=3, sleep=sleep, role=Role.DAEMON)
    daemon.acquire()
    assert len(waits) == 3 and (holder := read_holder(lock)) is not None and holder.role == "daemon"

    second = Lease(lock, heartbeat=5, stale_after=3, sleep=waits.append, role=Role.DAEMON)
    with pytest.raises(LockedError, match="locked by watcherd pid"):
        second.acquire()  # another daemon's lease: refused at once, nothing waited for
    assert len(waits) == 3
    daemon.release()

    command = Lease(lock, heartbeat=5, stale_after=3, role=Role.COMMAND)
    command.acquire()
    ticks = iter(range(0, 1000, 10))
    late = Lease(lock, 5, 3, clock=lambda: float(next(ticks)), sleep=waits.append, role=Role.DAEMON)
    with pytest.raises(LockedError, match="locked by watcherd pid"):
        late.acquire()  # a command still writing after the wait: refused as before
    command.release()


def test_a_daemon_waits_for_a_scan_however_long_and_a_stop_ends_the_wait(tmp_path: Path) -> None:
    """A daemon started (or restarted by systemd) while a scan runs starts once the scan is done,
    however long it takes, instead of exiting 4 and staying down; stopped while it waits, it
    takes nothing. A second scan is still refused at once."""
    import threading

    lock = tmp_path / "lock"
    scan = Lease(lock, heartbeat=5, stale_after=3, role=Role.SCAN)
    scan.acquire()
    ticks = iter(range(0, 10**6, 600))  # ten minutes between looks: far past a command's wait
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the scan beats on, and is done after a few hours
        waits.append(seconds)
        scan.renew()
        if len(waits) == 20:
            scan.release()

    daemon = Lease(lock, 5, 3, clock=lambda: float(next(ticks)), sleep=sleep, role=Role.DAEMON)
    assert daemon.acquire() is True
    assert len(waits) == 20 and (holder := read_holder(lock)) is not None and holder.role == "daemon"
    daemon.release()

    scan = Lease(lock, heartbeat=5, stale_after=3, role=Role.SCAN)
    scan.acquire()
    with pytest.raises(LockedError, match="locked by watcherd pid"):
        Lease(lock, heartbeat=5, stale_after=3, sleep=waits.append, role=Role.SCAN).acquire()
    assert len(waits) == 20  # refused at once

    stop = threading.Event()

    def stopped(seconds: float) -> None:  # systemctl stop while the daemon waits
        stop.set()

    assert Lease(lock, heartbeat=5, stale_after=3, sleep=stopped, role=Role.DAEMON).acquire(stop) is False
    assert (holder := read_holder(lock)) is not None and holder.role == "scan"  # the scan's, untouched
    scan.release()


def test_lease_of_a_dead_local_process_is_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    now = time.time()
    lock.write_text(
        json.dumps({"host": socket.gethostname(), "pid": 2**22 + 12345, "token": "t", "since": now, "heartbeat": now})
    )
    lease = Lease(lock, heartbeat=5, stale_after=3)
    lease.acquire()
    holder = read_holder(lock)
    assert holder is not None and holder.pid == os.getpid()
    lease.release()


def test_no_process_is_probed_on_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Windows ``os.kill(pid, 0)`` terminates the process: a reader there must never call it."""
    now = time.time()
    holder = Holder(host=socket.gethostname(), pid=2**22 + 12345, token="t", since=now, heartbeat=now)

    def kill(pid: int, sig: int) -> None:
        raise AssertionError(f"os.kill({pid}, {sig}) on Windows would end that process")

    monkeypatch.setattr(os, "kill", kill)
    with monkeypatch.context() as windows:  # only around the calls: pytest itself must not see "nt"
        windows.setattr(os, "name", "nt")
        live = is_live(holder, heartbeat=5, stale_after=3, now=now)
        stale = not is_live(holder, heartbeat=5, stale_after=3, now=now + 16)
    assert live and stale  # the heartbeat alone decides


class Clock:
    """A clock that moves only when the lease sleeps, with something to do at given times."""

    def __init__(self) -> None:
        self.t = 0.0
        self.at: dict[float, Callable[[], object]] = {}
        self.slept = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        self.slept += seconds
        for when in sorted(w for w in self.at if w <= self.t):
            self.at.pop(when)()


def lease_file(lock: Path, heartbeat_age: float, host: str = "other-host") -> bytes:
    now = time.time()
    raw = json.dumps({"host": host, "pid": 1, "token": "t", "since": now - 100, "heartbeat": now - heartbeat_age})
    lock.write_text(raw)
    return raw.encode()


def test_remote_lease_is_stale_only_after_missed_heartbeats(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    lease_file(lock, heartbeat_age=2)
    clock = Clock()
    with pytest.raises(LockedError, match="other-host"):
        Lease(lock, heartbeat=1, stale_after=3, clock=clock, sleep=clock.sleep).acquire()
    assert clock.slept == 0  # a fresh heartbeat is refused at once
    lease_file(lock, heartbeat_age=10)
    lease = Lease(lock, heartbeat=1, stale_after=3, clock=clock, sleep=clock.sleep)
    lease.acquire()
    assert clock.slept >= 3  # watched for stale_after heartbeats by its own clock first
    holder = read_holder(lock)
    assert holder is not None and holder.token == lease.token
    lease.release()


def test_a_lease_that_advances_while_watched_is_not_taken(tmp_path: Path) -> None:
    """The holder's clock may be behind ours: its content changing proves it alive."""
    lock = tmp_path / "lock"
    lease_file(lock, heartbeat_age=60)
    clock = Clock()
    clock.at[2.0] = lambda: lease_file(lock, heartbeat_age=59)
    with pytest.raises(LockedError, match="pid 1 on other-host: its heartbeat is advancing"):
        Lease(lock, heartbeat=1, stale_after=3, clock=clock, sleep=clock.sleep).acquire()
    holder = read_holder(lock)
    assert holder is not None and holder.host == "other-host"


def test_a_lease_that_cannot_be_read_is_never_taken(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    lease_file(lock, heartbeat_age=60)
    clock = Clock()

    def unreadable() -> None:  # a read that fails (here: the name is a folder for a moment)
        lock.unlink()
        lock.mkdir()

    clock.at[1.0] = unreadable
    with pytest.raises(LockedError, match="cannot read the lease"):
        Lease(lock, heartbeat=1, stale_after=3, clock=clock, sleep=clock.sleep).acquire()
    assert lock.is_dir()  # left as it was


def test_renew_cannot_tell_when_the_lease_does_not_read_back(tmp_path: Path) -> None:
    lock = tmp_path / "state" / "lock"
    lease = Lease(lock, heartbeat=1, stale_after=3)
    lease.acquire()
    lock.write_bytes(b"{half a lease")
    with pytest.raises(OSError, match="does not read as a lease"):
        lease.renew()
    (lock.parent).rename(tmp_path / "away")  # the whole folder out of reach (a share gone)
    with pytest.raises(FileNotFoundError):
        lease.renew()
    (tmp_path / "away").rename(lock.parent)
    lock.write_bytes(read_holder_bytes(lease))
    assert lease.renew() and lease.held


def read_holder_bytes(lease: Lease) -> bytes:
    return json.dumps({"host": "h", "pid": 1, "token": lease.token, "since": 0, "heartbeat": 0}).encode()


def test_renew_notices_a_lost_lease(tmp_path: Path) -> None:
    lease = Lease(tmp_path / "lock", heartbeat=1, stale_after=3)
    lease.acquire()
    assert lease.renew()
    (tmp_path / "lock").write_text(json.dumps({"host": "h", "pid": 1, "token": "other", "since": 0, "heartbeat": 0}))
    assert not lease.renew()
    lease.release()
    assert (tmp_path / "lock").exists()  # not ours any more: left alone


def test_describe_for_status(tmp_path: Path) -> None:
    lease = Lease(tmp_path / "lock", heartbeat=1, stale_after=3)
    lease.acquire()
    d = describe(read_holder(tmp_path / "lock"), 1, 3, time.time())
    assert d is not None and d["running"] is True and d["pid"] == os.getpid()
    lease.release()
    assert describe(read_holder(tmp_path / "lock"), 1, 3, time.time()) is None
