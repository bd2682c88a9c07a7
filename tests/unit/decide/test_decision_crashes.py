"""A decision (and its undo) stopped at every step it takes, then the next start: files and catalog agree.

The checkpoint hook stops the decision between two of its steps exactly as a power cut
would (nothing after that point runs); a fresh catalog connection and a full reconcile
play the next start. Each step is stopped at in turn, until a run takes no more steps.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.helpers import encode, scene, table, write
from tests.invariants import check_library
from watcherd.catalog import Catalog, open_for_writing
from watcherd.core.collisionrecords import Verdict
from watcherd.core.config import Config
from watcherd.core.outcomes import Outcome
from watcherd.decide import deciding
from watcherd.decide.decisions import Decisions
from watcherd.decode import imaging
from watcherd.filing.adopt import examine
from watcherd.filing.context import Context
from watcherd.filing.journal import STEPS
from watcherd.filing.originals import Filing
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile


class PowerCut(BaseException):
    """The process stops here: nothing after this point runs."""


def library(root: Path) -> tuple[Config, dict[str, bytes]]:
    """cats/a.png, then the same picture as JPEG in dogs/: one perceptual collision."""
    root.mkdir()
    cfg = dataclasses.replace(Config(), settle=0.2, heartbeat=0.2, rescan_interval=0).with_root(root)
    im = scene(seed=61)
    dropped = {"a.png": encode(im, "PNG"), "b.jpg": encode(im, "JPEG", quality=95)}
    with open_for_writing(cfg).catalog as catalog:
        pipeline = Pipeline(cfg, catalog)
        assert pipeline.process(write(cfg.thumbs_dir / "cats" / "a.png", dropped["a.png"])).outcome is Outcome.INGESTED
        assert pipeline.process(write(cfg.thumbs_dir / "dogs" / "b.jpg", dropped["b.jpg"])).outcome is (
            Outcome.COLLISION
        )
    return cfg, dropped


def cut_at(n: int, seen: list[str]) -> object:
    def checkpoint(step: str, path: Path) -> None:
        seen.append(f"{step} {path.name}")
        if len(seen) > n:
            raise PowerCut

    return checkpoint


def decisions(cfg: Config, catalog: Catalog, checkpoint: object) -> Decisions:
    ctx = Context(cfg, catalog, checkpoint=checkpoint)  # type: ignore[arg-type]
    return Decisions(ctx, Filing(ctx), imaging.render)


def agree(cfg: Config, catalog: Catalog) -> list[str]:
    """Thumbnails and records agree: every place holds our thumbnail of the record's bytes,
    ``_collisions/`` holds exactly the undecided newcomers', and no step is left to do."""
    problems = []
    for name in [*catalog.present_in("thumbs/cats/"), *catalog.present_in("thumbs/dogs/")]:
        rec = catalog.image(name)
        assert rec is not None
        for rel in rec.paths:
            path = cfg.root / rel if cfg.root else Path(rel)
            thumb = examine(path, path.lstat()) if path.exists() else None
            if thumb is None or thumb.sha256 != rec.sha256:
                problems.append(f"{rel} does not hold {name}'s thumbnail")
    wanted = {c.newcomer.thumbnail or "" for c in catalog.collisions() if c.decision is None}
    held = {f"thumbs/_collisions/{p.name}" for p in cfg.thumbs_dir.joinpath("_collisions").glob("*.png")}
    if held != wanted:
        problems.append(f"_collisions holds {sorted(held)}, the catalog names {sorted(wanted)}")
    for col in catalog.collisions():
        if col.decision is not None and col.decision.setting_aside:
            problems.append(f"{col.id}: originals still to set aside")
        if (
            col.decision is not None
            and col.decision.archived
            and not (cfg.root or Path()).joinpath(col.decision.archived).is_file()
        ):
            problems.append(f"{col.id}: archived original not at {col.decision.archived}")
    if catalog.meta(STEPS):
        problems.append("thumbnail steps left in the journal")
    return problems


def restart(cfg: Config) -> None:
    with open_for_writing(cfg).catalog as catalog:
        reconcile(Pipeline(cfg, catalog), reason="test", settle=0)


def decide_until_cut(cfg: Config, verdict: Verdict, undo: bool, n: int, seen: list[str]) -> bool:
    """Decide the library's one collision (or undo that decision) with the power cut at step ``n``;
    True when the cut came before the decision was done."""
    with open_for_writing(cfg).catalog as catalog:
        (col,) = catalog.collisions()
        if undo:
            deciding.resolve(decisions(cfg, catalog, lambda s, p: None), col.id, verdict)
        try:
            made = decisions(cfg, catalog, cut_at(n, seen))
            deciding.undo(made) if undo else deciding.resolve(made, col.id, verdict)
        except PowerCut:
            return True
        return False


@pytest.mark.parametrize("verdict", list(Verdict))
@pytest.mark.parametrize("undo", [False, True], ids=["decide", "undo"])
def test_stopped_at_any_step_the_next_start_finishes_it(tmp_path: Path, verdict: Verdict, undo: bool) -> None:
    n = 0
    while True:
        cfg, dropped = library(tmp_path / f"lib{n}")
        seen: list[str] = []
        cut = decide_until_cut(cfg, verdict, undo, n, seen)
        restart(cfg)
        with open_for_writing(cfg).catalog as catalog:
            assert agree(cfg, catalog) == [], f"stopped before step {n} of {seen}"
            (after,) = catalog.collisions()
            # the decision (or undo) was committed before its first step: the start finishes it
            assert (after.decision is None) == undo, f"stopped before step {n} of {seen}"
            if not undo:
                assert after.decision is not None and after.decision.kind is verdict
        assert check_library(cfg.root or Path(), dropped) == [], f"stopped before step {n} of {seen}"
        if not cut:
            break
        n += 1
    print(verdict.value, "undo" if undo else "decide", seen)
    assert n >= 1  # it did take steps to stop at


def redrop_stopped_before_filing(cfg: Config, again: Path, table_name: str) -> list[list[str]]:
    """A scan meets ``again`` (decided bytes dropped again) and stops just before filing it;
    returns the moves its batch had committed by then (in the decision in ``table_name``)."""
    committed: list[list[str]] = []

    def look(step: str, path: Path) -> None:
        if step == "filing" and path == again:
            # what another reader sees: the batch is committed, naming where the file goes
            (row,) = table(cfg.database_path, table_name)
            committed.extend(row["decision"]["setting_aside"])
            raise PowerCut

    with open_for_writing(cfg).catalog as catalog, pytest.raises(PowerCut):
        reconcile(Pipeline(cfg, catalog, checkpoint=look), reason="test", settle=0)
    assert again.exists()  # not moved before that
    return committed


def check_set_aside_after_restart(cfg: Config, again: Path, table_name: str, planned: str, data: bytes) -> None:
    """The next start moved ``again`` to ``planned``, recorded it there and left nothing to do."""
    restart(cfg)
    assert not again.exists()
    (row,) = table(cfg.database_path, table_name)
    assert row["decision"]["again"] == [planned]
    assert "setting_aside" not in row["decision"]
    assert (cfg.root or Path()).joinpath(planned).read_bytes() == data


def test_decided_bytes_dropped_again_in_a_scan_move_only_once_their_record_is_committed(tmp_path: Path) -> None:
    cfg, dropped = library(tmp_path / "lib")
    with open_for_writing(cfg).catalog as catalog:
        (col,) = catalog.collisions()
        deciding.resolve(decisions(cfg, catalog, lambda s, p: None), col.id, Verdict.KEEP_EXISTING)
    again = write(cfg.thumbs_dir / "birds" / "c.jpg", dropped["b.jpg"])
    planned = f"originals/_duplicates/{col.id}~again.jpg"
    assert redrop_stopped_before_filing(cfg, again, "collisions") == [["thumbs/birds/c.jpg", planned]]
    check_set_aside_after_restart(cfg, again, "collisions", planned, dropped["b.jpg"])
    assert check_library(cfg.root or Path(), {**dropped, "c.jpg": dropped["b.jpg"]}) == []


def test_two_copies_of_decided_bytes_dropped_again_in_one_batch_are_told_apart(tmp_path: Path) -> None:
    cfg, dropped = library(tmp_path / "lib")
    with open_for_writing(cfg).catalog as catalog:
        (col,) = catalog.collisions()
        deciding.resolve(decisions(cfg, catalog, lambda s, p: None), col.id, Verdict.KEEP_EXISTING)
        write(cfg.thumbs_dir / "birds" / "c.jpg", dropped["b.jpg"])
        write(cfg.thumbs_dir / "fish" / "d.jpg", dropped["b.jpg"])
        reconcile(Pipeline(cfg, catalog), reason="test", settle=0)  # one batch: both re-drops in it
    (row,) = table(cfg.database_path, "collisions")
    again = row["decision"]["again"]
    assert len(set(again)) == 2  # each copy named where it went
    assert all((cfg.root or Path()).joinpath(rel).read_bytes() == dropped["b.jpg"] for rel in again)
    assert check_library(cfg.root or Path(), {**dropped, "c.jpg": dropped["b.jpg"], "d.jpg": dropped["b.jpg"]}) == []
