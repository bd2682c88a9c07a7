"""Files that cannot be ingested: recorded once, counted, retried only when they change."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from watcherd.context import Context
from watcherd.naming import shown
from watcherd.outcomes import Outcome, Result
from watcherd.records import ErrorRecord

log = logging.getLogger("watcherd")


class Failures:
    """The ``errors`` table: why a file was left as it was."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def record(self, path: Path, reason: str, st: os.stat_result | None, *, transient: bool) -> Result:
        """Record (or count again) why ``path`` cannot be ingested; log it once per change."""
        catalog = self.ctx.catalog
        rel = self.ctx.places.rel(path)
        now = self.ctx.stamp()
        old = catalog.error(rel)
        size = st.st_size if st else None
        mtime_ns = st.st_mtime_ns if st else None
        rec = ErrorRecord(
            path=rel,
            reason=reason,
            transient=transient,
            size=size,
            mtime_ns=mtime_ns,
            first_seen=old.first_seen if old else now,
            last_seen=now,
            attempts=(old.attempts if old else 0) + 1,
        )
        with catalog.transaction():
            catalog.put_error(rec)
        if old is None or (old.reason, old.size, old.mtime_ns) != (reason, size, mtime_ns):
            log.warning("cannot ingest %s: %s", shown(rel), reason)
        return Result(Outcome.ERROR, path, detail=reason, retry=transient)

    def refuse(self, path: Path, reason: str, st: os.stat_result) -> Result:
        """A file that will never be ingested as it is: recorded once, then skipped until it changes."""
        if self.known_bad(self.ctx.places.rel(path), st):
            return Result(Outcome.IGNORED, path, detail="already reported")
        return self.record(path, reason, st, transient=False)

    def known_bad(self, rel: str, st: os.stat_result) -> bool:
        """Was this very file (same size and mtime) already found not to be an image?"""
        err = self.ctx.catalog.error(rel)
        return err is not None and not err.transient and err.stamp == (st.st_size, st.st_mtime_ns)

    def forget_vanished(self) -> None:
        """Drop the errors of files that are no longer there."""
        catalog = self.ctx.catalog
        gone = [e.path for e in catalog.errors() if not os.path.lexists(self.ctx.places.absolute(e.path))]
        if gone:
            with catalog.transaction():
                for rel in gone:
                    catalog.clear_error(rel)
