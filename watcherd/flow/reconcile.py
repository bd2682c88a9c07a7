"""Full reconcile: make the catalog agree with the tree, which is the truth.

Run at start-up, by ``watcherd scan``, on a schedule, and whenever events may have
been lost. Canonical files are handled first (cheap: no decoding), so that a
thumbnail whose record was lost is adopted before its original is looked at.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from watcherd.catalog import Catalog
from watcherd.core.filters import TEMP_PREFIX, ignore_pattern
from watcherd.core.naming import CANONICAL_RE, shown
from watcherd.core.outcomes import Outcome, Result
from watcherd.core.records import ErrorRecord
from watcherd.filing.context import iso
from watcherd.filing.readahead import READ_AHEAD_MIN
from watcherd.flow import restore
from watcherd.flow.moves import SET_FILES
from watcherd.flow.pipeline import Pipeline
from watcherd.fs.walk import scan_folders, walk_files

log = logging.getLogger("watcherd")

Progress = Callable[[int, int], None]

# Images whose sidecars and attributes a reconcile brings up to date before it walks the tree;
# more (a library's first start with sidecars) are done between the daemon's events.
STARTUP_TAGFILES = 10_000


@dataclass
class Report:
    """What one reconcile did; ``deferred`` files were too fresh to read yet."""

    counts: dict[str, int] = field(default_factory=dict)
    deferred: list[Path] = field(default_factory=list)
    retry: list[Path] = field(default_factory=list)
    folders: int = 0
    seconds: float = 0.0

    def add(self, outcome: Outcome, n: int = 1) -> None:
        """Count ``n`` of one outcome."""
        if n:
            self.counts[outcome.value] = self.counts.get(outcome.value, 0) + n

    def add_all(self, results: list[Result]) -> None:
        """Count each result's outcome."""
        for result in results:
            self.add(result.outcome)


def _listed_ahead(
    folders: Iterable[tuple[str, list[str]]], far: int, ahead: Callable[[str, list[str]], None]
) -> Iterator[tuple[str, list[str]]]:
    """``folders`` as they are listed, each handed to ``ahead`` when it is listed and given on when
    the folders listed after it hold ``far`` names (a set of thumbnails being recorded meanwhile).
    Only the listing runs ahead: what each folder's names are is decided when it is given on."""
    waiting: deque[tuple[str, list[str]]] = deque()
    held = 0
    for folder, names in folders:
        ahead(folder, names)
        waiting.append((folder, names))
        held += len(names)
        while waiting and held - len(waiting[0][1]) >= far:
            held -= len(waiting[0][1])
            yield waiting.popleft()
    yield from waiting


def reconcile(
    pipeline: Pipeline,
    *,
    reason: str,
    settle: float,
    progress: Progress | None = None,
    now: Callable[[], float] = time.time,
) -> Report:
    """Walk the thumbs tree and the sources once and bring the catalog up to date."""
    started = time.monotonic()
    report = Report()
    catalog = pipeline.catalog
    resumed = pipeline.filing.finish_pending()
    if resumed:
        log.info("finished %d interrupted moves of originals", resumed)
    # Sidecars and attributes a crash left behind their records (or a write that failed):
    # the first of them now, the rest between events (the daemon) or before exiting (scan).
    pipeline.tagfiles.begin()
    pipeline.tagfiles.catch_up(STARTUP_TAGFILES)
    if pipeline.adopter.remembered is None:  # a fresh catalog owns no collision yet: nothing is an orphan
        pipeline.collisions.take_back_orphans()
    else:  # a rebuild: first what the export alone holds, so the walk knows what each file is beside
        restore.restore_before_walk(pipeline, pipeline.adopter.remembered)

    others: list[Path] = []
    walked: set[str] = set()  # folders of the thumbs tree, relative to ROOT, with a trailing /
    gone: list[tuple[str, str]] = []  # (path, name) recorded present but not found where recorded
    done = unchanged = recorded = 0

    def count_folder(_: Path) -> None:
        report.folders += 1

    # Folder by folder: one query for the thumbnails recorded in it, then a set check
    # per file; only files not found where the catalog says are looked at further.
    # Memory follows the largest folder, not the library.
    ignored = ignore_pattern(pipeline.cfg.ignore).match
    leftovers: list[str] = []
    # Moved or unrecorded thumbnails, gathered over folders: no decoding, their records
    # written a set at a time (one commit for many small folders).
    thumbnails: list[Path] = []

    def seen_thumbnails() -> None:
        found, left = pipeline.moves.seen_all(thumbnails, adopt=True)
        report.add_all(found)
        for result in pipeline.process_all(left):
            report.add(result.outcome)
        thumbnails.clear()

    unrecorded = 0  # canonical names found where no record is: a scan that adopts many of them
    unread: deque[tuple[str, list[str]]] = deque()  # listed, neither read ahead nor given on yet

    def look_ahead(folder: str, names: list[str]) -> None:
        # A restored library: the thumbnails of the folders listed ahead are read in workers
        # while the ones before them are recorded (those listed before the scan knew, too). A
        # rescan finds every name where it is recorded, and reads nothing ahead.
        unread.append((folder, names))
        while unrecorded >= READ_AHEAD_MIN and unread:
            early, listed = unread.popleft()
            pipeline.adopter.expect([Path(early, n) for n in sorted(listed) if CANONICAL_RE.match(n)])

    with pipeline.adopter.reading_ahead():
        folders = scan_folders(pipeline.places.thumbs, pipeline.cfg)
        for folder, names in _listed_ahead(folders, SET_FILES, look_ahead):
            if unread and unread[0][0] == folder:
                unread.popleft()  # its turn came before it was read ahead
            report.folders += 1
            rel_folder = pipeline.places.rel(Path(folder)) + "/"
            walked.add(rel_folder)
            here = catalog.present_in(rel_folder)
            recorded += len(here)
            canonical: list[str] = []
            rest: list[str] = []
            for name in names:
                if name in here:
                    unchanged += 1
                    here.discard(name)
                elif ignored(name.lower()):
                    if name.startswith(TEMP_PREFIX):
                        leftovers.append(os.path.join(folder, name))
                elif CANONICAL_RE.match(name):
                    canonical.append(name)
                else:
                    rest.append(name)
            others.extend(Path(folder, name) for name in sorted(rest))
            thumbnails.extend(Path(folder, name) for name in sorted(canonical))
            unrecorded += len(canonical)
            if len(thumbnails) >= SET_FILES:
                seen_thumbnails()
            done += len(names) - len(rest)  # the rest are counted as they are processed below
            if progress:
                progress(done, 0)
            gone.extend((rel_folder + name, name) for name in here)
        seen_thumbnails()
    report.add(Outcome.UNCHANGED, unchanged)
    remove_leftovers(leftovers)
    for source in pipeline.cfg.source_dirs:
        if source.is_dir():
            others.extend(walk_files(source, pipeline.cfg, count_folder))
    # Recorded in folders that are no longer there at all (when the walked folders
    # do not account for every present record).
    if catalog.placed_count() > recorded:
        gone.extend(p for p in catalog.iter_placed() if p[0][: p[0].rfind("/") + 1] not in walked)
    # A thumbnail processed above may have been recorded elsewhere meanwhile: mark_gone
    # checks each candidate against its record and the disk again.
    missing = pipeline.moves.mark_gone(gone)
    if missing:
        report.add(Outcome.MISSING, missing)
        log.info("%d thumbnails are missing from the tree", missing)
    total = done + len(others)

    cutoff = now() - settle
    settled = []
    # Transient errors already recorded before this scan: a scan tries each such file
    # once, and waits for another try only if it is a new failure (or the file changed).
    waited = {e.path: e for e in catalog.errors() if e.transient}
    for path in others:
        try:
            fresh = os.lstat(path).st_mtime > cutoff
        except OSError:
            fresh = False
        if fresh:
            report.deferred.append(path)
            done += 1
        else:
            settled.append(path)
    for result in pipeline.process_all(settled):  # decoded in parallel, recorded in order
        if result.retry and not _failed_before(pipeline, waited, result):
            report.add(Outcome.DEFERRED)  # its outcome is the one the retry reaches
            report.retry.append(result.path)
        else:
            report.add(result.outcome)
        done += 1
        if progress:
            progress(done, total)
    if progress and not settled:
        progress(done, total)

    if pipeline.adopter.remembered is not None:
        restore.restore_rest(pipeline)
    else:
        pipeline.moves.gestures.sweep()  # gestures made while no daemon watched
    pipeline.failures.forget_vanished()
    report.seconds = time.monotonic() - started
    record_scan(catalog, report, reason, now)
    return report


def _failed_before(pipeline: Pipeline, waited: dict[str, ErrorRecord], result: Result) -> bool:
    """Did ``result`` fail again as the scan before saw it fail (same reason, same file)?"""
    if result.outcome is not Outcome.ERROR:
        return False
    rel = pipeline.places.rel(result.path)
    before, now = waited.get(rel), pipeline.catalog.error(rel)
    if before is None or now is None:
        return False
    return before.reason == now.reason and (before.stamp, before.inode) == (now.stamp, now.inode)


def remove_leftovers(paths: list[str]) -> None:
    """Remove temporaries of ours found in the tree, wherever their folder went.

    The writer is this thread, and it writes nothing while it reconciles, so every
    temporary found now was left by a write that was interrupted.
    """
    for text in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(text)
            log.info("removed leftover temporary %s", shown(text))


def record_scan(catalog: Catalog, report: Report, reason: str, now: Callable[[], float] = time.time) -> None:
    """Store when the last full scan finished and why it ran (shown by ``status``)."""
    with catalog.transaction():
        catalog.set_meta(
            "scan",
            {"finished": iso(now()), "reason": reason, "seconds": round(report.seconds, 3), "counts": report.counts},
        )
