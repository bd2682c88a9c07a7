"""``watcherd check`` as a process: sound libraries pass, each planted kind of damage is found, and
``--repair`` mends what is watcherd's to mend, through the one writer, and nothing else."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import drop, encode, running_daemon, scene, sha, table, write

A, B, C = "cats/a.jpg", "cats/b.jpg", "cats/c.jpg"


def watcherd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcherd", *args], capture_output=True, text=True, timeout=120, check=False
    )


def ok(*args: str) -> Any:
    done = watcherd(*args, "--json")
    assert done.returncode == 0, f"watcherd {' '.join(args)} exited {done.returncode}: {done.stderr}"
    return json.loads(done.stdout)


def check(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = watcherd("check", str(root), "--json", *args)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def found(doc: dict[str, Any], *, repairable: bool | None = None) -> set[tuple[str, str]]:
    return {(p["code"], p["path"]) for p in doc["problems"] if repairable in (None, p["repairable"])}


def record(root: Path, dropped: str) -> dict[str, Any]:
    """The image record of the file dropped as ``dropped`` (found by its original file name)."""
    images = table(root / ".watcherd" / "catalog.sqlite", "images")
    return next(r for r in images if r["original_filename"] == Path(dropped).name)


def put(db: Path, rec: dict[str, Any]) -> None:
    """Write a record as watcherd does (INSERT OR REPLACE, so the derived tables follow it)."""
    con = sqlite3.connect(db)
    with con:
        con.execute("INSERT OR REPLACE INTO images (key, value) VALUES (?, ?)", (rec["name"], json.dumps(rec)))
    con.close()


def library(tmp_path: Path) -> Path:
    """Three cats and one undecided collision (one picture as PNG in cats/, then as JPEG in dogs/)."""
    root = tmp_path / "lib"
    for i, rel in enumerate([A, B, C]):
        drop(root / "thumbs" / rel, seed=i + 1)
    im = scene(seed=41)
    write(root / "thumbs" / "cats" / "d.png", encode(im, "PNG"))
    ok("scan", str(root))
    write(root / "thumbs" / "dogs" / "e.jpg", encode(im, "JPEG", quality=95))
    ok("scan", str(root))
    return root


def test_a_library_with_collisions_and_decisions_is_sound(tmp_path: Path) -> None:
    root = library(tmp_path)
    for seed, decision in ((42, "distinct"), (43, "keep-existing"), (45, None)):
        im = scene(seed=seed)
        write(root / "thumbs" / "birds" / f"{seed}.png", encode(im, "PNG"))
        ok("scan", str(root))
        write(root / "thumbs" / "fish" / f"{seed}.jpg", encode(im, "JPEG", quality=95))
        ok("scan", str(root))
        if decision is not None:
            ident = next(d["id"] for d in ok("dupes", str(root)) if d["existing"]["thumbnail"].startswith("thumbs/b"))
            ok("resolve", str(root), ident, decision)
    near = scene(seed=44)
    write(root / "thumbs" / "near" / "a.png", encode(near, "PNG"))
    ok("scan", str(root))
    write(root / "thumbs" / "near" / "b.png", encode(near.resize((318, 240)), "PNG"))
    ok("scan", str(root))
    group = next(d for d in ok("dupes", str(root), "--near", "4") if d["kind"] == "near")
    ok("resolve", str(root), group["id"], "keep-existing")

    done = watcherd("check", str(root))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"library {root} is sound: ") and done.stdout.endswith(" checked\n")
    code, doc = check(root, "--read-data")
    assert code == 0 and doc["sound"] and doc["problems"] == doc["notes"] == doc["repaired"] == []
    assert doc["checked"]["collisions"] == 4 and doc["checked"]["near_decisions"] == 1
    assert doc["checked"]["read"] >= doc["checked"]["images"] > 0


def test_each_kind_of_damage_is_found_and_repair_mends_only_what_is_watcherds(tmp_path: Path) -> None:
    root = library(tmp_path)
    thumbs, db = root / "thumbs", root / ".watcherd" / "catalog.sqlite"
    newcomer = root / table(db, "collisions")[0]["newcomer"]["thumbnail"]
    a, b, c = record(root, A), record(root, B), record(root, C)
    # c leaves cats/ for dogs/ and keeps its tag: when its record is lost, the export gives the tag back.
    os.rename(root / c["path"], thumbs / "dogs" / c["name"])
    ok("scan", str(root))
    assert record(root, C)["tags"] == ["cats", "320x240", "dogs"]

    orphan = newcomer.with_name(newcomer.stem + "~2.png")
    orphan.write_bytes(newcomer.read_bytes())  # watcherd's own thumbnail, in no collision
    mine = write(thumbs / "_collisions" / "notes.png", encode(scene((20, 20), seed=9), "PNG"))
    lookalike = write(newcomer.with_name(newcomer.stem + "~3.png"), encode(scene((20, 20), seed=8), "PNG"))
    users = {p: sha(p) for p in (mine, lookalike)}
    os.rename(root / a["path"], thumbs / "dogs" / a["name"])  # moved while no daemon watched
    lost = tmp_path / "lost.jpg"
    os.rename(root / b["original"], lost)  # gone from originals/ (kept aside: nothing is really lost)
    temporary = write(thumbs / "cats" / ".watcherd-tmp-xyz", b"half a thumbnail")
    con = sqlite3.connect(db)
    with con:  # c's record is lost; its thumbnail stays in the tree
        con.execute("DELETE FROM images WHERE key = ?", (c["name"],))
    con.close()

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix()

    user_files = {("orphan-collision-file", rel(mine)), ("orphan-collision-file", rel(lookalike))}
    code, doc = check(root)
    assert code == 1 and not doc["sound"]
    assert found(doc, repairable=False) == {*user_files, ("missing-original", b["original"])}
    mendable = {
        ("orphan-collision-file", rel(orphan)),
        ("stale-place", a["path"]),
        ("temporary", rel(temporary)),
        ("unrecorded-thumbnail", f"thumbs/dogs/{c['name']}"),
        ("stale-export", ".watcherd/catalog.export.json"),
    }
    assert found(doc, repairable=True) == mendable
    text = watcherd("check", str(root))
    assert text.returncode == 1 and text.stderr == ""
    assert sorted(line.split(" ")[:2] for line in text.stdout.splitlines()) == sorted(
        [code, path + ":"] for code, path in found(doc)
    )

    repaired = watcherd("check", str(root), "--repair")
    assert repaired.returncode == 1, repaired.stderr  # the lost original and the user's files remain
    assert "repaired stale-place " in repaired.stdout and "missing-original " in repaired.stdout
    code, doc = check(root)
    assert code == 1 and found(doc) == {*user_files, ("missing-original", b["original"])}
    # Nothing the user made was touched; watcherd's own orphan and temporary are gone.
    assert {p: sha(p) for p in users} == users
    assert not orphan.exists() and not temporary.exists() and newcomer.exists()
    # The records follow the tree: a where it was moved, c adopted with the tags the export remembered.
    assert record(root, A)["path"] == f"thumbs/dogs/{a['name']}"
    assert record(root, C)["path"] == f"thumbs/dogs/{c['name']}" and "cats" in record(root, C)["tags"]

    os.rename(lost, root / b["original"])
    for p in users:
        os.rename(p, tmp_path / p.name)
    done = watcherd("check", str(root))
    assert done.returncode == 0, done.stdout


def test_with_a_daemon_running_repairs_are_handed_to_it(tmp_path: Path) -> None:
    root = library(tmp_path)
    conf = tmp_path / "w.yaml"
    conf.write_text("settle: 0.2\nheartbeat: 0.5\n")
    newcomer = root / table(root / ".watcherd" / "catalog.sqlite", "collisions")[0]["newcomer"]["thumbnail"]
    orphan = newcomer.with_name(newcomer.stem + "~2.png")
    temporary = root / "thumbs" / ".watcherd-tmp-left"
    with running_daemon(root, conf) as daemon:
        assert check(root, "-c", str(conf))[0] == 0
        orphan.write_bytes(newcomer.read_bytes())
        temporary.write_bytes(b"x")  # the daemon may be writing such a file: not reported while it runs
        code, doc = check(root, "-c", str(conf))
        assert code == 1 and found(doc) == {("orphan-collision-file", orphan.relative_to(root).as_posix())}
        code, doc = check(root, "-c", str(conf), "--repair")
        assert code == 0 and [r["code"] for r in doc["repaired"]] == ["orphan-collision-file"]
        assert not orphan.exists() and temporary.exists()
        assert "check: orphan-collision-file" in daemon.log_text()  # the daemon made the repair
    code, doc = check(root, "-c", str(conf))
    assert code == 1 and found(doc) == {("temporary", "thumbs/.watcherd-tmp-left")}
    code, doc = check(root, "-c", str(conf), "--repair")
    assert code == 0 and doc["repaired"][0]["code"] == "temporary" and not temporary.exists()


def test_an_interrupted_move_is_finished(tmp_path: Path) -> None:
    root = library(tmp_path)
    a = record(root, A)
    back = root / "thumbs" / "cats" / "a.jpg"
    os.rename(root / a["original"], back)  # as if stopped after the record's commit, before the move
    put(root / ".watcherd" / "catalog.sqlite", {**a, "moving_from": "thumbs/cats/a.jpg"})
    code, doc = check(root)
    assert code == 1 and found(doc) == {("unfinished-move", "thumbs/cats/a.jpg")}
    code, doc = check(root, "--repair")
    assert code == 0 and [r["code"] for r in doc["repaired"]] == ["unfinished-move"]
    assert not back.exists() and (root / a["original"]).is_file() and record(root, A)["moving_from"] is None


def test_the_export_and_the_near_index_are_checked_against_the_catalog(tmp_path: Path) -> None:
    root = library(tmp_path)
    state = root / ".watcherd"
    export = json.loads((state / "catalog.export.json").read_text())
    del export["images"][record(root, A)["name"]]
    (state / "catalog.export.json").write_text(json.dumps(export))
    index = state / "near" / "index.bin"
    data = index.read_bytes()
    index.write_bytes(data[: len(data) // 2])
    code, doc = check(root)
    assert code == 1
    assert found(doc, repairable=True) == {
        ("stale-export", ".watcherd/catalog.export.json"),
        ("near-index", ".watcherd/near/index.bin"),
    }
    assert check(root, "--repair")[0] == 0
    assert check(root)[0] == 0


def test_read_data_finds_an_original_whose_bytes_changed(tmp_path: Path) -> None:
    root = library(tmp_path)
    original = root / record(root, B)["original"]
    with open(original, "ab") as fh:
        fh.write(b"bit rot")
    assert check(root)[0] == 0
    code, doc = check(root, "--read-data")
    assert code == 1 and found(doc, repairable=False) == {("changed-original", record(root, B)["original"])}


def test_a_folder_that_is_no_library_one_without_a_catalog_and_an_unreadable_catalog(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    done = watcherd("check", str(plain))
    assert done.returncode == 2 and done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(f"watcherd: error: {plain} is not a watcherd library")
    (plain / ".watcherd").mkdir()
    done = watcherd("check", str(plain))
    db = plain / ".watcherd" / "catalog.sqlite"
    assert done.returncode == 2 and done.stdout == ""
    said = f"watcherd: error: no catalog at {db} yet: nothing to check until 'watcherd scan {plain}' has made it\n"
    assert done.stderr == said
    assert not db.exists()
    write(db, b"not a database at all, " * 100)
    done = watcherd("check", str(plain))
    assert done.returncode == 3 and done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("watcherd: error: ")


def test_a_request_being_written_is_no_leftover_but_a_killed_writers_answer_is(tmp_path: Path) -> None:
    """In ``requests/`` a young temporary is a command's request being written (on any host,
    without the lease): neither reported nor removed. One an hour old, or an answer's (only a
    writer writes those, and none runs), is left behind: reported, and ``--repair`` removes it."""
    from watcherd.fs.layout import ANSWER_TEMP_PREFIX, REQUEST_LEFTOVER_AGE

    root = library(tmp_path)
    requests = root / ".watcherd" / "requests"
    requests.mkdir(exist_ok=True)
    being_written = write(requests / ".watcherd-tmp-young", b"{")
    assert check(root)[0] == 0
    dead = write(requests / ".watcherd-tmp-old", b"{")
    old = time.time() - REQUEST_LEFTOVER_AGE - 60
    os.utime(dead, (old, old))
    answer = write(requests / f"{ANSWER_TEMP_PREFIX}killed", b"{")
    code, doc = check(root)
    shown = {f".watcherd/requests/{p.name}" for p in (dead, answer)}
    assert code == 1 and found(doc) == {("temporary", p) for p in shown}
    code, doc = check(root, "--repair")
    assert code == 0 and {r["path"] for r in doc["repaired"]} == shown
    assert being_written.exists() and not dead.exists() and not answer.exists()
