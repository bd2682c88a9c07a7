"""A library as its users see it: the small facade the CLI (and later a web page) calls.

Every answer is plain data, exactly what ``--json`` prints. Reads open the catalog
read-only (an absent catalog reads as an empty library and is not created); every
change goes through the library's one writer (``writer.change``): handed to the daemon
when one runs, else applied here under the lease.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from watcherd.catalog import CatalogReader, open_for_reading
from watcherd.catalog.finding import TagQuery
from watcherd.commands import queries
from watcherd.core.config import Config
from watcherd.core.documents import (
    Arrangement,
    BatchDecided,
    BatchUndone,
    CheckReport,
    Collision,
    Decided,
    ErrorItem,
    ExportItem,
    FindHit,
    Forgotten,
    ImageSummary,
    MissingItem,
    NearGroup,
    Repaired,
    RepairReport,
    Retried,
    SimilarHit,
    Status,
    TagChange,
    Undone,
)
from watcherd.core.errors import UsageError
from watcherd.core.records import Json
from watcherd.fs.layout import check_root, lease_path


def _change(cfg: Config, kind: str, payload: Json) -> Any:
    """``writer.change``, imported on first use: read commands never load the writer's modules."""
    from watcherd.commands import writer

    return writer.change(cfg, kind, payload)


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
        """The ``status`` document (see the manual (docs/) for every key)."""
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

    def find(self, query: TagQuery, *, limit: int | None = None, offset: int = 0) -> list[FindHit]:
        """Present images matching every criterion of ``query``, by path (a page of them with
        ``limit`` and ``offset``)."""
        with self.finding(query, limit=limit, offset=offset) as hits:
            return list(hits)

    def find_count(self, query: TagQuery) -> int:
        """How many present images ``find`` would give for ``query`` (a page's total)."""
        if query.empty:
            return 0
        with self._reading() as catalog:
            return catalog.find_count(query)

    @contextmanager
    def finding(self, query: TagQuery, *, limit: int | None = None, offset: int = 0) -> Iterator[Iterator[FindHit]]:
        """``find`` streamed: the matches as they are read (the catalog stays open meanwhile)."""
        with self._reading() as catalog:
            yield queries.find(catalog, query, limit=limit, offset=offset)

    def errors(self) -> list[ErrorItem]:
        """Every file that could not be ingested and is still there."""
        with self._reading() as catalog:
            return queries.errors(catalog)

    def retry_errors(self) -> Retried:
        """Forget every error record through the one writer: those files are read again."""
        result: Retried = _change(self.cfg, "retry-errors", {})
        return result

    def export(self) -> Iterator[ExportItem]:
        """Every image with its places, original, tags and each tag's source, by name (streamed)."""
        with self._reading() as catalog:
            yield from queries.export(catalog)

    def missing(self) -> list[MissingItem]:
        """Images whose thumbnail is in no folder of the tree any more."""
        with self._reading() as catalog:
            return queries.missing(catalog)

    def dupes(
        self, near: int | None = None, *, decided: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[Collision | NearGroup]:
        """Undecided collisions (every one with ``decided``); with ``near``, also groups of
        images within that distance (those decided distinct only with ``decided``); then, with
        both, the near groups decided keep-existing or keep-newcomer. ``offset`` items of that
        listing skipped, at most ``limit`` given: only the near groups given are looked at on disk."""
        if (limit is not None and limit < 0) or offset < 0:
            raise UsageError("--limit and --offset must not be negative")
        # Only dupes (and the page) load the keeper rule and the groups: find and status stay quick.
        from watcherd.commands import duplicates
        from watcherd.decide.decided import NEAR

        with self._reading() as catalog:
            collisions = catalog.collisions()
            items: list[Collision | NearGroup] = [
                *duplicates.dupes(catalog, decided=decided, root=self.cfg.root, collisions=collisions)
            ]
            # Near groups decided distinct, and collisions decided distinct (their two look-alikes).
            groups = [*(catalog.meta(NEAR) or []), *duplicates.distinct_pairs(collisions)] if near is not None else []
            kept = duplicates.near_kept(catalog) if near is not None and decided else []
        # The listing is collisions, near groups, kept groups: each part skips what the offset
        # has not skipped yet and gives what the limit still wants. Only the near groups given
        # are read from disk by the keeper rule.
        head = items[offset : None if limit is None else offset + limit]
        if near is None:
            return head
        skip = max(0, offset - len(items))
        want = None if limit is None else limit - len(head)
        page, total = duplicates.near_page(self.cfg, near, groups, decided=decided, offset=skip, limit=want)
        skip = max(0, skip - total)
        want = None if want is None else want - len(page)
        return [*head, *page, *kept[skip : None if want is None else skip + want]]

    def resolve(self, ident: str, decision: str, via: str = "command") -> Decided:
        """Decide a collision (or a near group) through the one writer; ``via``: command or page."""
        result: Decided = _change(self.cfg, "resolve", {"id": ident, "decision": decision, "via": via})
        return result

    def resolve_batch(self, decisions: list[Json], batch: str, via: str = "page") -> BatchDecided:
        """Make several decisions through the one writer, recorded as one ``batch`` (undone as one)."""
        result: BatchDecided = _change(self.cfg, "resolve-batch", {"decisions": decisions, "via": via, "batch": batch})
        return result

    def undo_batch(self, batch: str) -> BatchUndone:
        """Undo every decision of ``batch`` through the one writer (refused unless they are the last)."""
        result: BatchUndone = _change(self.cfg, "undo", {"batch": batch})
        return result

    def undo(self, expected: str | None = None, token: str | None = None) -> Undone:
        """Revert the last decision through the one writer; with ``expected`` (and ``token``),
        only if the last decision is that one (else ``ConflictError``, or ``Refused`` with exit 7).
        Without them, the decision last now is named (``decided.pinned_last``): a decision made
        meanwhile, or the request applied twice by a writer that died before answering, is
        refused rather than undone too."""
        arguments: Json = {k: v for k, v in (("id", expected), ("token", token)) if v is not None}
        if expected is None and self.cfg.database_path.exists():
            from watcherd.decide import decided

            with self._reading() as catalog:
                arguments = decided.pinned_last(catalog)
        result: Undone = _change(self.cfg, "undo", arguments)
        return result

    def pinned_settings(self) -> Json | None:
        """The hash settings the library's names were made with (the catalog's ``library`` meta)."""
        with self._reading() as catalog:
            pinned: Json | None = catalog.meta("library")
            return pinned

    def similar(self, target: str, distance: int) -> list[SimilarHit]:
        """Images within ``distance`` bits of an image file, a hash or a catalogued name."""
        from watcherd.commands import search  # the index's reader: only similar loads it

        with self._reading() as catalog:
            hash_hex, windows = search.resolve_query(self.cfg, catalog, target)
        return search.similar(self.cfg, hash_hex, distance, windows)

    def similar_to(self, hash_hex: str, windows: list[int], distance: int) -> list[SimilarHit]:
        """Images within ``distance`` bits of a hash, or a crop of (or cropped from) the picture of ``windows``."""
        from watcherd.commands import search

        return search.similar(self.cfg, hash_hex, distance, windows)

    def untag(self, name: str, tag: str) -> ImageSummary:
        """Remove ``tag`` from one image; it comes back only if the image is moved into such a folder."""
        result: ImageSummary = _change(self.cfg, "untag", {"name": name, "tag": tag})
        return result

    def untag_everywhere(self, tag: str) -> TagChange:
        """Remove ``tag`` from every image that has it."""
        result: TagChange = _change(self.cfg, "untag-everywhere", {"tag": tag})
        return result

    def retag(self, old: str, new: str) -> TagChange:
        """Rename tag ``old`` to ``new`` on every image (merged where an image has both)."""
        result: TagChange = _change(self.cfg, "retag", {"old": old, "new": new})
        return result

    def forget(self, names: list[str]) -> Forgotten:
        """Drop the records of missing images (present or unknown ones refuse the lot)."""
        result: Forgotten = _change(self.cfg, "forget", {"names": names})
        return result

    def check(self, *, read_data: bool = False, repair: bool = False) -> CheckReport:
        """Verify the library (``watcherd check``); with ``repair``, have the one writer mend what
        is safe to mend, then look again."""
        from watcherd.check import facts

        verdict = facts.inspect(self.cfg, read_data=read_data)
        repaired: list[Repaired] = []
        if repair and any(p.repairable for p in [*verdict.problems, *verdict.notes]):
            done: RepairReport = _change(self.cfg, "check-repair", {"host": socket.gethostname(), "pid": os.getpid()})
            repaired = done["repaired"]
            verdict = facts.inspect(self.cfg, read_data=read_data)
        return facts.report(self.cfg, verdict, repaired)

    def arrange(self, mode: str, under: str, *, dry_run: bool = False) -> Arrangement:
        """Sort thumbnails under ``under`` (relative to the thumbs tree) by size or similarity."""
        from watcherd.commands import arrange

        if dry_run:
            with self._reading() as catalog:
                return arrange.document(arrange.plan(self.cfg, catalog, mode, under), dry_run=True)
        if mode not in arrange.MODES:
            raise UsageError(f"arrange by {mode!r}? choose {' or '.join(arrange.MODES)}")
        result: Arrangement = _change(self.cfg, "arrange", {"mode": mode, "under": under})
        return result
