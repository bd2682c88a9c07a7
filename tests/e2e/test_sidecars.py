"""Tags that travel, against a real ``watcherd run``: what digiKam, darktable, Immich and Lightroom read
from the sidecars (read here by exiftool, as they read the same fields), what Dolphin reads from
``user.xdg.tags``, and keyworded photos dropped in.

exiftool is Debian's ``libimage-exiftool-perl``, installed by ``.ci/run`` when missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.helpers import (
    ENTITY_BOMB,
    canonical_files,
    cli,
    encode,
    running_daemon,
    scene,
    table,
    wait_for,
    write,
    xmp_packet,
)
from tests.invariants import check_library
from watcherd.filing import tagfiles
from watcherd.fs import sidecars

EXIFTOOL = shutil.which("exiftool")
pytestmark = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool (Debian's libimage-exiftool-perl) is not installed")

FIELDS = {"XMP-dc:Subject": "subject", "XMP-digiKam:TagsList": "list", "XMP-lr:HierarchicalSubject": "tree"}


def exiftool(*args: str) -> str:
    assert EXIFTOOL is not None
    done = subprocess.run([EXIFTOOL, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def read(sidecar: Path) -> dict[str, list[str]]:
    """The three keyword lists of a sidecar as exiftool reads them (an absent list is empty)."""
    if not sidecar.is_file():
        return {}
    (found,) = json.loads(exiftool("-j", "-G1", "-struct", *(f"-{f}" for f in FIELDS), str(sidecar)))
    out: dict[str, list[str]] = {}
    for field, key in FIELDS.items():
        value = found.get(field, [])
        out[key] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return out


class Library:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "lib"
        self.root.mkdir()
        self.conf = tmp_path / "watcherd.yaml"
        self.conf.write_text("settle: 0.3\nheartbeat: 0.5\n")
        self.db = self.root / ".watcherd" / "catalog.sqlite"

    def record(self, name: str) -> dict[str, Any]:
        (rec,) = [r for r in table(self.db, "images") if r["name"] == name]
        return rec

    def sidecar(self, name: str) -> Path:
        return sidecars.sidecar_of(self.root / self.record(name)["original"])

    def xattrs(self, name: str) -> set[str]:
        """``user.xdg.tags`` of every file of the image (its thumbnails and its original)."""
        rec = self.record(name)
        paths = [*(rec.get("paths") or [rec["path"]]), rec["original"]]
        return {os.getxattr(self.root / p, tagfiles.XATTR).decode() for p in paths}

    def settled(self, name: str, lists: dict[str, list[str]]) -> None:
        """Wait until the sidecar reads ``lists`` and every file's attribute the same tags, then check
        both against the catalog: the subject is exactly its tags but the size tag."""
        wait_for(lambda: read(self.sidecar(name)) == lists, timeout=30, what=f"the sidecar to read {lists}")
        rec = self.record(name)
        size = f"{rec['width']}x{rec['height']}"
        ours = [t for t in rec["tags"] if t != size]
        assert lists["subject"][: len(ours)] == ours  # exactly the catalog's, then what others added
        wait_for(lambda: self.xattrs(name) == {",".join(ours)}, timeout=30, what="user.xdg.tags")


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    return Library(tmp_path)


def test_sidecars_and_attributes_follow_gestures_and_commands_and_keep_others_keywords(lib: Library) -> None:
    dropped = {"tom.jpg": encode(scene(seed=61))}
    with running_daemon(lib.root, lib.conf):
        drop = write(lib.root / "thumbs" / "cats" / "tom.jpg", dropped["tom.jpg"])
        wait_for(lambda: not drop.exists() and canonical_files(drop.parent), what="the ingest")
        (thumb,) = canonical_files(drop.parent)
        name = thumb.name
        lib.settled(name, {"subject": ["cats"], "list": ["cats"], "tree": ["cats"]})

        (lib.root / "thumbs" / "dogs" / "orange").mkdir(parents=True)  # a move between folders
        os.rename(thumb, lib.root / "thumbs" / "dogs" / "orange" / name)
        want = {"subject": ["cats", "dogs", "orange"], "list": ["cats", "dogs/orange"], "tree": ["cats", "dogs|orange"]}
        lib.settled(name, want)

        # digiKam (here exiftool) adds a keyword to the sidecar
        exiftool("-q", "-overwrite_original", "-XMP-dc:Subject+=sunset", str(lib.sidecar(name)))
        assert read(lib.sidecar(name))["subject"] == ["cats", "dogs", "orange", "sunset"]

        cli("retag", str(lib.root), "orange", "ginger", "-c", str(lib.conf))
        lib.settled(
            name,
            {
                "subject": ["cats", "dogs", "ginger", "sunset"],
                "list": ["cats", "dogs", "ginger"],
                "tree": ["cats", "dogs", "ginger"],
            },
        )
        cli("untag", str(lib.root), "--everywhere", "cats", "-c", str(lib.conf))
        lib.settled(
            name, {"subject": ["dogs", "ginger", "sunset"], "list": ["dogs", "ginger"], "tree": ["dogs", "ginger"]}
        )

    # A catalog made afresh writes the same files from the same facts; the folder the thumbnail
    # is in gives its tag back ('orange'), as a rebuild always did, and the sidecar says so.
    cli("rebuild", str(lib.root), "-c", str(lib.conf))
    assert sorted(cli("tags", str(lib.root), name)["tags"]) == ["320x240", "dogs", "ginger", "orange"]
    lib.settled(
        name,
        {
            "subject": ["dogs", "ginger", "orange", "sunset"],
            "list": ["dogs/orange", "ginger"],
            "tree": ["dogs|orange", "ginger"],
        },
    )
    assert check_library(lib.root, dropped) == []
    assert not list((lib.root / "thumbs").rglob("*.xmp"))


def test_sidecars_follow_a_keep_newcomer_decision_and_its_undo(lib: Library) -> None:
    im = scene(seed=41)  # PNG and JPEG of it get the same name: a collision
    dropped = {"a.png": encode(im, "PNG"), "b.jpg": encode(im, "JPEG", quality=95)}
    with running_daemon(lib.root, lib.conf):
        write(lib.root / "thumbs" / "cats" / "a.png", dropped["a.png"])
        wait_for(lambda: len(table(lib.db, "images")) == 1, what="the first image")
        (name,) = [r["name"] for r in table(lib.db, "images")]
        lib.settled(name, {"subject": ["cats"], "list": ["cats"], "tree": ["cats"]})
        write(lib.root / "thumbs" / "dogs" / "b.jpg", dropped["b.jpg"])
        (item,) = wait_for(lambda: cli("dupes", str(lib.root), "-c", str(lib.conf)), what="the collision")
        stem = name[: -len(".png")]

        cli("resolve", str(lib.root), item["id"], "keep-newcomer", "-c", str(lib.conf))
        assert lib.record(name)["original"] == f"originals/{stem}.jpg"
        lib.settled(name, {"subject": ["cats", "dogs"], "list": ["cats", "dogs"], "tree": ["cats", "dogs"]})
        (col,) = table(lib.db, "collisions")
        archived = sidecars.sidecar_of(lib.root / col["decision"]["archived"])
        assert read(archived)["subject"] == ["cats"]  # the old original's sidecar went with it

        cli("resolve", str(lib.root), "--undo", "-c", str(lib.conf))
        assert lib.record(name)["original"] == f"originals/{stem}.png"
        lib.settled(name, {"subject": ["cats"], "list": ["cats"], "tree": ["cats"]})
        assert not archived.exists()
        (col,) = table(lib.db, "collisions")
        assert sidecars.sidecar_of(lib.root / col["newcomer"]["original"]).is_file()  # back beside it
        assert check_library(lib.root, dropped) == []


def test_keyworded_photos_arrive_with_their_keywords_and_a_hostile_packet_costs_one_line(
    lib: Library, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    keyworded = write(work / "keyworded.jpg", encode(scene(seed=71)))
    exiftool(
        "-q", "-overwrite_original", "-XMP-dc:Subject=gamma", "-XMP-lr:HierarchicalSubject=Places|Paris",
        "-IPTC:Keywords=alpha", "-IPTC:Keywords=béta", str(keyworded),
    )  # fmt: skip
    beside = write(work / "beside.jpg", encode(scene(seed=72)))
    exiftool("-q", "-o", str(work / "beside.jpg.xmp"), "-XMP-dc:Subject=from-sidecar", "-XMP-xmp:Rating=4", str(beside))
    hostile = write(work / "hostile.jpg", encode(scene(seed=73), xmp=xmp_packet(("never",), doctype=ENTITY_BOMB)))
    Image.open(hostile).verify()
    dropped = {p.name: p.read_bytes() for p in (keyworded, beside, hostile)}

    with running_daemon(lib.root, lib.conf) as daemon:
        inbox = lib.root / "thumbs" / "inbox"
        write(inbox / "beside.jpg.xmp", (work / "beside.jpg.xmp").read_bytes())  # the sidecar first, as copied
        for file_name, data in dropped.items():
            write(inbox / file_name, data)
        wait_for(lambda: len(table(lib.db, "images")) == 3 and not list(inbox.glob("*.jpg")), what="three ingests")
        by_file = {r["original_filename"]: r["name"] for r in table(lib.db, "images")}

        one = cli("tags", str(lib.root), by_file["keyworded.jpg"])
        assert one["tags"] == ["inbox", "320x240", "gamma", "Places", "Paris", "alpha", "béta"]
        assert one["keywords"] == ["gamma", "Places", "Paris", "alpha", "béta"]
        assert one["sources"]["inbox"] == "folder" and one["sources"]["Paris"] == "keyword"
        lib.settled(
            by_file["keyworded.jpg"],
            {
                "subject": ["inbox", "gamma", "Places", "Paris", "alpha", "béta"],
                "list": ["inbox", "gamma", "Places/Paris", "alpha", "béta"],
                "tree": ["inbox", "gamma", "Places|Paris", "alpha", "béta"],
            },
        )

        two = cli("tags", str(lib.root), by_file["beside.jpg"])
        assert two["keywords"] == ["from-sidecar"]
        assert not list(inbox.glob("*.xmp"))  # the dropped sidecar went with its original
        merged = lib.sidecar(by_file["beside.jpg"])
        assert read(merged)["subject"] == ["inbox", "from-sidecar"]
        assert json.loads(exiftool("-j", "-XMP-xmp:Rating", str(merged)))[0]["Rating"] == 4  # the rest is kept

        three = cli("tags", str(lib.root), by_file["hostile.jpg"])
        assert three["tags"] == ["inbox", "320x240"] and three["keywords"] == []
        said = [line for line in daemon.log_text().splitlines() if "XMP" in line]
        assert len(said) == 1 and "hostile.jpg" in said[0] and "document type" in said[0], said
    assert check_library(lib.root, dropped) == []


def test_export_lists_every_image_with_its_tags_and_their_sources(lib: Library) -> None:
    write(lib.root / "thumbs" / "cats" / "a.jpg", encode(scene(seed=81), xmp=xmp_packet(("sunset",))))
    write(lib.root / "thumbs" / "dogs" / "b.jpg", encode(scene(seed=82)))
    cli("scan", str(lib.root), "-c", str(lib.conf))
    items = cli("export", str(lib.root), "-c", str(lib.conf))
    assert [i["name"] for i in items] == sorted(i["name"] for i in items)  # by name
    assert {i["tags"][0]: (i["tags"], i["sources"]) for i in items} == {
        "cats": (["cats", "320x240", "sunset"], {"cats": "folder", "320x240": "size", "sunset": "keyword"}),
        "dogs": (["dogs", "320x240"], {"dogs": "folder", "320x240": "size"}),
    }
    assert all(i["original"].startswith("originals/") and i["places"] == [i["path"]] for i in items)
    csv_text = subprocess.run(
        [sys.executable, "-m", "watcherd", "export", str(lib.root), "--format", "csv"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = csv_text.splitlines()
    assert lines[0] == "name,state,path,places,original,source,tags,sources" and len(lines) == 3
