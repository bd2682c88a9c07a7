"""Keeping the persisted near-duplicate index: a scan folds the log; the daemon rebuilds in
a background process and keeps ingesting meanwhile."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

from tests.helpers import drop, wait_for
from tests.integration.test_daemon import Running
from watcherd.catalog.hashes import NearLogReader
from watcherd.cli import main
from watcherd.commands import search
from watcherd.core.config import Config
from watcherd.near import reader
from watcherd.near.builder import Maintainer, Upkeep

# The real builder, held until the test opens a FIFO: it says it started, then blocks on open().
_GATED_BUILDER = (
    "import sys; from watcherd.near.builder import main; open(sys.argv[1], 'w').close(); "
    "open(sys.argv[2]).read(); sys.exit(main(sys.argv[3:]))"
)


def _log_length(cfg: Config) -> int:
    with sqlite3.connect(cfg.database_path) as con:
        (n,) = con.execute("SELECT count(*) FROM near_log").fetchone()
    return int(n)


def _answer(cfg: Config, hash_hex: str) -> list[tuple[str, str, int]] | None:
    log = NearLogReader(cfg.database_path)
    try:
        return reader.similar(reader.index_path(cfg.state_dir), log, int(hash_hex, 16), 0)
    finally:
        log.close()


def test_a_scan_folds_the_log_into_a_new_index(cfg: Config) -> None:
    for i in range(3):
        drop(cfg.thumbs_dir / f"p{i}.jpg", seed=i + 1)
    assert cfg.root is not None
    assert main(["scan", str(cfg.root)]) == 0
    assert reader.index_path(cfg.state_dir).is_file()
    assert _log_length(cfg) == 0  # trimmed: the published index covers it all
    with sqlite3.connect(cfg.database_path) as con:
        hashes = [h for (h,) in con.execute("SELECT json_extract(value, '$.hash') FROM images")]
    assert len(hashes) == 3
    for h in hashes:
        found = _answer(cfg, h)  # answered from the file alone, no delta
        assert found is not None and [d for _, _, d in found] == [0]


def test_the_daemon_keeps_ingesting_while_the_index_is_rebuilt(cfg: Config, tmp_path: Path) -> None:
    started, gate = tmp_path / "builder-started", tmp_path / "gate"
    os.mkfifo(gate)
    running = Running(cfg)
    command = [sys.executable, "-c", _GATED_BUILDER, str(started), str(gate)]
    keeper = Maintainer(cfg.state_dir, cfg.database_path, quiet=0.0, most=1, command=command)
    running.daemon.near = Upkeep(cfg.state_dir, cfg.database_path)
    running.daemon.near.indexes = [keeper]  # the names' index alone, built by the gated builder
    running.thread.start()
    try:
        wait_for(running.scanned, what="start-up scan")
        wait_for(started.exists, what="the builder started (no index yet)")
        drop(cfg.thumbs_dir / "during.jpg", seed=7)
        (rec,) = wait_for(
            lambda: [r for r in running.images() if r["moving_from"] is None], what="a file ingested during the rebuild"
        )
        assert keeper.building  # the builder is still held at the gate
        assert not reader.index_path(cfg.state_dir).exists()
        with open(gate, "w"):
            pass  # let the builder go
        wait_for(lambda: not keeper.building and _log_length(cfg) == 0, what="index published, log trimmed")
        assert _answer(cfg, rec["hash"]) == [(rec["name"], rec["path"], 0)]
        assert [h["name"] for h in search.similar(cfg, rec["hash"], 0)] == [rec["name"]]
    finally:
        running.stop.set()
        running.thread.join(timeout=20)
    assert running.error is None and running.code == 0
