"""The one-writer channel in-process: a silent lease holder, one that goes away, none at all."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from pathlib import Path

import pytest

from tests.helpers import drop
from watcherd.catalog import open_for_writing
from watcherd.commands import writer
from watcherd.core.config import Config
from watcherd.core.errors import NoAnswerError
from watcherd.flow import restore
from watcherd.flow.pipeline import Pipeline
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


def fake_holder(cfg: Config, heartbeat: float) -> None:
    """A lease held by this (live) process that nobody answers for: a hung daemon."""
    lease_path(cfg).write_text(
        json.dumps(
            {"host": socket.gethostname(), "pid": os.getpid(), "token": "t", "since": heartbeat, "heartbeat": heartbeat}
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
