"""The page's batches: several decisions made at once, each recorded with the batch, and
undone as one, only while they are the last decisions (undo's scope, for a batch)."""

from __future__ import annotations

import pytest

from tests.invariants import check_library
from tests.unit.decide.test_undo_scope import decided, state, two_collisions
from watcherd.catalog import Catalog
from watcherd.commands import edits
from watcherd.core.config import Config
from watcherd.core.errors import ConflictError, UsageError
from watcherd.decode import imaging
from watcherd.flow.pipeline import Pipeline


def test_a_batch_is_made_recorded_and_undone_as_one(cfg: Config, catalog: Catalog, pipeline: Pipeline) -> None:
    (a, b), dropped = two_collisions(cfg, pipeline)
    assert cfg.root is not None
    before = state(cfg, catalog)
    asked = [
        {"id": a, "decision": "keep-existing"},
        {"id": b, "decision": "keep-newcomer"},
        {"id": "nope", "decision": "distinct"},
    ]
    done = edits.resolve_batch(cfg, catalog, asked, "page", "b1", imaging.render)
    assert [m["id"] for m in done["made"]] == [a, b]
    assert all(m["made"]["batch"] == "b1" and m["made"]["via"] == "page" for m in done["made"])
    assert [(r["id"], r["decision"]) for r in done["refused"]] == [("nope", "distinct")]
    assert "no collision with id 'nope'" in done["refused"][0]["error"]
    assert decided(catalog) == {a: "keep-existing", b: "keep-newcomer"}
    assert check_library(cfg.root, dropped) == []

    undone = edits.undo_batch(cfg, catalog, "b1", imaging.render)
    assert [u["id"] for u in undone["undid"]] == [b, a]  # newest first
    assert undone["left"] == [] and undone["error"] is None
    assert decided(catalog) == {a: None, b: None}
    files, (_, _, stack, made) = state(cfg, catalog)
    # keep-newcomer's undo sends the newcomer's original back to _collisions/ with the sidecar
    # watcherd wrote beside it meanwhile (sidecars follow their originals: test_tagfiles.py)
    files = {p: h for p, h in files.items() if not p.endswith(".xmp") or p in before[0]}
    assert set(files) == set(before[0]) and not stack and not made  # thumbnails made again: new `ingested` chunk
    assert {p: h for p, h in files.items() if p.startswith("originals/")} == {
        p: h for p, h in before[0].items() if p.startswith("originals/")
    }
    assert check_library(cfg.root, dropped) == []
    with pytest.raises(ConflictError, match="there is no decision of batch b1 to undo"):
        edits.undo_batch(cfg, catalog, "b1", imaging.render)  # applied again (a daemon that died): refused


def test_a_batch_with_a_later_decision_after_it_is_not_undone(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    (a, b), _ = two_collisions(cfg, pipeline)
    edits.resolve_batch(cfg, catalog, [{"id": a, "decision": "distinct"}], "page", "b2", imaging.render)
    edits.resolve(cfg, catalog, b, "keep-existing", "command", render=imaging.render)
    before = state(cfg, catalog)
    with pytest.raises(
        ConflictError, match=f"the last decision is keep-existing on {b} .*made after batch b2"
    ) as refused:
        edits.undo_batch(cfg, catalog, "b2", imaging.render)
    assert refused.value.details is not None and refused.value.details["named"] == {"id": "b2", "in_effect": True}
    assert state(cfg, catalog) == before
    # A bare undo (the command line's) takes one decision; the batch's own is then the last again.
    edits.undo(cfg, catalog, imaging.render)
    assert [u["id"] for u in edits.undo_batch(cfg, catalog, "b2", imaging.render)["undid"]] == [a]


def test_a_batch_is_named_safely(cfg: Config, catalog: Catalog) -> None:
    with pytest.raises(UsageError, match="a batch is named by"):
        edits.resolve_batch(cfg, catalog, [], "page", "../x", imaging.render)
    with pytest.raises(UsageError, match="each decision of a batch is"):
        edits.resolve_batch(cfg, catalog, [{"id": "x", "decision": "maybe"}], "page", "b", imaging.render)
