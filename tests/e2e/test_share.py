"""The shared folder, for real: a Samba server, two hosts in namespaces, their FUSE SMB mounts.

See ``tests/share_support.py`` for the pieces. Each scenario is checked again after a
full scan (``check_library``). File operations on a host's mount are made by this test
process on that mount's folder: the bytes go through that host's SMB client (rclone,
in the host's network namespace) to smbd, as a file manager on that host would send them.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlitedict import SqliteDict

from tests.helpers import START_UP_DONE, canonical_files, cli, encode, running_daemon, scene, table, wait_for
from tests.invariants import check_library
from tests.share_support import Host, HostDaemon, Share, missing_pieces, samba_share, share_config

pytestmark = pytest.mark.skipif(missing_pieces() is not None, reason=str(missing_pieces()))

CHUNK = 64 * 1024
MTIME_NS = 1_500_000_000_000_000_000  # 2017-07-14: a photo's time, kept by the copy


def copy_in(path: Path, data: bytes, mtime_ns: int = MTIME_NS) -> Path:
    """Copy ``data`` to ``path`` as a file manager does: create, write in chunks, close, then set the times."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as out:
        for i in range(0, len(data), CHUNK):
            out.write(data[i : i + CHUNK])
            out.flush()
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


@pytest.fixture
def share(tmp_path: Path) -> Iterator[Share]:
    with samba_share(tmp_path) as s:
        yield s


def image(root: Path, name: str, *conf: str) -> dict[str, Any]:
    return dict(cli("tags", str(root), name, *conf))


def test_gestures_through_a_client_mount_reach_the_daemon_on_the_server(share: Share, tmp_path: Path) -> None:
    """The daemon on the server's folder (inotify); host B's file manager works through its mount."""
    root, mnt = share.folder, share.mount_b.point
    conf = tmp_path / "server.yaml"
    conf.write_text("settle: 1.0\nheartbeat: 0.5\n")
    photos = {name: encode(scene(seed=seed)) for seed, name in enumerate(["tom.jpg", "rex.jpg", "tweety.jpg"], 1)}
    folders = {"tom.jpg": "cats", "rex.jpg": "dogs", "tweety.jpg": "birds"}
    dropped = dict(photos)
    with running_daemon(root, conf) as daemon:
        for name, data in photos.items():
            copy_in(mnt / "thumbs" / folders[name] / name, data)
        wait_for(
            lambda: (
                all(canonical_files(root / "thumbs" / f) for f in folders.values())
                and not any((root / "thumbs" / f / n).exists() for n, f in folders.items())
            ),
            timeout=60,
            what="three drops made thumbnails on the server",
        )
        thumbs = {n: canonical_files(root / "thumbs" / f)[0].name for n, f in folders.items()}
        for n, f in folders.items():
            wait_for(lambda: (mnt / "thumbs" / f / thumbs[n]).exists(), what="the thumbnail seen on host B")  # noqa: B023
        tom, rex = thumbs["tom.jpg"], thumbs["rex.jpg"]
        assert image(root, tom)["tags"] == ["cats", "320x240"]

        # A thumbnail renamed: its canonical name comes back.
        os.rename(mnt / "thumbs" / "cats" / tom, mnt / "thumbs" / "cats" / "my cat.png")
        wait_for(
            lambda: (
                (root / "thumbs" / "cats" / tom).exists() and not (root / "thumbs" / "cats" / "my cat.png").exists()
            ),
            timeout=30,
            what="the canonical name back",
        )
        # Copied into a second folder: the image is in both; one copy deleted: in the other.
        wait_for(lambda: (mnt / "thumbs" / "cats" / tom).exists(), what="host B sees the name back")
        copy_in(mnt / "thumbs" / "best" / tom, (mnt / "thumbs" / "cats" / tom).read_bytes())
        both = [f"thumbs/cats/{tom}", f"thumbs/best/{tom}"]
        wait_for(lambda: image(root, tom)["paths"] == both, timeout=30, what="both places recorded")
        (mnt / "thumbs" / "cats" / tom).unlink()
        wait_for(lambda: image(root, tom)["paths"] == both[1:], timeout=30, what="one copy left")
        # Folders moved and renamed.
        (mnt / "thumbs" / "animals").mkdir()
        os.rename(mnt / "thumbs" / "dogs", mnt / "thumbs" / "animals" / "doggos")
        wait_for(lambda: image(root, rex)["path"] == f"thumbs/animals/doggos/{rex}", timeout=30, what="the folder move")
        os.rename(mnt / "thumbs" / "best", mnt / "thumbs" / "favourites")
        wait_for(lambda: image(root, tom)["path"] == f"thumbs/favourites/{tom}", timeout=30, what="the folder rename")

        # The same photos dropped again: two collisions; one newcomer deleted, one moved out.
        for name, again in (("tom.jpg", "tom again.jpg"), ("rex.jpg", "rex again.jpg")):
            copy_in(mnt / "thumbs" / "again" / again, photos[name])
            dropped[again] = photos[name]
        wait_for(lambda: len(cli("dupes", str(root))) == 2, timeout=60, what="two collisions")
        items = cli("dupes", str(root))
        by_name = {i["name"]: i for i in items}
        deleted, moved = by_name[tom], by_name[rex]
        newcomer = mnt / deleted["newcomer"]["thumbnail"]
        wait_for(newcomer.exists, what="host B sees the newcomer")
        newcomer.unlink()
        out = mnt / moved["newcomer"]["thumbnail"]
        wait_for(out.exists, what="host B sees the other newcomer")
        os.rename(out, mnt / "thumbs" / "favourites" / out.name)
        wait_for(lambda: cli("dupes", str(root)) == [], timeout=60, what="both collisions decided")
        decisions = {d["id"]: d["decision"] for d in cli("dupes", str(root), "--all")}
        assert decisions == {deleted["id"]: "keep-existing", moved["id"]: "distinct"}
        assert check_library(root, dropped) == []
        assert daemon.stop() == 0, daemon.log_text()

    cli("scan", str(root), "-c", str(conf))
    assert check_library(root, dropped) == []
    assert image(root, tom)["tags"] == ["cats", "320x240", "best", "favourites", "again"]
    assert {d["decision"] for d in cli("dupes", str(root), "--all")} == {"keep-existing", "distinct"}
    status = cli("status", str(root))
    assert status["images"] == 4 and status["errors"] == 0 and status["missing"] == 0
    # The drop kept its file times through the client: the thumbnail carries the photo's time.
    assert os.stat(root / "thumbs" / "animals" / "doggos" / rex).st_mtime_ns // 10**9 == MTIME_NS // 10**9


def host_cli(host: Host, *args: str) -> Any:
    """A command on ``host``; one that read the snapshot while the next one was still arriving
    through rclone (exit 3, "malformed") is run again, as docs/network-share.md says."""
    for _ in range(20):
        proc = host.watcherd(*args, "--json")
        if not (proc.returncode == 3 and "malformed" in proc.stderr):
            break
        time.sleep(0.5)
    assert proc.returncode == 0, f"watcherd {' '.join(args)} on {host.name} exited {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout)


def snapshot_images(db: Path) -> list[dict[str, Any]]:
    """What a notebook on a host reads: the published snapshot, with sqlitedict (nothing before the first).

    As docs/network-share.md tells such readers, the snapshot is copied first (a plain read)
    and the copy is read: sqlitedict opens a database for writing, which makes rclone keep a
    write cache of it, and a copy that met the next snapshot being renamed over this one
    (SQLite's check fails) is copied again."""
    for _ in range(50):
        try:
            data = db.read_bytes()
        except FileNotFoundError:
            return []
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "snapshot.sqlite"
            copy.write_bytes(data)
            conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
            try:
                sound = conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
            except sqlite3.DatabaseError:
                sound = False
            finally:
                conn.close()
            if sound:
                with SqliteDict(str(copy), tablename="images", decode=json.loads, flag="r") as images:
                    return list(images.values())
        time.sleep(0.2)
    raise AssertionError(f"{db} never read whole in 50 copies")


def test_a_daemon_on_a_clients_mount_serves_the_other_host(share: Share, tmp_path: Path) -> None:
    """Host A's daemon on its own mount (the share config); host B drops, drags, edits and reads."""
    a_mnt, b_mnt = share.mount_a.point, share.mount_b.point
    a_db = tmp_path / "host-a" / "catalog.sqlite"
    # A lease goes stale after 10 s here, not 3: on a loaded machine A's heartbeat through
    # rclone's cache can lag 3 s while it applies B's change (B then says A stopped).
    conf_a = share_config(tmp_path / "host-a" / "watcherd.yaml", a_db, stale_after=10)
    conf_b = share_config(tmp_path / "host-b" / "watcherd.yaml", None, stale_after=10)  # reads the snapshot
    photos = {f"p{i}.jpg": encode(scene(seed=40 + i)) for i in range(6)}
    dropped = dict(photos)
    daemon = HostDaemon(share.a, a_mnt, conf_a, tmp_path / "host-a" / "daemon.log")
    try:
        daemon.wait_started()
        reads: list[int] = []
        for i, (name, data) in enumerate(photos.items()):
            copy_in(b_mnt / "thumbs" / ("cats" if i < 3 else "inbox/dogs") / name, data)
            reads.append(len(snapshot_images(b_mnt / ".watcherd" / "catalog.sqlite")))  # while A writes
        os.rename(b_mnt / "thumbs" / "inbox", b_mnt / "thumbs" / "pets")  # dragged while being ingested

        def all_published() -> bool:
            reads.append(len(snapshot_images(b_mnt / ".watcherd" / "catalog.sqlite")))
            return reads[-1] == len(photos)

        wait_for(all_published, timeout=90, interval=0.3, what="host B reads every image in the snapshot")
        assert "cannot ingest" not in daemon.log_text() and "cannot write" not in daemon.log_text()
        assert "the library is on a fuse.rclone mount: its client must send writes" in daemon.log_text()
        paths = sorted(r["path"].split("/")[1] for r in snapshot_images(b_mnt / ".watcherd" / "catalog.sqlite"))
        assert paths == ["cats"] * 3 + ["pets"] * 3

        # Host B's commands hand their change to A's daemon through the request files.
        name = next(r["name"] for r in snapshot_images(b_mnt / ".watcherd" / "catalog.sqlite") if "cats" in r["tags"])
        assert host_cli(share.b, "untag", str(b_mnt), name, "cats", "-c", str(conf_b))["tags"] == ["320x240"]
        retagged = host_cli(share.b, "retag", str(b_mnt), "dogs", "hounds", "-c", str(conf_b))
        assert retagged["images"] == 3
        copy_in(b_mnt / "thumbs" / "again" / "p0 again.jpg", photos["p0.jpg"])
        dropped["p0 again.jpg"] = photos["p0.jpg"]
        wait_for(lambda: host_cli(share.b, "dupes", str(b_mnt), "-c", str(conf_b)), timeout=60, what="the collision")
        (item,) = host_cli(share.b, "dupes", str(b_mnt), "-c", str(conf_b))
        resolved = host_cli(share.b, "resolve", str(b_mnt), item["id"], "keep-existing", "-c", str(conf_b))
        assert resolved["decision"] == "keep-existing"
        assert "the daemon" not in share.b.watcherd("status", str(b_mnt), "-c", str(conf_b)).stderr
        for line in (f"untagged {name}", "renamed tag dogs on 3 images", "decided keep-existing"):
            assert line in daemon.log_text()  # applied by A's daemon, not by B's commands
        assert daemon.stop() == 0, daemon.log_text()
    finally:
        daemon.stop()

    assert host_cli(share.a, "scan", str(a_mnt), "-c", str(conf_a))["counts"].get("errors", 0) == 0
    for db in (a_db, share.folder / ".watcherd" / "catalog.sqlite"):  # the live catalog and the snapshot
        assert check_library(share.folder, dropped, db=db) == []
    tags = {r["name"]: r["tags"] for r in table(a_db, "images")}
    assert "cats" not in tags[name] and sum("hounds" in t for t in tags.values()) == 3
    assert not any("dogs" in t for t in tags.values())


def test_the_lease_between_hosts_one_writer_then_a_takeover(share: Share, tmp_path: Path) -> None:
    """Host B refuses while host A's daemon lives; A dies; B refuses while A's beat is fresh, then takes over."""
    a_mnt, b_mnt = share.mount_a.point, share.mount_b.point
    b_db = tmp_path / "host-b" / "catalog.sqlite"
    conf_a = share_config(tmp_path / "host-a" / "watcherd.yaml", tmp_path / "host-a" / "catalog.sqlite", stale_after=6)
    conf_b = share_config(tmp_path / "host-b" / "watcherd.yaml", b_db, stale_after=6)
    conf_server = share_config(tmp_path / "server.yaml", tmp_path / "server-catalog.sqlite", stale_after=6)
    photos = {f"q{i}.jpg": encode(scene(seed=70 + i)) for i in range(3)}
    daemon_a = HostDaemon(share.a, a_mnt, conf_a, tmp_path / "host-a" / "daemon.log")
    daemon_b: HostDaemon | None = None
    try:
        daemon_a.wait_started()
        for name in ("q0.jpg", "q1.jpg"):
            copy_in(b_mnt / "thumbs" / "cats" / name, photos[name])
        wait_for(lambda: len(canonical_files(share.folder / "thumbs" / "cats")) == 2, timeout=60, what="A ingests")

        # One writer: host B (through its mount) and the server itself (on the real folder) refuse.
        refused = share.b.watcherd("run", str(b_mnt), "-c", str(conf_b), timeout=60)
        assert refused.returncode == 4, refused.stderr
        # It names the holder, or (its client timing out on a busy machine) says it could not
        # read the lease and so does not take it: either way it refuses, never a second writer.
        named = "locked by watcherd" in refused.stderr and "on host-a" in refused.stderr
        assert named or "cannot read the lease" in refused.stderr, refused.stderr
        server = subprocess.run(
            [sys.executable, "-m", "watcherd", "run", str(share.folder), "-c", str(conf_server)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert server.returncode == 4 and "on host-a" in server.stderr, server.stderr

        share.a.kill_all()  # host A is gone: its daemon and its mount's client, at once
        assert daemon_a.proc.wait(timeout=30) == -signal.SIGKILL
        early = share.b.watcherd("run", str(b_mnt), "-c", str(conf_b), timeout=60)
        assert early.returncode == 4, early.stderr  # A's last beat is still fresh
        assert "on host-a" in early.stderr or "cannot read the lease" in early.stderr, early.stderr

        def started() -> HostDaemon | None:  # as systemd would: started again until it runs
            nonlocal daemon_b
            daemon_b = d = HostDaemon(share.b, b_mnt, conf_b, tmp_path / "host-b" / "daemon.log")
            wait_for(
                lambda: START_UP_DONE in d.log_text() or d.proc.poll() is not None,
                timeout=60,
                what="host B's daemon to start or refuse",
            )
            if d.proc.poll() == 4:
                assert "on host-a" in d.log_text()
                return None
            d.wait_started()
            return d

        taker = wait_for(started, timeout=90, interval=1.0, what="host B to take the lease over")
        assert taker is not None
        assert "looks stale; watching it for 6s before taking it over" in taker.log_text()
        copy_in(b_mnt / "thumbs" / "dogs" / "q2.jpg", photos["q2.jpg"])
        wait_for(lambda: canonical_files(share.folder / "thumbs" / "dogs"), timeout=60, what="B ingests")
        assert taker.stop() == 0, taker.log_text()
    finally:
        daemon_a.stop()
        if daemon_b is not None:
            daemon_b.stop()

    assert host_cli(share.b, "scan", str(b_mnt), "-c", str(conf_b))["counts"].get("errors", 0) == 0
    assert check_library(share.folder, photos, db=b_db) == []
    assert sorted(r["original_filename"] for r in table(b_db, "images")) == sorted(photos)


# Its own waits add up to minutes (rclone uploads what it held back one file at a time, with
# backoff): the suite's 120 s would cut it short on a busy machine before they say anything.
@pytest.mark.timeout(600)
def test_the_share_goes_away_mid_ingest_and_comes_back(share: Share, tmp_path: Path) -> None:
    """smbd stops while host A's daemon ingests through its mount, then starts again: nothing lost."""
    a_mnt = share.mount_a.point
    a_db = tmp_path / "host-a" / "catalog.sqlite"
    conf_a = share_config(tmp_path / "host-a" / "watcherd.yaml", a_db)
    first = {f"r{i}.jpg": encode(scene(seed=100 + i)) for i in range(3)}
    burst = {f"s{i:02d}.jpg": encode(scene((640, 480), seed=200 + i)) for i in range(16)}
    dropped = {**first, **burst}
    daemon = HostDaemon(share.a, a_mnt, conf_a, tmp_path / "host-a" / "daemon.log")
    try:
        daemon.wait_started()
        for name, data in first.items():
            copy_in(share.folder / "thumbs" / "before" / name, data)
        wait_for(lambda: len(table(a_db, "images")) == 3, timeout=60, what="the first three ingested")
        for name, data in burst.items():  # on the server: they arrive at once, and A starts on them
            copy_in(share.folder / "thumbs" / "burst" / name, data)
        wait_for(lambda: "ingested thumbs/burst/" in daemon.log_text(), timeout=60, what="A ingesting the burst")
        share.server.stop()  # the share goes away mid-ingest
        wait_for(lambda: "cannot renew the lease" in daemon.log_text(), timeout=60, what="A to say the share is gone")
        assert daemon.proc.poll() is None, daemon.log_text()
        assert all(r["state"] == "present" for r in table(a_db, "images")), "the library was marked missing"
        share.server.start()  # it comes back
        wait_for(lambda: "renewed again" in daemon.log_text(), timeout=90, what="A to see the share back")
        wait_for(lambda: len(table(a_db, "images")) == len(dropped), timeout=90, what="A catching up")
        assert daemon.stop() == 0, daemon.log_text()
    finally:
        daemon.stop()
    log = daemon.log_text()
    assert log.count("cannot renew the lease") == 1, log
    assert host_cli(share.a, "scan", str(a_mnt), "-c", str(conf_a))["counts"].get("errors", 0) == 0
    # A's thumbnails written while the server was away wait in rclone's write-back cache
    # (one upload at a time, retried with backoff): they reach the server when rclone
    # uploads them, which is the client's promise, not watcherd's. Wait for that, then
    # hold the server's folder to every promise. (Debian's rclone 1.60 doubles the wait before
    # each retry of a failed upload, up to minutes: one CI run met more than 180 s.)
    wait_for(lambda: not on_the_server_yet(share.folder, a_db), timeout=300, what="A's client to upload")
    assert check_library(share.folder, dropped, db=a_db) == []
    assert all(r["state"] == "present" for r in table(a_db, "images"))


def on_the_server_yet(folder: Path, db: Path) -> list[str]:
    """The places the catalog names that the server's folder does not hold yet."""
    images = [r for r in table(db, "images") if r["state"] == "present"]
    return [p for r in images for p in r.get("paths") or [r["path"]] if not (folder / p).is_file()]
