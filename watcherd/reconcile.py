"""Full reconcile: make the catalog agree with the tree, which is the truth.

Run at start-up, by ``watcherd scan``, on a schedule, and whenever events may have
been lost. Canonical files are handled first (cheap: no decoding), so that a
thumbnail whose record was lost is adopted before its original is looked at.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watcherd import restore
from watcherd.catalog import Catalog
from watcherd.naming import CANONICAL_RE
from watcherd.pipeline import Outcome, Pipeline, iso, walk_files, walk_names

log = logging.getLogger("watcherd")

Progress = Callable[[int, int], None]


@dataclass
class Report:
    """What one reconcile did; ``deferred`` files were too fresh to read yet."""

    counts: dict[str, int] = field(default_factory=dict)
    deferred: list[Path] = field(default_factory=list)
    retry: list[Path] = field(default_factory=list)
    folders: int = 0
    seconds: float = 0.0

    def add(self, outcome: Outcome) -> None:
        """Count one outcome."""
        self.counts[outcome.value] = self.counts.get(outcome.value, 0) + 1


def finish_pending(pipeline: Pipeline) -> int:
    """Complete moves of originals that a crash interrupted."""
    catalog = pipeline.catalog
    done = 0
    for name in catalog.pending_moves():
        rec = catalog.image(name)
        if rec is not None and rec.get("moving_from"):
            pipeline.finish_move(rec, catalog.put_image)
            done += 1
    for col in list(catalog.collisions()):
        if col["newcomer"].get("moving_from"):
            pipeline.finish_move(col, catalog.put_collision)
            done += 1
    return done


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
    restoring = catalog.fresh
    if restoring:
        restore.prime(pipeline)
    catalog.fresh = False
    resumed = finish_pending(pipeline)
    if resumed:
        log.info("finished %d interrupted moves of originals", resumed)

    canonical: list[tuple[str, str]] = []
    others: list[Path] = []

    def count_folder(_: Path) -> None:
        report.folders += 1

    for text, name in walk_names(pipeline.thumbs, pipeline, count_folder):
        if CANONICAL_RE.match(name):
            canonical.append((text, name))
        else:
            others.append(Path(text))
    for source in pipeline.cfg.source_dirs:
        if source.is_dir():
            others.extend(walk_files(source, pipeline, count_folder))

    total = len(canonical) + len(others)
    done = 0
    seen: set[str] = set()
    # One query for where every present thumbnail should be: a file found exactly
    # there needs no per-file catalog lookup (the common case at start-up).
    placed = catalog.present_paths()
    prefix = len(os.fspath(pipeline.root).rstrip(os.sep)) + 1
    unchanged = 0
    for text, name in canonical:
        rel = text[prefix:] if os.sep == "/" else pipeline.rel(Path(text))
        if placed.get(rel) == name:
            unchanged += 1
            seen.add(rel)
        else:
            result = pipeline.process(Path(text))
            report.add(result.outcome)
            if result.outcome in (Outcome.UNCHANGED, Outcome.MOVED, Outcome.ADOPTED):
                seen.add(rel)
        done += 1
        if progress and done % 1000 == 0:
            progress(done, total)
    if unchanged:
        report.counts[Outcome.UNCHANGED.value] = report.counts.get(Outcome.UNCHANGED.value, 0) + unchanged

    # ``placed`` may be stale for the files just processed, but those are all in
    # ``seen``, and mark_gone checks each candidate against its record again.
    missing = pipeline.mark_gone(p for p in placed.items() if p[0] not in seen)
    if missing:
        report.counts[Outcome.MISSING.value] = missing
        log.info("%d thumbnails are missing from the tree", missing)

    cutoff = now() - settle
    settled = []
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
    for path, result in pipeline.process_all(settled):  # decoded in parallel, recorded in order
        report.add(result.outcome)
        if result.retry:
            report.retry.append(path)
        done += 1
        if progress:
            progress(done, total)

    if restoring:
        restore.restore_collisions(pipeline)
    for err in list(catalog.errors()):
        if not os.path.lexists(pipeline.root / err["path"]):
            catalog.clear_error(err["path"])
    report.seconds = time.monotonic() - started
    record_scan(catalog, report, reason, now)
    return report


def record_scan(catalog: Catalog, report: Report, reason: str, now: Callable[[], float] = time.time) -> None:
    """Store when the last full scan finished and why it ran (shown by ``status``)."""
    catalog.set_meta(
        "scan",
        {"finished": iso(now()), "reason": reason, "seconds": round(report.seconds, 3), "counts": dict(report.counts)},
    )
    catalog.commit()
