"""Decisions by command (no daemon: the command takes the lease), kept by ``rebuild``, applied again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import encode, scene, table, write
from tests.helpers import in_process_json as run
from tests.invariants import check_library
from watcherd.cli import main
from watcherd.core.config import Config
from watcherd.decode import imaging


def library(cfg: Config, capsys: pytest.CaptureFixture[str]) -> tuple[str, dict[str, bytes]]:
    """cats/a.png, then the same picture as JPEG dropped in dogs/: one perceptual collision."""
    im = scene(seed=31)
    dropped = {"a.png": encode(im, "PNG"), "b.jpg": encode(im, "JPEG", quality=95)}
    write(cfg.thumbs_dir / "cats" / "a.png", dropped["a.png"])
    run(capsys, "scan", str(cfg.root))
    write(cfg.thumbs_dir / "dogs" / "b.jpg", dropped["b.jpg"])
    run(capsys, "scan", str(cfg.root))
    (item,) = run(capsys, "dupes", str(cfg.root))
    return str(item["id"]), dropped


@pytest.mark.parametrize("decision", ["distinct", "keep-existing", "keep-newcomer"])
def test_a_decision_survives_rebuild_and_settles_the_same_bytes_again(
    cfg: Config, capsys: pytest.CaptureFixture[str], decision: str
) -> None:
    root = str(cfg.root)
    ident, dropped = library(cfg, capsys)
    done = run(capsys, "resolve", root, ident, decision)
    assert done["id"] == ident and done["decision"] == decision and not done["undone"]
    assert run(capsys, "dupes", root) == []
    (item,) = run(capsys, "dupes", root, "--all")
    assert item["decision"] == decision and item["decided"]
    assert check_library(Path(root), dropped) == []
    images = {r["name"]: r for r in table(cfg.database_path, "images")}

    run(capsys, "rebuild", root)
    assert run(capsys, "dupes", root) == []
    (again,) = run(capsys, "dupes", root, "--all")
    assert again["decision"] == decision and again["decided"] == item["decided"]
    rebuilt = {r["name"]: r for r in table(cfg.database_path, "images")}
    assert {n: sorted(r["tags"]) for n, r in rebuilt.items()} == {n: sorted(r["tags"]) for n, r in images.items()}

    # the newcomer's bytes dropped again into a third folder: settled as before, no new collision
    write(cfg.thumbs_dir / "birds" / "c.jpg", dropped["b.jpg"])
    run(capsys, "scan", root)
    assert run(capsys, "dupes", root) == []
    assert not (cfg.thumbs_dir / "birds" / "c.jpg").exists()
    holder = done["image"]
    tags = {r["name"]: r["tags"] for r in table(cfg.database_path, "images")}[holder]
    assert "birds" in tags
    assert check_library(Path(root), {**dropped, "c.jpg": dropped["b.jpg"]}) == []

    # undo reverts the last decision: undecided again, the files back under _collisions
    assert run(capsys, "resolve", root, "--undo")["undone"]
    (back,) = run(capsys, "dupes", root)
    assert back["id"] == ident and back["decision"] is None
    assert all((cfg.root / p).exists() for p in back["paths"] if cfg.root is not None)
    assert check_library(Path(root), dropped) == []


def test_a_near_group_decided_distinct_is_not_listed_again(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(cfg.root)
    im = scene(seed=32)
    write(cfg.thumbs_dir / "a.png", encode(im, "PNG"))
    write(cfg.thumbs_dir / "b.png", encode(im.resize((318, 240)), "PNG"))
    run(capsys, "scan", root)
    (group,) = run(capsys, "dupes", root, "--near", "8")
    assert group["kind"] == "near" and group["id"] == "+".join(group["names"])
    assert run(capsys, "resolve", root, group["id"], "distinct")["decision"] == "distinct"
    assert run(capsys, "dupes", root, "--near", "8") == []
    assert run(capsys, "dupes", root, "--near", "8", "--all")[0]["decision"] == "distinct"
    run(capsys, "rebuild", root)
    assert run(capsys, "dupes", root, "--near", "8") == []
    run(capsys, "resolve", root, "--undo")
    assert [g["id"] for g in run(capsys, "dupes", root, "--near", "8")] == [group["id"]]
    assert table(cfg.database_path, "collisions") == []


@pytest.mark.parametrize("decision", ["keep-existing", "keep-newcomer"])
def test_undo_makes_thumbnails_again_in_the_decoder_sandbox_never_in_the_writer(
    cfg: Config, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, decision: str
) -> None:
    root = str(cfg.root)
    ident, dropped = library(cfg, capsys)
    run(capsys, "resolve", root, ident, decision)

    def in_the_writer(*args: object) -> object:
        raise AssertionError("an original was decoded in the writer process")

    # The sandbox's worker is a fresh interpreter: this process's patch does not reach it.
    monkeypatch.setattr(imaging, "decode", in_the_writer)
    assert run(capsys, "resolve", root, "--undo")["undone"]
    (back,) = run(capsys, "dupes", root)
    assert back["id"] == ident and (Path(root) / back["newcomer"]["thumbnail"]).is_file()
    assert check_library(Path(root), dropped) == []


def test_undo_names_what_it_undid_and_an_undo_naming_another_decision_exits_7(
    cfg: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(cfg.root)
    for seed in (31, 32):
        write(cfg.thumbs_dir / "cats" / f"a{seed}.png", encode(scene(seed=seed), "PNG"))
    run(capsys, "scan", root)
    for seed in (31, 32):
        write(cfg.thumbs_dir / "dogs" / f"b{seed}.jpg", encode(scene(seed=seed), "JPEG", quality=95))
    run(capsys, "scan", root)
    a, b = (d["id"] for d in run(capsys, "dupes", root))
    run(capsys, "resolve", root, a, "keep-existing")
    made = run(capsys, "resolve", root, b, "distinct")["made"]
    assert (made["id"], made["decision"], made["via"]) == (b, "distinct", "command")

    assert main(["resolve", root, "--undo", a]) == 7
    out, err = capsys.readouterr()
    (line,) = [e for e in err.splitlines() if e.startswith("watcherd: error:")]
    assert out == "" and line.startswith(
        f"watcherd: error: the last decision is distinct on {b} (made from the command line at {made['decided']}), "
        f"not the one on {a}"
    )
    assert {d["id"]: d["decision"] for d in run(capsys, "dupes", root, "--all")} == {a: "keep-existing", b: "distinct"}

    assert main(["resolve", root, "--undo", b]) == 0
    said = f"undid distinct on {b} (made from the command line at {made['decided']}): undecided again\n"
    assert capsys.readouterr().out == said
    undone = run(capsys, "resolve", root, "--undo")
    assert undone["id"] == a and undone["undone"] and undone["decision"] is None
    assert undone["undid"]["id"] == a and undone["undid"]["decision"] == "keep-existing"
    assert {d["id"]: d["decision"] for d in run(capsys, "dupes", root, "--all")} == {a: None, b: None}
    assert main(["resolve", root, "--undo", a]) == 7  # nothing left: no decision on a to undo
    assert "there is no decision on" in capsys.readouterr().err
    run(capsys, "resolve", root, a, "keep-existing")
    assert main(["resolve", "--undo", root, "--json"]) == 0  # ROOT after --undo: a root, not an ID
    assert json.loads(capsys.readouterr().out)["undid"]["id"] == a
