"""Ingest: a new image in the tree (or a source) becomes a thumbnail, a record and a filed original.

The order is what makes a crash at any moment recoverable:

1. the thumbnail is written under a temporary name, fsynced, and published under its
   canonical name without replacing anything (a name taken meanwhile is a collision);
2. the record is committed, naming where the original is about to go (``original``)
   and where it still is (``moving_from``);
3. the original is filed (``filing``) and the record is committed again.

A restart that finds ``moving_from`` set finishes step 3; one that finds a thumbnail
with no record adopts it (``adopt``) and then treats the original as its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from watcherd.core.errors import ImageError
from watcherd.core.naming import merge_tags, safe_text, shown, variant_name
from watcherd.core.outcomes import Outcome, Result
from watcherd.core.places import Area, Place
from watcherd.core.records import ImageRecord, State
from watcherd.decide.collisions import Collisions
from watcherd.decide.near import NearDecisions
from watcherd.decode.newimage import ImageReader, NewImage
from watcherd.filing import journal
from watcherd.filing.adopt import Adopter
from watcherd.filing.context import Context
from watcherd.filing.failures import Failures
from watcherd.filing.originals import Filing
from watcherd.fs import publish

log = logging.getLogger("watcherd")

# Where the bytes of an original dropped again are kept: its image's original is already filed.
AGAIN = "_again"


class Ingest:
    """Decodes a newcomer and publishes, records and files it (or records why not)."""

    def __init__(
        self,
        ctx: Context,
        decoder: ImageReader,
        adopter: Adopter,
        collisions: Collisions,
        filing: Filing,
        failures: Failures,
    ) -> None:
        self.ctx = ctx
        self.decoder = decoder
        self.adopter = adopter
        self.collisions = collisions
        self.filing = filing
        self.failures = failures
        self._sources: dict[str, tuple[int, int]] | None = None

    def needless(self, rel: str, st: os.stat_result, where: Place) -> Outcome | None:
        """An outcome that needs no decoding: a known bad file, or a source seen before."""
        if self.failures.known_bad(rel, st):
            return Outcome.IGNORED
        if where.area is Area.SOURCE and self._source_stamps().get(rel) == (st.st_size, st.st_mtime_ns):
            return Outcome.UNCHANGED
        return None

    def ingest(self, path: Path, where: Place, st: os.stat_result) -> Result:
        """Bring one new image in; every failure is recorded against this file alone."""
        rel = self.ctx.places.rel(path)
        skip = self.needless(rel, st, where)
        if skip is not None:
            return Result(skip, path, detail="already reported" if skip is Outcome.IGNORED else "")
        try:
            image = self.decoder.make(path, st)
        except ImageError as exc:
            if exc.transient and self._still_changing(path, st):
                log.debug("deferring %s: %s while the file is still changing", shown(rel), exc.reason)
                return Result(Outcome.DEFERRED, path, detail=exc.reason, retry=True)
            # Cut short and quiet for a while: no writer is coming back, so it is final
            # until the file changes (never decoded again by a scan, never waited for).
            return self.failures.record(path, exc.reason, st, transient=exc.transient and not exc.truncated)
        folder = path.parent if where.area is Area.TREE else self.ctx.places.thumbs
        try:
            return self._place(path, where, st, image, folder)
        except OSError as exc:
            return self.failures.record(path, f"cannot write: {exc.strerror or exc}", st, transient=True)
        finally:
            if image.staged is not None:
                image.staged.discard()  # not published here (a collision, an error): removed

    def publish(self, path: Path, st: os.stat_result, image: NewImage, folder: Path) -> Path:
        """Publish ``image``'s thumbnail as ``folder/image.name`` (FileExistsError if taken): the
        thumbnail staged ahead when it waits in that folder (a link), else written now. Either
        way its bytes are on disk before it has the name, and the folder is synced before the
        open transaction commits."""
        staged = image.staged
        if staged is not None and staged.in_folder(folder):
            staged.publish(image.name, self._publishing(path), self.ctx.sync_later)
            return folder / image.name
        return publish.write_new(
            folder, image.name, image.png, st.st_mtime_ns, self._publishing(path), self.ctx.sync_later
        )

    def _publishing(self, path: Path) -> Callable[[], None]:
        return lambda: self.ctx.checkpoint("publishing", path)

    def _still_changing(self, path: Path, st: os.stat_result) -> bool:
        """Did the file change since ``st``, or was it written too recently to judge?

        A writer that pauses longer than ``settle`` between chunks leaves a file that
        looks truncated; that is not an error until the file has been quiet a while.
        """
        try:
            now_st = os.lstat(path)
        except OSError:
            return False
        if (now_st.st_size, now_st.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            return True
        return self.ctx.now() - now_st.st_mtime < max(5.0, 10 * self.ctx.cfg.settle)

    def _place(self, path: Path, where: Place, st: os.stat_result, image: NewImage, folder: Path) -> Result:
        rec = self.adopter.holder(image.name, folder)
        if image.low_information and rec is not None and rec.sha256 != image.sha256:
            image = dataclasses.replace(image, name=variant_name(image.name, image.sha256))
            rec = self.adopter.holder(image.name, folder)
        if rec is None or rec.sha256 != image.sha256:
            settled = NearDecisions(self.collisions.decisions).again(path, where, image)  # merged by a keep decision
            if settled is not None:
                return settled
        if rec is not None and rec.sha256 == image.sha256 and self._is_own(rec, path):
            return self._resume(path, where, st, image, folder, rec)
        if rec is not None and rec.sha256 == image.sha256 and not rec.present and where.area is Area.TREE:
            return self._returned(path, st, image, folder, rec)
        if rec is None and not os.path.lexists(folder / image.name):
            try:
                thumb = self.publish(path, st, image, folder)
            except FileExistsError:
                pass  # the name appeared meanwhile: a collision with whatever is there
            else:
                self.ctx.published(thumb)
                rec = self._new_record(path, where, st, image, folder)
                return self._record_and_file(path, where, st, image, rec)
        return self.collisions.collide(path, where, st, image, rec, folder)

    def _is_own(self, rec: ImageRecord, path: Path) -> bool:
        """Is ``path`` the original this record was made from (or a stand-in for a lost one)?"""
        rel = self.ctx.places.rel(path)
        if rel in (rec.moving_from, rec.original):
            return True
        if rec.moving_from:
            return False  # its own original is on its way (perhaps in this very batch)
        return rec.original is None or not os.path.lexists(self.ctx.places.absolute(rec.original))

    def _new_record(self, path: Path, where: Place, st: os.stat_result, image: NewImage, folder: Path) -> ImageRecord:
        cfg, places = self.ctx.cfg, self.ctx.places
        now = self.ctx.stamp()
        rec = ImageRecord(
            name=image.name,
            hash=image.hash,
            width=image.width,
            height=image.height,
            path=places.rel(folder / image.name),
            state=State.PRESENT,
            first_seen=now,
            last_seen=now,
            algorithm=cfg.hash.algorithm,
            hash_size=cfg.hash.size,
            decode=cfg.decode,
            format=image.format,
            sha256=image.sha256,
            file_size=st.st_size,
            original_filename=safe_text(path.name),
            source=where.area is Area.SOURCE,
            low_information=image.low_information,
            crops=image.crops,
            exif=image.exif,
        )
        rec.tags = merge_tags([], places.tag_folder(folder), rec.size_tag)
        rec.add_keywords(image.keywords, image.keyword_paths)
        return rec

    def _resume(
        self, path: Path, where: Place, st: os.stat_result, image: NewImage, folder: Path, rec: ImageRecord
    ) -> Result:
        """The record already describes this very file: finish whatever was left undone."""
        places = self.ctx.places
        if not rec.present or not os.path.lexists(places.absolute(rec.path)):
            with contextlib.suppress(FileExistsError):
                self.ctx.published(self.publish(path, st, image, folder))
            rec.path, rec.state = places.rel(folder / image.name), State.PRESENT
            rec.tags = merge_tags(rec.tags, places.tag_folder(folder), rec.size_tag)
        rec.add_keywords(
            image.keywords, image.keyword_paths
        )  # adopted from its thumbnail after a crash, it had none yet
        return self._record_and_file(path, where, st, image, rec)

    def _returned(self, path: Path, st: os.stat_result, image: NewImage, folder: Path, rec: ImageRecord) -> Result:
        """The original of a missing image dropped again: the image comes back where it was dropped.

        Its kept original stays the original; these identical bytes are set aside in
        ``originals/_again/`` (never deleted). The record is committed present, with the
        drop folder's tags added, together with the two steps still to do (``steps``):
        publish the thumbnail, set the bytes aside. They are carried out after the commit
        (in a scan, after the batch's), and after a crash by the next start.
        """
        places, catalog = self.ctx.places, self.ctx.catalog
        if os.path.lexists(folder / image.name):
            return self.collisions.collide(
                path, Place(Area.TREE, places.thumbs, PurePosixPath()), st, image, rec, folder
            )
        rel = places.rel(path)
        planned = places.rel(places.originals / AGAIN / path.name)
        rec.place_at(places.rel(folder / image.name), keep_others=False)
        rec.tags = merge_tags(rec.tags, places.tag_folder(folder), rec.size_tag)
        rec.add_keywords(image.keywords, image.keyword_paths)
        rec.last_seen = self.ctx.stamp()
        with catalog.transaction():
            catalog.put_image(rec)
            catalog.clear_error(rel)
            self.filing.journal.plan(
                [journal.publish(rec.path, image.png, st.st_mtime_ns), journal.aside(rel, planned)]
            )
        self.filing.carry_out()
        log.info("%s came back: %s (its bytes are kept in %s)", rec.name, shown(rec.path), shown(planned))
        return Result(Outcome.INGESTED, path, rec.name, detail="returned")

    def _record_and_file(
        self, path: Path, where: Place, st: os.stat_result, image: NewImage, rec: ImageRecord
    ) -> Result:
        """Record the image, then file its original out of the tree (sources stay put)."""
        catalog = self.ctx.catalog
        rel = self.ctx.places.rel(path)
        rec.last_seen = self.ctx.stamp()
        if where.area is Area.SOURCE:
            rec.original, rec.moving_from, rec.source = rel, None, True
            rec.source_stat = (st.st_size, st.st_mtime_ns)
            self._source_stamps()[rel] = rec.source_stat
        else:
            rec.original = self.filing.planned(image.name, path.suffix)
            rec.moving_from, rec.source = rel, False
        with catalog.transaction():
            catalog.put_image(rec)
            catalog.clear_error(rel)
            said = f"ingested {shown(rel)} -> {shown(rec.path)}"
            catalog.after_commit(lambda: log.info("%s", said))  # in a batch: once the batch is durable
        self.filing.file_image(rec)
        return Result(Outcome.INGESTED, path, rec.name)

    def _source_stamps(self) -> dict[str, tuple[int, int]]:
        """Source files already recorded, with their size and mtime (read once, then kept)."""
        if self._sources is None:
            self._sources = self.ctx.catalog.source_stamps()
        return self._sources
