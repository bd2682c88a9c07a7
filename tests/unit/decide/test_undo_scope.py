"""Undo's scope: an undo that names a decision (its id, and the token ``resolve`` gave it)
reverts it only while it is the last decision in effect; otherwise it is refused and
nothing changes. A bare undo takes the last decision anywhere, and names it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import digest, encode, scene, write
from tests.invariants import check_library
from watcherd.catalog import Catalog
from watcherd.commands import duplicates, edits, library
from watcherd.commands.library import Library
from watcherd.commands.mailbox import Request
from watcherd.core.config import Config
from watcherd.core.errors import ConflictError, UsageError
from watcherd.core.outcomes import Outcome
from watcherd.decode import imaging
from watcherd.flow.pipeline import Pipeline


def two_collisions(cfg: Config, pipeline: Pipeline) -> tuple[list[str], dict[str, bytes]]:
    """cats/a{s}.png, then the same picture as JPEG in dogs/b{s}.jpg, for two pictures: two collisions."""
    dropped: dict[str, bytes] = {}
    for seed in (6, 7):
        im = scene(seed=seed)
        first, second = encode(im, "PNG"), encode(im, "JPEG", quality=95)
        dropped |= {f"a{seed}.png": first, f"b{seed}.jpg": second}
        assert pipeline.process(write(cfg.thumbs_dir / "cats" / f"a{seed}.png", first)).outcome is Outcome.INGESTED
        assert pipeline.process(write(cfg.thumbs_dir / "dogs" / f"b{seed}.jpg", second)).outcome is Outcome.COLLISION
    ids = [c.id for c in pipeline.catalog.collisions()]
    assert len(ids) == 2
    return ids, dropped


def state(cfg: Config, catalog: Catalog) -> tuple[Any, ...]:
    """Everything an undo could change: the files under the root, the records, the order of decisions."""
    assert cfg.root is not None
    files = {
        p.relative_to(cfg.root).as_posix(): digest(p.read_bytes())
        for top in (cfg.thumbs_dir, cfg.originals_dir)
        for p in top.rglob("*")
        if p.is_file()
    }
    records = (
        [r.to_json() for r in catalog.images()],
        [c.to_json() for c in catalog.collisions()],
        catalog.meta("decided"),
        catalog.meta("decisions_made"),
    )
    return files, records


def decide(cfg: Config, catalog: Catalog, ident: str, decision: str, via: str) -> dict[str, Any]:
    made = edits.resolve(cfg, catalog, ident, decision, via, render=imaging.render)["made"]
    assert made["id"] == ident and made["decision"] == decision and made["via"] == via and made["token"]
    return dict(made)


def undo(cfg: Config, catalog: Catalog, ident: str | None = None, token: str | None = None) -> dict[str, Any]:
    return dict(edits.undo(cfg, catalog, imaging.render, ident, token)["undid"])


def decided(catalog: Catalog) -> dict[str, str | None]:
    return {d["id"]: d["decision"] for d in duplicates.dupes(catalog, decided=True)}


def test_an_undo_naming_a_decision_that_is_not_the_last_is_refused_and_changes_nothing(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    (a, b), dropped = two_collisions(cfg, pipeline)
    by_command = decide(cfg, catalog, a, "keep-existing", "command")
    by_page = decide(cfg, catalog, b, "distinct", "page")
    before = state(cfg, catalog)

    with pytest.raises(ConflictError) as refused:
        undo(cfg, catalog, a, by_command["token"])
    message = str(refused.value)
    assert message.startswith(f"the last decision is distinct on {b} (made on the review page at ")
    assert f"not the one on {a}" in message and "'watcherd resolve --undo'" in message
    assert "nothing was changed" in message and "\n" not in message
    assert refused.value.exit_code == 7
    assert refused.value.details == {"last": by_page, "named": {"id": a, "in_effect": True}}
    assert state(cfg, catalog) == before  # not a file, not a record

    # The one named is the last: undone, and named.
    assert undo(cfg, catalog, b, by_page["token"]) == by_page
    assert decided(catalog) == {a: "keep-existing", b: None}
    # Now the command's decision is the last; naming it (without a token, as the CLI does) undoes it.
    assert undo(cfg, catalog, a) == by_command
    assert decided(catalog) == {a: None, b: None}
    assert check_library(cfg.root or Path(), dropped) == []
    with pytest.raises(UsageError, match="no decision to undo"):
        undo(cfg, catalog)


def test_a_decision_undone_elsewhere_is_refused_and_a_newer_one_on_the_same_item_is_not_undone(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    (a, b), _ = two_collisions(cfg, pipeline)
    by_command = decide(cfg, catalog, a, "keep-existing", "command")
    by_page = decide(cfg, catalog, b, "keep-newcomer", "page")
    assert undo(cfg, catalog) == by_page  # a bare undo (the command line): the last one anywhere

    before = state(cfg, catalog)
    with pytest.raises(ConflictError, match=f"there is no decision on {b} to undo") as refused:
        undo(cfg, catalog, b, by_page["token"])
    assert refused.value.details == {"last": by_command, "named": {"id": b, "in_effect": False}}
    assert state(cfg, catalog) == before

    # b decided again elsewhere: the page's token names the old decision, not this one.
    again = decide(cfg, catalog, b, "distinct", "command")
    assert again["token"] != by_page["token"]
    before = state(cfg, catalog)
    with pytest.raises(ConflictError, match=f"undone elsewhere, and {b} decided again since") as refused:
        undo(cfg, catalog, b, by_page["token"])
    assert refused.value.details == {"last": again, "named": {"id": b, "in_effect": False}}
    assert state(cfg, catalog) == before
    assert decided(catalog) == {a: "keep-existing", b: "distinct"}


def test_an_undo_request_applied_twice_undoes_one_decision(cfg: Config, catalog: Catalog, pipeline: Pipeline) -> None:
    """A writer that dies after applying a request and before answering applies it again at start."""
    (a, b), _ = two_collisions(cfg, pipeline)
    decide(cfg, catalog, a, "keep-existing", "command")
    by_page = decide(cfg, catalog, b, "keep-existing", "page")
    request = Request("undo", {"id": b, "token": by_page["token"]})

    first = edits.answer(cfg, catalog, request, imaging.render)
    assert first.ok and first.result["undid"] == by_page
    second = edits.answer(cfg, catalog, request, imaging.render)
    assert not second.ok and second.exit_code == 7 and second.error
    assert second.result["named"] == {"id": b, "in_effect": False}
    assert decided(catalog) == {a: "keep-existing", b: None}  # the command's decision stands


def test_a_bare_undo_names_the_last_decision_so_applied_twice_it_undoes_one(
    cfg: Config, catalog: Catalog, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``resolve --undo`` without an id names the decision last when it is asked: a writer that
    applies it again after dying before its answer refuses, instead of undoing the one before."""
    (a, b), _ = two_collisions(cfg, pipeline)
    decide(cfg, catalog, a, "keep-existing", "command")
    last = decide(cfg, catalog, b, "distinct", "command")
    asked: list[tuple[str, Any]] = []
    monkeypatch.setattr(library, "_change", lambda _cfg, kind, payload: asked.append((kind, payload)))
    Library(cfg).undo()  # what the command hands the writer
    [(kind, arguments)] = asked
    assert (kind, arguments) == ("undo", {"id": b, "token": last["token"]})

    first = edits.answer(cfg, catalog, Request(kind, arguments), imaging.render)
    assert first.ok and first.result["undid"] == last
    second = edits.answer(cfg, catalog, Request(kind, arguments), imaging.render)
    assert not second.ok and second.exit_code == 7
    assert decided(catalog) == {a: "keep-existing", b: None}


def test_a_request_names_only_command_or_page_and_text_ids(cfg: Config, catalog: Catalog, pipeline: Pipeline) -> None:
    (a, b), _ = two_collisions(cfg, pipeline)
    gesture = edits.answer(cfg, catalog, Request("resolve", {"id": a, "decision": "distinct", "via": "gesture"}))
    assert not gesture.ok and gesture.exit_code == 2 and "via 'gesture'" in (gesture.error or "")
    malformed = edits.answer(cfg, catalog, Request("undo", {"id": 12}), imaging.render)
    assert not malformed.ok and malformed.exit_code == 2
    assert decided(catalog) == {a: None, b: None}


def test_near_decisions_are_named_and_scoped_the_same_way(cfg: Config, catalog: Catalog, pipeline: Pipeline) -> None:
    im = scene(seed=32)
    names = []
    for folder, picture in (("cats", im), ("dogs", im.resize((318, 240))), ("birds", scene(seed=33))):
        result = pipeline.process(write(cfg.thumbs_dir / folder / f"{folder}.png", encode(picture, "PNG")))
        assert result.outcome is Outcome.INGESTED and result.name is not None
        names.append(result.name)
    pair = "+".join(sorted(names[:2]))
    other = "+".join(sorted([names[0], names[2]]))  # not near, but a distinct decision takes any two names

    told_apart = decide(cfg, catalog, pair, "distinct", "page")
    kept = decide(cfg, catalog, other, "distinct", "command")
    last = f"the last decision is distinct on {other} (made from the command line at {kept['decided']})"
    with pytest.raises(ConflictError, match=re.escape(last)):
        undo(cfg, catalog, pair, told_apart["token"])
    assert undo(cfg, catalog) == kept
    assert undo(cfg, catalog, pair, told_apart["token"]) == told_apart
    assert catalog.meta("distinct_groups") == [] and catalog.meta("decisions_made") == {}

    merged = decide(cfg, catalog, pair, "keep-existing", "page")
    assert merged["decided"] and merged["via"] == "page"
    assert undo(cfg, catalog, pair, merged["token"]) == merged
    assert sorted(r.name for r in catalog.images()) == sorted(names)


def test_a_decision_made_before_watcherd_recorded_how_is_still_named(
    cfg: Config, catalog: Catalog, pipeline: Pipeline
) -> None:
    """A catalog from an older watcherd: the order of decisions without ``decisions_made``."""
    (a, _), _ = two_collisions(cfg, pipeline)
    made = decide(cfg, catalog, a, "keep-existing", "command")
    with catalog.transaction():
        catalog.set_meta("decisions_made", None)
    with pytest.raises(ConflictError):  # a token names a decision this catalog cannot tell
        undo(cfg, catalog, a, made["token"])
    assert undo(cfg, catalog, a) == {**made, "token": None}  # kind, via and time from the collision's record
