"""Unit tests need no process and no sleep: a test that starts one belongs in tests/integration/."""

from __future__ import annotations

import multiprocessing.process
import subprocess
import time
from collections.abc import Iterator

import pytest


def _refuse(what: str) -> object:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a unit test {what}; move it to tests/integration/")

    return refuse


@pytest.fixture(autouse=True)
def unit_tier(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail a unit test that sleeps or starts a process (SQLite's own threads are allowed)."""
    monkeypatch.setattr(time, "sleep", _refuse("slept"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("started a subprocess"))
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", _refuse("started a worker process"))
    yield
