"""``watcherd check --repair``: the one writer mends what ``check`` finds and can safely mend.

Run as the ``check-repair`` change (``edits``): by the daemon when one runs, else by the
command under the lease. The writer looks again itself (what the command saw may be
old by now), then, with the code a scan uses for the same states:

- finishes interrupted moves of originals and a decision's journaled steps
  (``filing.finish_pending``);
- records thumbnails where they are (``moves.seen``): a stale place follows its
  thumbnail, a copy is added, a missing image comes back, a thumbnail without a record
  is adopted from its PNG chunks (and what the export remembers of it); a place whose
  file is gone is dropped (``moves.mark_gone``), leaving the image missing when it was
  its last;
- takes back watcherd's own orphans in ``_collisions/``: the collision is recorded
  again when its original is in ``originals/_collisions/``, else the thumbnail is
  removed; only a file whose chunks say watcherd made it of the bytes its name says;
- removes leftover temporaries, only when it holds the lease itself (a daemon may be
  writing its own right now);
- writes the export again and builds the near-duplicate index again.

It never removes or replaces a file watcherd did not make.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from watcherd.catalog import Catalog
from watcherd.check.facts import gather
from watcherd.check.problems import Code, Problem
from watcherd.check.verdicts import PENDING, Facts, Verdict, verdicts
from watcherd.core.config import Config
from watcherd.core.documents import Repaired, RepairReport
from watcherd.core.filters import TEMP_PREFIX
from watcherd.core.naming import shown
from watcherd.core.outcomes import Outcome
from watcherd.decide.collisions import own_newcomer_thumbnail, remove_own_newcomer_thumbnail
from watcherd.decode.newimage import Renderer
from watcherd.filing.adopt import Remembered
from watcherd.flow import restore
from watcherd.flow.pipeline import Pipeline

log = logging.getLogger("watcherd")

LAST = frozenset({Code.STALE_EXPORT, Code.NEAR_INDEX})  # mended after every record is


def repair(cfg: Config, catalog: Catalog, render: Renderer | None, *, sweep: bool) -> RepairReport:
    """Mend every repairable problem the writer finds now; ``sweep``: remove temporaries too."""
    done: list[Repaired] = []
    with _pipeline(cfg, catalog, render) as pipeline:
        facts, verdict = _look(cfg, catalog, sweep)
        pending = [p for p in verdict.problems if p.code in PENDING]
        if pending:
            finished = pipeline.filing.finish_pending()
            log.info("check: finished %d interrupted moves and steps", finished)
            facts, verdict = _look(cfg, catalog, sweep)
            left = {(p.code, p.path) for p in verdict.problems}
            done += [_done(p, "finished it") for p in pending if (p.code, p.path) not in left]
        last = {p.code: p for p in verdict.problems if p.code in LAST}
        for problem in verdict.problems:
            if not problem.repairable or problem.code in PENDING | LAST:
                continue
            what = _mend(pipeline, facts, problem)
            if what is not None:
                log.info("check: %s %s: %s", problem.code.value, shown(problem.path), what)
                done.append(_done(problem, what))
    if Code.NEAR_INDEX in last:
        from watcherd.near.builder import build
        from watcherd.near.reader import index_path

        build(index_path(cfg.state_dir), cfg.database_path)
        done.append(_done(last[Code.NEAR_INDEX], "built the index again"))
    if done or Code.STALE_EXPORT in last:
        restore.export_now(cfg, catalog, time.time())
        if Code.STALE_EXPORT in last:
            done.append(_done(last[Code.STALE_EXPORT], "wrote the export again"))
    return {"repaired": done}


def _look(cfg: Config, catalog: Catalog, sweep: bool) -> tuple[Facts, Verdict]:
    facts = gather(cfg, catalog, live=False, read_data=False, temporaries=sweep)
    return facts, verdicts(facts)


def _done(problem: Problem, what: str) -> Repaired:
    return {"code": problem.code.value, "path": problem.path, "done": what}


@contextlib.contextmanager
def _pipeline(cfg: Config, catalog: Catalog, render: Renderer | None) -> Iterator[Pipeline]:
    """A pipeline on the writer's catalog; without the writer's decoders, a sandbox started only if
    adopting a notebook's thumbnail has to decode its original."""
    remembered = _remembered(cfg)
    if render is not None:
        pipeline = Pipeline(cfg, catalog, render=render, remembered=remembered)
        yield pipeline
        pipeline.tagfiles.catch_up()  # every sidecar and attribute, before the repair returns
        return
    from watcherd.decode.sandbox import Sandbox

    with Sandbox(cfg.decode_timeout, cfg.decode_memory) as box:
        pipeline = Pipeline(cfg, catalog, render=box, remembered=remembered)
        yield pipeline
        pipeline.tagfiles.catch_up()


def _remembered(cfg: Config) -> Remembered:
    """What the last export says about each image: an adopted thumbnail whose record was lost gets
    back its tags, file names and original from it, as in a rebuild."""
    data = restore.load_export(cfg) or {}
    images = data.get("images")
    return Remembered(images=dict(images) if isinstance(images, dict) else {})


def _mend(pipeline: Pipeline, facts: Facts, problem: Problem) -> str | None:
    """Mend one problem; what was done, or None when there was nothing to do after all."""
    places = pipeline.places
    path = places.absolute(problem.path)
    if problem.code is Code.STALE_PLACE:
        moved = problem.target is not None and _seen(pipeline, places.absolute(problem.target)) is not None
        pipeline.moves.mark_gone([(problem.path, problem.name or path.name)])
        return f"followed it to {problem.target}" if moved else "dropped the place"
    if problem.code in (Code.UNRECORDED_THUMBNAIL, Code.MISSING_BUT_THERE):
        return _seen(pipeline, path)
    if problem.code is Code.ORPHAN_COLLISION_FILE:
        return _orphan(pipeline, facts, path)
    if problem.code is Code.TEMPORARY and path.name.startswith(TEMP_PREFIX):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            return "removed it"
    return None


def _seen(pipeline: Pipeline, path: Path) -> str | None:
    """Record the thumbnail at ``path`` where it is, as a scan would (no decoding); what that did."""
    where = pipeline.places.place(path)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    result = pipeline.moves.seen(path, where, st) if where is not None else None
    if result is None:
        return None
    if result.outcome is Outcome.ADOPTED:
        return "adopted it from its PNG chunks"
    if result.outcome is Outcome.MOVED:
        return result.detail or f"recorded it as a place of {result.name}"
    return "recorded already" if result.outcome is Outcome.UNCHANGED else None


def _orphan(pipeline: Pipeline, facts: Facts, path: Path) -> str | None:
    """Take back watcherd's own thumbnail in _collisions/ that no undecided collision owns."""
    if not own_newcomer_thumbnail(path):
        return None
    label = path.name[: -len(".png")]
    catalog = pipeline.catalog
    if label in facts.collision_originals and not any(c.id == label for c in facts.collisions):
        col = restore.collision_from_chunks(pipeline, path)
        if col is not None:
            with catalog.transaction():
                catalog.put_collision(col)
            return f"recorded collision {col.id} again from its thumbnail"
    if remove_own_newcomer_thumbnail(path):  # read and checked again: the very file removed
        return "removed watcherd's own thumbnail"
    return None
