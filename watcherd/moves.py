"""Thumbnails the user moves, renames and deletes: records follow them, nothing is decoded.

A canonical thumbnail found where its record does not say is a move: the record
takes the new path and the new folder's tags (tags accumulate). One found without a
record is adopted from its chunks. A thumbnail no longer where its record says is
``missing``: nothing about it is forgotten, and it is ``present`` again if it comes back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from watcherd.adopt import Adopter
from watcherd.context import Context
from watcherd.naming import merge_tags, parse_canonical, shown
from watcherd.outcomes import Outcome, Result
from watcherd.places import Area, Place
from watcherd.records import ImageRecord, State

log = logging.getLogger("watcherd")


class Moves:
    """Keeps the records of canonical thumbnails in step with where they are."""

    def __init__(self, ctx: Context, adopter: Adopter) -> None:
        self.ctx = ctx
        self.adopter = adopter

    def is_known(self, path: Path) -> bool:
        """A catalogued canonical name: moving it needs no decoding."""
        return parse_canonical(path.name) is not None and self.ctx.catalog.image(path.name) is not None

    def seen(self, path: Path, where: Place, st: os.stat_result, rec: ImageRecord | None = None) -> Result | None:
        """A canonical name at ``path``: follow, adopt or confirm it; None if it is not ours."""
        catalog = self.ctx.catalog
        rel = self.ctx.places.rel(path)
        rec = rec or catalog.image(path.name)
        if rec is None:
            adopted = self.adopter.adopt(path, st)
            if adopted is None:
                return None  # a user's file that only looks canonical: ingest it
            with catalog.transaction():
                catalog.put_image(adopted)
            log.info("adopted %s from its PNG metadata", shown(rel))
            return Result(Outcome.ADOPTED, path, path.name)
        if rec.path == rel and rec.present:
            return Result(Outcome.UNCHANGED, path, path.name)
        if rec.path != rel and rec.present and os.path.lexists(self.ctx.places.absolute(rec.path)):
            log.warning("%s is also at %s; following the newer place", path.name, shown(rec.path))
        rec.tags = merge_tags(rec.tags, where.rel.parent, rec.size_tag)
        rec.path, rec.state, rec.last_seen = rel, State.PRESENT, self.ctx.stamp()
        with catalog.transaction():
            catalog.put_image(rec)
        log.info("moved %s -> %s tags=%s", path.name, shown(str(where.rel.parent)), ",".join(rec.tags))
        return Result(Outcome.MOVED, path, path.name)

    def visited(self, path: Path) -> Result | None:
        """A known thumbnail was moved to ``path`` and has moved on since: it still earns that
        folder's tags. None for anything else (a file still there is handled as any file seen).
        """
        where = self.ctx.places.place(path)
        if where is None or where.area is not Area.TREE or os.path.lexists(path) or not self.is_known(path):
            return None
        catalog = self.ctx.catalog
        rec = catalog.image(path.name)
        assert rec is not None
        tags = merge_tags(rec.tags, where.rel.parent, rec.size_tag)
        if tags == rec.tags:
            return Result(Outcome.UNCHANGED, path, path.name)
        rec.tags = tags
        with catalog.transaction():
            catalog.put_image(rec)
        log.info("passed through %s: tags=%s", shown(str(where.rel.parent)), ",".join(tags))
        return Result(Outcome.MOVED, path, path.name)

    def gone(self, path: Path) -> Result:
        """A path disappeared: a thumbnail that was there is now missing."""
        catalog = self.ctx.catalog
        rel = self.ctx.places.rel(path)
        if os.path.lexists(path):
            return Result(Outcome.IGNORED, path)
        if catalog.error(rel) is not None:
            with catalog.transaction():
                catalog.clear_error(rel)
        name = catalog.name_at(rel)
        rec = catalog.image(name) if name is not None else None
        if rec is None or rec.path != rel or not rec.present:
            return Result(Outcome.IGNORED, path)
        with catalog.transaction():
            self._mark_missing(rec)
        log.info("missing %s (%s)", shown(rel), rec.name)
        return Result(Outcome.MISSING, path, rec.name)

    def gone_dir(self, folder: Path) -> int:
        """A folder disappeared: every thumbnail recorded under it that is gone is missing."""
        prefix = self.ctx.places.rel(folder).rstrip("/") + "/"
        count = self.mark_gone((p, p[p.rfind("/") + 1 :]) for p in self.ctx.catalog.present_under(prefix))
        if count:
            log.info("missing %d thumbnails under %s", count, shown(prefix))
        return count

    def mark_gone(self, placed: Iterable[tuple[str, str]]) -> int:
        """Of these (path, name) pairs of present thumbnails, mark the ones no longer on disk missing."""
        catalog = self.ctx.catalog
        count = 0
        with catalog.transaction():
            for rel, name in placed:
                if os.path.lexists(self.ctx.places.absolute(rel)):
                    continue
                rec = catalog.image(name)
                if rec is not None and rec.present and rec.path == rel:
                    self._mark_missing(rec)
                    count += 1
        return count

    def follow(self, paths: list[Path]) -> list[Path]:
        """Update the records of catalogued thumbnails among ``paths`` (a folder moved in).

        Records are fetched in one query and written in one transaction: moved
        thumbnails are changes the tree itself proves again at the next scan, so
        nothing is lost if the daemon dies before it commits. Returns the paths that
        are not catalogued thumbnails, which need settling and decoding.
        """
        catalog = self.ctx.catalog
        known = catalog.images_named([p.name for p in paths if parse_canonical(p.name) is not None])
        rest = []
        with catalog.transaction():
            for path in paths:
                rec = known.get(path.name)
                where = self.ctx.places.place(path) if rec is not None else None
                if rec is None or where is None:
                    rest.append(path)
                    continue
                try:
                    st = os.lstat(path)
                except OSError:
                    continue  # gone again already
                self.seen(path, where, st, rec)
        return rest

    def _mark_missing(self, rec: ImageRecord) -> None:
        rec.state, rec.last_seen = State.MISSING, self.ctx.stamp()
        self.ctx.catalog.put_image(rec)
