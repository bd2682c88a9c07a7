"""One change in, outcomes out: the pipeline that every dropped, moved or deleted file goes through.

Reading top to bottom, a dropped image travels:

    watcher.Handler -> events.Change -> worker.Worker -> Pipeline.handle
        -> settle.Settler (wait until the file is still) -> Pipeline.process_all
        -> newimage.ImageReader (read, sha256, decode in a sandbox) -> ingest.Ingest
        -> collisions.Collisions (name taken) | filing.Filing (original filed)
        -> catalog.Catalog (one transaction per step)

Canonical thumbnails that move, are renamed or deleted go to ``moves.Moves`` instead
and are never decoded. Every failure is isolated to its file: recorded, counted, and
the next file goes on.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from watcherd.catalog import Catalog
from watcherd.core.config import Config
from watcherd.core.errors import CatalogError, ImageError, LockedError, StopError, WatcherdError
from watcherd.core.events import Change, ChangeKind
from watcherd.core.filters import has_image_suffix, unsupported_format
from watcherd.core.naming import parse_canonical, shown
from watcherd.core.outcomes import Outcome, Result
from watcherd.core.places import Area
from watcherd.decide.collisions import Collisions
from watcherd.decode.newimage import ImageReader, Remote, Renderer
from watcherd.filing import tagfiles
from watcherd.filing.adopt import Adopter, Remembered
from watcherd.filing.context import Checkpoint, Context, no_checkpoint
from watcherd.filing.failures import Failures
from watcherd.filing.originals import Filing
from watcherd.flow.ingest import Ingest
from watcherd.flow.moves import Moves
from watcherd.fs.walk import walk_files

log = logging.getLogger("watcherd")

# A batch of files processed between two commits: at most this many, or this long.
BATCH_FILES = 500
BATCH_SECONDS = 1.0


@dataclass
class Handled:
    """What one change led to: outcomes already reached, and files to settle before ingesting."""

    results: list[Result] = field(default_factory=list)
    settle: list[Path] = field(default_factory=list)


class Pipeline:
    """Turns changes and paths into catalog changes for one library."""

    def __init__(
        self,
        cfg: Config,
        catalog: Catalog,
        *,
        now: Callable[[], float] = time.time,
        render: Renderer | None = None,
        remembered: Remembered | None = None,
        batch_files: int = BATCH_FILES,
        checkpoint: Checkpoint = no_checkpoint,
        remote: Remote | None = None,
    ) -> None:
        if render is None:  # decode in this process (tests); Pillow is loaded only then
            from watcherd.decode.imaging import render as here

            render = here
        self.ctx = Context(cfg, catalog, now, checkpoint)
        # Sidecars and extended attributes follow every commit of this catalog from now on.
        self.tagfiles = tagfiles.attach(cfg, catalog)
        self.cfg, self.catalog, self.places = cfg, catalog, self.ctx.places
        self.decoder = ImageReader(cfg, render, now, remote)
        self.adopter = Adopter(self.ctx, remembered, self._identify)
        self.filing = Filing(self.ctx)
        self.failures = Failures(self.ctx)
        # One Filing: a decision made inside a batch (a gesture) moves its originals after the batch commits.
        self.moves = Moves(self.ctx, self.adopter, self.failures, self.filing, render)
        self.collisions = Collisions(self.ctx, self.filing, render)
        self.ingest = Ingest(self.ctx, self.decoder, self.adopter, self.collisions, self.filing, self.failures)
        self.internal_errors = 0
        self.batch_files = batch_files

    def handle(self, change: Change) -> Handled:
        """What a hint from the observer means, as far as it can be settled without waiting."""
        path = change.path
        if change.kind is ChangeKind.GONE:
            if path.parent == self.places.collisions:
                return Handled(self._collision_gone(path))
            return Handled([self.moves.gone(path)])
        if change.kind is ChangeKind.GONE_DIR:
            self.moves.gone_dir(path)
            return Handled()
        if change.kind is ChangeKind.SCAN_DIR:
            if self.places.place(path) is None:
                return Handled()
            # A folder moved in: its known thumbnails are records to update, not files
            # to settle and decode; a 10k-thumbnail folder costs one commit, not 10k.
            return Handled(settle=self.moves.follow(list(walk_files(path, self.cfg))))
        handled = Handled()
        # A thumbnail dragged on quickly still earns the folder it passed through.
        visited = self.moves.visited(path) if change.kind is ChangeKind.MOVED else None
        if visited is not None:
            handled.results.append(visited)
        elif self.places.place(path) is not None:
            if change.kind is ChangeKind.TOUCH and self.catalog.name_at(self.places.rel(path)) == path.name:
                # Already recorded right here (our own thumbnail being published, say).
                handled.results.append(Result(Outcome.UNCHANGED, path, path.name))
            elif change.src is not None and change.src.parent == self.places.collisions:
                handled.results.append(self.process(path))  # a newcomer's thumbnail moved into the tree
            elif self.moves.is_known(path):
                handled.results.append(self.process(path))  # a rename: nothing to decode, no need to settle
                if change.kind is ChangeKind.MOVED:  # dragged on while it was followed: still earns the folder
                    again = self.moves.visited(path)
                    if again is not None and again.outcome is not Outcome.UNCHANGED:
                        handled.results.append(again)
            else:
                handled.settle.append(path)
        if change.src is not None:
            if change.src.parent == self.places.collisions:
                handled.results.extend(self._collision_gone(change.src))  # after the thumbnail's new place
            else:
                handled.results.append(self.moves.gone(change.src))
        return handled

    def _collision_gone(self, path: Path) -> list[Result]:
        """A newcomer's thumbnail left ``_collisions/``: deleted means keep-existing (a move into
        the tree was decided distinct where it arrived)."""
        try:
            decided = self.moves.gestures.thumbnail_deleted(self.places.rel(path))
        except WatcherdError as exc:
            log.warning("%s left the collisions folder, but: %s", shown(self.places.rel(path)), exc)
            return []
        return [Result(Outcome.MOVED, path, decided, detail="decided keep-existing")] if decided else []

    def process(self, path: Path) -> Result:
        """Bring the catalog up to date with one file that appeared or changed."""
        path = Path(path)
        where = self.places.place(path)
        if where is None:
            return Result(Outcome.IGNORED, path)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return self.moves.gone(path)
        except OSError as exc:
            return self.failures.record(path, f"cannot stat: {exc.strerror}", None, transient=True)
        if not stat.S_ISREG(st.st_mode):
            return Result(Outcome.IGNORED, path, detail="not a regular file")
        if self.failures.known_bad(self.places.rel(path), st):
            return Result(Outcome.IGNORED, path, detail="already reported")  # not read until it changes
        if where.area is Area.TREE:
            canonical = parse_canonical(path.name) is not None
            result = self.moves.seen(path, where, st) if canonical else self.moves.renamed(path, where, st)
            if result is not None:
                return result
        unsupported = unsupported_format(path.name)
        if unsupported is not None:
            return self.failures.refuse(path, unsupported, st)
        if not has_image_suffix(path.name):
            log.debug("ignoring %s: not an image file name", shown(self.places.rel(path)))
            return Result(Outcome.IGNORED, path, detail="not an image file name")
        return self.ingest.ingest(path, where, st)

    def process_all(self, paths: Iterable[Path]) -> Generator[Result, None, None]:
        """``process`` each path in order while the next few decode in parallel.

        Decoding is the only parallel part: every catalog write and file move still
        happens here, one path at a time and in order. A bug met on one file is
        logged with its traceback, recorded against that file, and the next goes on;
        a catalog or lease failure stops the caller, since carrying on without them
        would be worse. Decoders that are gone (``StopError``: a lost cluster) stop it
        too, after the files already done are committed.
        """
        todo = list(paths)
        started = i = 0
        stopped: StopError | None = None
        try:
            while i < len(todo) and stopped is None:
                done: list[Result] = []
                began = time.monotonic()
                # A batch's records commit together, then its originals move (the same
                # order as one file at a time), so a burst of small files costs two
                # commits per batch rather than two per file.
                with self.filing.deferred(), self.catalog.transaction():
                    while i < len(todo) and len(done) < self.batch_files and time.monotonic() - began < BATCH_SECONDS:
                        try:
                            while started < len(todo) and started <= i + self.decoder.lookahead:
                                self._prefetch(todo[started])
                                started += 1
                            done.append(self._guarded(todo[i]))
                        except StopError as exc:
                            stopped = exc
                            break
                        i += 1
                yield from done
            if stopped is not None:
                raise stopped
        finally:
            self.decoder.cancel_all()

    def _guarded(self, path: Path) -> Result:
        try:
            with self.catalog.transaction():  # a savepoint: a failure undoes this file alone
                return self.process(path)
        except (CatalogError, LockedError, StopError):
            raise
        except Exception as exc:
            self.internal_errors += 1
            log.exception("internal error while handling %s; carrying on", shown(str(path)))
            try:
                st: os.stat_result | None = os.lstat(path)
            except OSError:
                st = None
            return self.failures.record(path, f"internal error: {type(exc).__name__}: {exc}", st, transient=False)

    def _identify(self, path: Path) -> tuple[str, str] | None:
        """The name and sha256 ``path`` would be ingested with (None if it is no image)."""
        try:
            image = self.decoder.make(path, os.lstat(path))
        except (ImageError, OSError):
            return None
        return image.name, image.sha256

    def _prefetch(self, path: Path) -> None:
        """Start decoding ``path`` early if ``process`` is going to want that."""
        if self.decoder.pool is None and self.decoder.remote is None:
            return
        where = self.places.place(path)
        if where is None or not has_image_suffix(path.name):
            return
        if where.area is Area.TREE and parse_canonical(path.name) is not None:
            return  # a thumbnail: adopted or moved without decoding, rarely ingested
        try:
            st = os.lstat(path)
        except OSError:
            return
        wanted = stat.S_ISREG(st.st_mode) and st.st_size <= self.cfg.max_file_size
        if wanted and self.ingest.needless(self.places.rel(path), st, where) is None:
            # Its thumbnail is staged where it will be published (see ``Ingest.publish``).
            self.decoder.prefetch(path, st, path.parent if where.area is Area.TREE else self.places.thumbs)
