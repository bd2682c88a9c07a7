"""Unit tests need no process and no sleep: a test that starts one belongs in tests/integration/.

The planning core's tests (files marked ``pytestmark = pytest.mark.pure``) need no file
either: any file opened, listed, made, renamed or removed, or any database connected to,
fails them (Python's audit hooks; reading Python's own modules is allowed).
"""

from __future__ import annotations

import multiprocessing.process
import subprocess
import sys
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


_FILE_EVENTS = frozenset(
    {"open", "os.listdir", "os.scandir", "os.mkdir", "os.rmdir", "os.rename", "os.remove", "os.link", "os.symlink"}
    | {"os.truncate", "os.chmod", "os.utime", "shutil.copyfile", "shutil.move", "shutil.rmtree", "sqlite3.connect"}
)
_pure: list[str] = []  # the pure test running now, if any


def _no_files(event: str, args: tuple[object, ...]) -> None:
    if not _pure or event not in _FILE_EVENTS:
        return
    if event == "open" and str(args[0]).endswith((".py", ".pyc")):
        return  # Python importing its own modules
    raise AssertionError(f"{_pure[0]} is a planning-core test and touched a file ({event} {args[:1]})")


sys.addaudithook(_no_files)


@pytest.fixture(autouse=True)
def pure_tier(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test marked ``pure`` that touches a file (see the module's docstring)."""
    if request.node.get_closest_marker("pure") is None:
        yield
        return
    _pure.append(request.node.nodeid)
    try:
        yield
    finally:
        _pure.clear()
