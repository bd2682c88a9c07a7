"""The catalog is a cache; the tree is the truth. What only the catalog knows
(accumulated tags, where each original went, collisions, decisions) is exported next to it as
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
import time
from pathlib import Path

from watcherd.catalog import Catalog, CatalogReader
from watcherd.catalog.opening import REBUILDING
from watcherd.catalog.schema import EXPORTED_META
from watcherd.core.collisionrecords import CollisionKind, CollisionRecord, Existing, Newcomer
from watcherd.core.config import Config
from watcherd.core.filters import IMAGE_SUFFIXES
from watcherd.core.naming import parse_canonical
from watcherd.core.nearpairs import NearRecord
from watcherd.core.records import ImageRecord, Json, State
from watcherd.filing.adopt import Remembered, remember
from watcherd.filing.context import iso
from watcherd.flow.pipeline import Pipeline
from watcherd.fs import fsops

log = logging.getLogger("watcherd")

EXPORT_VERSION = 1


def export_path(cfg: Config) -> Path:
    """Where the export lives: beside the catalog."""
    db = cfg.database_path
    return db.with_name(db.stem + ".export.json")


def write_export(cfg: Config, catalog: CatalogReader, now: float) -> Path:
    """Write the export atomically (temporary, fsync, rename over the previous export).

    Streamed: each image's entry is built inside SQLite and written as it comes,
    so a catalog of a million images is exported without holding it in memory.
    """
    target = export_path(cfg)
    tmp = fsops.temp_path(target.parent, ".json")
    collisions = [c.to_json() for c in catalog.collisions()]
    head = {
        "version": EXPORT_VERSION,
        "exported": iso(now),
        "collisions": collisions,
        "near_decisions": [n.to_json() for n in catalog.near_decisions()],
        # the order of decisions (for undo) and the near groups decided distinct
        "meta": {key: catalog.meta(key) for key in EXPORTED_META if catalog.meta(key) is not None},
    }
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


def export_now(cfg: Config, catalog: Catalog, now: float, *, unless_current: bool = False) -> None:
    """Write the export and mark the catalog's generation it holds (the writer's side);
    ``unless_current``: not when the file there already holds that generation."""
    if catalog.meta(REBUILDING) is not None:
        return  # the export is what the catalog is being rebuilt from: kept as it is until it is whole
    generation, exported = catalog.export_generation()
    if unless_current and generation == exported and export_path(cfg).exists():
        return
    write_export(cfg, catalog, now)
    catalog.mark_exported(generation)


def save_copies(cfg: Config, catalog: Catalog, now: float) -> None:
    """Write the export unless it already holds what the catalog does, and publish the
    read-only snapshot when the live catalog is elsewhere."""
    export_now(cfg, catalog, now, unless_current=True)
    if cfg.snapshot_path is not None:
        catalog.publish(cfg.snapshot_path)


def load_export(cfg: Config) -> Json | None:
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


def remembered(cfg: Config) -> Remembered:
    """What the export remembers, for rebuilding a fresh catalog (empty without an export)."""
    data = load_export(cfg)
    if data is None:
        return Remembered()
    meta = data.get("meta")
    out = Remembered(
        dict(data.get("images", {})),
        list(data.get("collisions", [])),
        dict(meta) if isinstance(meta, dict) else {},
        [n for n in data.get("near_decisions") or [] if isinstance(n, dict)],
    )
    log.info(
        "restoring tags of %d images and %d collisions from %s",
        len(out.images),
        len(out.collisions),
        export_path(cfg),
    )
    return out


def restore_before_walk(pipeline: Pipeline, memory: Remembered) -> None:
    """Before a rebuild's walk, what the export alone holds: the images it knew as missing,
    the collisions it kept (with their decisions), the near decisions and the decisions'
    order. The walk then meets every file as a scan would, knowing what it is beside: a
    missing image's bytes dropped again bring it back, a look-alike of it is its collision,
    a copy of an undecided newcomer's thumbnail is one."""
    restore_missing(pipeline, memory)
    restore_decided(pipeline, memory)


def restore_rest(pipeline: Pipeline) -> int:
    """After a rebuild's walk: the collisions only ``_collisions/`` still shows (their
    newcomers' chunks); the catalog is whole. Returns how many collisions were recorded."""
    memory = pipeline.adopter.finish_restoring() or Remembered()
    catalog = pipeline.catalog
    restore_unfound(pipeline, memory)
    found = collisions_from_files(pipeline, memory)
    with catalog.transaction():
        catalog.drop_meta(REBUILDING)  # whole now: the export may be written again
    return found


def restore_missing(pipeline: Pipeline, memory: Remembered) -> int:
    """Record again each image the export carries whole (it was missing then), missing, with
    its tags and original; an original no longer there is not named. Returns how many were
    recorded."""
    catalog, places = pipeline.catalog, pipeline.places
    found: list[ImageRecord] = []
    for name, entry in memory.images.items():
        data = entry.get("record") if isinstance(entry, dict) else None
        if parse_canonical(name) is None or not isinstance(data, dict) or catalog.image(name) is not None:
            continue
        try:
            rec = ImageRecord.from_json({**data, "name": name})
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("cannot record %s again from the export: %s", name, exc)
            continue
        rec.state, rec.copies = State.MISSING, []
        if rec.original and not os.path.lexists(places.absolute(rec.original)):
            rec.original = None
        found.append(rec)
    if found:
        with catalog.transaction():
            catalog.put_images(found)
        log.info("recorded %d missing images again from the export", len(found))
    return len(found)


def restore_unfound(pipeline: Pipeline, memory: Remembered) -> int:
    """After the walk: each image the export names as present whose thumbnail the walk did not
    find (deleted while no writer looked, say) is recorded as missing from its entry and its
    original, whose bytes give its sha256 and size (its name gives its size and hash). One
    whose original is not there either is counted in one log line. Returns how many were
    recorded."""
    catalog, places, cfg = pipeline.catalog, pipeline.places, pipeline.cfg
    now = iso(time.time())
    found: list[ImageRecord] = []
    without = 0
    for name, entry in memory.images.items():  # the adopted were taken out of it as they were
        parts = parse_canonical(name)
        if parts is None or not isinstance(entry, dict) or "record" in entry or catalog.image(name) is not None:
            continue
        original = entry.get("original")
        held = _bytes_of(places.absolute(original)) if isinstance(original, str) and original else None
        if held is None:
            without += 1
            continue
        sha, size = held
        rec = ImageRecord(
            name=name,
            hash=parts.hash,
            width=parts.width,
            height=parts.height,
            path=places.rel(cfg.thumbs_dir / name),  # its last place is not known
            state=State.MISSING,
            first_seen=now,
            last_seen=now,
            algorithm=cfg.hash.algorithm,
            hash_size=cfg.hash.size,
            decode=cfg.decode,
            sha256=sha,
            file_size=size,
            original_filename=entry.get("original_filename"),
        )
        remember(rec, entry, places)  # as an adopted thumbnail's record is given it
        found.append(rec)
    if found:
        with catalog.transaction():
            catalog.put_images(found)
        log.info(
            "recorded %d images whose thumbnails are gone as missing, from the export and their originals", len(found)
        )
    if without:
        log.info("%d images the export names have neither a thumbnail nor an original here: not recorded", without)
    return len(found)


def _bytes_of(path: Path) -> tuple[str, int] | None:
    """The sha256 and size of the regular file at ``path``, or None."""
    try:
        return fsops.file_sha256(path)
    except OSError:
        return None


def restore_decided(pipeline: Pipeline, memory: Remembered) -> int:
    """Record the export's collisions whose files are still there (a decided one regardless),
    its near decisions and the decisions' order; how many collisions were recorded."""
    catalog, places = pipeline.catalog, pipeline.places
    known = {c.id for c in catalog.collisions()}
    found: list[CollisionRecord] = []
    for data in memory.collisions:
        col = CollisionRecord.from_json(data)
        paths = [col.newcomer.thumbnail, col.newcomer.original]
        there = any(p and os.path.lexists(places.absolute(p)) for p in paths)
        if col.id in known or not (there or col.decision is not None):  # a decision is kept regardless
            continue
        found.append(col)
        known.add(col.id)
    near = [NearRecord.from_json(n) for n in memory.near]  # decisions are kept regardless of files
    with catalog.transaction():
        for col in found:
            catalog.put_collision(col)
        for decided in near:
            if catalog.near_decision(decided.id) is None:
                catalog.put_near_decision(decided)
        for key in EXPORTED_META:
            if key in memory.meta and catalog.meta(key) is None:
                catalog.set_meta(key, memory.meta[key])
    return len(found)


def collisions_from_files(pipeline: Pipeline, memory: Remembered) -> int:
    """Record the undecided collisions ``_collisions/`` shows that the export did not know
    (from their newcomers' chunks); how many were recorded."""
    catalog, places = pipeline.catalog, pipeline.places
    known = {c.id for c in catalog.collisions()}
    referenced = {
        p
        for data in memory.collisions
        for p in ((data.get("newcomer") or {}).get("thumbnail"), (data.get("newcomer") or {}).get("original"))
        if isinstance(p, str) and p
    }
    try:
        entries = sorted(os.scandir(places.collisions), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):  # none, or moved away just now
        entries = []
    found: list[CollisionRecord] = []
    for entry in entries:
        rel = places.rel(Path(entry.path))
        if rel in referenced or not entry.is_file(follow_symlinks=False) or "~" not in entry.name:
            continue
        rec = collision_from_chunks(pipeline, Path(entry.path))
        if rec is not None and rec.id not in known:
            found.append(rec)
            known.add(rec.id)
    if found:
        with catalog.transaction():
            for col in found:
                catalog.put_collision(col)
    return len(found)


def collision_from_chunks(pipeline: Pipeline, thumb: Path) -> CollisionRecord | None:
    """An undecided collision recorded again from a newcomer's thumbnail in _collisions/ (its chunks,
    the record its name is taken by, and its original in originals/_collisions/ if that is there)."""
    from watcherd.decode import chunks

    label = thumb.name[: -len(".png")] if thumb.name.endswith(".png") else None
    if label is None:
        return None
    name = label.split("~", 1)[0] + ".png"
    if parse_canonical(name) is None:
        return None
    try:
        text = chunks.read_text(thumb.read_bytes())
    except OSError:
        return None
    places = pipeline.places
    existing = pipeline.catalog.image(name)
    original = None
    for suffix in sorted(IMAGE_SUFFIXES):
        candidate = places.original_collisions / f"{label}{suffix}"
        if candidate.exists():
            original = places.rel(candidate)
            break
    sha = text.get("sha256")
    return CollisionRecord(
        id=label,
        name=name,
        kind=CollisionKind.EXACT if existing is not None and existing.sha256 == sha else CollisionKind.PERCEPTUAL,
        detected=text.get("ingested"),
        existing=Existing(existing.path, existing.original, existing.sha256) if existing else Existing(),
        newcomer=Newcomer(
            thumbnail=places.rel(thumb),
            original=original,
            sha256=sha,
            filename=text.get("original_filename"),
        ),
    )
