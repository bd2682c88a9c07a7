"""Commands that change the catalog, run as processes beside a running daemon (the one writer).

Each change is handed to the daemon as a request file and answered; nothing is lost when
two commands run at once or while the daemon is busy with a full scan, and on the
share config the command never writes the published snapshot itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import DaemonProcess, canonical_files, drop, running_daemon, table, wait_for


def watcherd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcherd", *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


def cli(*args: str, cwd: Path | None = None) -> Any:
    proc = watcherd(*args, "--json", cwd=cwd)
    assert proc.returncode == 0, f"watcherd {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout)


def make_library(tmp_path: Path, conf_text: str = "") -> tuple[Path, Path]:
    """A scanned library: two cats, one dog, one bird."""
    root = tmp_path / "lib"
    for i, rel in enumerate(["cats/a.jpg", "cats/b.jpg", "dogs/c.jpg", "birds/d.jpg"]):
        drop(root / "thumbs" / rel, seed=i + 1)
    conf = tmp_path / "watcherd.yaml"
    conf.write_text("settle: 0.3\nheartbeat: 0.5\n" + conf_text)
    cli("scan", str(root), "-c", str(conf))
    return root, conf


def tags_on(db: Path) -> dict[str, list[str]]:
    return {r["name"]: r["tags"] for r in table(db, "images")}


def test_two_retags_at_once_on_a_running_daemon(tmp_path: Path) -> None:
    root, conf = make_library(tmp_path)
    db = root / ".watcherd" / "catalog.sqlite"
    with running_daemon(root, conf) as daemon:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "watcherd", "retag", str(root), old, new, "-c", str(conf), "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for old, new in (("cats", "felines"), ("dogs", "canines"))
        ]
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        assert [json.loads(o)["images"] for o, _ in outs] == [2, 1]
        log = daemon.log_text()
        assert "renamed tag cats on 2 images" in log and "renamed tag dogs on 1 images" in log  # the daemon wrote
        got = sorted(t for tags in tags_on(db).values() for t in tags if not t[0].isdigit())
        assert got == ["birds", "canines", "felines", "felines"]
        assert list((root / ".watcherd" / "requests").iterdir()) == []
        # Refused by the daemon: one line, the documented code.
        proc = watcherd("retag", str(root), "cats", "x", "-c", str(conf))
        assert proc.returncode == 2 and proc.stderr == "watcherd: error: no image has the tag 'cats'\n"


def test_a_change_during_a_full_scan_is_not_lost(tmp_path: Path) -> None:
    root, conf = make_library(tmp_path)
    for i in range(150):  # a large folder for the start-up scan to ingest
        drop(root / "thumbs" / "big" / f"p{i:03d}.jpg", seed=100 + i)
    daemon = DaemonProcess(root, conf, tmp_path / "daemon.log")
    try:
        wait_for(lambda: "full scan (start-up)" in daemon.log_text(), timeout=60, what="the start-up scan")
        changed = cli("untag", str(root), "--everywhere", "dogs", "-c", str(conf))
        assert changed["images"] == 1
        daemon.wait_started(120)
        # Files too fresh for the scan are taken in just after it.
        wait_for(lambda: not list((root / "thumbs" / "big").glob("*.jpg")), timeout=60, what="the big folder")

        def counted() -> bool:
            status = cli("status", str(root))
            return bool(status["images"] + status["collisions"] == 154 and status["errors"] == 0)

        wait_for(counted, timeout=30, what="154 images recorded")
        assert "dogs" not in cli("tags", str(root))
        # Nothing after the scan gave the tag back (the removal itself may be logged there).
        after = daemon.log_text().split("full scan done in ")[-1].splitlines()
        assert not [line for line in after if "tags=" in line and "dogs" in line]
    finally:
        assert daemon.stop() == 0, daemon.log_text()
    assert "dogs" not in cli("tags", str(root))


def test_share_config_commands_go_to_the_daemon_and_show_in_the_snapshot(tmp_path: Path) -> None:
    live = tmp_path / "local" / "catalog.sqlite"
    root, conf = make_library(tmp_path, f"database: {live}\npublish_interval: 3600\n")
    snapshot = root / ".watcherd" / "catalog.sqlite"
    name = next(iter(canonical_files(root / "thumbs" / "dogs"))).name
    with running_daemon(root, conf):
        before = snapshot.stat().st_mtime_ns
        result = cli("untag", str(root), name, "dogs", "-c", str(conf))
        assert result["tags"] == ["320x240"]
        # The live catalog has it, and the snapshot was published at once (not an hour later),
        # by the daemon: readers of the share see the change when the command returns.
        assert tags_on(live)[name] == ["320x240"]
        assert tags_on(snapshot)[name] == ["320x240"]
        assert snapshot.stat().st_mtime_ns != before
        assert cli("tags", str(root), name)["tags"] == ["320x240"]


def test_arrange_through_the_daemon_its_own_moves_change_nothing(tmp_path: Path) -> None:
    root, conf = make_library(tmp_path)
    db = root / ".watcherd" / "catalog.sqlite"
    with running_daemon(root, conf) as daemon:
        plan = cli("arrange", str(root), "by-size", "--under", "cats", "--dry-run", "-c", str(conf))
        assert plan["dry_run"] and len(plan["moves"]) == 2 and canonical_files(root / "thumbs" / "cats")
        done = cli("arrange", str(root), "by-size", "--under", "cats", "-c", str(conf))
        assert done["moved"] == 2
        assert len(canonical_files(root / "thumbs" / "by_size" / "320x240")) == 2
        # A marker dropped after the arrange is ingested after the daemon has seen the moves' events.
        drop(root / "thumbs" / "marker.jpg", seed=99)
        wait_for(lambda: not (root / "thumbs" / "marker.jpg").exists(), what="the marker's ingest")
        wait_for(lambda: len(table(db, "images")) == 5, what="the marker's record")
        log = daemon.log_text()
    records = {r["name"]: r for r in table(db, "images")}
    moved = [r for r in records.values() if r["path"].startswith("thumbs/by_size/")]
    assert len(moved) == 2 and all(r["state"] == "present" and "paths" not in r for r in moved)
    assert all(r["tags"] == ["cats", "320x240", "by_size"] for r in moved)
    for r in moved:  # the events of the daemon's own moves were no-ops
        assert f"missing {r['path']}" not in log and f"moved {r['name']}" not in log


def test_root_is_found_from_inside_the_tree(tmp_path: Path) -> None:
    root, _conf = make_library(tmp_path)
    cats = root / "thumbs" / "cats"
    status = cli("status", cwd=cats)
    assert status["root"] == str(root) and status["images"] == 4
    assert len(cli("find", "--tag", "cats", cwd=cats)) == 2
    done = cli("arrange", "by-size", "--under", ".", "--dry-run", cwd=cats)
    assert done["under"] == "cats" and len(done["moves"]) == 2


_IMPORTS_OF_SIMILAR = (
    "import json, sys; from watcherd.cli import main; code = main(sys.argv[1:]); "
    "heavy = {m.split('.')[0] for m in sys.modules} & {'numpy', 'PIL', 'watchdog'}; "
    "print(json.dumps(sorted(heavy)), file=sys.stderr); "
    "sys.exit(code)"
)


def test_similar_by_name_loads_neither_numpy_nor_pillow(tmp_path: Path) -> None:
    root, conf = make_library(tmp_path)
    names = sorted(r["name"] for r in table(root / ".watcherd" / "catalog.sqlite", "images"))
    first = cli("similar", str(root), names[0], "-d", "16", "-c", str(conf))  # the index exists after a scan
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _IMPORTS_OF_SIMILAR,
            "similar",
            str(root),
            names[0],
            "-d",
            "16",
            "--json",
            "-c",
            str(conf),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == first and first[0]["name"] == names[0]
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
