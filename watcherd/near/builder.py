"""The writer's part of the persisted near-duplicate index: fold the log, publish, trim.

The daemon builds a new index in a separate process (``python -m watcherd.near.builder
INDEX CATALOG``), so its loop keeps ingesting while 30 M hashes are sorted (tens of
seconds). The builder reads the catalog like any reader, in short transactions,
writes the index under a reserved temporary name and renames it into place; the
daemon then trims the log up to the position the published index covers, through
the writer. Until then queries use the old index plus the log: never wrong, only a
little slower. ``scan`` folds in process at its end (it has nothing else to do).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from watcherd.catalog.hashes import CROPS, WHOLE, NearLogReader, Source, log_state
from watcherd.core.errors import CatalogError, IndexFileError
from watcherd.near.reader import HEADER, index_path, parse_header

if TYPE_CHECKING:
    from watcherd.catalog.store import Catalog

log = logging.getLogger("watcherd")


SOURCES = {source.name: source for source in (WHOLE, CROPS)}


def build(path: Path, catalog_path: Path, source: Source = WHOLE) -> tuple[str | None, int]:
    """Build the index of the catalog now and publish it at ``path``; (epoch, seq) it covers.

    An index is published only with an epoch (a catalog that has a log).
    """
    from watcherd.near.persisted import Tables  # numpy: only a builder pays for it

    reader = NearLogReader(catalog_path, source)
    try:
        epoch, head, rows, hashes, low = reader.snapshot()
    finally:
        reader.close()
    if epoch is not None:
        Tables.build(epoch, head, rows, hashes, low).write(path)
    return epoch, head


class Maintainer:
    """Decides when the index is due, builds it (in a background process, or in this
    one), and trims the log once a new index is published.

    Due when the log has grown by ``most`` entries since the last build (queries would
    otherwise scan a long delta), or when it has grown at all and the catalog has then
    been quiet for ``quiet`` seconds (a burst is folded once, after it ends), or when
    the index is missing or void.
    """

    def __init__(
        self,
        state_dir: Path,
        catalog_path: Path,
        *,
        quiet: float = 30.0,
        most: int = 50_000,
        background: bool = True,
        command: Sequence[str] | None = None,
        source: Source = WHOLE,
    ) -> None:
        self.source = source
        self.path = index_path(state_dir, source)
        self.catalog_path = Path(catalog_path)
        self.quiet, self.most, self.background = quiet, most, background
        # The builder's command line (the INDEX and CATALOG paths are appended).
        self.command = list(command or [sys.executable, "-m", "watcherd.near.builder"])
        self._head, self._moved_at, self._checked_at = -1, 0.0, float("-inf")
        self._builder: subprocess.Popen[str] | None = None

    @property
    def building(self) -> bool:
        """Is a background build under way?"""
        return self._builder is not None

    def _built(self) -> tuple[str | None, int]:
        try:
            with open(self.path, "rb") as f:
                meta = parse_header(f.read(HEADER), self.path)
            return meta.get("epoch"), int(meta.get("seq", -1))
        except (OSError, IndexFileError):
            return None, -1

    def due(self, epoch: str | None, trimmed: int, head: int, now: float) -> bool:
        """Should the index be rebuilt now, given the log's state?"""
        if head != self._head:
            self._head, self._moved_at = head, now
        built_epoch, seq = self._built()
        if built_epoch != epoch or seq < trimmed or seq > head:
            return True  # missing or void: queries would each build one
        pending = head - seq
        return pending >= self.most or (pending > 0 and now - self._moved_at >= self.quiet)

    def run(self, catalog: Catalog, now: float) -> None:
        """``tick`` at most once a second, as a side job: a failure is logged, never raised."""
        if now - self._checked_at < 1.0:
            return
        self._checked_at = now
        try:
            if self.tick(catalog, now):
                log.info("near-duplicate index rebuilt (%s)", self.path)
        except (CatalogError, IndexFileError, OSError) as exc:
            log.warning("cannot rebuild the near-duplicate index: %s", exc)

    def tick(self, catalog: Catalog, now: float) -> bool:
        """Collect a finished build (then trim), or start one if due; True when one was published."""
        if self._builder is not None:
            if self._builder.poll() is None:
                return False  # still building: the loop goes on
            return self._collect(catalog)
        try:  # on the writer's own connection: no connection of its own a turn
            epoch, trimmed, head = log_state(catalog.conn, self.source)
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot read the near-duplicate log of {self.catalog_path}: {exc}") from None
        if epoch is None or not self.due(epoch, trimmed, head, now):
            return False
        if self.background:
            self._builder = subprocess.Popen(
                [*self.command, str(self.path), str(self.catalog_path), self.source.name],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            return False
        return self._trim(catalog, build(self.path, self.catalog_path, self.source))

    def _collect(self, catalog: Catalog) -> bool:
        assert self._builder is not None
        out, err = self._builder.communicate()
        code, self._builder = self._builder.returncode, None
        if code != 0:
            last = (err.strip().splitlines() or [f"exit status {code}"])[-1]
            raise OSError(f"the index builder failed: {last}")
        epoch, seq = json.loads(out.strip().splitlines()[-1])
        return self._trim(catalog, (epoch, int(seq)))

    def _trim(self, catalog: Catalog, built: tuple[str | None, int]) -> bool:
        """Drop the log up to the published index's position, if it is still the one published."""
        if built[0] is not None and self._built() == built:
            catalog.trim_near_log(built[1], self.source)
            return True
        return False

    def stop(self) -> None:
        """End a build under way (its temporary file is swept at the next start)."""
        if self._builder is not None:
            self._builder.terminate()
            self._builder.communicate()
            self._builder = None


class Upkeep:
    """The writer's near-duplicate side job, at most once a second: each persisted index (the
    names' hashes, the stored window hashes) rebuilt when due, then the pairs and crop links of
    the images waiting for theirs recorded (``groups.pair_round``). Failures are logged."""

    def __init__(self, state_dir: Path, catalog_path: Path, *, quiet: float = 30.0, background: bool = True) -> None:
        self.indexes = [
            Maintainer(state_dir, catalog_path, quiet=quiet, background=background, source=source)
            for source in SOURCES.values()
        ]
        self.names_index = index_path(state_dir, WHOLE)
        self._checked_at = float("-inf")

    def run(self, catalog: Catalog, now: float) -> None:
        """Rebuild what is due, then pair the waiting images (once a second at most)."""
        if now - self._checked_at < 1.0:
            return
        self._checked_at = now
        for index in self.indexes:
            index.run(catalog, now)
        from watcherd.near.groups import pair_round  # numpy only once images wait for pairs

        try:
            pair_round(catalog, self.names_index)
        except (CatalogError, OSError, ValueError) as exc:
            log.warning("cannot keep the near-duplicate pairs: %s", exc)

    def stop(self) -> None:
        """End the builds under way."""
        for index in self.indexes:
            index.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m watcherd.near.builder INDEX CATALOG [whole|crops]``: build and publish, print [epoch, seq]."""
    args = list(sys.argv[1:] if argv is None else argv)
    index, catalog = Path(args[0]), Path(args[1])
    source = SOURCES[args[2]] if len(args) > 2 else WHOLE
    try:
        epoch, seq = build(index, catalog, source)
    except (CatalogError, IndexFileError, OSError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps([epoch, seq]))
    return 0


if __name__ == "__main__":
    os.nice(5)  # a background job: ingest comes first
    sys.exit(main())
