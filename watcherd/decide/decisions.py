"""Decisions about collisions: ``distinct``, ``keep-existing``, ``keep-newcomer``, and ``undo``.

A decision is stored on its collision record (``CollisionRecord.decision``) and the
order of decisions in ``meta.decided`` (the last one is what ``undo`` reverts). Files
move in the same safe order as ingest: one transaction commits the records, naming where
each original is about to go (``moving_from``, ``Decision.setting_aside``), and the
thumbnail steps still to do (``steps``); then ``filing.settle`` carries them out and
commits again. A crash at any point is finished by the next start (``finish_pending``).
watcherd removes only its own thumbnails (checked by their ``sha256`` chunk); a user's
original is never deleted: one set aside goes to ``originals/_duplicates/``. Thumbnails
made again (by ``undo``) are rendered by the caller's ``render``: the decoder sandbox.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from watcherd.core.collisionrecords import CollisionRecord, Decision, Verdict, Via
from watcherd.core.errors import ImageError, UsageError
from watcherd.core.naming import merge_tags, safe_text, shown
from watcherd.core.nearpairs import is_near_id
from watcherd.core.records import ImageRecord
from watcherd.decide import decided
from watcherd.decide.applier import Applier
from watcherd.decide.decided import NEAR
from watcherd.decide.plans import DistinctFacts, KeepFacts, plan_distinct, plan_keep, unmerged
from watcherd.decode import chunks
from watcherd.decode.facts import thumbnail_chunks
from watcherd.decode.newimage import Renderer, library_spec
from watcherd.filing import journal
from watcherd.filing.adopt import examine, from_chunks
from watcherd.filing.context import Context
from watcherd.filing.originals import ARCHIVE, Filing
from watcherd.fs import fsops
from watcherd.fs.folders import Folders

if TYPE_CHECKING:
    from watcherd.core.places import Places

log = logging.getLogger("watcherd")


class Decisions:
    """Applies and reverts decisions for one library (the writer's side)."""

    def __init__(self, ctx: Context, filing: Filing, render: Renderer, batch: str | None = None) -> None:
        self.ctx = ctx
        self.filing = filing
        self.render_job = render  # the pipeline's sandboxed renderer: hostile bytes never decode here
        self.batch = batch  # recorded with each decision made here (the page's batches, undone as one)
        self.applier = Applier(filing, batch)

    # -- reading ----------------------------------------------------------------------

    def collision(self, ident: str) -> CollisionRecord:
        """The collision with id ``ident`` (or a refusal naming what is known)."""
        for col in self.ctx.catalog.collisions():
            if col.id == ident:
                return col
        raise UsageError(f"no collision with id {ident!r} (see 'watcherd dupes --all')")

    def drop_folder(self, col: CollisionRecord) -> Path:
        """The folder of the tree the newcomer was dropped in, where it is now (renamed or moved
        since, it is found by what it is); the top of the tree when not known."""
        new = col.newcomer
        return Folders(self.ctx.places).locate(new.dropped, new.dropped_id, source=new.source)

    def render(self, original: str | None, filename: str | None, ingested: str | None) -> bytes:
        """A thumbnail made again from an original kept under the root (for ``undo``). It says it
        was ingested at ``ingested`` (the image's time, ISO; now when unknown), as the one it
        stands for did: made from the same original, it is that thumbnail again, byte for byte."""
        places = self.ctx.places
        if not original:
            raise UsageError("cannot undo: the original to make its thumbnail from is not known")
        try:
            data = places.absolute(original).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot undo: cannot read {original}: {exc.strerror}") from None
        spec = library_spec(self.ctx.cfg, self.ctx.catalog.meta("library"))
        sha = hashlib.sha256(data).hexdigest()
        try:
            when = _timestamp(ingested) or self.ctx.now()
            return self.render_job(data, spec, filename or Path(original).name, sha, when).png
        except ImageError as exc:
            raise UsageError(f"cannot undo: cannot make the thumbnail of {original} again: {exc.reason}") from None

    def archive_for(self, label: str, original: str) -> str:
        """Where an original (at ``original``) set aside under ``label`` goes in ``originals/_duplicates/``."""
        return self.ctx.places.rel(self.ctx.places.originals / ARCHIVE / f"{label}{Path(original).suffix.lower()}")

    def set_aside_again(self, decision: Decision, label: str, current: str) -> str:
        """Plan bytes dropped again (at ``current``) into the archive under ``label``; return where.

        Each planned place is new to the decision, so two copies dropped again in one batch
        are told apart when their moves say where each went.
        """
        planned, n = self.archive_for(label, current), 1
        while planned in decision.again:
            n += 1
            planned = self.archive_for(f"{label}~{n}", current)
        decision.again.append(planned)
        self.set_aside(decision, current, planned)
        return planned

    def set_aside(self, decision: Decision, current: str, planned: str) -> None:
        """Plan the move of the original at ``current`` to ``planned`` (made by ``filing`` after the commit)."""
        decision.setting_aside.append([current, planned])

    def push(self, ident: str, via: Via, stamp: str) -> None:
        """Put ``ident`` last in the order of decisions (the next one ``undo`` reverts)."""
        decided.push(self.ctx.catalog, ident, via, stamp, self.batch)

    def pop(self, ident: str) -> None:
        """Take ``ident`` out of the order of decisions (``decided.pop``)."""
        decided.pop(self.ctx.catalog, ident)

    # -- deciding ---------------------------------------------------------------------

    def resolve(self, ident: str, verdict: Verdict, via: Via = Via.COMMAND, at: Path | None = None) -> str:
        """Decide collision (or near group) ``ident``; return the name of the image that holds the result.

        ``at``: for a ``distinct`` made by gesture, where the user put the newcomer's thumbnail.
        """
        if via is not Via.GESTURE:
            self.filing.finish_pending()  # a decision a crash interrupted is finished first
        if is_near_id(ident):
            # Keeping one image of a near group is ``neardecisions``' (``deciding.resolve`` sends it there).
            assert verdict is Verdict.DISTINCT, "a near group's keep decision is made by neardecisions"
            return self._near_distinct(ident, via)
        col = self.collision(ident)
        if col.decision is not None:
            if not (via is Via.GESTURE and col.decision.via is Via.GESTURE and verdict is Verdict.DISTINCT):
                raise UsageError(
                    f"collision {ident} is already decided ({col.decision.kind.value}); 'watcherd resolve --undo' "
                    "reverts the last decision"
                )
            # Its thumbnail was deleted (keep-existing) and then came back elsewhere: a move
            # seen as a delete and a new file. The later gesture wins.
            kept = self.unmerge(col)
            if kept is not None:
                with self.ctx.catalog.transaction():
                    self.ctx.catalog.put_image(kept)
        if verdict is Verdict.DISTINCT:
            return self._distinct(col, via, at)
        return self._keep(col, verdict, via)

    def _near_distinct(self, ident: str, via: Via) -> str:
        names = ident.split("+")
        catalog = self.ctx.catalog
        unknown = [n for n in names if catalog.image(n) is None]
        if unknown or len(names) < 2:
            raise UsageError(f"{ident!r} is not a near-duplicate group of catalogued images ({', '.join(unknown)})")
        groups = [g for g in catalog.meta(NEAR) or [] if sorted(g) != sorted(names)]
        with catalog.transaction():
            catalog.set_meta(NEAR, [*groups, sorted(names)])
            self.push(ident, via, self.ctx.stamp())
        log.info("decided distinct: the near-duplicates %s", ", ".join(names))
        return names[0]

    def _distinct(self, col: CollisionRecord, via: Via, at: Path | None) -> str:
        catalog, places, new = self.ctx.catalog, self.ctx.places, col.newcomer
        assert new.sha256 is not None
        name = col.distinct_name
        if catalog.image(name) is not None and at is None:
            raise UsageError(f"{name} is already catalogued; nothing to do for collision {col.id}")
        if at is None:
            src = places.absolute(new.thumbnail or "")
            if not journal.ours(src, new.sha256):
                raise UsageError(f"the newcomer's thumbnail {new.thumbnail} is not there (deleted or moved?)")
            folder = self.drop_folder(col)
            target = folder / name
            try:
                folder.mkdir(parents=True, exist_ok=True)  # deleted since the drop: made again
                fsops.rename_no_replace(src, target)
            except FileExistsError:
                raise UsageError(f"{places.rel(target)} is taken; move that file away and decide again") from None
            except OSError as exc:
                to = places.rel(target)
                raise UsageError(f"cannot move the newcomer's thumbnail to {to}: {exc.strerror}") from None
            # Stopped here, the thumbnail in the tree without a record is a gesture the next start decides.
            self.ctx.checkpoint("thumbnail", target)
            try:
                facts = self._distinct_facts(col, target)
            except FileNotFoundError:
                raise UsageError(
                    f"the newcomer's thumbnail was moved on from {places.rel(target)} before collision "
                    f"{col.id} was decided; where it lands decides it distinct"
                ) from None
        else:
            target = at
            facts = self._distinct_facts(col, target)
        plan = plan_distinct(col, via, facts)
        self.applier.apply(plan)
        log.info("decided distinct (%s): %s is now %s", via.value, col.id, shown(plan.put_images[0].path))
        return col.distinct_name

    def _distinct_facts(self, col: CollisionRecord, target: Path) -> DistinctFacts:
        """What ``plan_distinct`` needs: the newcomer's thumbnail at ``target`` and what it holds."""
        catalog, places, new = self.ctx.catalog, self.ctx.places, col.newcomer
        try:
            thumb = examine(target, os.lstat(target))
        except OSError:
            thumb = None
        if thumb is None:  # moved on (or another file put there) since it was found: decided where it is now
            raise FileNotFoundError(errno.ENOENT, "the newcomer's thumbnail is not there", str(target))
        rec = catalog.image(col.distinct_name)
        if rec is None:
            rec = from_chunks(self.ctx, target, thumb)
            rec.sha256, rec.original_filename = new.sha256, new.filename or rec.original_filename
        where = places.place(target)
        at = self.newcomer_original_at(col)
        return DistinctFacts(
            thumbnail=places.rel(target),
            image=rec,
            stamp=self.ctx.stamp(),
            folder=where.rel.parent if where else PurePosixPath(),
            original_at=at,
            planned=self.filing.planned(col.distinct_name, Path(at).suffix) if at else None,
        )

    def newcomer_original_at(self, col: CollisionRecord) -> str | None:
        """Where the newcomer's original is now: at its ``original``, or still at ``moving_from``
        (a move asked for and not made yet: in a batch, it is made after the commit); None when
        it is at neither."""
        places = self.ctx.places
        for rel in (col.newcomer.original, col.newcomer.moving_from):
            if rel and os.path.lexists(places.absolute(rel)):
                return rel
        return None

    def _keep(self, col: CollisionRecord, verdict: Verdict, via: Via) -> str:
        """Look up what a keep decision needs (``KeepFacts``), plan it (pure), carry the plan out."""
        plan = plan_keep(col, verdict, via, self._keep_facts(col, verdict))
        self.applier.apply(plan)
        kept, decided_col = plan.put_images[0], plan.put_collisions[0]
        if verdict is Verdict.KEEP_EXISTING:
            where = decided_col.newcomer.original
            log.info("decided keep-existing (%s): %s; its original is kept at %s", via.value, col.id, where)
        else:
            log.info("decided keep-newcomer (%s): %s takes the name %s", via.value, col.id, kept.name)
        return kept.name

    def _keep_facts(self, col: CollisionRecord, verdict: Verdict) -> KeepFacts:
        catalog, places, new = self.ctx.catalog, self.ctx.places, col.newcomer
        kept = catalog.existing_holder(col) if verdict is Verdict.KEEP_EXISTING else catalog.image(col.name)
        if kept is None:
            return KeepFacts(None, "")  # refused by the plan
        folder = places.tag_folder(self.drop_folder(col))
        at = self.newcomer_original_at(col)
        if verdict is Verdict.KEEP_EXISTING:
            archive = self.archive_for(col.id, at) if at else None
            return KeepFacts(kept, self.ctx.stamp(), folder, at, archive)
        png = journal.our_thumbnail(places.absolute(new.thumbnail or ""), new.sha256)
        if png is None:
            return KeepFacts(kept, "", folder, at)  # refused by the plan: the thumbnail is not there
        old = kept.original
        old_there = bool(old) and os.path.lexists(places.absolute(old or ""))
        archive = (
            self.archive_for(f"{col.name[: -len('.png')]}~{(kept.sha256 or '')[:12]}", old)
            if old and old_there
            else None
        )
        planned = self.filing.planned(kept.name, Path(new.original).suffix) if new.original else None
        return KeepFacts(
            kept,
            self.ctx.stamp(),
            folder,
            at,
            archive,
            thumbnail_ours=True,
            png=png,
            chunks=chunks.read_text(png),
            old_original_there=old_there,
            planned=planned,
            replaced_ingested=thumbnail_chunks(places.root, kept.path).get("ingested") or kept.first_seen,
        )

    def kept_image(self, col: CollisionRecord) -> ImageRecord | None:
        """The record a decided keep kept, as the catalog has it now (``keep-existing`` names it;
        ``keep-newcomer`` kept the contested name)."""
        assert col.decision is not None
        holder = col.decision.image if col.decision.kind is Verdict.KEEP_EXISTING else None
        return self.ctx.catalog.image(holder or col.name)

    def unmerge(self, col: CollisionRecord) -> ImageRecord | None:
        """The kept record without what the decision gave it (``plans.unmerged``); the caller
        saves it in the transaction that reverts the decision."""
        assert col.decision is not None
        kept = self.kept_image(col)
        return None if kept is None else unmerged(kept, col.decision)

    # -- the same bytes again ------------------------------------------------------------

    def remembered(self, sha256: str, same_name: list[CollisionRecord]) -> CollisionRecord | None:
        """A decided collision about these very bytes (so they are settled as before), or None."""
        for col in same_name:
            dec = col.decision
            if dec is None:
                continue
            if col.newcomer.sha256 == sha256 or (dec.kind is not Verdict.DISTINCT and col.existing.sha256 == sha256):
                return col
        return None

    def again(self, path: Path, sha256: str, col: CollisionRecord) -> str | None:
        """Bytes a decision already settled, dropped again at ``path`` (in the tree): they are set
        aside under ``originals/_duplicates/`` and the image holding them gains the folder's tags
        and the file name. Returns that image's name; None when it is no longer catalogued."""
        catalog, places = self.ctx.catalog, self.ctx.places
        dec = col.decision
        assert dec is not None
        holder = catalog.image(dec.image or col.name)
        if holder is None or (dec.kind is Verdict.DISTINCT and holder.sha256 != sha256):
            return None
        gain_drop(places, holder, path)
        rel = places.rel(path)
        planned = self.set_aside_again(dec, f"{col.id}~again", rel)
        with catalog.transaction():
            catalog.put_image(holder)
            catalog.put_collision(col)
            catalog.clear_error(rel)
        log.info("%s: the same bytes as decided before (%s); set aside as %s", shown(rel), dec.kind.value, planned)
        self.filing.file_collision(col)  # in a scan: once the batch's records are committed
        return holder.name

    def collision_thumb(self, col: CollisionRecord) -> Path:
        places, thumb = self.ctx.places, col.newcomer.thumbnail
        return places.absolute(thumb) if thumb else places.collisions / f"{col.id}.png"

    def back_to_collisions(self, col: CollisionRecord, current: str | None) -> None:
        """Plan the newcomer's original's way back to ``originals/_collisions/`` (moved by ``filing``)."""
        new = col.newcomer
        if new.source or not current or not os.path.lexists(self.ctx.places.absolute(current)):
            return
        new.moving_from = current
        new.original = self.filing.planned(col.id, Path(current).suffix, collision=True)


def gain_drop(places: Places, rec: ImageRecord, path: Path) -> None:
    """The image ``rec`` gains what its bytes dropped again at ``path`` bring: that folder's tags, the file name."""
    where = places.place(path)
    rec.tags = merge_tags(rec.tags, where.rel.parent if where else PurePosixPath(), rec.size_tag)
    name = safe_text(path.name)
    if name != rec.original_filename and name not in rec.other_filenames:
        rec.other_filenames.append(name)


def _timestamp(iso: str | None) -> float | None:
    """The POSIX time of an ISO time the catalog wrote, or None."""
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None
