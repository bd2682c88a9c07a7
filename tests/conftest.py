"""Shared fixtures: a library root with short timings, and a Config for it."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcherd.catalog import Catalog, open_for_writing
from watcherd.core.config import Config
from watcherd.flow.pipeline import Pipeline


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    """Defaults rooted at a fresh temporary library, with quick settle and heartbeat."""
    root = tmp_path / "lib"
    root.mkdir()
    return dataclasses.replace(Config(), settle=0.2, heartbeat=0.2, rescan_interval=0).with_root(root)


@pytest.fixture
def catalog(cfg: Config) -> Iterator[Catalog]:
    """The library's catalog, open for writing."""
    cat = open_for_writing(cfg).catalog
    yield cat
    cat.close()


@pytest.fixture
def pipeline(cfg: Config, catalog: Catalog) -> Pipeline:
    """A pipeline over the temporary library."""
    return Pipeline(cfg, catalog)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves observer or catalog threads running."""
    before = set(threading.enumerate())
    yield
    end = time.monotonic() + 5.0
    leaked: list[threading.Thread] = []
    while time.monotonic() < end:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        time.sleep(0.05)
    raise AssertionError(f"threads left running: {leaked}")


@pytest.fixture(autouse=True)
def no_stale_log_handlers() -> Iterator[None]:
    """Take away the handler a command run in process gave watcherd's loggers: it writes to
    that test's captured stderr, which is closed once the test ends ("--- Logging error ---"
    in a later test's output)."""
    yield
    for name in ("watcherd", "watchdog"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [h for h in logger.handlers if h.get_name() != "watcherd-cli"]
