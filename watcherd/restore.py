"""The catalog is a cache; the tree is the truth. What only the catalog knows
(accumulated tags, where each original went, collisions) is exported next to it as
JSON, so a lost or damaged catalog can be rebuilt without losing it.

A rebuild needs nothing but the tree: canonical names give size and hash, the PNG
text chunks give sha256, format and original name, current folders give tags. The
export, when present, adds back the tags of folders a thumbnail has left and the
collisions whose thumbnails were moved.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from watcherd import fsops
from watcherd.catalog import Catalog, Record
from watcherd.config import Config
from watcherd.naming import IMAGE_SUFFIXES, parse_canonical
from watcherd.pipeline import Pipeline, iso

log = logging.getLogger("watcherd")

EXPORT_VERSION = 1


def export_path(cfg: Config) -> Path:
    """Where the export lives: beside the catalog."""
    db = cfg.database_path
    return db.with_name(db.stem + ".export.json")


def write_export(cfg: Config, catalog: Catalog, now: float) -> Path:
    """Write the export atomically (temporary, fsync, rename over the previous export).

    Streamed: each image's entry is built inside SQLite and written as it comes,
    so a catalog of a million images is exported without holding it in memory.
    """
    target = export_path(cfg)
    tmp = fsops.temp_path(target.parent, ".json")
    head = {"version": EXPORT_VERSION, "exported": iso(now), "collisions": list(catalog.collisions())}
    with open(tmp, "x", encoding="utf-8") as fh:
        fh.write(json.dumps(head, ensure_ascii=True, sort_keys=True)[:-1] + ', "images": {')
        first = True
        for entry in catalog.export_entries():
            fh.write(entry if first else "," + entry)
            first = False
        fh.write("}}")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)  # the export is watcherd's own file, so replacing it is fine
    fsops.fsync_dir(target.parent)
    return target


def load_export(cfg: Config) -> dict[str, Any] | None:
    """The last export, or None when there is none or it cannot be read."""
    try:
        data = json.loads(export_path(cfg).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read the catalog export %s: %s", export_path(cfg), exc)
        return None
    if not isinstance(data, dict) or data.get("version") != EXPORT_VERSION:
        log.warning("ignoring catalog export %s: unknown version", export_path(cfg))
        return None
    return data


def prime(pipeline: Pipeline) -> bool:
    """Before reconciling a fresh catalog, hand the pipeline what the export remembers."""
    data = load_export(pipeline.cfg)
    if data is None:
        return False
    pipeline.restore = dict(data.get("images", {}))
    pipeline.restore_collisions = list(data.get("collisions", []))
    log.info(
        "restoring tags of %d images and %d collisions from %s",
        len(pipeline.restore),
        len(pipeline.restore_collisions),
        export_path(pipeline.cfg),
    )
    return True


def restore_collisions(pipeline: Pipeline) -> int:
    """Record the collisions whose files are still there: from the export, else from chunks."""
    catalog = pipeline.catalog
    known = {c["id"] for c in catalog.collisions()}
    referenced: set[str] = set()
    count = 0
    for col in pipeline.restore_collisions:
        new = col.get("newcomer", {})
        paths = [new.get("thumbnail"), new.get("original")]
        referenced.update(p for p in paths if p)
        if col.get("id") in known or not any(p and os.path.lexists(pipeline.root / p) for p in paths):
            continue
        catalog.put_collision(col)
        known.add(col["id"])
        count += 1
    folder = pipeline.collisions_dir
    if folder.is_dir():
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            rel = pipeline.rel(Path(entry.path))
            if rel in referenced or not entry.is_file(follow_symlinks=False) or "~" not in entry.name:
                continue
            rec = _collision_from_chunks(pipeline, Path(entry.path))
            if rec is not None and rec["id"] not in known:
                catalog.put_collision(rec)
                known.add(rec["id"])
                count += 1
    catalog.commit()
    pipeline.restore_collisions = []
    return count


def _collision_from_chunks(pipeline: Pipeline, thumb: Path) -> Record | None:
    from watcherd import imaging

    label = thumb.name[: -len(".png")] if thumb.name.endswith(".png") else None
    if label is None:
        return None
    name = label.split("~", 1)[0] + ".png"
    if parse_canonical(name) is None:
        return None
    try:
        text = imaging.read_text(thumb.read_bytes())
    except OSError:
        return None
    existing = pipeline.catalog.image(name)
    original = None
    for suffix in sorted(IMAGE_SUFFIXES):
        candidate = pipeline.originals / pipeline.cfg.collisions / f"{label}{suffix}"
        if candidate.exists():
            original = pipeline.rel(candidate)
            break
    sha = text.get("sha256")
    return {
        "id": label,
        "name": name,
        "kind": "exact" if existing is not None and existing.get("sha256") == sha else "perceptual",
        "detected": text.get("ingested"),
        "existing": {
            "thumbnail": existing["path"] if existing else None,
            "original": existing.get("original") if existing else None,
            "sha256": existing.get("sha256") if existing else None,
        },
        "newcomer": {
            "thumbnail": pipeline.rel(thumb),
            "original": original,
            "sha256": sha,
            "filename": text.get("original_filename"),
            "source": False,
            "moving_from": None,
        },
    }
