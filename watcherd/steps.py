"""A decision's changes to watcherd's own thumbnails, journaled so that a crash between any two is finished.

A decision (or its undo) commits its records and, in the same transaction, the list of
thumbnail steps still to do (meta ``decision_steps``); only then are the steps carried
out, and the list is cleared. Every step is idempotent: carried out again after a crash
at any point (the next start does that first, before anything else), it ends where
it would have ended. Only thumbnails watcherd made are ever removed (checked by their
``sha256`` chunk), and a thumbnail is published without replacing anything.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
from pathlib import Path

from watcherd import fsops, tagfiles
from watcherd.adopt import Maker, examine
from watcherd.context import Context
from watcherd.naming import shown
from watcherd.records import Json

log = logging.getLogger("watcherd")

STEPS = "decision_steps"  # meta key: the thumbnail steps a committed decision has still to carry out


def ours(path: Path, sha256: str | None) -> bool:
    """Is ``path`` a thumbnail watcherd made of the bytes ``sha256``? (Only those may be removed.)"""
    try:
        thumb = examine(path, os.lstat(path))
    except OSError:
        return False
    return thumb is not None and thumb.maker is Maker.WATCHERD and thumb.sha256 == sha256


def unlink(rel: str, sha256: str | None) -> Json:
    """Step: remove our thumbnail of ``sha256`` at ``rel`` (anything else there stays)."""
    return {"op": "unlink", "path": rel, "sha256": sha256}


def publish(rel: str, png: bytes, mtime_ns: int | None = None) -> Json:
    """Step: publish ``png`` at ``rel`` unless the name is taken (with ``mtime_ns``: its original's mtime)."""
    step: Json = {"op": "publish", "path": rel, "png": base64.b64encode(png).decode("ascii")}
    return {**step, "mtime_ns": mtime_ns} if mtime_ns is not None else step


def aside(rel: str, to: str) -> Json:
    """Step: move the user's file at ``rel`` to ``to`` (or a free name beside it; never replacing)."""
    return {"op": "aside", "path": rel, "to": to}


def rename(src: str, dst: str, sha256: str | None) -> Json:
    """Step: our thumbnail of ``sha256`` at ``src`` takes the name ``dst`` (never replacing)."""
    return {"op": "rename", "path": src, "to": dst, "sha256": sha256}


class Journal:
    """Plans thumbnail steps with a decision's records, and carries them out after the commit."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def plan(self, steps: list[Json]) -> None:
        """Add ``steps`` to the journal (inside the transaction that commits the decision)."""
        catalog = self.ctx.catalog
        if steps:
            catalog.set_meta(STEPS, [*(catalog.meta(STEPS) or []), *steps])

    def pending(self) -> bool:
        """Are steps of a committed decision still to be carried out?"""
        return bool(self.ctx.catalog.meta(STEPS))

    def run(self) -> int:
        """Carry out every journaled step, in order, then clear the journal; return how many."""
        catalog = self.ctx.catalog
        steps: list[Json] = catalog.meta(STEPS) or []
        for step in steps:
            where = "filing" if step["op"] == "aside" else "thumbnail"
            self.ctx.checkpoint(where, self.ctx.places.absolute(str(step["path"])))
            try:
                self._do(step)
            except OSError as exc:
                # Left for the next start to carry out again; the records already say the outcome.
                log.error("cannot %s thumbnail %s: %s (will retry)", step["op"], shown(str(step["path"])), exc)
                return 0
        if steps:
            with catalog.transaction():
                catalog.set_meta(STEPS, [])
        return len(steps)

    def _do(self, step: Json) -> None:
        places = self.ctx.places
        path = places.absolute(str(step["path"]))
        if step["op"] == "unlink":
            if ours(path, step["sha256"]):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        elif step["op"] == "publish":
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                fsops.write_new(path.parent, path.name, base64.b64decode(step["png"]), step.get("mtime_ns"))
        elif step["op"] == "rename":
            target = places.absolute(str(step["to"]))
            if not ours(path, step["sha256"]):
                return  # moved already (or not ours: left alone)
            with contextlib.suppress(OSError):
                if os.path.samefile(path, target):  # stopped between the new name and the old one's end
                    os.unlink(path)
                    return
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError, FileNotFoundError):
                fsops.rename_no_replace(path, target)
        elif step["op"] == "aside":
            target = places.absolute(str(step["to"]))
            stem_too = places.place(path) is not None
            if not os.path.lexists(path):
                tagfiles.move_beside(path, target, stem_too=stem_too)  # moved already; its sidecar too
                return
            with contextlib.suppress(OSError):
                if os.path.samefile(path, target):  # stopped between the new name and the old one's end
                    os.unlink(path)
                    tagfiles.move_beside(path, target, stem_too=stem_too)
                    return
            target.parent.mkdir(parents=True, exist_ok=True)
            went = fsops.move_no_replace(path, target.parent, target.name)
            tagfiles.move_beside(path, went, stem_too=stem_too)  # a sidecar dropped beside it goes along
        else:
            log.error("unknown thumbnail step %r in the journal; skipped", step["op"])
