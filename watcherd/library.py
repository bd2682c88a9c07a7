"""A library as its users see it: the small facade the CLI (and later a web page) calls.

Every answer is plain data, exactly what ``--json`` prints. Reads open the catalog
read-only (an absent catalog reads as an empty library and is not created); the one
write here (``untag``) goes through a catalog transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from watcherd import queries
from watcherd.catalog import Catalog, CatalogReader, open_for_reading
from watcherd.config import Config
from watcherd.documents import Collision, FindHit, ImageSummary, NearGroup, SimilarHit, Status
from watcherd.errors import UsageError
from watcherd.layout import check_root, lease_path


class Library:
    """One library root and its settings."""

    def __init__(self, cfg: Config) -> None:
        check_root(cfg)
        self.cfg = cfg

    @contextmanager
    def _reading(self) -> Iterator[CatalogReader]:
        reader = open_for_reading(self.cfg)
        try:
            yield reader
        finally:
            reader.close()

    def status(self, now: float | None = None) -> Status:
        """The ``status`` document (see the README for every key)."""
        with self._reading() as catalog:
            return queries.status(self.cfg, catalog, lease_path(self.cfg), time.time() if now is None else now)

    def tags(self) -> dict[str, int]:
        """Every tag with its number of present images, most used first."""
        with self._reading() as catalog:
            return queries.tag_counts(catalog)

    def image(self, name: str) -> ImageSummary:
        """One image's name, tags, path and state (NAME, a path ending in one, or a hash)."""
        with self._reading() as catalog:
            return queries.image_tags(catalog, name)

    def find(self, tags: list[str]) -> list[FindHit]:
        """Present images carrying every tag."""
        with self._reading() as catalog:
            return queries.find(catalog, tags)

    def dupes(self, near: int | None = None) -> list[Collision | NearGroup]:
        """Recorded collisions; with ``near``, also groups of images within that distance."""
        with self._reading() as catalog:
            items: list[Collision | NearGroup] = [*queries.dupes(catalog)]
        if near is not None:
            items += queries.near_groups(self.cfg, near)
        return items

    def similar(self, target: str, distance: int) -> list[SimilarHit]:
        """Images within ``distance`` bits of an image file, a hash or a catalogued name."""
        with self._reading() as catalog:
            hash_hex = queries.resolve_hash(self.cfg, catalog, target)
        return queries.similar(self.cfg, hash_hex, distance)

    def untag(self, name: str, tag: str) -> ImageSummary:
        """Remove ``tag`` from one image; it comes back only if the image is moved into such a folder."""
        db = self.cfg.database_path
        if not Path(db).exists():
            raise UsageError(f"no catalog at {db}: run 'watcherd scan' first")
        with Catalog(db) as catalog:
            rec = queries.lookup(catalog, name)
            if tag not in rec.tags:
                raise UsageError(f"{rec.name} has no tag {tag!r} (it has: {', '.join(rec.tags) or 'none'})")
            rec.tags = [t for t in rec.tags if t != tag]
            with catalog.transaction():
                catalog.put_image(rec)
            return queries.summary(rec)
