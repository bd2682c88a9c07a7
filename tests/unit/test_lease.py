"""The writer lease: one holder, a clear refusal, takeover of stale leases."""

import json
import os
import socket
import time
from pathlib import Path

import pytest

from watcherd.errors import LockedError
from watcherd.lease import Holder, Lease, describe, is_live, read_holder


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


def test_remote_lease_is_stale_only_after_missed_heartbeats(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    now = time.time()
    lock.write_text(
        json.dumps({"host": "other-host", "pid": 1, "token": "t", "since": now - 100, "heartbeat": now - 2})
    )
    with pytest.raises(LockedError, match="other-host"):
        Lease(lock, heartbeat=1, stale_after=3).acquire()
    lock.write_text(
        json.dumps({"host": "other-host", "pid": 1, "token": "t", "since": now - 100, "heartbeat": now - 10})
    )
    lease = Lease(lock, heartbeat=1, stale_after=3)
    lease.acquire()
    lease.release()


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
