"""``check`` after a decision stopped at each of its steps: it names what is unfinished, and
``--repair``'s writer (in process here) finishes it as the next start would."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.invariants import check_library, check_problems
from tests.unit.decide.test_decision_crashes import agree, decide_until_cut, library
from watcherd.catalog import open_for_writing
from watcherd.check.repair import repair
from watcherd.core.collisionrecords import Verdict
from watcherd.decode import imaging


@pytest.mark.parametrize("verdict", list(Verdict))
@pytest.mark.parametrize("undo", [False, True], ids=["decide", "undo"])
def test_a_decision_stopped_at_any_step_is_reported_and_repaired(tmp_path: Path, verdict: Verdict, undo: bool) -> None:
    n = 0
    while True:
        cfg, dropped = library(tmp_path / f"lib{n}")
        root = cfg.root or Path()
        seen: list[str] = []
        cut = decide_until_cut(cfg, verdict, undo, n, seen)
        found = check_problems(root)
        if not cut:
            assert found == []
            break
        assert found, f"check saw nothing wrong after a stop before step {n} of {seen}"
        # A distinct command renames the newcomer's thumbnail into the tree just before its commit:
        # stopped in between, that is the gesture, which a scan (and the repair) decides distinct.
        kinds = ("pending-steps", "unfinished-move", "unrecorded-thumbnail")
        assert all(line.startswith(kinds) for line in found), found
        with open_for_writing(cfg).catalog as catalog:
            done = repair(cfg, catalog, imaging.render, sweep=True)["repaired"]
            assert {r["code"] for r in done} <= {*kinds, "stale-export"}, done  # no export here before
            assert agree(cfg, catalog) == [], f"stopped before step {n} of {seen}"
        assert check_library(root, dropped) == [], f"stopped before step {n} of {seen}"
        n += 1
    assert n >= 1  # it did take steps to stop at
