"""A near group decided keep-existing / keep-newcomer, and undone, by ``watcherd resolve`` processes
beside a running ``watcherd run``; then ``rebuild`` after the daemon stops keeps the decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_resolve_daemon import dupes
from tests.helpers import cli, encode, running_daemon, scene, table, wait_for, write
from tests.invariants import check_library


@pytest.mark.parametrize("decision", ["keep-existing", "keep-newcomer"])
def test_a_near_keep_and_its_undo_through_a_running_daemon(tmp_path: Path, decision: str) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    conf = tmp_path / "watcherd.yaml"
    conf.write_text("settle: 0.3\nheartbeat: 0.5\n")
    db = root / ".watcherd" / "catalog.sqlite"
    im = scene(seed=43)
    dropped = {"a.png": encode(im, "PNG"), "b.png": encode(im.resize((318, 240)), "PNG")}
    with running_daemon(root, conf) as daemon:
        write(root / "thumbs" / "cats" / "a.png", dropped["a.png"])
        wait_for(lambda: len(table(db, "images")) == 1, what="the first image")
        write(root / "thumbs" / "dogs" / "b.png", dropped["b.png"])
        (group,) = wait_for(lambda: dupes(root, conf, "--near", "8"), what="the near group")
        before = {r["name"]: r for r in table(db, "images")}
        kept = group["existing"] if decision == "keep-existing" else group["newcomer"]
        (gone,) = set(group["names"]) - {kept}

        done = cli("resolve", str(root), group["id"], decision, "-c", str(conf))
        made = done.pop("made")
        assert done == {"id": group["id"], "decision": decision, "image": kept, "undone": False}
        assert (made["id"], made["decision"], made["via"]) == (group["id"], decision, "command")
        assert f"decided {decision} (command): kept {kept}" in daemon.log_text()  # the daemon wrote it
        assert dupes(root, conf, "--near", "8") == []
        assert [r["name"] for r in table(db, "images")] == [kept]
        assert not (root / before[gone]["path"]).exists() and not (root / before[gone]["original"]).exists()
        assert check_library(root, dropped) == []

        undone = cli("resolve", str(root), "--undo", "-c", str(conf))
        assert undone["undone"] and undone["id"] == group["id"]
        assert [g["id"] for g in dupes(root, conf, "--near", "8")] == [group["id"]]
        assert {r["name"]: r for r in table(db, "images")} == before
        assert (root / before[gone]["path"]).is_file() and (root / before[gone]["original"]).is_file()
        assert check_library(root, dropped) == []

        cli("resolve", str(root), group["id"], decision, "-c", str(conf))  # decided again, for rebuild
    cli("rebuild", str(root), "-c", str(conf))
    assert dupes(root, conf, "--near", "8") == []
    (again,) = dupes(root, conf, "--near", "8", "--all")
    assert again["id"] == group["id"] and again["decision"] == decision
    assert [r["name"] for r in table(db, "images")] == [kept]
    assert check_library(root, dropped) == []
