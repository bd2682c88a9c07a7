"""A near group's keep decision (and its undo) stopped at every step it takes, then the next start.

As ``test_decision_crashes``: the checkpoint hook stops the decision between two steps
exactly as a power cut would; a fresh catalog connection and a full reconcile play the
next start; each step is stopped at in turn, until a run takes no more steps.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import encode, scene, table, write
from tests.invariants import check_library
from tests.unit.decide.test_decision_crashes import (
    PowerCut,
    check_set_aside_after_restart,
    cut_at,
    decisions,
    redrop_stopped_before_filing,
    restart,
)
from watcherd.catalog import Catalog, open_for_writing
from watcherd.core.collisionrecords import Verdict
from watcherd.core.config import Config
from watcherd.core.outcomes import Outcome
from watcherd.decide import deciding
from watcherd.filing.adopt import examine
from watcherd.filing.journal import STEPS
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile


def library(root: Path) -> tuple[Config, str, dict[str, bytes]]:
    """cats/a.png, then the same picture a little smaller in dogs/b.png: a near pair (its id)."""
    import dataclasses

    root.mkdir()
    cfg = dataclasses.replace(Config(), settle=0.2, heartbeat=0.2, rescan_interval=0).with_root(root)
    im = scene(seed=62)
    dropped = {"a.png": encode(im, "PNG"), "b.png": encode(im.resize((318, 240)), "PNG")}
    ticks = itertools.count()
    names = []
    with open_for_writing(cfg).catalog as catalog:
        pipeline = Pipeline(cfg, catalog, now=lambda: 1_700_000_000.0 + 60 * next(ticks))
        for folder, name in (("cats", "a.png"), ("dogs", "b.png")):
            result = pipeline.process(write(cfg.thumbs_dir / folder / name, dropped[name]))
            assert result.outcome is Outcome.INGESTED and result.name is not None
            names.append(result.name)
    return cfg, "+".join(sorted(names)), dropped


def agree(cfg: Config, catalog: Catalog) -> list[str]:
    """Every place of every present record holds our thumbnail of its bytes, every merged
    original is where its decision says, and nothing is left to do."""
    root, problems = cfg.root or Path(), []
    for rec in catalog.images():
        for rel in rec.paths:
            thumb = examine(root / rel, (root / rel).lstat()) if (root / rel).exists() else None
            if thumb is None or thumb.sha256 != rec.sha256:
                problems.append(f"{rel} does not hold {rec.name}'s thumbnail")
        if rec.original and not (root / rec.original).is_file():
            problems.append(f"{rec.name}: original not at {rec.original}")
    for near in catalog.near_decisions():
        if near.decision.setting_aside:
            problems.append(f"{near.id}: originals still to set aside")
        for merged in near.merged:
            if catalog.image(merged.image.name) is not None:
                problems.append(f"{merged.image.name} is merged and catalogued")
            if merged.archived and not (root / merged.archived).is_file():
                problems.append(f"{near.id}: archived original not at {merged.archived}")
    if catalog.meta(STEPS):
        problems.append("thumbnail steps left in the journal")
    return problems


@pytest.mark.parametrize("verdict", [Verdict.KEEP_EXISTING, Verdict.KEEP_NEWCOMER])
@pytest.mark.parametrize("undo", [False, True], ids=["decide", "undo"])
def test_stopped_at_any_step_the_next_start_finishes_it(tmp_path: Path, verdict: Verdict, undo: bool) -> None:
    n = 0
    while True:
        cfg, ident, dropped = library(tmp_path / f"lib{n}")
        seen: list[str] = []
        with open_for_writing(cfg).catalog as catalog:
            if undo:
                deciding.resolve(decisions(cfg, catalog, lambda s, p: None), ident, verdict)
            try:
                made = decisions(cfg, catalog, cut_at(n, seen))
                deciding.undo(made) if undo else deciding.resolve(made, ident, verdict)
            except PowerCut:
                cut = True
            else:
                cut = False
        restart(cfg)
        with open_for_writing(cfg).catalog as catalog:
            assert agree(cfg, catalog) == [], f"stopped before step {n} of {seen}"
            # the decision (or undo) was committed before its first step: the start finishes it
            assert len(list(catalog.images())) == (2 if undo else 1), f"stopped before step {n} of {seen}"
            assert (catalog.near_decision(ident) is None) == undo
        assert check_library(cfg.root or Path(), dropped) == [], f"stopped before step {n} of {seen}"
        if not cut:
            break
        n += 1
    print(verdict.value, "undo" if undo else "decide", seen)
    assert n >= 2  # it did take steps to stop at (thumbnail and original)


def test_merged_bytes_dropped_again_in_a_scan_move_only_once_their_record_is_committed(tmp_path: Path) -> None:
    cfg, ident, dropped = library(tmp_path / "lib")
    with open_for_writing(cfg).catalog as catalog:
        deciding.resolve(decisions(cfg, catalog, lambda s, p: None), ident, Verdict.KEEP_EXISTING)
        (near,) = catalog.near_decisions()
    merged = near.merged[0].image.name[: -len(".png")]
    again = write(cfg.thumbs_dir / "birds" / "c.png", dropped["b.png"])
    planned = f"originals/_duplicates/{merged}~again.png"
    assert redrop_stopped_before_filing(cfg, again, "near_decisions") == [["thumbs/birds/c.png", planned]]
    check_set_aside_after_restart(cfg, again, "near_decisions", planned, dropped["b.png"])
    assert check_library(cfg.root or Path(), {**dropped, "c.png": dropped["b.png"]}) == []


def test_the_original_of_a_missing_image_dropped_again_moves_only_once_its_record_is_committed(
    tmp_path: Path,
) -> None:
    cfg, _, dropped = library(tmp_path / "lib")
    root = cfg.root or Path()
    with open_for_writing(cfg).catalog as catalog:
        rec = next(r for r in catalog.images() if r.original_filename == "a.png")
    (root / rec.path).unlink()
    restart(cfg)  # the thumbnail is gone: the image is missing
    again = write(cfg.thumbs_dir / "birds" / "a again.png", dropped["a.png"])
    committed: list[dict[str, Any]] = []

    def look(step: str, path: Path) -> None:
        if step == "filing" and path == again:
            # what another reader sees: the batch is committed, the record present, the move planned
            (row,) = [r for r in table(cfg.database_path, "images") if r["name"] == rec.name]
            metas: list[Any] = table(cfg.database_path, "meta")
            (steps,) = [r for r in metas if isinstance(r, list) and r]
            committed.extend([row, *steps])
            raise PowerCut

    with open_for_writing(cfg).catalog as catalog, pytest.raises(PowerCut):
        reconcile(Pipeline(cfg, catalog, checkpoint=look), reason="test", settle=0)
    row, publish, aside = committed
    assert row["state"] == "present" and row["path"] == f"thumbs/birds/{rec.name}" and "birds" in row["tags"]
    assert (publish["op"], aside) == (
        "publish",
        {"op": "aside", "path": "thumbs/birds/a again.png", "to": "originals/_again/a again.png"},
    )
    assert again.exists()  # not moved before that
    restart(cfg)
    assert not again.exists()
    assert (cfg.originals_dir / "_again" / "a again.png").read_bytes() == dropped["a.png"]
    assert (cfg.thumbs_dir / "birds" / rec.name).is_file()
    with open_for_writing(cfg).catalog as catalog:
        assert not catalog.meta(STEPS)
        back = catalog.image(rec.name)
        assert back is not None and back.present and back.original == rec.original
    assert check_library(root, {**dropped, "a again.png": dropped["a.png"]}) == []
