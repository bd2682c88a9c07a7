"""What must hold for any library after any sequence of events, crashes included."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sqlite3
import time
import xml.etree.ElementTree as ET
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from PIL import Image

from tests.helpers import sha, table
from watcherd.check import facts
from watcherd.check.problems import Code
from watcherd.core import config
from watcherd.core.exif import Exif
from watcherd.core.filters import has_image_suffix
from watcherd.core.naming import parse_canonical
from watcherd.decode import chunks, imaging
from watcherd.flow import cropfill, restore

DC = "http://purl.org/dc/elements/1.1/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def check_library(
    root: Path,
    dropped: dict[str, bytes],
    *,
    bad: AbstractSet[str] = frozenset(),
    db: Path | None = None,
    tagfiles: bool = False,
) -> list[str]:
    """Return every broken promise (an empty list means the library is sound).

    ``dropped`` maps each file name the test dropped to its bytes; ``bad`` names files
    that are not images and must still be where they were dropped. With ``tagfiles`` (once
    the writer has stopped: a running daemon writes them just after its commits), every
    sidecar and ``user.xdg.tags`` must say what the catalog says.
    """
    problems: list[str] = []
    db = db if db is not None else root / ".watcherd" / "catalog.sqlite"  # (a catalog kept elsewhere: ``database:``)
    thumbs = root / "thumbs"
    files = all_files(root)

    # 1. Nothing lost: every dropped file's bytes exist somewhere under the root; a dropped
    # XMP sidecar is merged into watcherd's, so its keywords must be in a sidecar under originals/.
    # (Not watcherd's own state: a running writer's journal and lease come and go as they are read.)
    present = {
        sha(p) for p in files if ".watcherd" not in p.relative_to(root).parts[:1] and not p.name.startswith(db.name)
    }
    merged = "".join(p.read_text(errors="replace") for p in files if p.suffix == ".xmp" and "originals" in p.parts)
    for name, data in dropped.items():
        if name.endswith(".xmp"):
            for text in re.findall(r">([^<>\s][^<>]*)<", data.decode()):
                if f">{text}<" not in merged:
                    problems.append(f"lost {text!r} of the sidecar {name}")
        elif hashlib.sha256(data).hexdigest() not in present:
            problems.append(f"lost the bytes of {name}")

    # 2. No temporaries, no half-written thumbnails. (A running writer's are there for
    # milliseconds; one left behind is still there a moment later.)
    temporaries = [p for p in files if p.name.startswith(".watcherd-tmp-")]
    if temporaries:
        time.sleep(0.5)
    problems += [f"temporary left behind: {p}" for p in temporaries if p.exists()]
    for p in thumbs.rglob("*.png"):
        if parse_canonical(p.name) or "_collisions" in p.parts:
            try:
                with Image.open(p) as im:
                    im.load()
                    if im.text.get("software", "").startswith("watcherd") is False:
                        problems.append(f"thumbnail without watcherd metadata: {p}")
            except Exception as exc:
                problems.append(f"thumbnail does not open: {p}: {exc}")

    # 3. The catalog file is sound.
    con = sqlite3.connect(db)
    try:
        (verdict,) = con.execute("PRAGMA integrity_check").fetchone()
    finally:
        con.close()
    if verdict != "ok":
        problems.append(f"integrity_check: {verdict}")

    # 4. Catalog and tree agree.
    images: list[dict[str, Any]] = table(db, "images")
    # Every place of a present image: ``paths`` lists them all when there are copies.
    by_path = {p: r for r in images if r["state"] == "present" for p in r.get("paths") or [r["path"]]}
    for r in images:
        if r.get("moving_from"):
            problems.append(f"unfinished move for {r['name']}")
        for place in r.get("paths") or [r["path"]] if r["state"] == "present" else []:
            if not (root / place).is_file():
                problems.append(f"record says present but no file: {place}")
        if r["state"] == "missing" and (root / r["path"]).exists():
            problems.append(f"record says missing but file is there: {r['path']}")
        if r.get("original") and not (root / r["original"]).is_file():
            problems.append(f"original of {r['name']} not at {r['original']}")
    for p in thumbs.rglob("*"):
        if not p.is_file() or "_collisions" in p.parts:
            continue
        rel = p.relative_to(root).as_posix()
        if parse_canonical(p.name):
            if rel not in by_path:
                problems.append(f"canonical file without a present record: {rel}")
        elif has_image_suffix(p.name) and p.name not in bad:
            problems.append(f"image never ingested: {rel}")
    for c in table(db, "collisions"):
        new = c["newcomer"]
        if new.get("moving_from"):
            problems.append(f"unfinished collision move {c['id']}")
        if (c.get("decision") or {}).get("setting_aside"):
            problems.append(f"unfinished set-aside of collision {c['id']}")
        for key in ("thumbnail", "original"):
            if new.get(key) and not (root / new[key]).is_file():
                problems.append(f"collision {c['id']}: {key} missing at {new[key]}")
    for row in table(db, "meta"):
        if isinstance(row, list) and row and isinstance(row[0], dict) and "op" in row[0]:
            problems.append(f"thumbnail steps of a decision left undone: {row}")
    for name in bad:
        if not any(p.name == name for p in thumbs.rglob(name)):
            problems.append(f"bad file {name} was moved or removed")
    for p in thumbs.rglob("*"):
        if p.suffix.lower() == ".xmp":
            problems.append(f"a sidecar stayed in the thumbs tree: {p}")
    if tagfiles:
        problems += _check_tagfiles(root, db, images)

    # 5. ``watcherd check`` finds it sound too.
    problems.extend(f"check: {line}" for line in check_problems(root, db))
    return problems


def _check_tagfiles(root: Path, db: Path, images: list[dict[str, Any]]) -> list[str]:
    """Each record's sidecar lists its tags (but the size tag) first; each of its files carries them."""
    problems = []
    con = sqlite3.connect(db)
    try:
        (due,) = con.execute("SELECT count(*) FROM tagfiles_due").fetchone()
    finally:
        con.close()
    if due:
        problems.append(f"{due} images still marked for their sidecars and attributes")
    for r in images:
        ours = [t for t in r["tags"] if t != f"{r['width']}x{r['height']}"]
        original = root / r["original"] if r.get("original") and not r.get("source") else None
        if original is not None and original.is_file():
            sidecar = original.with_name(original.name + ".xmp")
            try:
                tree = ET.parse(sidecar)
            except (OSError, ET.ParseError) as exc:
                problems.append(f"no readable sidecar for {r['name']}: {exc}")
                continue
            subject = [li.text for prop in tree.getroot().iter(f"{{{DC}}}subject") for li in prop.iter(f"{{{RDF}}}li")]
            if subject[: len(ours)] != ours:
                problems.append(f"sidecar of {r['name']} says {subject}, the catalog {ours}")
        files = [root / p for p in (r.get("paths") or ([r["path"]] if r["state"] == "present" else []))]
        for path in [*files, *([original] if original is not None and original.is_file() else [])]:
            try:
                value = os.getxattr(path, "user.xdg.tags").decode()
            except OSError:
                value = ""
            if value != ",".join(ours):
                problems.append(f"user.xdg.tags of {path} is {value!r}, the catalog says {ours}")
    return problems


def kept_from_thumbnails(root: Path, conf: Path | None = None) -> list[str]:
    """What each present record keeps of its thumbnail is what the thumbnail says now: its window
    hashes are those of the thumbnail's pixels (none when it is too small for any), and EXIF, where
    kept, is what its ``exif`` chunk says. A record whose thumbnail was made again (a decision, an
    undo) or filled later from it must not keep another picture's."""
    cfg = config.load(conf).with_root(root)
    spec = cropfill.windows_spec(cfg)
    problems = []
    for r in table(root / ".watcherd" / "catalog.sqlite", "images"):
        if r["state"] != "present":
            continue
        data = (root / r["path"]).read_bytes()
        want = imaging.render(data, spec, r["name"], "", 0.0).crops
        if (r.get("crops") or "") != (want or ""):
            problems.append(f"window hashes of {r['name']} are not its thumbnail's ({r['path']})")
        if r.get("exif") is not None and r["exif"] != Exif.of(chunks.read_text(data)).to_json():
            problems.append(f"EXIF of {r['name']} is not its thumbnail's: {r['exif']}")
    return problems


def check_problems(root: Path, db: Path | None = None) -> list[str]:
    """What ``watcherd check ROOT`` reports (in process), one line per problem; ``db``: the
    catalog when it is not the default one (``database:``, or a share's published snapshot).

    A library a test drives through a ``Pipeline`` alone has no export (the daemon and
    ``scan`` write it): its absence is not held against it, a stale one is.
    """
    cfg = config.load(None).with_root(root)
    if db is not None:
        cfg = dataclasses.replace(cfg, database=str(db))
    exported = restore.export_path(cfg).exists()
    return [p.line() for p in facts.inspect(cfg).problems if exported or p.code is not Code.STALE_EXPORT]
