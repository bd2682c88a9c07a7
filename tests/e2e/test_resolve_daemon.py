"""``watcherd resolve`` and ``resolve --undo`` as processes beside a running ``watcherd run``.

The collision is dropped while the daemon watches; each command is handed to the daemon
(the one writer) and answered; files and catalog are checked, then again after the
daemon stops and ``watcherd rebuild`` makes the catalog afresh from the tree and export.
The share config (live catalog elsewhere, snapshot published) is run too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli, encode, running_daemon, scene, table, wait_for, write
from tests.invariants import check_library
from watcherd.commands.library import Library
from watcherd.core import config
from watcherd.core.errors import Refused


def dupes(root: Path, conf: Path, *extra: str) -> list[dict[str, Any]]:
    return list(cli("dupes", str(root), "-c", str(conf), *extra))


@pytest.mark.parametrize("share", [False, True], ids=["local", "share"])
@pytest.mark.parametrize("decision", ["distinct", "keep-existing", "keep-newcomer"])
def test_resolve_and_undo_through_a_running_daemon(tmp_path: Path, decision: str, share: bool) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    live = tmp_path / "local" / "catalog.sqlite"
    conf = tmp_path / "watcherd.yaml"
    conf.write_text("settle: 0.3\nheartbeat: 0.5\n" + (f"database: {live}\npublish_interval: 3600\n" if share else ""))
    db = live if share else root / ".watcherd" / "catalog.sqlite"
    im = scene(seed=41)  # as tests.helpers.collided_library: PNG and JPEG get the same hash
    dropped = {"a.png": encode(im, "PNG"), "b.jpg": encode(im, "JPEG", quality=95)}
    with running_daemon(root, conf) as daemon:
        write(root / "thumbs" / "cats" / "a.png", dropped["a.png"])
        wait_for(lambda: len(table(db, "images")) == 1, what="the first image")
        write(root / "thumbs" / "dogs" / "b.jpg", dropped["b.jpg"])
        (item,) = wait_for(lambda: dupes(root, conf), what="the collision")
        before = {r["name"]: r for r in table(db, "images")}

        done = cli("resolve", str(root), item["id"], decision, "-c", str(conf))
        made = done.pop("made")
        assert done == {"id": item["id"], "decision": decision, "image": done["image"], "undone": False}
        assert (made["id"], made["decision"], made["via"]) == (item["id"], decision, "command")
        assert f"decided {decision} (command)" in daemon.log_text()  # the daemon wrote it
        assert dupes(root, conf) == []
        (col,) = table(db, "collisions")
        assert col["decision"]["kind"] == decision
        assert not (root / item["newcomer"]["thumbnail"]).exists()  # the newcomer's thumbnail left _collisions/
        assert check_library(root, dropped) == []
        images = {r["name"]: r for r in table(db, "images")}
        holder = images[done["image"]]
        assert "dogs" in holder["tags"]  # the newcomer's folder, wherever it went
        if decision == "distinct":
            assert holder["path"] == f"thumbs/dogs/{done['image']}" and len(images) == 2
        else:
            assert len(images) == 1 and "b.jpg" in [holder["original_filename"], *holder.get("other_filenames", [])]
        if share:  # readers of the share see the decision when the command returns
            assert [c["decision"]["kind"] for c in table(root / ".watcherd" / "catalog.sqlite", "collisions")] == [
                decision
            ]

        undone = cli("resolve", str(root), "--undo", "-c", str(conf))
        assert undone["undone"] and undone["id"] == item["id"]
        (back,) = dupes(root, conf)
        assert back["id"] == item["id"] and all((root / p).is_file() for p in back["paths"])
        assert {r["name"]: r["tags"] for r in table(db, "images")} == {n: r["tags"] for n, r in before.items()}
        assert check_library(root, dropped) == []

        # decided again, for rebuild to bring back
        cli("resolve", str(root), item["id"], decision, "-c", str(conf))
        decided = {r["name"]: sorted(r["tags"]) for r in table(db, "images")}
    cli("rebuild", str(root), "-c", str(conf))
    assert dupes(root, conf) == []
    (again,) = dupes(root, conf, "--all")
    assert again["id"] == item["id"] and again["decision"] == decision
    assert {r["name"]: sorted(r["tags"]) for r in table(db, "images")} == decided
    assert check_library(root, dropped) == []
    with running_daemon(root, conf):  # and undo still reverts it after the rebuild
        assert cli("resolve", str(root), "--undo", "-c", str(conf))["undone"]
        assert [d["id"] for d in dupes(root, conf)] == [item["id"]]
    cli("scan", str(root), "-c", str(conf))
    assert [d["id"] for d in dupes(root, conf)] == [item["id"]]
    assert check_library(root, dropped) == []


def test_an_undo_naming_a_decision_is_refused_by_the_daemon_unless_it_is_the_last(tmp_path: Path) -> None:
    """The undo request's id and token, through the request files, answered by a running daemon."""
    root = tmp_path / "lib"
    conf = tmp_path / "watcherd.yaml"
    conf.write_text("settle: 0.3\nheartbeat: 0.5\n")
    for folder, form in (("cats", "PNG"), ("dogs", "JPEG")):
        for seed in (41, 42):
            write(root / "thumbs" / folder / f"{seed}.{form.lower()}", encode(scene(seed=seed), form, quality=95))
        cli("scan", str(root), "-c", str(conf))
    a, b = (d["id"] for d in dupes(root, conf))
    library = Library(config.load(conf).with_root(root))
    with running_daemon(root, conf) as daemon:
        by_command = cli("resolve", str(root), a, "keep-existing", "-c", str(conf))["made"]
        by_page = library.resolve(b, "distinct", "page")["made"]  # as the page's API asks it
        assert by_page["via"] == "page" and "decided distinct (page)" in daemon.log_text()
        decided = {d["id"]: d["decision"] for d in dupes(root, conf, "--all")}
        assert decided == {a: "keep-existing", b: "distinct"}

        refused = subprocess.run(
            [sys.executable, "-m", "watcherd", "resolve", str(root), "--undo", a, "-c", str(conf)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert refused.returncode == 7 and refused.stdout == ""
        assert refused.stderr == (
            f"watcherd: error: the last decision is distinct on {b} (made on the review page at "
            f"{by_page['decided']}), not the one on {a}: only the last decision can be undone; undo it first "
            "with 'watcherd resolve --undo'; nothing was changed\n"
        )
        with pytest.raises(Refused) as named:
            library.undo(a, by_command["token"])
        assert named.value.exit_code == 7
        assert named.value.details == {"last": by_page, "named": {"id": a, "in_effect": True}}
        assert {d["id"]: d["decision"] for d in dupes(root, conf, "--all")} == decided

        assert library.undo(b, by_page["token"])["undid"] == by_page
        assert f"undid distinct on {b} (made on the review page at" in daemon.log_text()
        with pytest.raises(Refused) as again:  # the same undo asked twice: the second is refused
            library.undo(b, by_page["token"])
        assert again.value.exit_code == 7 and again.value.details == {
            "last": by_command,
            "named": {"id": b, "in_effect": False},
        }
        undone = subprocess.run(
            [sys.executable, "-m", "watcherd", "resolve", str(root), "--undo", a, "-c", str(conf)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert undone.stdout == (
            f"undid keep-existing on {a} (made from the command line at {by_command['decided']}): undecided again\n"
        )
        assert {d["id"]: d["decision"] for d in dupes(root, conf, "--all")} == {a: None, b: None}


def test_forget_through_a_running_daemon(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    conf = tmp_path / "watcherd.yaml"
    conf.write_text("settle: 0.3\nheartbeat: 0.5\n")
    db = root / ".watcherd" / "catalog.sqlite"
    write(root / "thumbs" / "cats" / "a.jpg", encode(scene(seed=72)))
    write(root / "thumbs" / "cats" / "b.jpg", encode(scene(seed=73)))
    cli("scan", str(root), "-c", str(conf))
    gone, kept = sorted(r["name"] for r in table(db, "images"))
    with running_daemon(root, conf) as daemon:
        (root / "thumbs" / "cats" / gone).unlink()
        wait_for(lambda: [m["name"] for m in cli("missing", str(root), "-c", str(conf))] == [gone], what="missing")
        refused = subprocess.run(
            [sys.executable, "-m", "watcherd", "forget", str(root), gone, kept, "-c", str(conf)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert refused.returncode == 2 and refused.stderr.startswith("watcherd: error: refusing to forget")
        assert len(table(db, "images")) == 2  # all or nothing
        assert cli("forget", str(root), gone, "-c", str(conf)) == {"forgotten": [gone]}
        assert "forgot 1 missing images" in daemon.log_text()  # the daemon wrote it
        assert [r["name"] for r in table(db, "images")] == [kept]


def test_distinct_after_both_folders_were_renamed_under_a_running_daemon(tmp_path: Path) -> None:
    """The issue's report: drop, rename the existing image's folder and the drop folder, then
    ``distinct`` (it used to end with an internal error, exit 70, naming the old folder)."""
    root = tmp_path / "lib"
    root.mkdir()
    conf = tmp_path / "watcherd.yaml"
    conf.write_text("settle: 0.3\nheartbeat: 0.5\n")
    db = root / ".watcherd" / "catalog.sqlite"
    im = scene(seed=41)
    dropped = {"a.png": encode(im, "PNG"), "b.jpg": encode(im, "JPEG", quality=95)}
    thumbs = root / "thumbs"
    with running_daemon(root, conf):
        write(thumbs / "a" / "a.png", dropped["a.png"])
        wait_for(lambda: len(table(db, "images")) == 1, what="the first image")
        write(thumbs / "drop" / "b.jpg", dropped["b.jpg"])
        (item,) = wait_for(lambda: dupes(root, conf), what="the collision")
        (thumbs / "a").rename(thumbs / "a2")
        (thumbs / "drop").rename(thumbs / "drop2")
        name = item["name"]
        (item,) = wait_for(
            lambda: [i for i in dupes(root, conf) if i["existing"]["thumbnail"] == f"thumbs/a2/{name}"],
            what="dupes to show the existing image's new place",
        )
        assert all((root / p).exists() for p in item["paths"])
        done = cli("resolve", str(root), item["id"], "distinct", "-c", str(conf))
        holder = {r["name"]: r for r in table(db, "images")}[done["image"]]
        assert holder["path"] == f"thumbs/drop2/{done['image']}" and "drop2" in holder["tags"]
        assert not (thumbs / "drop").exists()
    assert check_library(root, dropped) == []
    cli("scan", str(root), "-c", str(conf))
    assert check_library(root, dropped) == []
