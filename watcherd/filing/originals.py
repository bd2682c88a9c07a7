"""Filing originals: moving a user's file from the tree into ``originals/``, after its record.

The record always says where the original is about to go (``original``) and where it
still is (``moving_from``) before the move starts, and that record is committed; the
move then gives the file its new name by a hard link before the old name goes (a
copy, fsynced and published, across filesystems), and the record is committed again.
A crash at any point leaves ``moving_from`` set, and the next start finishes the move.

A decision's own steps follow the same rule: the originals it sets aside are named in
its ``setting_aside`` before they move, and its thumbnail steps are journaled
(``steps``); ``settle`` carries both out after the commit, and ``finish_pending``
after a crash.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from watcherd.core.collisionrecords import CollisionRecord, Decision
from watcherd.core.naming import shown
from watcherd.core.nearpairs import NearRecord
from watcherd.core.records import ImageRecord
from watcherd.filing.context import Context
from watcherd.filing.journal import Journal
from watcherd.fs import fsops, sidecars

log = logging.getLogger("watcherd")

ARCHIVE = "_duplicates"  # originals/_duplicates/: originals a decision set aside (never deleted)
Item = ImageRecord | CollisionRecord | NearRecord  # what carries originals to move


class Side(Protocol):
    """Anything with an original being filed: an image record, or a collision's newcomer."""

    original: str | None
    moving_from: str | None


@dataclass
class _Aside:
    """One original a decision sets aside, as a side being filed."""

    original: str | None
    moving_from: str | None


class Filing:
    """Moves originals into ``originals/`` and records where they went."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._pending: list[Item] | None = None
        self.journal = Journal(ctx)
        self._steps = False  # journaled thumbnail steps wait for the block's commit

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold back the moves asked for inside the block, and make them when it ends.

        Used around a batch whose records are committed by a transaction opened inside
        this block: that transaction ends (commits) first, then the originals move, so
        every original still moves only after its record is durable. If the block
        raises, nothing moves: the records were not committed, and the next scan
        finishes whatever a committed record asks for.
        """
        if self._pending is not None:
            yield
            return
        self._pending, self._steps = [], False
        try:
            yield
        except BaseException:
            self._pending = None
            raise
        pending, self._pending = self._as_committed(self._pending), None
        if self._steps:
            self.journal.run()
        with fsops.OldNames() as later:
            moved = [item for item in pending if self._move_item(item, later)]
            fsops.finish_moves({self._destination(item) for item in moved}, later)
        if moved:
            with self.ctx.catalog.transaction():
                for item in moved:
                    if not isinstance(item, ImageRecord):
                        self._save(item)
                # A batch's images are written as one set: their derived rows follow in one go.
                self.ctx.catalog.put_images(item for item in moved if isinstance(item, ImageRecord))

    def _as_committed(self, items: list[Item]) -> list[Item]:
        """Each record asked for in the block once (in the order last asked for), read again as the
        block committed it: a copy asked to move earlier in the block may have been decided on
        since (a distinct after a keep-existing), and a new record whose file's savepoint rolled
        back was never committed (it is left out)."""
        keys: dict[tuple[str, str], None] = {}
        for item in items:
            key = (type(item).__name__, item.name if isinstance(item, ImageRecord) else item.id)
            keys.pop(key, None)
            keys[key] = None
        catalog = self.ctx.catalog
        images = catalog.images_named([name for kind, name in keys if kind == ImageRecord.__name__])
        out: list[Item] = []
        for kind, ident in keys:
            now: Item | None
            if kind == ImageRecord.__name__:
                now = images.get(ident)
            elif kind == CollisionRecord.__name__:
                now = catalog.collision(ident)
            else:
                now = catalog.near_decision(ident)
            if now is not None:
                out.append(now)
        return out

    def planned(self, name: str, suffix: str, *, collision: bool = False) -> str:
        """Where an original named for thumbnail ``name`` (or a collision label) should go."""
        places = self.ctx.places
        folder = places.original_collisions if collision else places.originals
        stem = name[: -len(".png")] if name.endswith(".png") else name
        return places.rel(folder / f"{stem}{suffix.lower()}")

    def file_image(self, rec: ImageRecord) -> None:
        """Finish filing an image's original (its record committed), then commit where it went."""
        self._file(rec)

    def file_collision(self, col: CollisionRecord) -> None:
        """Finish filing a collision newcomer's original, then commit where it went."""
        self._file(col)

    def carry_out(self, *items: Item) -> None:
        """After a decision's commit: its journaled thumbnail steps, then its originals' moves, in order."""
        if self._pending is not None:
            self._steps = True
        else:
            self.journal.run()
        for item in items:
            self._file(item)

    def _file(self, item: Item) -> bool:
        """Move ``item``'s originals now (or when the deferring block ends); whether anything moved
        (or is held back to move)."""
        if self._pending is not None:
            self._pending.append(item)
            return True
        if not self._move_item(item):
            return False
        with self.ctx.catalog.transaction():
            self._save(item)
        return True

    def _move_item(self, item: Item, later: fsops.OldNames | None = None) -> bool:
        if isinstance(item, NearRecord):
            moved = self._set_aside(item.decision, item.id, later)
            for merged in item.merged:
                merged.archived = moved.get(merged.archived or "", merged.archived)
            return bool(moved)
        if isinstance(item, CollisionRecord):
            aside = item.decision is not None and bool(self._set_aside(item.decision, item.id, later))
            return self._move(item.newcomer, item.id, later) or aside
        return self._move(item, item.name, later)

    def _set_aside(self, decision: Decision, label: str, later: fsops.OldNames | None) -> dict[str, str | None]:
        """Move the originals a decision sets aside; ``archived`` and ``again`` name where each went.

        Returns each planned place -> where the original went, None for one gone astray before
        it was filed (empty when there was nothing to move). An original gone astray is named
        nowhere: seen again, its bytes are settled as the decision says, under a name of their own.
        """
        went: dict[str, str | None] = {}
        failed: list[list[str]] = []
        for src, planned in decision.setting_aside:
            side = _Aside(planned, src)
            if not self._move(side, label, later) and side.moving_from is not None:
                failed.append([src, planned])  # logged; tried again by the next scan's start
                continue
            went[planned] = side.original
            if side.original != planned:  # another free name, or gone astray (None: named nowhere)
                if decision.archived == planned:
                    decision.archived = side.original
                renamed = (side.original if p == planned else p for p in decision.again)
                decision.again = [p for p in renamed if p is not None]
        decision.setting_aside = failed
        return went

    def _destination(self, item: Item) -> Path:
        if isinstance(item, NearRecord):
            return self.ctx.places.originals / ARCHIVE
        side = item.newcomer if isinstance(item, CollisionRecord) else item
        return self.ctx.places.absolute(side.original or "").parent

    def _save(self, item: Item) -> None:
        if isinstance(item, NearRecord):
            self.ctx.catalog.put_near_decision(item)
        elif isinstance(item, CollisionRecord):
            self.ctx.catalog.put_collision(item)
        else:
            self.ctx.catalog.put_image(item)

    def finish_pending(self) -> int:
        """Complete the moves of originals that a crash interrupted; return how many were made."""
        catalog = self.ctx.catalog
        done = self.journal.run()
        # Collisions first: a decision's originals set aside (or sent back to _collisions/)
        # free the names that the kept images' originals move to.
        for col in catalog.collisions():
            if col.newcomer.moving_from and col.newcomer.original is None:
                done += self._hand_on(col)
            elif col.newcomer.moving_from or (col.decision is not None and col.decision.setting_aside):
                done += self._file(col)
        for near in catalog.near_decisions():
            if near.decision.setting_aside:
                done += self._file(near)
        for name in catalog.pending_moves():
            rec = catalog.image(name)
            if rec is not None and rec.moving_from:
                done += self._file(rec)
        return done

    def _hand_on(self, col: CollisionRecord) -> bool:
        """A newcomer's original still on its way (``moving_from``) when a decision gave the
        newcomer to an image, as catalogs written before 2026-12-07 may have it: the record kept
        the move but no longer said where to (``original`` None), so it was never made. The move
        is the image's when that image is made of the same bytes and has no original; it is
        made now. Anything else is left as it is (``watcherd check`` names it)."""
        catalog, new, decision = self.ctx.catalog, col.newcomer, col.decision
        holder = catalog.image(decision.image or col.name) if decision is not None else None
        src = new.moving_from
        if src is None or holder is None or holder.original or holder.source or holder.sha256 != new.sha256:
            return False
        holder.original, holder.moving_from = self.planned(holder.name, Path(src).suffix), src
        new.moving_from = None
        with catalog.transaction():
            catalog.put_collision(col)
            catalog.put_image(holder)
        log.info("the original of %s was left at %s by its decision; filing it now", holder.name, shown(src))
        return self._file(holder)

    def _move(self, side: Side, label: str, later: fsops.OldNames | None = None) -> bool:
        """Move ``side``'s original from ``moving_from`` to (about) ``original``.

        Returns whether ``side`` changed (and must be saved); False when the move
        failed and will be tried again.
        """
        src_rel = side.moving_from
        if not src_rel or side.original is None:
            return False
        places = self.ctx.places
        src = places.absolute(src_rel)
        planned = places.absolute(side.original)
        self.ctx.checkpoint("filing", src)
        astray = False
        if os.path.lexists(src):
            try:
                before = os.lstat(src)
                dst = fsops.move_no_replace(src, planned.parent, planned.name, later)
                self.ctx.checkpoint("moved", src)  # the first name may still be there (``later``)
                after = os.lstat(dst)
            except FileNotFoundError:
                astray = True  # gone between the look and the move
            except OSError as exc:
                log.error("cannot move original %s: %s (will retry)", shown(src_rel), exc)
                return False
            else:
                if before.st_nlink > 1 and after.st_ino != before.st_ino:
                    log.warning(
                        "%s had %d hard links and was copied across filesystems: its other names are now a copy",
                        shown(src_rel),
                        before.st_nlink,
                    )
                side.original = places.rel(dst)
                self._sidecar_follows(src, dst, later)
        elif not os.path.lexists(planned):
            astray = True
        else:
            self._sidecar_follows(src, planned, later)  # the original moved before a crash; its sidecar now
        if astray:
            # Moved away (a folder renamed, say) before we could file it. A record
            # without an original adopts these bytes when they are seen again.
            log.info("original of %s left %s before it was filed; waiting to see it again", label, shown(src_rel))
            side.original = None
        side.moving_from = None
        return True

    def _sidecar_follows(self, src: Path, dst: Path, later: fsops.OldNames | None) -> None:
        """An XMP sidecar beside the original that left ``src`` goes with it, beside ``dst`` (``fs.sidecars``);
        dropped in the tree it may be spelled ``photo.xmp`` too. It is never left in the thumbs tree."""
        try:
            went = sidecars.move_beside(src, dst, stem_too=self.ctx.places.place(src) is not None, later=later)
        except OSError as exc:
            log.error("cannot move the sidecar beside %s: %s (will retry)", shown(self.ctx.places.rel(src)), exc)
            return
        if went is not None and went != sidecars.sidecar_of(dst):
            log.warning(
                "the sidecar of %s is kept as %s: its name was taken",
                shown(self.ctx.places.rel(dst)),
                shown(self.ctx.places.rel(went)),
            )
