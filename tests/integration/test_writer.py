"""The one-writer channel in-process: a silent lease holder, one that goes away, none at all."""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import drop
from watcherd.catalog import open_for_writing
from watcherd.commands import mailbox, writer
from watcherd.core.config import Config
from watcherd.core.errors import NoAnswerError
from watcherd.flow import restore
from watcherd.flow.pipeline import Pipeline
from watcherd.fs import fsops
from watcherd.fs.layout import lease_path, requests_dir


def one_image(cfg: Config) -> str:
    """A library with one image in cats/; its name."""
    opened = open_for_writing(cfg)
    try:
        result = Pipeline(cfg, opened.catalog).process(drop(cfg.thumbs_dir / "cats" / "a.jpg", seed=1))
    finally:
        opened.catalog.close()
    assert result.name is not None
    return result.name


def fake_holder(cfg: Config, heartbeat: float, role: str = "daemon") -> None:
    """A lease held by this (live) process that nobody answers for: a hung daemon (or a
    command, busy with its own change, which answers no request)."""
    lease_path(cfg).write_text(
        json.dumps(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "token": "t",
                "since": heartbeat,
                "heartbeat": heartbeat,
                "role": role,
            }
        )
    )


def test_a_silent_daemon_gives_exit_5_and_the_request_is_withdrawn(cfg: Config) -> None:
    cfg = dataclasses.replace(cfg, heartbeat=30.0)
    name = one_image(cfg)
    fake_holder(cfg, time.time())
    with pytest.raises(NoAnswerError, match="did not take the change") as info:
        writer.change(cfg, "untag", {"name": name, "tag": "cats"}, pick_up=0.3)
    assert info.value.exit_code == 5
    assert list(requests_dir(cfg).iterdir()) == []  # withdrawn: never applied later


def test_a_daemon_that_stops_before_taking_the_change_leaves_it_to_the_command(cfg: Config) -> None:
    cfg = dataclasses.replace(cfg, heartbeat=0.2, stale_after=2)
    name = one_image(cfg)
    fake_holder(cfg, time.time())  # live for 0.4 s, then stale
    result = writer.change(cfg, "untag", {"name": name, "tag": "cats"}, pick_up=30.0)
    assert result["tags"] == ["320x240"]
    assert list(requests_dir(cfg).iterdir()) == []
    assert not lease_path(cfg).exists()  # taken over for the write, then released


def test_without_a_daemon_the_command_writes_under_the_lease_and_exports(cfg: Config) -> None:
    name = one_image(cfg)
    result = writer.change(cfg, "retag", {"old": "cats", "new": "felines"})
    assert result == {"old": "cats", "new": "felines", "images": 1, "names": [name]}
    export = json.loads(Path(restore.export_path(cfg)).read_text())
    assert export["images"][name]["tags"] == ["felines", "320x240"]  # a rebuild keeps the change
    assert not lease_path(cfg).exists()


def _stale_soon(cfg: Config) -> Config:
    """Heartbeats 0.2 s apart, a lease stale after 0.4 s without one (and watched 0.4 s more)."""
    return dataclasses.replace(cfg, heartbeat=0.2, stale_after=2)


def test_a_scan_longer_than_the_stale_time_keeps_its_lease(cfg: Config) -> None:
    """The scan beats while it works: a second scan started well past the stale time finds the
    lease live and is refused, where it used to find it stale and take it over (two writers;
    a daemon, which now waits for a scan, took it over the same way)."""
    from watcherd.core.errors import LockedError
    from watcherd.fs.lease import Lease, Role
    from watcherd.run.scan import scan_once

    cfg = _stale_soon(cfg)
    for i in range(2):
        drop(cfg.thumbs_dir / f"{i}.jpg", seed=60 + i)
    refused: list[str] = []

    def slow_then_another(done: int, total: int) -> None:
        if refused:
            return
        time.sleep(1.5)  # several times the stale time, inside the scan
        try:
            Lease(lease_path(cfg), cfg.heartbeat, cfg.stale_after, role=Role.SCAN).acquire()
        except LockedError as exc:
            refused.append(str(exc))
        else:
            refused.append("taken over")

    scan_once(cfg, progress=slow_then_another)
    assert refused and refused[0] != "taken over" and "locked by watcherd pid" in refused[0]
    assert not lease_path(cfg).exists()  # let go at the end


def test_a_scan_whose_lease_another_took_stops_before_its_next_commit(cfg: Config) -> None:
    """Were the lease taken all the same (another host, a clock gone wrong), the scan writes
    nothing more: its next commit is refused and rolled back, and the other's lease is left."""
    from watcherd.catalog import CatalogReader
    from watcherd.core.errors import LockedError
    from watcherd.run.scan import scan_once

    cfg = _stale_soon(cfg)
    for i in range(2):
        drop(cfg.thumbs_dir / f"{i}.jpg", seed=70 + i)
    theirs = {"host": "elsewhere", "pid": 1, "token": "theirs", "since": time.time(), "heartbeat": time.time()}

    def taken(done: int, total: int) -> None:
        lease_path(cfg).write_text(json.dumps({**theirs, "heartbeat": time.time()}))
        time.sleep(0.6)  # the scan's next beat finds it

    with pytest.raises(LockedError, match="another process took the library's lease"):
        scan_once(cfg, progress=taken)
    assert json.loads(lease_path(cfg).read_text())["token"] == "theirs"
    with CatalogReader(cfg.database_path) as reader:
        assert reader.meta("scan") is None  # the scan's own record of itself was not committed


def _ctrl_c(*_: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("when", ["waiting", "taken", "publishing"])
def test_ctrl_c_while_a_daemon_is_asked_withdraws_the_change_unless_it_was_taken(
    cfg: Config, when: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Ctrl-C on a command handing its change to the daemon: not taken yet, the request is
    taken back (never applied later, whatever the user is told); taken, the daemon finishes it.
    Either way one line says which. ``publishing``: the Ctrl-C lands as the request is put in
    place (the folder's sync after the rename), before the command began to wait."""
    cfg = dataclasses.replace(cfg, heartbeat=30.0)
    name = one_image(cfg)
    fake_holder(cfg, time.time())
    folder = requests_dir(cfg)

    def taken_then_ctrl_c(_: float) -> None:
        (request,) = folder.iterdir()
        request.rename(request.with_name(request.name.replace(mailbox.REQUEST, mailbox.TAKEN)))
        raise KeyboardInterrupt

    if when == "publishing":
        monkeypatch.setattr(fsops, "fsync_dir", _ctrl_c)
    sleep = taken_then_ctrl_c if when == "taken" else _ctrl_c
    with pytest.raises(KeyboardInterrupt):
        writer.change(cfg, "untag", {"name": name, "tag": "cats"}, pick_up=30.0, sleep=sleep)
    left = [p.name for p in folder.iterdir()]
    said = [r.getMessage() for r in caplog.records if r.message.startswith("stopped")]
    if when == "taken":
        assert len(left) == 1 and left[0].endswith(mailbox.TAKEN)  # the daemon's to finish
        assert said == ["stopped: the daemon had already taken the change and finishes it (its log says how it ended)"]
    else:
        assert left == []  # withdrawn: never applied later
        assert said == ["stopped: the daemon had not taken the change; nothing was changed"]


def test_a_command_waits_for_another_commands_lease_then_applies_its_change_itself(
    cfg: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """Two change commands at once without a daemon (``arrange`` of a big library in one
    terminal, ``untag`` in another): the second hands no request to the first, which answers
    none (it said "the daemon did not take the change" after 30 s and exited 5), but waits for
    its lease and applies its own change once the first lets go."""
    caplog.set_level(logging.INFO, logger="watcherd")
    cfg = dataclasses.replace(cfg, heartbeat=30.0)
    name = one_image(cfg)
    fake_holder(cfg, time.time(), role="command")
    let_go = threading.Timer(2.5, lease_path(cfg).unlink)  # longer than pick_up, as a big change is
    let_go.start()
    try:
        result = writer.change(cfg, "untag", {"name": name, "tag": "cats"}, pick_up=0.3)
    finally:
        let_go.join()
    assert result["tags"] == ["320x240"]
    assert not requests_dir(cfg).exists() or list(requests_dir(cfg).iterdir()) == []
    assert any("is applying a change; waiting for it" in r.getMessage() for r in caplog.records)


def test_ctrl_c_while_the_share_is_gone_still_stops_and_says_the_change_may_be_applied(
    cfg: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The request cannot be taken back (the share went away with the Ctrl-C): the command
    still stops as asked, and says the daemon may still apply the change."""
    cfg = dataclasses.replace(cfg, heartbeat=30.0)
    name = one_image(cfg)
    fake_holder(cfg, time.time())

    def share_gone(*_: object) -> bool:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(mailbox, "withdraw", share_gone)
    with pytest.raises(KeyboardInterrupt):
        writer.change(cfg, "untag", {"name": name, "tag": "cats"}, pick_up=30.0, sleep=_ctrl_c)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopped")]
    assert said == [
        "stopped: the change's request could not be taken back (Input/output error); the daemon may still apply it"
    ]
