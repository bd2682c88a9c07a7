"""Read-side answers: status, tags, find, dupes, similar, as plain data.

Each function takes an open ``CatalogReader`` and returns what ``--json`` prints, so
the CLI (through ``library.Library``) only formats, and tests can call these directly.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from watcherd.catalog import CatalogReader
from watcherd.catalog.finding import TagQuery

# Re-exported: the search side moved to ``search`` (read by callers of queries).
from watcherd.commands.search import DEFAULT_DISTANCE as DEFAULT_DISTANCE
from watcherd.commands.search import MAX_RADIUS as MAX_RADIUS
from watcherd.commands.search import hash_of_file as hash_of_file
from watcherd.commands.search import lookup as lookup
from watcherd.commands.search import query_spec as query_spec
from watcherd.commands.search import resolve_hash as resolve_hash
from watcherd.commands.search import resolve_query as resolve_query
from watcherd.commands.search import similar as similar
from watcherd.core.collisionrecords import CollisionKind, CollisionRecord, Verdict, existing_now
from watcherd.core.config import Config
from watcherd.core.documents import (
    Collision,
    ErrorItem,
    ExportItem,
    FindHit,
    ImageSummary,
    MissingItem,
    Naming,
    NearGroup,
    Status,
)
from watcherd.core.errors import UsageError
from watcherd.core.keeper import choose, is_burst, shot
from watcherd.core.nearpairs import names_of, near_id, sides, widest
from watcherd.core.records import ImageRecord
from watcherd.decode.facts import collision_facts, image_facts
from watcherd.decode.facts import side_facts as side_facts  # re-exported: read by callers of queries


def status(cfg: Config, catalog: CatalogReader, lease_file: Path, now: float | None = None) -> Status:
    """The ``status`` document; see the manual (docs/) for every key."""
    from watcherd.fs.lease import describe, read_holder  # socket and secrets: only status needs them

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


def image_tags(catalog: CatalogReader, name: str) -> ImageSummary:
    """``tags NAME``: one image's name, tags, path and state."""
    return summary(lookup(catalog, name))


def summary(rec: ImageRecord) -> ImageSummary:
    """What ``tags NAME`` and ``untag`` print about one image."""
    sources = rec.sources()
    return {
        "name": rec.name,
        "tags": rec.tags,
        "path": rec.path,
        "paths": rec.paths,
        "state": rec.state.value,
        "keywords": [t for t in rec.tags if sources[t] == "keyword"],
        "sources": sources,
    }


def export(catalog: CatalogReader) -> Iterator[ExportItem]:
    """``export``: every image, present or missing, by name (streamed)."""
    for rec in catalog.images_by_name():
        yield {
            "name": rec.name,
            "state": rec.state.value,
            "path": rec.path,
            "places": rec.paths,
            "original": rec.original,
            "source": rec.source,
            "tags": rec.tags,
            "sources": rec.sources(),
        }


def find(catalog: CatalogReader, query: TagQuery, *, limit: int | None = None, offset: int = 0) -> Iterator[FindHit]:
    """Present images matching every criterion of ``query``, by path, streamed: ``offset``
    skipped, at most ``limit`` given. Refused at once (not when first read) without a criterion."""
    if query.empty:
        raise UsageError("find needs at least one of --tag, --any, --not, --untagged, --filename")
    if (limit is not None and limit < 0) or offset < 0:
        raise UsageError("--limit and --offset must not be negative")
    return (
        {"name": name, "path": path, "tags": found}
        for name, path, found in catalog.find(query, limit=limit, offset=offset)
    )


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


SIDES: tuple[Literal["existing"], Literal["newcomer"]] = ("existing", "newcomer")


def as_now(catalog: CatalogReader, c: CollisionRecord) -> CollisionRecord:
    """``c`` with its existing side where that image's files are today (``collisionrecords.existing_now``)."""
    return dataclasses.replace(c, existing=existing_now(c, catalog.existing_holder(c)))


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
        reasons: list[str] = []
        if root is not None and c.decision is None:
            choice = choose(collision_facts(root, c)[0])
            suggested = SIDES[choice.keep]
            reasons = [f"{side}: {r}" for side, said in zip(SIDES, choice.reasons, strict=True) for r in said]
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
                "reasons": reasons,
            }
        )
    return out


def near_groups(
    cfg: Config, distance: int, decided_groups: list[list[str]] | None = None, *, decided: bool = False
) -> list[NearGroup]:
    """Groups of distinct present images that match each other (``dupes --near``): the names'
    hashes within ``distance`` (confirmed by the whole-picture window hashes), or one a crop
    of the other (``near.croplinks``); linked pairs make one group.

    Low-information images are left out: their hashes say nothing about them. A group
    whose every pair lies within a group decided ``distinct`` is left out too (listed,
    with its decision, when ``decided``). A group taken as one burst by one camera
    (``keeper.is_burst``) is of kind ``burst`` and has no suggested keeper.
    """
    if not 0 <= distance <= MAX_RADIUS:
        raise UsageError(f"--near must be from 0 to {MAX_RADIUS}")
    if not Path(cfg.database_path).exists():
        return []
    from watcherd.near.groups import read_groups
    from watcherd.near.persisted import index_path

    # Connected components of the pairs the writer keeps (plus the few images waiting
    # for theirs); computed in bulk beyond the kept radius (see "Near-duplicate search").
    kept: list[tuple[list[tuple[str, str]], int, bool, bool]] = []
    for group in read_groups(cfg.database_path, index_path(cfg.state_dir), distance):
        picked = list(zip(group.names, group.paths, strict=True))
        settled = _all_pairs_decided(group.names, decided_groups or [])
        if not settled or decided:
            kept.append((picked, group.span, settled, group.crop))
    with CatalogReader(cfg.database_path) as catalog:
        records = catalog.images_named([n for picked, _, _, _ in kept for n, _ in picked])
    out: list[NearGroup] = []
    for picked, span, settled, crop in kept:
        names = [n for n, _ in picked]
        found_records = [records[n] for n in names if n in records]
        first, last = sides(found_records) if found_records else (None, None)
        burst, suggested, reasons = _near_choice(cfg, found_records, dict(picked))
        if settled:
            suggested, reasons = None, []
        out.append(
            {
                "id": near_id(names),
                "decision": "distinct" if settled else None,
                "decided": None,
                "kind": "burst" if burst else "near",
                "name": picked[0][0],
                "names": names,
                "paths": [p for _, p in picked],
                "max_distance": span,
                "existing": first.name if first else names[0],
                "newcomer": last.name if last else names[-1],
                "suggested": suggested,
                "reasons": reasons,
                "match": "crop" if crop else "whole",
            }
        )
    return sorted(out, key=lambda g: (g["max_distance"], g["name"]))


def _near_choice(cfg: Config, members: list[ImageRecord], where: dict[str, str]) -> tuple[bool, str | None, list[str]]:
    """Is the group a burst (from its thumbnails' EXIF), and the member the keeper rule keeps and
    why ("NAME: reason" each); a burst has none: no frame is pre-selected for merging.

    The candidates go in catalog order (first catalogued first), so only a full tie
    depends on it, and it keeps the group's existing member, as for a collision."""
    if not members or cfg.root is None:
        return False, None, []
    ordered = sorted(members, key=lambda r: (r.first_seen, r.name))
    root = Path(cfg.root)
    seen = [image_facts(root, r, where.get(r.name)) for r in ordered]
    if is_burst([shot(chunks) for _, chunks in seen]):
        return True, None, []
    choice = choose([facts for facts, _ in seen])
    reasons = [f"{r.name}: {said}" for r, told in zip(ordered, choice.reasons, strict=True) for said in told]
    return False, ordered[choice.keep].name, reasons


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
                "suggested": None,
                "reasons": [],
                "match": None,
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
