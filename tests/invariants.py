"""What must hold for any library after any sequence of events, crashes included."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from PIL import Image

from tests.helpers import sha, table
from watcherd.filters import has_image_suffix
from watcherd.naming import parse_canonical


def all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def check_library(root: Path, dropped: dict[str, bytes], *, bad: AbstractSet[str] = frozenset()) -> list[str]:
    """Return every broken promise (an empty list means the library is sound).

    ``dropped`` maps each file name the test dropped to its bytes; ``bad`` names files
    that are not images and must still be where they were dropped.
    """
    problems: list[str] = []
    db = root / ".watcherd" / "catalog.sqlite"
    thumbs = root / "thumbs"
    files = all_files(root)

    # 1. Nothing lost: every dropped file's bytes exist somewhere under the root.
    present = {sha(p) for p in files if p.suffix != ".sqlite" and p.name != "lock"}
    for name, data in dropped.items():
        if hashlib.sha256(data).hexdigest() not in present:
            problems.append(f"lost the bytes of {name}")

    # 2. No temporaries, no half-written thumbnails.
    for p in files:
        if p.name.startswith(".watcherd-tmp-"):
            problems.append(f"temporary left behind: {p}")
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
    # A thumbnail copied into several folders is one record with several places (``paths``).
    by_path = {p: r for r in images if r["state"] == "present" for p in r.get("paths") or [r["path"]]}
    for r in images:
        if r.get("moving_from"):
            problems.append(f"unfinished move for {r['name']}")
        if r["state"] == "present":
            for place in r.get("paths") or [r["path"]]:
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
    return problems
