"""Files that cannot be ingested: recorded once, counted, read again only when they change.

An error is final when reading the file again cannot give another answer until the file
changes (not an image, truncated and quiet, a copy of another thumbnail): such a file is
not read again, by an event or a scan, while its size, mtime and inode stay the same (and,
for an error about the file beside it, while that file is there). ``errors --retry``
forgets the records, so everything is read again. A transient error (I/O, a full disk)
is retried with backoff, and once at each full scan.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from watcherd.core.naming import shown
from watcherd.core.outcomes import Outcome, Result
from watcherd.core.records import ErrorRecord
from watcherd.filing.context import Context
from watcherd.fs import fsops

log = logging.getLogger("watcherd")


class Failures:
    """The ``errors`` table: why a file was left as it was."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def record(
        self,
        path: Path,
        reason: str,
        st: os.stat_result | None,
        *,
        transient: bool,
        beside: Path | None = None,
        about: str | None = None,
    ) -> Result:
        """Record (or count again) why ``path`` cannot be ingested; log it once per change.

        ``beside``: the file in the way, when the reason is another file of the folder.
        ``about``: the image whose record's bytes the reason is about (looked at again once
        they change).
        """
        catalog = self.ctx.catalog
        rel = self.ctx.places.rel(path)
        now = self.ctx.stamp()
        old = catalog.error(rel)
        rec = ErrorRecord(
            path=rel,
            reason=reason,
            transient=transient,
            size=st.st_size if st else None,
            mtime_ns=st.st_mtime_ns if st else None,
            inode=st.st_ino if st else None,
            beside=self.ctx.places.rel(beside) if beside is not None else None,
            beside_stamp=(fsops.identity(beside) or ErrorRecord.NOT_THERE) if beside is not None else None,
            about=(about, self._bytes_of(about)) if about is not None else None,
            first_seen=old.first_seen if old else now,
            last_seen=now,
            attempts=(old.attempts if old else 0) + 1,
        )
        with catalog.transaction():
            catalog.put_error(rec)
        if old is None or old.reason != reason or not _same(old, st):
            log.warning("cannot ingest %s: %s", shown(rel), reason)
        return Result(Outcome.ERROR, path, detail=reason, retry=transient)

    def refuse(self, path: Path, reason: str, st: os.stat_result) -> Result:
        """A file that will never be ingested as it is: recorded once, then skipped until it changes."""
        if self.known_bad(self.ctx.places.rel(path), st):
            return Result(Outcome.IGNORED, path, detail="already reported")
        return self.record(path, reason, st, transient=False)

    def known_bad(self, rel: str, st: os.stat_result) -> bool:
        """Was this very file (same size, mtime and inode) already found to be no image to ingest?

        An error about the file beside it holds only while that very file is still there (a
        decision may have put another thumbnail under its name since); one waiting for a file
        to come to a name, only while that name is empty; one about an image's bytes, only
        while its record names the same bytes.
        """
        err = self.ctx.catalog.error(rel)
        if err is None or err.transient or not err.same_file(st):
            return False
        if err.about is not None and self._bytes_of(err.about[0]) != err.about[1]:
            return False  # the image it was about names other bytes now
        if err.beside is None:
            return True
        now = fsops.identity(self.ctx.places.absolute(err.beside))
        if err.beside_stamp == ErrorRecord.NOT_THERE:  # waits for a file to come to that name
            return now is None
        return now is not None and (err.beside_stamp is None or err.beside_stamp == now)

    def _bytes_of(self, name: str) -> str | None:
        """The sha256 the record ``name`` names (None without a record)."""
        rec = self.ctx.catalog.image(name)
        return rec.sha256 if rec is not None else None

    def forget_vanished(self) -> None:
        """Drop the errors of files that are no longer there."""
        catalog = self.ctx.catalog
        gone = [e.path for e in catalog.errors() if not os.path.lexists(self.ctx.places.absolute(e.path))]
        if gone:
            with catalog.transaction():
                for rel in gone:
                    catalog.clear_error(rel)


def _same(err: ErrorRecord, st: os.stat_result | None) -> bool:
    """Is ``st`` the file ``err`` was recorded for (both unknown counts as the same)?"""
    return err.same_file(st) if st is not None else err.stamp == (None, None)
