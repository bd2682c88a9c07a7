"""Read-side answers: status, tags, find, errors, missing, export, as plain data (``duplicates``
answers dupes, ``search`` similar).

Each function takes an open ``CatalogReader`` and returns what ``--json`` prints, so
the CLI (through ``library.Library``) only formats, and tests can call these directly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from watcherd.catalog import CatalogReader
from watcherd.catalog.finding import TagQuery
from watcherd.commands.search import lookup
from watcherd.core.config import Config
from watcherd.core.documents import ErrorItem, ExportItem, FindHit, ImageSummary, MissingItem, Naming, Status
from watcherd.core.errors import UsageError
from watcherd.core.records import ImageRecord


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
