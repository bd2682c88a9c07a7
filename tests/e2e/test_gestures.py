"""File-manager gestures on a running ``watcherd run``, then checked again after a full scan.

Each test does on disk exactly what a person does in Explorer, Finder, Nautilus or
Dolphin (rename, copy, duplicate in place, delete and drop again, drag a folder while
it is being ingested, point watcherd at a library a notebook made), waits for the
daemon to show the result, stops it, runs ``watcherd scan`` and checks again.
"""

from __future__ import annotations

import io
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imagehash
import pytest
from PIL import Image, PngImagePlugin

from tests.helpers import DaemonProcess, canonical_files, cli, digest, encode, scene, table, wait_for, write
from tests.invariants import check_library


class Library:
    """A library root with a running daemon, and ways to look at it as a user would."""

    def __init__(self, root: Path, workdir: Path, observer: str = "auto") -> None:
        self.observer = observer
        self.root = root
        self.thumbs = root / "thumbs"
        self.conf = workdir / "watcherd.yaml"
        self.conf.write_text(f"settle: 0.3\nheartbeat: 0.5\nobserver: {observer}\n")
        self.log = workdir / "daemon.log"
        self.daemon: DaemonProcess | None = None

    def start(self) -> None:
        self.daemon = DaemonProcess(self.root, self.conf, self.log)
        self.daemon.wait_started()

    def stop(self) -> None:
        if self.daemon is not None:
            assert self.daemon.stop() == 0, self.daemon.log_text()
        self.daemon = None

    def full_scan(self) -> None:
        """Stop the daemon and reconcile once more from the tree, as ``watcherd scan`` does."""
        self.stop()
        cli("scan", str(self.root), "-c", str(self.conf))

    def status(self) -> dict[str, Any]:
        return dict(cli("status", str(self.root)))

    def image(self, name: str) -> dict[str, Any]:
        return dict(cli("tags", str(self.root), name))

    def records(self) -> list[dict[str, Any]]:
        return table(self.root / ".watcherd" / "catalog.sqlite", "images")

    def originals(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in (self.root / "originals").rglob("*") if p.is_file())

    def ingest(self, rel: str, seed: int, size: tuple[int, int] = (320, 240)) -> tuple[Path, bytes]:
        """Drop a photo at ``thumbs/rel`` and wait for its thumbnail; return it and the photo's bytes."""
        data = encode(scene(size, seed=seed))
        dest = write(self.thumbs / rel, data)
        wait_for(lambda: not dest.exists() and canonical_files(dest.parent), what=f"ingest of {rel}")
        (thumb,) = [p for p in canonical_files(dest.parent) if p.name.startswith(f"{size[0]}x{size[1]}_")]
        wait_for(lambda: self.image(thumb.name)["state"] == "present", what="record")
        self.look()
        return thumb, data

    def look(self) -> None:
        """The person looks at the result before the next gesture. A polling observer sees
        only what lasts one of its intervals (1 s): a file made and deleted between two
        polls is never reported (the next full scan finds it), so a person on a network
        share is given that second here, as they would take it anyway."""
        if self.observer == "polling":
            time.sleep(1.5)


@pytest.fixture(params=["auto", "polling"])
def lib(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Library]:
    """A running daemon on inotify (auto, on a local disk) and on the polling observer (network shares)."""
    root = tmp_path / "library"
    root.mkdir()
    library = Library(root, tmp_path, str(request.param))
    library.start()
    try:
        yield library
    finally:
        library.stop()


def test_renaming_a_thumbnail_gives_its_name_back_and_keeps_the_record(lib: Library) -> None:
    thumb, data = lib.ingest("cats/tom.jpg", seed=1)
    originals = lib.originals()
    renamed = thumb.parent / "my cat.png"
    os.rename(thumb, renamed)
    wait_for(lambda: thumb.exists() and not renamed.exists(), what="canonical name back")
    # Renamed while moving, as a file manager's "Copy of" name in another folder.
    (lib.thumbs / "orange").mkdir()
    moved = lib.thumbs / "orange" / f"Copy of {thumb.name}"
    os.rename(thumb, moved)
    home = lib.thumbs / "orange" / thumb.name
    wait_for(lambda: home.exists() and not moved.exists(), what="canonical name back in orange")
    wait_for(lambda: lib.image(thumb.name)["path"] == f"thumbs/orange/{thumb.name}", what="record follows")

    for _ in ("daemon", "full scan"):
        one = lib.image(thumb.name)
        assert one["tags"] == ["cats", "320x240", "orange"] and one["paths"] == [f"thumbs/orange/{thumb.name}"]
        assert len(lib.records()) == 1 and lib.originals() == originals  # nothing new in originals/
        assert lib.status()["images"] == 1 and lib.status()["errors"] == 0
        assert check_library(lib.root, {"tom.jpg": data}) == []
        lib.full_scan()


def test_a_copied_thumbnail_is_the_image_in_both_places(lib: Library) -> None:
    thumb, data = lib.ingest("cats/tom.jpg", seed=2)
    (lib.thumbs / "best").mkdir()
    copy = lib.thumbs / "best" / thumb.name
    shutil.copy2(thumb, copy)
    both = [f"thumbs/cats/{thumb.name}", f"thumbs/best/{thumb.name}"]
    wait_for(lambda: lib.image(thumb.name)["paths"] == both, what="both places recorded")
    for _ in ("daemon", "full scan"):
        one = lib.image(thumb.name)
        assert one["paths"] == both and one["path"] == both[0]
        assert one["tags"] == ["cats", "320x240", "best"] and one["state"] == "present"
        assert lib.status()["images"] == 1 and len(lib.records()) == 1
        lib.full_scan()
    lib.start()
    thumb.unlink()  # one copy deleted: still present at the other
    wait_for(lambda: lib.image(thumb.name)["paths"] == both[1:], what="one copy left")
    assert lib.image(thumb.name)["state"] == "present"
    copy.unlink()  # the last copy deleted: missing, nothing forgotten
    wait_for(lambda: lib.image(thumb.name)["state"] == "missing", what="missing")
    lib.full_scan()
    one = lib.image(thumb.name)
    assert one["state"] == "missing" and one["tags"] == ["cats", "320x240", "best"]
    assert check_library(lib.root, {"tom.jpg": data}) == []


def test_a_byte_identical_copy_in_the_same_folder_is_reported_not_ingested(lib: Library) -> None:
    thumb, _ = lib.ingest("cats/tom.jpg", seed=3)
    originals = lib.originals()
    copy = thumb.parent / f"{thumb.stem} (copy).png"
    shutil.copy2(thumb, copy)
    wait_for(lambda: lib.status()["errors"] == 1, what="the copy reported")
    for _ in ("daemon", "full scan"):
        assert copy.read_bytes() == thumb.read_bytes()  # left exactly as it is
        assert lib.originals() == originals and len(lib.records()) == 1
        (err,) = table(lib.root / ".watcherd" / "catalog.sqlite", "errors")
        assert err["path"] == f"thumbs/cats/{copy.name}" and "a copy of" in err["reason"]
        assert lib.image(thumb.name)["paths"] == [f"thumbs/cats/{thumb.name}"]
        lib.full_scan()


def test_dropping_the_original_of_a_deleted_thumbnail_brings_the_image_back(lib: Library) -> None:
    thumb, data = lib.ingest("cats/tom.jpg", seed=4)
    thumb.unlink()
    wait_for(lambda: lib.image(thumb.name)["state"] == "missing", what="missing")
    write(lib.thumbs / "pets" / "tom again.jpg", data)
    back = lib.thumbs / "pets" / thumb.name
    wait_for(lambda: back.exists() and lib.image(thumb.name)["state"] == "present", what="image back")
    for _ in ("daemon", "full scan"):
        one = lib.image(thumb.name)
        assert one["paths"] == [f"thumbs/pets/{thumb.name}"] and one["tags"] == ["cats", "320x240", "pets"]
        status = lib.status()
        assert (status["images"], status["missing"], status["collisions"]) == (1, 0, 0)
        again = lib.root / "originals" / "_again" / "tom again.jpg"
        assert again.read_bytes() == data  # the dropped bytes are kept, not a new image
        assert check_library(lib.root, {"tom.jpg": data}) == []
        lib.full_scan()


def _notebook_thumbnail(img: Image.Image, filename: str, folder: Path) -> Path:
    """What the notebook this project grew from wrote for one original."""
    thumb = img.copy()
    thumb.thumbnail((64, 64))
    info = PngImagePlugin.PngInfo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # getxmp warns without defusedxml; the notebook did not care
        xmp = str(img.getxmp())
    fields = {
        "filename": filename,
        "width": str(img.width),
        "height": str(img.height),
        "format": str(img.format),
        "format_description": str(img.format_description),
        "bands": str(img.getbands()),
        "extremes": str(img.getextrema()),
        "xmp": xmp,
    }
    for key, value in fields.items():
        info.add_text(key, value)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{img.width}x{img.height}_{imagehash.whash(img, hash_size=8)}_.png"
    thumb.save(path, pnginfo=info)
    return path


def test_a_library_made_by_the_notebook_is_adopted_unchanged(tmp_path: Path) -> None:
    root = tmp_path / "library"
    made: dict[str, bytes] = {}
    originals: dict[str, bytes] = {}
    for i, size in enumerate([(320, 240), (200, 300), (640, 480)]):
        data = encode(scene(size, seed=40 + i))
        name = f"photo{i}.jpg"
        if i < 2:  # the first two originals sit in the source inbox; the third is gone
            write(root / "source" / name, data)
            originals[f"source/{name}"] = data
        img = Image.open(io.BytesIO(data))
        folder = root / "thumbs" / "by_size" / f"{img.width}x{img.height}"
        if i == 2:
            folder = root / "thumbs" / "by_ham" / "3"
        made[_notebook_thumbnail(img, name, folder).relative_to(root).as_posix()] = b""
    for rel in made:
        made[rel] = (root / rel).read_bytes()
    lib = Library(root, tmp_path)
    lib.start()
    try:
        wait_for(lambda: lib.status()["images"] == 3, what="three adopted")
        for _ in ("daemon", "full scan"):
            for rel, data in made.items():
                assert (root / rel).read_bytes() == data  # kept its name, place and bytes
                one = lib.image(Path(rel).name)
                assert one["path"] == rel and one["state"] == "present"
            records = {r["name"]: r for r in lib.records()}
            by_file = {r["original_filename"]: r for r in records.values()}
            assert by_file["photo0.jpg"]["original"] == "source/photo0.jpg"
            assert by_file["photo0.jpg"]["sha256"] == digest(originals["source/photo0.jpg"])
            assert by_file["photo2.jpg"]["original"] is None  # its original is not here
            assert "by_ham" in by_file["photo2.jpg"]["tags"] and "3" not in by_file["photo2.jpg"]["tags"]
            assert not (root / "originals").exists() or lib.originals() == []  # nothing moved in
            assert lib.status()["collisions"] == 0 and lib.status()["errors"] == 0
            for rel, data in originals.items():
                assert (root / rel).read_bytes() == data
            lib.full_scan()
    finally:
        lib.stop()


def test_a_folder_dragged_while_it_is_being_ingested_loses_nothing(lib: Library) -> None:
    dropped = {}
    folder = lib.thumbs / "incoming"
    for i in range(40):
        data = encode(scene((320 + i, 240), seed=100 + i))
        write(folder / f"p{i:02d}.jpg", data)
        dropped[f"p{i:02d}.jpg"] = data
    # One photo dropped twice under another name: an exact collision to file while moving.
    write(folder / "p00 copy.jpg", dropped["p00.jpg"])
    dropped["p00 copy.jpg"] = dropped["p00.jpg"]
    wait_for(lambda: any(folder.glob("*_.png")), what="ingest under way")
    moved = lib.thumbs / "sorted"
    os.rename(folder, moved)  # dragged while watcherd is still working in it
    db = lib.root / ".watcherd" / "catalog.sqlite"

    def settled() -> bool:
        try:
            problems = check_library(lib.root, dropped)
        except OSError:
            return False
        return not problems and len(table(db, "images")) == 40 and len(table(db, "collisions")) == 1

    wait_for(settled, timeout=120, interval=0.5, what="every photo ingested once")
    for _ in ("daemon", "full scan"):
        assert not list(lib.root.rglob(".watcherd-tmp-*"))
        assert len(lib.records()) == 40 and lib.status()["collisions"] == 1
        assert all(r["path"].startswith("thumbs/sorted/") for r in lib.records())
        assert check_library(lib.root, dropped) == []
        lib.full_scan()


def _collide(lib: Library) -> tuple[dict[str, Any], dict[str, bytes]]:
    """cats/a.png ingested, then the same picture as JPEG dropped in dogs/: one collision."""
    im = scene(seed=41)
    dropped = {"a.png": encode(im, "PNG"), "b.jpg": encode(im, "JPEG", quality=95)}
    write(lib.thumbs / "cats" / "a.png", dropped["a.png"])
    wait_for(lambda: canonical_files(lib.thumbs / "cats"), what="ingest of a.png")
    write(lib.thumbs / "dogs" / "b.jpg", dropped["b.jpg"])
    items = wait_for(lambda: cli("dupes", str(lib.root)), what="the collision")
    (item,) = items
    lib.look()
    return dict(item), dropped


def test_moving_a_newcomer_out_of_collisions_decides_distinct(lib: Library) -> None:
    item, dropped = _collide(lib)
    thumb = lib.root / item["newcomer"]["thumbnail"]
    (lib.thumbs / "best").mkdir()
    os.rename(thumb, lib.thumbs / "best" / thumb.name)
    wait_for(lambda: cli("dupes", str(lib.root)) == [], what="the collision decided")
    name = f"{item['name'][: -len('.png')]}~{item['newcomer']['sha256'][:12]}.png"
    for _ in ("daemon", "full scan"):
        (decided,) = cli("dupes", str(lib.root), "--all")
        assert decided["decision"] == "distinct" and decided["id"] == item["id"]
        one = lib.image(name)
        assert one["path"] == f"thumbs/best/{name}" and one["tags"] == ["best", "320x240"]
        assert cli("dupes", str(lib.root)) == [] and lib.status()["errors"] == 0
        assert check_library(lib.root, dropped) == []
        lib.full_scan()


def test_deleting_a_newcomer_from_collisions_decides_keep_existing(lib: Library) -> None:
    item, dropped = _collide(lib)
    os.unlink(lib.root / item["newcomer"]["thumbnail"])
    wait_for(lambda: cli("dupes", str(lib.root)) == [], what="the collision decided")
    for _ in ("daemon", "full scan"):
        (decided,) = cli("dupes", str(lib.root), "--all")
        assert decided["decision"] == "keep-existing"
        assert lib.image(item["name"])["tags"] == ["cats", "320x240", "dogs"]
        assert any(p.startswith("originals/_duplicates/") for p in lib.originals())
        assert check_library(lib.root, dropped) == []
        lib.full_scan()


def test_a_gesture_made_while_no_daemon_runs_is_seen_by_the_scan(lib: Library) -> None:
    item, dropped = _collide(lib)
    lib.stop()
    os.unlink(lib.root / item["newcomer"]["thumbnail"])
    cli("scan", str(lib.root), "-c", str(lib.conf))
    (decided,) = cli("dupes", str(lib.root), "--all")
    assert decided["decision"] == "keep-existing" and cli("dupes", str(lib.root)) == []
    assert check_library(lib.root, dropped) == []


def test_a_new_thumbs_folder_made_in_place_of_one_renamed_away_is_watched(lib: Library) -> None:
    thumb, data = lib.ingest("cats/tom.jpg", seed=21)
    aside = lib.root / "thumbs (last year)"
    os.rename(lib.thumbs, aside)  # the whole tree put aside, as a person archives it
    lib.thumbs.mkdir()  # and a fresh one begun
    wait_for(lambda: lib.image(thumb.name)["state"] == "missing", what="the image left the tree")
    rex, rex_data = lib.ingest("dogs/rex.jpg", seed=22)  # seen in the new folder: it is watched
    for _ in ("daemon", "full scan"):
        tom = lib.image(thumb.name)
        assert tom["state"] == "missing" and tom["tags"] == ["cats", "320x240"]  # kept, not forgotten
        assert lib.image(rex.name)["paths"] == [f"thumbs/dogs/{rex.name}"]
        assert (aside / "cats" / thumb.name).exists()  # nothing of the old tree touched
        assert lib.status()["errors"] == 0
        assert check_library(lib.root, {"tom.jpg": data, "rex.jpg": rex_data}) == []
        lib.full_scan()
