"""Reading ahead: the chunks of the thumbnails a scan's walk found without a record, read in
worker processes (``decode.chunkpool``) while the writer records the ones before them.

Adopting a restored library of 100,000 thumbnails spends a fifth of its time reading each
file's text chunks. The walk knows which files the writer will examine, and in what order,
long before it gets to them: it hands them over here as it lists each folder. What a worker
read is used only for the very file the writer then looks at (same device, inode, size and
modification time); anything else is read again in the writer, as it was before.
"""

from __future__ import annotations

import logging
import os
from enum import Enum
from pathlib import Path

from watcherd.catalog import Catalog
from watcherd.decode.chunkpool import Block, ChunkReaders, Facts, identity

log = logging.getLogger("watcherd")

# Files without a record a scan must have found before workers are started for them: a scan
# that adopts a handful reads them itself. A worker reads a block at a time; the first blocks
# are small, as the writer soon waits for them, and the next ones double, as a pool keeps only
# a block or two queued per worker and each must be handed back before the next is sent.
READ_AHEAD_MIN = 1000
FIRST_BLOCK = 100
LARGEST_BLOCK = 1600


class Unread(Enum):
    """What ``take`` answers for a file no worker read (or read in another state)."""

    NOT_READ = "not read"


class ReadAhead:
    """The thumbnails a scan will examine, read ahead; ``stop`` ends it (the workers with it)."""

    def __init__(self, catalog: Catalog, workers: int, limit: int) -> None:
        self.catalog = catalog
        self.workers = workers
        self.limit = limit
        self._queued: list[Path] = []
        self._ahead: dict[str, Block] = {}
        self._readers: ChunkReaders | None = None
        self._block = FIRST_BLOCK
        self._failed = False

    def expect(self, paths: list[Path]) -> None:
        """``paths``, canonical names (``naming.CANONICAL_RE``) a walk found, will be examined in this
        order: those of no record at all are read ahead (once there are enough of them)."""
        if self._failed or self.workers < 1:
            return
        names = [p.name for p in paths if p.name.endswith("_.png")]  # a collision's variant is never adopted
        fresh = set(names) - self.catalog.recorded(names)
        self._queued.extend(p for p in paths if p.name in fresh)
        if self._readers is None:
            if len(self._queued) < READ_AHEAD_MIN:
                return
            try:
                self._readers = ChunkReaders(self.workers)
            except OSError as exc:
                self._fail(exc)
                return
        try:
            while self._queued:
                block, self._queued = self._queued[: self._block], self._queued[self._block :]
                reading = self._readers.submit(block, self.limit)
                self._ahead.update((str(p), reading) for p in block)
                self._block = min(self._block * 2, LARGEST_BLOCK)
        except Exception as exc:  # the workers are gone (BrokenProcessPool)
            self._fail(exc)

    def take(self, path: Path, st: os.stat_result) -> Facts | Unread | None:
        """What a worker read of the file at ``path`` whose status is ``st`` (``chunks.png_facts``:
        None for no PNG), or ``Unread.NOT_READ`` when no worker read that very file."""
        reading = self._ahead.pop(str(path), None)
        if reading is None:
            return Unread.NOT_READ
        try:
            got = reading.read().pop(str(path), None)
        except Exception as exc:  # a worker died (killed for memory): the writer reads from now on
            self._fail(exc)
            return Unread.NOT_READ
        return got[1] if got is not None and got[0] == identity(st) else Unread.NOT_READ

    def stop(self) -> None:
        """Stop the workers; nothing is read ahead any more."""
        self._queued.clear()
        self._ahead.clear()
        readers, self._readers = self._readers, None
        if readers is not None:
            readers.close()

    def _fail(self, exc: BaseException) -> None:
        log.warning("cannot read thumbnails ahead in worker processes (%s): reading them one by one", exc)
        self._failed = True
        self.stop()
