"""Read-side answers: status, tags, find, dupes, similar, as plain data.

Each function takes an open ``CatalogReader`` and returns what ``--json`` prints, so
the CLI (through ``library.Library``) only formats, and tests can call these directly.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from watcherd import crops
from watcherd.catalog import CatalogReader
from watcherd.catalog.hashes import hash_rows, present_crop_windows, whole_windows
from watcherd.catalog.reads import TagQuery
from watcherd.config import Config
from watcherd.documents import (
    Collision,
    ErrorItem,
    FindHit,
    ImageSummary,
    MissingItem,
    Naming,
    NearGroup,
    SimilarHit,
    Status,
)
from watcherd.errors import ImageError, UsageError
from watcherd.keeper import Facts, date_taken, is_burst, shot, suggest
from watcherd.naming import HASH_RE, parse_canonical
from watcherd.nearpairs import names_of, near_id, sides, widest
from watcherd.records import CollisionKind, CollisionRecord, ImageRecord, Json, Verdict, existing_now

if TYPE_CHECKING:
    from watcherd import imaging


def status(cfg: Config, catalog: CatalogReader, lease_file: Path, now: float | None = None) -> Status:
    """The ``status`` document; see the README for every key."""
    from watcherd.lease import describe, read_holder  # socket and secrets: only status needs them

    now = time.time() if now is None else now
    counts = catalog.counts()
    scan = catalog.meta("scan")
    pinned = catalog.meta("library") or {}
    naming: Naming = {
        "algorithm": pinned.get("algorithm", cfg.hash.algorithm),
        "size": pinned.get("hash_size", cfg.hash.size),
        "decode": pinned.get("decode", "reference" if pinned else cfg.decode),
    }
    return {
        "root": str(cfg.root),
        "images": counts["present"],
        "missing": counts["missing"],
        "low_information": counts["low_information"],
        "tags": counts["tags"],
        "collisions": counts["collisions"],
        "errors": counts["errors"],
        "database": str(Path(cfg.database_path).absolute()),
        "hash": naming,
        "last_scan": scan,
        "daemon": describe(read_holder(lease_file), cfg.heartbeat, cfg.stale_after, now),
    }


def tag_counts(catalog: CatalogReader) -> dict[str, int]:
    """Every tag with the number of present images carrying it, most used first."""
    return dict(sorted(catalog.tag_counts(), key=lambda kv: (-kv[1], kv[0])))


def lookup(catalog: CatalogReader, name: str) -> ImageRecord:
    """The record for a canonical name, a path ending in one, or a hash."""
    base = Path(name).name
    if parse_canonical(base) is not None:
        rec = catalog.image(base)
        if rec is None:
            raise UsageError(f"no image named {base} in the catalog")
        return rec
    if HASH_RE.match(name):
        matches = catalog.images_with_hash(name)
        if not matches:
            raise UsageError(f"no image with hash {name} in the catalog")
        if len(matches) > 1:
            names = ", ".join(r.name for r in matches)
            raise UsageError(f"hash {name} names {len(matches)} images ({names}); give the full name")
        return matches[0]
    raise UsageError(f"{name!r} is neither a canonical name (WxH_HASH_.png) nor a hash")


def image_tags(catalog: CatalogReader, name: str) -> ImageSummary:
    """``tags NAME``: one image's name, tags, path and state."""
    return summary(lookup(catalog, name))


def summary(rec: ImageRecord) -> ImageSummary:
    """What ``tags NAME`` and ``untag`` print about one image."""
    return {"name": rec.name, "tags": rec.tags, "path": rec.path, "paths": rec.paths, "state": rec.state.value}


def find(catalog: CatalogReader, query: TagQuery) -> list[FindHit]:
    """Present images matching every criterion of ``query``, by path."""
    if query.empty:
        raise UsageError("find needs at least one of --tag, --any, --not, --untagged, --filename")
    return [{"name": name, "path": path, "tags": found} for name, path, found in catalog.find(query)]


def errors(catalog: CatalogReader) -> list[ErrorItem]:
    """Every file that could not be ingested and is still there, by path."""
    return [
        {
            "path": e.path,
            "reason": e.reason,
            "transient": e.transient,
            "first_seen": e.first_seen,
            "last_seen": e.last_seen,
            "attempts": e.attempts,
        }
        for e in sorted(catalog.errors(), key=lambda e: e.path)
    ]


def missing(catalog: CatalogReader) -> list[MissingItem]:
    """Images whose thumbnail is in no folder of the tree any more, by name."""
    return [
        {"name": r.name, "path": r.path, "tags": r.tags, "last_seen": r.last_seen, "original": r.original}
        for r in catalog.missing_images()
    ]


THUMBNAIL_LIMIT = 4 << 20  # adopt.MAX_THUMBNAIL_BYTES: our thumbnails are far smaller


def thumbnail_chunks(root: Path, rel: str | None) -> dict[str, str]:
    """The PNG text chunks of a thumbnail under ROOT (a regular file, not followed if a link), or {}."""
    if rel is None:
        return {}
    from watcherd import chunks

    path = root / rel
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > THUMBNAIL_LIMIT:
            return {}
        return chunks.read_text(path.read_bytes())
    except OSError:
        return {}


def _regular(path: Path) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def side_facts(
    root: Path, thumbnail: str | None, original: str | None, chunks: dict[str, str], pixels: int | None = None
) -> Facts:
    """What the keeper rule compares about one side, from its thumbnail's chunks and its files.

    The date is EXIF's when the picture carried one, else the original's modification
    time (kept through every move), else the thumbnail's (which copies it). ``pixels``
    is used when the chunks do not say.
    """
    width, height, size = chunks.get("width", ""), chunks.get("height", ""), chunks.get("file_size", "")
    if width.isdigit() and height.isdigit():
        pixels = int(width) * int(height)
    orig = _regular(root / original) if original else None
    thumb = _regular(root / thumbnail) if thumbnail else None
    file_size = int(size) if size.isdigit() else (orig.st_size if orig else None)
    taken = date_taken(chunks)
    if taken is not None:
        return Facts(pixels, file_size, taken, "EXIF")
    dated = orig or thumb
    if dated is not None:
        return Facts(pixels, file_size, datetime.fromtimestamp(dated.st_mtime), "file date")
    return Facts(pixels, file_size, None)


def collision_facts(
    root: Path, c: CollisionRecord
) -> tuple[tuple[Facts, Facts], tuple[dict[str, str], dict[str, str]]]:
    """Both sides' facts (existing, newcomer) and their thumbnails' chunks."""
    parsed = parse_canonical(c.name)
    pixels = parsed.width * parsed.height if parsed else None
    a = thumbnail_chunks(root, c.existing.thumbnail)
    b = thumbnail_chunks(root, c.newcomer.thumbnail)
    facts = (
        side_facts(root, c.existing.thumbnail, c.existing.original, a, pixels),
        side_facts(root, c.newcomer.thumbnail, c.newcomer.original, b, pixels),
    )
    return facts, (a, b)


SIDES: tuple[Literal["existing"], Literal["newcomer"]] = ("existing", "newcomer")


def as_now(catalog: CatalogReader, c: CollisionRecord) -> CollisionRecord:
    """``c`` with its existing side where that image's files are today (``records.existing_now``)."""
    return dataclasses.replace(c, existing=existing_now(c, catalog.image(c.name)))


def dupes(catalog: CatalogReader, *, decided: bool = False, root: Path | None = None) -> list[Collision]:
    """The undecided collisions (with ``decided``, every one) with both sides' paths.

    With ``root`` an undecided one says which side the keeper rule suggests keeping.
    """
    out: list[Collision] = []
    for c in catalog.collisions():
        if c.decision is not None and not decided:
            continue
        c = as_now(catalog, c)
        existing, newcomer = c.existing, c.newcomer
        suggested: Literal["existing", "newcomer"] | None = None
        if root is not None and c.decision is None:
            suggested = SIDES[suggest(collision_facts(root, c)[0])]
        paths = [p for p in (existing.thumbnail, existing.original, newcomer.thumbnail, newcomer.original) if p]
        if c.decision is not None:
            # Where the files are now: the image that holds each side, and what was set aside.
            paths = []
            for name in dict.fromkeys([c.name, c.decision.image or c.name]):
                rec = catalog.image(name)
                if rec is not None:
                    paths += [*rec.paths, *([rec.original] if rec.original else [])]
            paths += [p for p in (c.decision.archived, newcomer.original, *c.decision.again) if p and p not in paths]
        out.append(
            {
                "id": c.id,
                "decision": c.decision.kind.value if c.decision else None,
                "decided": c.decision.decided if c.decision else None,
                "name": c.name,
                "kind": "exact" if c.kind is CollisionKind.EXACT else "perceptual",
                "detected": c.detected,
                "paths": paths,
                "existing": {"thumbnail": existing.thumbnail, "original": existing.original, "sha256": existing.sha256},
                "newcomer": {
                    "thumbnail": newcomer.thumbnail,
                    "original": newcomer.original,
                    "sha256": newcomer.sha256,
                    "filename": newcomer.filename,
                },
                "suggested": suggested,
            }
        )
    return out


# From tests/benchmarks/quality.py: whash finds 98.9% of near-duplicates at 4 bits with
# 0.02% false positives; 5 answers the same, 6 quadruples the false positives.
DEFAULT_DISTANCE = 4
MAX_RADIUS = 16  # nearindex.MAX_RADIUS; numpy and Pillow load only for the commands that need them


def query_spec(cfg: Config, pinned: Json | None = None) -> imaging.RenderSpec:
    """The decoding settings a query image is hashed with: ``pinned`` (the catalog's
    ``library`` meta) wins over the config, so it matches the library's names."""

    from watcherd.newcomers import spec_for

    spec = spec_for(cfg)
    if pinned:
        spec = dataclasses.replace(
            spec,
            algorithm=pinned.get("algorithm", spec.algorithm),
            hash_size=pinned.get("hash_size", spec.hash_size),
            decode=pinned.get("decode", "reference"),
        )
    return spec


def render_file(cfg: Config, path: Path, pinned: Json | None = None) -> imaging.Rendered:
    """Render an image file exactly as ingest would in this library (name's hash, window hashes),
    decoded in the decoder sandbox (the same time and memory limits): the file may be anything."""
    from watcherd.decoders import Sandbox

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        with Sandbox(cfg.decode_timeout, cfg.decode_memory) as box:
            return box(data, query_spec(cfg, pinned), Path(path).name, "", 0.0)
    except ImageError as exc:
        raise UsageError(f"{path}: {exc.reason}") from None


def hash_of_file(cfg: Config, path: Path, pinned: Json | None = None) -> str:
    """Hash an image file exactly as ingest would name it in this library (``render_file``)."""
    return render_file(cfg, path, pinned).hash


def resolve_hash(cfg: Config, catalog: CatalogReader, target: str) -> str:
    """A hash from a hex string, an image file, or a catalogued name."""
    return resolve_query(cfg, catalog, target)[0]


def resolve_query(cfg: Config, catalog: CatalogReader, target: str) -> tuple[str, list[int]]:
    """(hash, window hashes) of a hex string, an image file, or a catalogued name. A hex string
    has the window hashes of the catalogued image with that hash, if there is one (the first
    by name that has them), else none."""
    if HASH_RE.match(target) and len(target) == 16:
        named = sorted(catalog.images_with_hash(target.lower()), key=lambda r: r.name)
        return target, next((w for w in (crops.split(r.crops) for r in named) if w), [])
    if Path(target).is_file():
        rendered = render_file(cfg, Path(target), catalog.meta("library"))
        return rendered.hash, crops.split(rendered.crops)
    rec = lookup(catalog, target)
    return rec.hash, crops.split(rec.crops)


def _crop_hits(cfg: Config, windows: list[int]) -> dict[str, tuple[str, int]]:
    """Name -> (path, distance) of every present image one of whose stored windows is within
    ``crops.CROP_DISTANCE`` of one of ``windows``: the nearest window pair for each image."""
    from watcherd import nearfile
    from watcherd.catalog.hashes import CROPS, NearLogReader

    path = nearfile.index_path(cfg.state_dir, CROPS)
    log = NearLogReader(cfg.database_path, CROPS)
    try:
        if log.state()[0] is None:
            return {}  # a catalog no writer has opened since window hashes came: none kept yet
        found = nearfile.similar_many(path, log, windows, crops.CROP_DISTANCE)
    finally:
        log.close()
    if found is None:
        from watcherd.nearstore import NearStore

        with NearStore.open(path, cfg.database_path, source=CROPS) as store:
            many = store.query_many(windows, crops.CROP_DISTANCE)
            where = store.where([row for row, _, _ in many])
        found = [(*where[row], d, i) for row, d, i in many if row in where]
    best: dict[str, tuple[str, int]] = {}
    for name, at, d, _ in found:
        if name not in best or d < best[name][1]:
            best[name] = (at, d)
    return best


def similar(cfg: Config, hash_hex: str, distance: int, windows: list[int] | None = None) -> list[SimilarHit]:
    """Present images within ``distance`` bits of ``hash_hex`` (``match: whole``), nearest first;
    with the query's ``windows``, also those it finds by crop (``match: crop``, after them).

    A whole-picture hit is confirmed by the whole-picture window hashes when both sides
    have them (``crops.VERIFY_DISTANCE``); see ``crops.match``."""
    if not 0 <= distance <= MAX_RADIUS:
        raise UsageError(f"--distance must be from 0 to {MAX_RADIUS}")
    if len(hash_hex) != 16:
        raise UsageError("near-duplicate search needs 64-bit hashes (hash size 8)")
    if not Path(cfg.database_path).exists():
        return []
    from watcherd import nearfile
    from watcherd.catalog.hashes import NearLogReader

    # The persisted index (mapped, pages touched only) plus the catalog's log since it was
    # built: exact at once, whoever keeps it current. Read without numpy when it can
    # answer alone; else NearStore builds (or waits for) one.
    path, query = nearfile.index_path(cfg.state_dir), int(hash_hex, 16)
    log = NearLogReader(cfg.database_path)
    try:
        found = nearfile.similar(path, log, query, distance)
    finally:
        log.close()
    if found is None:
        from watcherd.nearstore import NearStore

        with NearStore.open(path, cfg.database_path) as store:
            hits = store.query(query, distance)
            where = store.where([h.row for h in hits])
        found = [(*where[h.row], h.distance) for h in hits if h.row in where]
    if not windows:
        return [{"name": name, "distance": d, "path": at, "match": "whole"} for name, at, d in found]
    first = whole_windows(cfg.database_path, [name for name, _, _ in found])
    out: list[SimilarHit] = []
    for name, at, d in found:
        own = first.get(name)
        if own is None or (own ^ windows[0]).bit_count() <= crops.VERIFY_DISTANCE:
            out.append({"name": name, "distance": d, "path": at, "match": "whole"})
    whole = {h["name"] for h in out}
    by_crop = sorted((d, name, at) for name, (at, d) in _crop_hits(cfg, windows).items() if name not in whole)
    out += [{"name": name, "distance": d, "path": at, "match": "crop"} for d, name, at in by_crop]
    return out


# Images whose crop windows make one table in memory while ``dupes --near`` looks for crops
# (50,000 x 28 windows: about 70 MB).
CROP_BLOCK = 50_000


Edge = tuple[str, int]  # ("whole", whash bits) or ("crop", window bits)


def near_edges(cfg: Config, distance: int) -> tuple[dict[tuple[str, str], Edge], dict[str, str]]:
    """Every pair of present, not low-information images that match: (name a, name b) sorted ->
    how; and name -> path of each image named.

    Whole: the names' hashes within ``distance``, confirmed by the whole-picture window hashes
    when both have them. Crop: a crop window of one (``crops.AS_ORIGINAL``) within
    ``crops.CROP_DISTANCE`` of the other's whole-picture window: every pair is looked at from
    both sides, so asking the crop windows of each image finds each crop pair.
    """
    import numpy as np

    from watcherd.nearstore import NearStore, Tables, index_path

    # The persisted index plus its log (built and published here if missing or void).
    with NearStore.open(index_path(cfg.state_dir), cfg.database_path) as store:
        present = store.present(skip_low=True)
    who, pos, dist = present.query_many(present.hashes, distance)
    ahead = who < pos
    rows_a, rows_b, dist = present.rows[who[ahead]], present.rows[pos[ahead]], dist[ahead]
    where = hash_rows(cfg.database_path, sorted({int(r) for r in (*rows_a.tolist(), *rows_b.tolist())}))
    paths = {name: at for name, at in where.values()}
    names, wholes, windows = present_crop_windows(cfg.database_path)
    first = dict(zip(names, wholes.tolist(), strict=True))
    edges: dict[tuple[str, str], Edge] = {}
    for ra, rb, d in zip(rows_a.tolist(), rows_b.tolist(), dist.tolist(), strict=True):
        if ra not in where or rb not in where:
            continue
        a, b = sorted((where[ra][0], where[rb][0]))
        wa, wb = first.get(a), first.get(b)
        if wa is None or wb is None or (wa ^ wb).bit_count() <= crops.VERIFY_DISTANCE:
            edges[(a, b)] = ("whole", int(d))
    if not names:
        return edges, paths
    # Crops: a block of images' crop windows in a table in memory, asked by every image's
    # whole-picture window (28 times fewer questions than the other way round, same pairs).
    asks = np.array(crops.AS_ORIGINAL, dtype=np.intp)
    for start in range(0, len(names), CROP_BLOCK):
        asked = windows[start : start + CROP_BLOCK][:, asks].ravel()
        table = Tables.build(None, 0, np.arange(asked.size, dtype=np.int64), asked, np.zeros(asked.size, bool))
        whole_of, hit, d = table.search_many(wholes, crops.CROP_DISTANCE)
        for w, h, dd in zip(whole_of.tolist(), (start + hit // asks.size).tolist(), d.tolist(), strict=True):
            name, other = names[h], names[w]
            if other == name:
                continue
            key = (min(name, other), max(name, other))
            had = edges.get(key)
            if had is None or (had[0] == "crop" and dd < had[1]):
                edges[key] = ("crop", int(dd))
    missing = {n for pair in edges for n in pair} - paths.keys()
    if missing:
        with CatalogReader(cfg.database_path) as catalog:
            paths.update({n: r.path for n, r in catalog.images_named(sorted(missing)).items()})
    return edges, paths


def components(edges: dict[tuple[str, str], Edge]) -> list[list[str]]:
    """Connected components (size > 1) of the graph ``edges`` makes, each sorted."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = {}
    for x in list(parent):
        members.setdefault(find(x), []).append(x)
    return [sorted(m) for m in members.values() if len(m) > 1]


def near_groups(
    cfg: Config, distance: int, decided_groups: list[list[str]] | None = None, *, decided: bool = False
) -> list[NearGroup]:
    """Groups of distinct present images that match each other (``dupes --near``): the names'
    hashes within ``distance`` (confirmed by the whole-picture window hashes), or one a crop
    of the other (``crops.match``); linked pairs make one group.

    Low-information images are left out: their hashes say nothing about them. A group
    whose every pair lies within a group decided ``distinct`` is left out too (listed,
    with its decision, when ``decided``). A group taken as one burst by one camera
    (``keeper.is_burst``) is of kind ``burst`` and has no suggested keeper.
    """
    if not 0 <= distance <= MAX_RADIUS:
        raise UsageError(f"--near must be from 0 to {MAX_RADIUS}")
    if not Path(cfg.database_path).exists():
        return []
    edges, paths = near_edges(cfg, distance)
    kept: list[tuple[list[str], bool]] = []
    for names in components(edges):
        settled = _all_pairs_decided(names, decided_groups or [])
        if not settled or decided:
            kept.append((names, settled))
    with CatalogReader(cfg.database_path) as catalog:
        records = catalog.images_named([n for names, _ in kept for n in names])
    out: list[NearGroup] = []
    for names, settled in kept:
        found_records = [records[n] for n in names if n in records]
        first, last = sides(found_records) if found_records else (None, None)
        by_crop = any(
            edges[(a, b)][0] == "crop" for i, a in enumerate(names) for b in names[i + 1 :] if (a, b) in edges
        )
        burst, suggested = _burst_and_keeper(cfg, found_records, first, last)
        out.append(
            {
                "id": near_id(names),
                "decision": "distinct" if settled else None,
                "decided": None,
                "kind": "burst" if burst else "near",
                "name": names[0],
                "names": names,
                "paths": [paths.get(n, records[n].path if n in records else "") for n in names],
                "max_distance": widest([r.hash for r in found_records]),
                "existing": first.name if first else names[0],
                "newcomer": last.name if last else names[-1],
                "match": "crop" if by_crop else "whole",
                "suggested": suggested,
            }
        )
    return sorted(out, key=lambda g: (g["max_distance"], g["name"]))


def _burst_and_keeper(
    cfg: Config, members: list[ImageRecord], first: ImageRecord | None, last: ImageRecord | None
) -> tuple[bool, Literal["existing", "newcomer"] | None]:
    """Is the group a burst (from its thumbnails' EXIF), and which end the keeper rule would keep
    (None for a burst, or when it would keep one in between)."""
    if cfg.root is None or not members or first is None or last is None:
        return False, None
    root = Path(cfg.root)
    chunks = [thumbnail_chunks(root, r.path) for r in members]
    if is_burst([shot(c) for c in chunks]):
        return True, None
    facts = [side_facts(root, r.path, r.original, c, r.width * r.height) for r, c in zip(members, chunks, strict=True)]
    keep = members[suggest(facts)].name
    return False, "existing" if keep == first.name else "newcomer" if keep == last.name else None


def near_kept(catalog: CatalogReader) -> list[NearGroup]:
    """Near groups decided keep-existing or keep-newcomer (``dupes --near N --all``), oldest first:
    where the kept image's files are now and where each merged original was set aside."""
    out: list[NearGroup] = []
    for near in catalog.near_decisions():
        merged = [m.image for m in near.merged]
        kept = catalog.image(near.decision.image or "")
        existing, newcomer = sides([*merged, *([kept] if kept is not None else [])])
        paths = [*kept.paths, *([kept.original] if kept.original else [])] if kept is not None else []
        paths += [p for p in (*(m.archived for m in near.merged), *near.decision.again) if p and p not in paths]
        out.append(
            {
                "id": near.id,
                "decision": near.decision.kind.value,
                "decided": near.decision.decided,
                "kind": "near",
                "name": near.decision.image or near.id,
                "names": names_of(near.id),
                "paths": paths,
                "max_distance": widest([r.hash for r in [*merged, *([kept] if kept is not None else [])]]),
                "existing": existing.name,
                "newcomer": newcomer.name,
                "match": None,
                "suggested": None,
            }
        )
    return out


def distinct_pairs(catalog: CatalogReader) -> list[list[str]]:
    """Each collision decided ``distinct`` as a pair: the image it collided with and the
    newcomer's image (``~sha`` named), which look alike by construction and were told apart."""
    return [
        [c.name, c.decision.image]
        for c in catalog.collisions()
        if c.decision is not None and c.decision.kind is Verdict.DISTINCT and c.decision.image
    ]


def _all_pairs_decided(names: list[str], groups: list[list[str]]) -> bool:
    """Is every pair of ``names`` inside one group decided distinct?"""
    sets = [set(g) for g in groups]
    return all(any(a in s and b in s for s in sets) for i, a in enumerate(names) for b in names[i + 1 :])
