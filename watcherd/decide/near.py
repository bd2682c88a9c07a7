"""Near-duplicates decided the same picture (``keep-existing``, ``keep-newcomer``), their undo,
and the same bytes of a merged image dropped again.

Keeping one image of a near group merges every other one into it: each merged image's
thumbnails (watcherd's own files) go away, its original is set aside under
``originals/_duplicates/`` (never deleted; a source file stays where it is), the kept
image gains its tags and file names, and its record leaves ``images`` to be kept whole
in the decision (``nearpairs.NearRecord``). As for collisions, one transaction commits
the records, the originals still to set aside and the thumbnail steps (``steps``);
``filing.settle`` carries them out, and after a crash the next start does.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath

from watcherd.core.collisionrecords import Decision, Verdict, Via
from watcherd.core.errors import UsageError
from watcherd.core.naming import merge_tags, shown
from watcherd.core.nearpairs import Merged, NearRecord, merge, names_of, sides, unmerge
from watcherd.core.outcomes import Outcome, Result
from watcherd.core.places import Area, Place
from watcherd.core.records import ImageRecord
from watcherd.decide.decided import NEAR
from watcherd.decide.decisions import Decisions, gain_drop
from watcherd.decode.newimage import NewImage
from watcherd.filing import journal
from watcherd.fs.folders import Folders, ident_of

log = logging.getLogger("watcherd")


def _stem(name: str) -> str:
    return name[: -len(".png")] if name.endswith(".png") else name


class NearDecisions:
    """Keeps one image of a near group, merging the others into it; and reverts that."""

    def __init__(self, decisions: Decisions) -> None:
        self.decisions = decisions
        self.ctx = decisions.ctx
        self.filing = decisions.filing

    def keep(self, ident: str, verdict: Verdict, via: Via = Via.COMMAND) -> str:
        """Keep the oldest (``keep-existing``) or newest (``keep-newcomer``) image of near group
        ``ident`` and merge the others into it. Returns the kept image's name."""
        catalog, places = self.ctx.catalog, self.ctx.places
        names = names_of(ident)
        if len(names) < 2:
            raise UsageError(f"{ident!r} is not a near-duplicate group: it needs two names joined by '+'")
        if catalog.near_decision(ident) is not None:
            raise UsageError(f"{ident} is already decided; 'watcherd resolve --undo' reverts the last decision")
        if sorted(names) in [sorted(g) for g in catalog.meta(NEAR) or []]:
            raise UsageError(f"{ident} is already decided (distinct); 'watcherd resolve --undo' reverts the last one")
        records = catalog.images_named(names)
        unknown = [n for n in names if n not in records]
        if unknown:
            raise UsageError(f"{', '.join(unknown)} not catalogued (see 'watcherd dupes --near N')")
        existing, newcomer = sides(list(records.values()))
        kept = existing if verdict is Verdict.KEEP_EXISTING else newcomer
        merged = [r for r in records.values() if r.name != kept.name]
        for m in merged:
            for rel in m.paths:
                path = places.absolute(rel)
                if os.path.lexists(path) and not journal.ours(path, m.sha256):
                    raise UsageError(f"{rel} was not made by watcherd (it is never removed); move it away first")
        decision = Decision(verdict, self.ctx.stamp(), via, image=kept.name)
        decision.added_tags, added_names = merge(kept, merged)
        entries: list[Merged] = []
        planned: list[journal.Step] = []
        for m in merged:
            entry = Merged(m.to_json())
            for rel in m.paths:
                folder = str(PurePosixPath(rel).parent)
                folder_id = ident_of(places.absolute(folder))
                if folder_id is not None:
                    entry.folders[folder] = folder_id
            if not m.source and m.original and os.path.lexists(places.absolute(m.original)):
                label = f"{_stem(m.name)}~{(m.sha256 or '')[:12]}"
                entry.archived = self.decisions.archive_for(label, m.original)
                decision.setting_aside.append([m.original, entry.archived])
            planned += [journal.unlink(rel, m.sha256) for rel in m.paths]  # watcherd's own: made again by undo
            entries.append(entry)
        near = NearRecord(ident, decision, entries, added_names)
        with catalog.transaction():
            catalog.put_image(kept)
            for m in merged:
                catalog.delete_image(m.name)
            catalog.put_near_decision(near)
            self.decisions.push(ident, via, decision.decided)
            self.filing.journal.plan(planned)
        self.filing.carry_out(near)
        merged_names = ", ".join(m.name for m in merged)
        log.info("decided %s (%s): kept %s, merged %s", verdict.value, via.value, kept.name, merged_names)
        return kept.name

    def undo(self, ident: str) -> bool:
        """Revert the keep decision about ``ident``: the merged images back exactly as they were
        (thumbnails made again from their originals), the kept one without what it gained.
        False when no keep decision about ``ident`` is in effect."""
        catalog, places = self.ctx.catalog, self.ctx.places
        near = catalog.near_decision(ident)
        if near is None:
            return False
        restored = [self._where_now(m) for m in near.merged]
        for rec in restored:
            if catalog.image(rec.name) is not None:
                raise UsageError(f"{rec.name} is catalogued again; nothing was changed")
            taken = [rel for rel in rec.paths if os.path.lexists(places.absolute(rel))]
            if taken:
                raise UsageError(f"{', '.join(taken)} is taken; nothing was changed")
        planned: list[journal.Step] = []
        for entry, rec in zip(near.merged, restored, strict=True):
            kept_at = entry.archived if entry.archived and os.path.lexists(places.absolute(entry.archived)) else None
            if rec.paths:
                png = self.decisions.render(kept_at or rec.original, rec.original_filename, rec.first_seen)
                planned += [journal.publish(rel, png) for rel in rec.paths]
            if kept_at is not None:
                rec.moving_from = kept_at  # back to where it was (``original``), by filing
        kept = catalog.image(near.decision.image or "")
        if kept is not None:
            unmerge(kept, near.decision.added_tags, near.added_filenames)
        with catalog.transaction():
            if kept is not None:
                catalog.put_image(kept)
            for rec in restored:
                catalog.put_image(rec)
            catalog.delete_near_decision(ident)
            self.decisions.pop(ident)
            self.filing.journal.plan(planned)
        self.filing.carry_out(*restored)
        log.info("undid %s of %s: %s back", near.decision.kind.value, ident, ", ".join(r.name for r in restored))
        return True

    def _where_now(self, entry: Merged) -> ImageRecord:
        """A merged image's record as it was, its places in its folders as they are now
        (found by identity after a rename or a move; their tags added, as a move adds them)."""
        places, folders = self.ctx.places, Folders(self.ctx.places)
        rec = entry.image
        if not rec.present:
            return rec
        now = []
        for rel in rec.paths:
            folder, name = str(PurePosixPath(rel).parent), PurePosixPath(rel).name
            located = folders.locate(folder, entry.folders.get(folder))
            now.append(places.rel(located / name))
            where = places.place(located / name)
            if where is not None:
                rec.tags = merge_tags(rec.tags, where.rel.parent, rec.size_tag)
        rec.path, rec.copies = now[0], list(dict.fromkeys(now[1:]))
        return rec

    def again(self, path: Path, where: Place, image: NewImage) -> Result | None:
        """The bytes of an image a keep decision merged, seen again at ``path``: settled as before.

        Dropped into the tree, they are set aside under ``originals/_duplicates/`` (after the
        commit) and the kept image gains the folder's tags and the file name; a source file
        is left where it is. None when no decision merged these bytes (or its image is gone).
        """
        catalog, places = self.ctx.catalog, self.ctx.places
        near = catalog.near_holding(image.sha256)
        kept = catalog.image(near.decision.image or "") if near is not None else None
        if near is None or kept is None:
            return None
        if where.area is Area.SOURCE:
            return Result(Outcome.UNCHANGED, path, kept.name, detail=f"merged into {kept.name}")
        gain_drop(places, kept, path)
        rel = places.rel(path)
        planned = self.decisions.set_aside_again(near.decision, f"{_stem(image.name)}~again", rel)
        with catalog.transaction():
            catalog.put_image(kept)
            catalog.put_near_decision(near)
            catalog.clear_error(rel)
        self.filing.carry_out(near)  # in a scan: once the batch's records are committed
        log.info("%s: the same bytes as %s, merged into %s; kept at %s", shown(rel), image.name, kept.name, planned)
        return Result(Outcome.INGESTED, path, kept.name, detail="settled as decided before")
