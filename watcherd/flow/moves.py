"""Thumbnails the user moves, renames, copies and deletes: records follow, nothing is decoded.

A thumbnail is known by its content, never by its file name: watcherd's own carry
their original's sha256 and hash in PNG text chunks. So:

- found under its canonical name where its record does not say: moved there, or, when
  the place the record names still holds it, copied there (the record lists every
  place, and gains each folder's tags);
- found under another name (``my cat.png``, ``… (copy).png``): it gets its canonical
  name back where it now is, and is then handled as above; a byte-identical copy
  beside its canonical name in the same folder is reported and left alone;
- found without a record: adopted from its chunks (``adopt``);
- gone from a place: that copy is forgotten; the image is ``missing`` once no copy is
  left, and nothing about it is forgotten.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from watcherd.core.collisionrecords import Verdict
from watcherd.core.naming import merge_tags, parse_canonical, shown, variant_name
from watcherd.core.outcomes import Outcome, Result
from watcherd.core.places import Area, Place
from watcherd.core.records import ImageRecord
from watcherd.decide.decisions import Decisions
from watcherd.decide.gestures import Gestures
from watcherd.decode.newimage import Renderer
from watcherd.filing import journal
from watcherd.filing.adopt import Adopter, Maker, Thumbnail
from watcherd.filing.context import Context
from watcherd.filing.failures import Failures
from watcherd.filing.originals import Filing
from watcherd.fs import fsops

log = logging.getLogger("watcherd")

# Canonical names ``seen_all`` takes in one query and one transaction.
SET_FILES = 5000


class Moves:
    """Keeps the records of thumbnails in step with where they are."""

    def __init__(self, ctx: Context, adopter: Adopter, failures: Failures, filing: Filing, render: Renderer) -> None:
        self.ctx = ctx
        self.adopter = adopter
        self.failures = failures
        self.decisions = Decisions(ctx, filing, render)
        self.gestures = Gestures(self.decisions)

    def is_known(self, path: Path) -> bool:
        """A catalogued canonical name: moving it needs no decoding."""
        return parse_canonical(path.name) is not None and self.ctx.catalog.image(path.name) is not None

    def seen(self, path: Path, where: Place, st: os.stat_result) -> Result | None:
        """A canonical name at ``path``: follow, adopt or confirm it; None if it is not a thumbnail.
        (Many at once, a folder moved in or a scan's: ``seen_all``.)"""
        catalog = self.ctx.catalog
        rel = self.ctx.places.rel(path)
        rec = catalog.image(path.name)
        if rec is None:
            # In a rebuild no record is written yet: a name the export knows is that image's.
            placed = None if self.adopter.remembers(path.name) else self._collision_placed(path, st)
            if placed is not None:
                return Result(Outcome.MOVED, path, placed, detail="decided distinct")
            adopted = self.adopter.adopt(path, st)
            if adopted is None:
                return None  # a user's file that only looks canonical: ingest it
            with catalog.transaction():
                catalog.put_image(adopted)
            log.info("adopted %s from its PNG metadata", shown(rel))
            return Result(Outcome.ADOPTED, path, path.name)
        verb = self._place(rec, rel, where)
        if verb is None:
            return Result(Outcome.UNCHANGED, path, path.name)
        with catalog.transaction():
            catalog.put_image(rec)
        log.info("%s %s -> %s tags=%s", verb, path.name, shown(str(where.rel.parent)), ",".join(rec.tags))
        return Result(Outcome.MOVED, path, path.name)

    def _place(self, rec: ImageRecord, rel: str, where: Place, now: str | None = None) -> str | None:
        """Bring ``rec`` to its thumbnail found at ``rel``: ``moved`` or ``copied`` (still where the
        record says too: the image is in both places); None when the record says so already.
        ``now``: the time it is seen (a set's records are seen at once)."""
        if rel in rec.paths:
            return None
        root = os.fspath(self.ctx.places.root)  # joined as text: no Path made per place, a folder of them at once
        copied = any(os.path.lexists(os.path.join(root, p)) for p in rec.paths)
        rec.place_at(rel, keep_others=copied)
        rec.tags = merge_tags(rec.tags, where.rel.parent, rec.size_tag)
        rec.last_seen = now or self.ctx.stamp()
        return "copied" if copied else "moved"

    def renamed(self, path: Path, where: Place, st: os.stat_result) -> Result | None:
        """A thumbnail of ours under another name gets its canonical name back; None if it is not one."""
        thumb = self._ours(path, st)
        if thumb is None:
            return None
        name = self._name_for(thumb, path.name)
        if name is None:
            placed = self.gestures.thumbnail_placed(path, thumb.sha256 or "", thumb.name, left=True)
            if placed is not None:
                return Result(Outcome.MOVED, path, placed, detail="decided distinct")
            if not os.path.lexists(path):
                return Result(Outcome.IGNORED, path, detail="gone")  # moved on meanwhile: seen where it went
            # Beside the image's thumbnail (as a copy is), it is looked at again once that one is
            # another file: an undo of the decision puts the old thumbnail back there. One whose
            # image a near keep merged waits for that name to come back (not read again until then).
            beside = path.parent / thumb.name
            waits = os.path.lexists(beside) or self.ctx.catalog.near_holding(thumb.sha256 or "") is not None
            return self.failures.record(
                path, self._stale(thumb), st, transient=False, beside=beside if waits else None, about=thumb.name
            )
        target = path.parent / name
        if os.path.lexists(target):
            self.ctx.checkpoint("comparing", target)
            # A copy is the same image's thumbnail, not the same bytes alone: a keep-newcomer of
            # its exact collision makes that thumbnail again, at another time, from the same original.
            if not journal.ours(target, thumb.sha256):
                if not os.path.lexists(path):  # moved on meanwhile: seen where it went
                    return Result(Outcome.IGNORED, path, detail="gone")
                if not os.path.lexists(target):  # looked at again: the name is free now
                    return Result(Outcome.DEFERRED, path, detail="name taken meanwhile", retry=True)
                return self.failures.record(
                    path, f"{name} is taken in this folder; left as it is", st, transient=False, beside=target
                )
            return self.failures.record(
                path, f"a copy of {name} in the same folder; left as it is", st, transient=False, beside=target
            )
        try:
            fsops.rename_no_replace(path, target)
        except FileExistsError:
            return Result(Outcome.DEFERRED, path, detail="name taken meanwhile", retry=True)
        except FileNotFoundError:
            return Result(Outcome.IGNORED, path, detail="gone")
        log.info("renamed %s back to its name %s", shown(self.ctx.places.rel(path)), name)
        with self.ctx.catalog.transaction():
            self.ctx.catalog.clear_error(self.ctx.places.rel(path))
        self.ctx.checkpoint("renamed back", target)
        target_where = self.ctx.places.place(target)
        assert target_where is not None
        try:
            target_st = os.lstat(target)
        except FileNotFoundError:  # its folder dragged away meanwhile: seen where it went
            return Result(Outcome.IGNORED, target, detail="gone")
        return self.seen(target, target_where, target_st)

    def _stale(self, thumb: Thumbnail) -> str:
        """Why a thumbnail of ours that names an image holding other bytes is left as it is.

        One made before a ``keep-newcomer`` gave that image the newcomer's original is a copy of
        its thumbnail from before (the decision replaced the thumbnails at the image's places;
        a copy under a name of the user's, beside one of them, was no place of its own):
        its bytes are the original the decision set aside, and undo gives them back. So is one
        made before a near keep merged its image into another, and one made while a keep-newcomer
        was in effect, undone since: a copy of the newcomer's thumbnail, back in ``_collisions/``."""
        cols = self.ctx.catalog.collisions_named(thumb.name)
        for col in cols:
            dec = col.decision
            if (
                dec is not None
                and dec.kind is Verdict.KEEP_NEWCOMER
                and (dec.replaced or {}).get("sha256") == thumb.sha256
            ):
                return (
                    f"a copy of {thumb.name} from before a keep-newcomer decision replaced its original "
                    f"(set aside at {dec.archived or 'originals/_duplicates/'}); left as it is"
                )
        near = self.ctx.catalog.near_holding(thumb.sha256 or "")
        if near is not None:
            return (
                f"a copy of {thumb.name} from before a near-duplicate decision merged it into "
                f"{near.decision.image or 'another image'}; left as it is"
            )
        for col in cols:  # made while a keep-newcomer gave the image these bytes, and undone since
            if col.decision is None and col.newcomer.sha256 == thumb.sha256:
                return (
                    f"a copy of {col.distinct_name}, the newcomer of an undecided collision "
                    f"({col.newcomer.thumbnail or 'thumbs/_collisions/'}); left as it is"
                )
        return f"a thumbnail of other bytes than {thumb.name}'s; left as it is"

    def visited(self, path: Path) -> Result | None:
        """A known thumbnail was moved to ``path`` and has moved on since: it still earns that
        folder's tags. None for anything else (a file still there is handled as any file seen).
        """
        where = self.ctx.places.place(path)
        if where is None or where.area is not Area.TREE or os.path.lexists(path) or not self.is_known(path):
            return None
        catalog = self.ctx.catalog
        rec = catalog.image(path.name)
        assert rec is not None
        tags = merge_tags(rec.tags, where.rel.parent, rec.size_tag)
        if tags == rec.tags:
            return Result(Outcome.UNCHANGED, path, path.name)
        rec.tags = tags
        with catalog.transaction():
            catalog.put_image(rec)
        log.info("passed through %s: tags=%s", shown(str(where.rel.parent)), ",".join(tags))
        return Result(Outcome.MOVED, path, path.name)

    def gone(self, path: Path) -> Result:
        """A path disappeared: a thumbnail copy that was there is forgotten."""
        catalog = self.ctx.catalog
        rel = self.ctx.places.rel(path)
        if not fsops.absent(path):  # still there, or out of reach (a share gone): nothing to forget
            return Result(Outcome.IGNORED, path)
        if catalog.error(rel) is not None:
            with catalog.transaction():
                catalog.clear_error(rel)
        name = catalog.name_at(rel)
        rec = catalog.image(name) if name is not None else None
        if rec is None or rel not in rec.paths:
            return Result(Outcome.IGNORED, path)
        last = rec.leave(rel)
        rec.last_seen = self.ctx.stamp()
        with catalog.transaction():
            catalog.put_image(rec)
        if not last:
            log.info("removed a copy of %s from %s; still at %s", rec.name, shown(rel), shown(rec.path))
            return Result(Outcome.MOVED, path, rec.name)
        log.info("missing %s (%s)", shown(rel), rec.name)
        return Result(Outcome.MISSING, path, rec.name)

    def gone_dir(self, folder: Path) -> int:
        """A folder disappeared: every thumbnail recorded under it that is gone is forgotten there."""
        prefix = self.ctx.places.rel(folder).rstrip("/") + "/"
        count = self.mark_gone((p, p[p.rfind("/") + 1 :]) for p in self.ctx.catalog.present_under(prefix))
        if count:
            log.info("missing %d thumbnails under %s", count, shown(prefix))
        return count

    def mark_gone(self, placed: Iterable[tuple[str, str]]) -> int:
        """Of these (path, name) places of present thumbnails, forget the ones no longer on disk;
        return how many images that left missing."""
        catalog = self.ctx.catalog
        missing = 0
        with catalog.transaction():
            for rel, name in placed:
                if not fsops.absent(self.ctx.places.absolute(rel)):
                    continue  # there, or out of reach: a folder a share no longer lists is not a folder gone
                rec = catalog.image(name)
                if rec is None or rel not in rec.paths:
                    continue
                missing += rec.leave(rel)
                rec.last_seen = self.ctx.stamp()
                catalog.put_image(rec)
        return missing

    def follow(self, paths: list[Path]) -> list[Path]:
        """Update the records of catalogued thumbnails among ``paths`` (a folder moved in).

        Moved thumbnails are changes the tree itself proves again at the next scan, so
        nothing is lost if the daemon dies before they commit. Returns the paths that are
        not catalogued thumbnails, which need settling and decoding.
        """
        results, rest = self.seen_all(paths)
        moved = [r.path for r in results if r.outcome is Outcome.MOVED]
        if moved:
            where = self.ctx.places.place(moved[0])
            into = shown(str(where.rel.parent)) if where is not None else ""
            log.info("moved %d thumbnails with their folder -> %s", len(moved), into)
        return rest

    def seen_all(self, paths: list[Path], *, adopt: bool = False) -> tuple[list[Result], list[Path]]:
        """``seen`` for many canonical names of the thumbs tree at once: their records are fetched
        a chunk at a time in one query and written as one set (``put_images``), one transaction
        per chunk. ``adopt``: thumbnails of ours without a record are adopted too, as a scan
        adopts them (files already reported bad are left alone). Returns the outcomes, and the
        paths to process one by one (not catalogued, a collision's variant, not ours, not a file).
        """
        results: list[Result] = []
        rest: list[Path] = []
        for at in range(0, len(paths), SET_FILES):
            self._seen_set(paths[at : at + SET_FILES], adopt, results, rest)
        return results, rest

    def _seen_set(self, paths: list[Path], adopt: bool, results: list[Result], rest: list[Path]) -> None:
        catalog, places = self.ctx.catalog, self.ctx.places
        parsed = {p.name: parse_canonical(p.name) for p in paths}
        known = catalog.images_named([name for name, canonical in parsed.items() if canonical is not None])
        debug = log.isEnabledFor(logging.DEBUG)
        changed: list[ImageRecord] = []
        adopted = 0
        now = self.ctx.stamp()
        with catalog.transaction():
            for path in paths:
                canonical, rec = parsed[path.name], known.get(path.name)
                where = places.place(path) if canonical is not None else None
                unknown = rec is None and (not adopt or canonical is None or canonical.variant is not None)
                if where is None or where.area is not Area.TREE or unknown:
                    rest.append(path)
                    continue
                try:
                    st = os.lstat(path)
                except OSError:
                    if rec is None:
                        rest.append(path)
                    continue  # a record's thumbnail gone again already: seen where it went
                rel = places.rel(path)
                if not stat.S_ISREG(st.st_mode) or (adopt and self.failures.known_bad(rel, st)):
                    rest.append(path)
                    continue
                if rec is None:
                    try:
                        rec = self.adopter.adopt(path, st, where)
                    except Exception:  # processed one by one, where a bug is recorded against its file
                        rec = None
                    if rec is None:
                        rest.append(path)
                        continue
                    known[path.name] = rec  # a copy of it later in the set is a copy
                    changed.append(rec)
                    results.append(Result(Outcome.ADOPTED, path, path.name))
                    adopted += 1
                    if debug:  # a line per file only when asked for: a library of 100,000 adopted
                        log.debug("adopted %s from its PNG metadata", shown(rel))
                    continue
                verb = self._place(rec, rel, where, now)
                if verb is None:
                    results.append(Result(Outcome.UNCHANGED, path, path.name))
                    continue
                changed.append(rec)
                results.append(Result(Outcome.MOVED, path, path.name))
                if debug:  # a line per file, made only when asked for: a folder of 10,000 moved
                    log.debug("%s %s -> %s tags=%s", verb, path.name, shown(str(where.rel.parent)), ",".join(rec.tags))
            catalog.put_images(changed)
        if adopted:
            log.info("adopted %d thumbnails from their PNG metadata", adopted)

    def _collision_placed(self, path: Path, st: os.stat_result) -> str | None:
        """A collision newcomer's thumbnail moved into the tree: that decides it distinct."""
        parsed = parse_canonical(path.name)
        if parsed is None or parsed.variant is None:
            return None
        thumb = self._ours(path, st)
        if thumb is None or thumb.sha256 is None:
            return None
        return self.gestures.thumbnail_placed(path, thumb.sha256, thumb.name)

    def _ours(self, path: Path, st: os.stat_result) -> Thumbnail | None:
        thumb = self.adopter.examine(path, st)
        return thumb if thumb is not None and thumb.maker is Maker.WATCHERD else None

    def _name_for(self, thumb: Thumbnail, seen_as: str) -> str | None:
        """The canonical name of the image these chunks describe (its record's, if it has one).

        Two records can hold the same bytes (an exact collision decided ``distinct``: the
        plain name and its ``~sha12`` variant), and their thumbnails are then the same
        file; the name the file still carries (``X~sha12 (copy).png``) tells them apart,
        else the record none of whose places holds its thumbnail any more (it moved here).
        """
        catalog, places = self.ctx.catalog, self.ctx.places
        assert thumb.sha256 is not None
        stem = thumb.name[: -len(".png")]
        names = [
            n for n in catalog.names_with_sha256(thumb.sha256) if parse_canonical(n) is not None and n.startswith(stem)
        ]
        if len(names) > 1:
            named = sorted((n for n in names if seen_as.startswith(n[: -len(".png")])), key=len, reverse=True)
            if named:
                return named[0]
            for name in names:
                rec = catalog.image(name)
                if rec is not None and not any(os.path.lexists(places.absolute(p)) for p in rec.paths):
                    return name
        if names:
            return names[0]
        holder = catalog.image(thumb.name)
        if holder is None and catalog.near_holding(thumb.sha256) is not None:
            return None  # merged into another image by a near keep: a copy from before it (``_stale``)
        if holder is None or holder.sha256 == thumb.sha256:
            return thumb.name
        if holder.low_information:  # the same flat picture with other bytes takes a variant name
            return variant_name(thumb.name, thumb.sha256)
        return None
