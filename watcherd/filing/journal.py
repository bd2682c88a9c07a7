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
from dataclasses import dataclass
from pathlib import Path

from watcherd.core.naming import shown
from watcherd.core.records import Json
from watcherd.filing.adopt import Maker, held
from watcherd.filing.context import Context
from watcherd.fs import fsops, sidecars
from watcherd.fs.publish import write_new

log = logging.getLogger("watcherd")

STEPS = "decision_steps"  # meta key: the thumbnail steps a committed decision has still to carry out


def ours(path: Path, sha256: str | None) -> bool:
    """Is ``path`` a thumbnail watcherd made of the bytes ``sha256``?"""
    return _held(path, sha256) is not None


def our_thumbnail(path: Path, sha256: str | None) -> bytes | None:
    """The bytes of ``path`` if it is a thumbnail watcherd made of the bytes ``sha256``, else None:
    read once, so what is used is what was checked, whatever happens to the file next."""
    held = _held(path, sha256)
    return held[0] if held is not None else None


def remove_ours(path: Path, sha256: str | None) -> bool:
    """Remove ``path`` if it is a thumbnail watcherd made of the bytes ``sha256``: the very file
    read and checked, never one put under its name since (only those may be removed)."""
    held = _held(path, sha256)
    return held is not None and fsops.remove_same(path, held[1])


def _held(path: Path, sha256: str | None) -> tuple[bytes, os.stat_result] | None:
    found = held(path)
    if found is None:
        return None
    thumb, data, st = found
    return (data, st) if thumb.maker is Maker.WATCHERD and thumb.sha256 == sha256 else None


@dataclass(frozen=True)
class Unlink:
    """Remove our thumbnail of ``sha256`` at ``path`` (anything else there stays)."""

    path: str
    sha256: str | None

    def to_json(self) -> Json:
        """The journal's JSON object for this step."""
        return {"op": "unlink", "path": self.path, "sha256": self.sha256}


@dataclass(frozen=True)
class Publish:
    """Publish ``png`` at ``path`` unless the name is taken (with ``mtime_ns``: its original's mtime)."""

    path: str
    png: bytes
    mtime_ns: int | None = None

    def to_json(self) -> Json:
        """The journal's JSON object for this step (the PNG in base64)."""
        step: Json = {"op": "publish", "path": self.path, "png": base64.b64encode(self.png).decode("ascii")}
        return {**step, "mtime_ns": self.mtime_ns} if self.mtime_ns is not None else step


@dataclass(frozen=True)
class Aside:
    """Move the user's file at ``path`` to ``to`` (or a free name beside it; never replacing)."""

    path: str
    to: str

    def to_json(self) -> Json:
        """The journal's JSON object for this step."""
        return {"op": "aside", "path": self.path, "to": self.to}


@dataclass(frozen=True)
class Rename:
    """Our thumbnail of ``sha256`` at ``path`` takes the name ``to`` (never replacing)."""

    path: str
    to: str
    sha256: str | None

    def to_json(self) -> Json:
        """The journal's JSON object for this step."""
        return {"op": "rename", "path": self.path, "to": self.to, "sha256": self.sha256}


Step = Unlink | Publish | Aside | Rename


def from_json(data: Json) -> Step | None:
    """A step as the journal stored it (None for one this version does not know)."""
    op, path = data.get("op"), str(data.get("path"))
    if op == "unlink":
        return Unlink(path, data.get("sha256"))
    if op == "publish":
        mtime = data.get("mtime_ns")
        return Publish(path, base64.b64decode(str(data["png"])), int(mtime) if mtime is not None else None)
    if op == "aside":
        return Aside(path, str(data["to"]))
    if op == "rename":
        return Rename(path, str(data["to"]), data.get("sha256"))
    return None


def unlink(rel: str, sha256: str | None) -> Step:
    """Step: remove our thumbnail of ``sha256`` at ``rel``."""
    return Unlink(rel, sha256)


def publish(rel: str, png: bytes, mtime_ns: int | None = None) -> Step:
    """Step: publish ``png`` at ``rel`` unless the name is taken."""
    return Publish(rel, png, mtime_ns)


def aside(rel: str, to: str) -> Step:
    """Step: move the user's file at ``rel`` to ``to``."""
    return Aside(rel, to)


def rename(src: str, dst: str, sha256: str | None) -> Step:
    """Step: our thumbnail of ``sha256`` at ``src`` takes the name ``dst``."""
    return Rename(src, dst, sha256)


class Journal:
    """Plans thumbnail steps with a decision's records, and carries them out after the commit."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def plan(self, steps: list[Step]) -> None:
        """Add ``steps`` to the journal (inside the transaction that commits the decision)."""
        catalog = self.ctx.catalog
        if steps:
            catalog.set_meta(STEPS, [*(catalog.meta(STEPS) or []), *(step.to_json() for step in steps)])

    def pending(self) -> bool:
        """Are steps of a committed decision still to be carried out?"""
        return bool(self.ctx.catalog.meta(STEPS))

    def run(self) -> int:
        """Carry out every journaled step, in order, then clear the journal; return how many."""
        catalog = self.ctx.catalog
        stored: list[Json] = catalog.meta(STEPS) or []
        for data in stored:
            step = from_json(data)
            if step is None:
                log.error("unknown thumbnail step %r in the journal; skipped", data.get("op"))
                continue
            where = "filing" if isinstance(step, Aside) else "thumbnail"
            self.ctx.checkpoint(where, self.ctx.places.absolute(step.path))
            try:
                self._do(step)
            except OSError as exc:
                # Left for the next start to carry out again; the records already say the outcome.
                log.error("cannot %s thumbnail %s: %s (will retry)", data.get("op"), shown(step.path), exc)
                return 0
        if stored:
            with catalog.transaction():
                catalog.set_meta(STEPS, [])
        return len(stored)

    def _do(self, step: Step) -> None:
        places = self.ctx.places
        path = places.absolute(step.path)
        if isinstance(step, Unlink):
            remove_ours(path, step.sha256)
        elif isinstance(step, Publish):
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                write_new(path.parent, path.name, step.png, step.mtime_ns)
        elif isinstance(step, Rename):
            target = places.absolute(step.to)
            if not ours(path, step.sha256):
                return  # moved already (or not ours: left alone)
            with contextlib.suppress(OSError):
                if os.path.samefile(path, target):  # stopped between the new name and the old one's end
                    os.unlink(path)
                    return
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError, FileNotFoundError):
                fsops.rename_no_replace(path, target)
        else:
            target = places.absolute(step.to)
            stem_too = places.place(path) is not None
            if not os.path.lexists(path):
                sidecars.move_beside(path, target, stem_too=stem_too)  # moved already; its sidecar too
                return
            with contextlib.suppress(OSError):
                if os.path.samefile(path, target):  # stopped between the new name and the old one's end
                    os.unlink(path)
                    sidecars.move_beside(path, target, stem_too=stem_too)
                    return
            target.parent.mkdir(parents=True, exist_ok=True)
            went = fsops.move_no_replace(path, target.parent, target.name)
            sidecars.move_beside(path, went, stem_too=stem_too)  # a sidecar dropped beside it goes along
