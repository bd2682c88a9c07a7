"""A short soak in CI: a few seconds of drops, copies, moves, renames and deletes."""

from pathlib import Path

import pytest

from tests.benchmarks.soak import run


@pytest.mark.timeout(300)  # 8 s of operations, then up to 120 s for the daemon to catch up
def test_short_soak_loses_nothing(tmp_path: Path) -> None:
    figures = run(8.0, tmp_path, seed=1)
    dropped = figures["files_dropped"]
    assert isinstance(dropped, int) and dropped > 50
    ops = figures["operations"]
    assert isinstance(ops, dict) and {"drop", "move", "delete"} <= set(ops)
