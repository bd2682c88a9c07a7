"""Collisions: a newcomer whose canonical name is taken. Both sides are kept and recorded.

The newcomer's thumbnail goes to ``thumbs/_collisions/{stem}~{sha256[:12]}.png`` and its
original to ``originals/_collisions/``; the record names both sides. ``exact`` means
the same bytes, ``perceptual`` other bytes with the same size and hash.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path

from watcherd.core.collisionrecords import CollisionKind, CollisionRecord, Existing, Newcomer
from watcherd.core.naming import safe_text, shown
from watcherd.core.outcomes import Outcome, Result
from watcherd.core.places import Area, Place
from watcherd.core.records import ImageRecord
from watcherd.decide.decisions import Decisions
from watcherd.decode.newimage import NewImage, Renderer
from watcherd.filing.adopt import Maker, held
from watcherd.filing.context import Context
from watcherd.filing.originals import Filing
from watcherd.fs import fsops, publish
from watcherd.fs.folders import ident_of

log = logging.getLogger("watcherd")

# A newcomer's thumbnail as watcherd names it: the contested name's stem, ~sha256[:12], perhaps ~n.
LABEL_RE = re.compile(r"^(?P<stem>.+_)~(?P<sha12>[0-9a-f]{12})(?:~\d+)?\.png$")


def orphan_label(name: str, chunks_sha256: str | None) -> bool:
    """Is ``name`` a newcomer's thumbnail name that fits a thumbnail of the bytes ``chunks_sha256``?"""
    m = LABEL_RE.match(name)
    return m is not None and chunks_sha256 is not None and chunks_sha256.startswith(m["sha12"])


def own_newcomer_thumbnail(path: Path) -> bool:
    """Is ``path`` a newcomer's thumbnail watcherd made: its chunks say so and its sha256 fits its name?

    Only such a file in ``_collisions/`` may be taken back when no collision owns it.
    """
    return _own_newcomer_held(path) is not None


def remove_own_newcomer_thumbnail(path: Path) -> bool:
    """Remove ``path`` if it is a newcomer's thumbnail watcherd made (``own_newcomer_thumbnail``):
    the very file read and checked, never one put under its name since."""
    st = _own_newcomer_held(path)
    return st is not None and fsops.remove_same(path, st)


def _own_newcomer_held(path: Path) -> os.stat_result | None:
    found = held(path) if LABEL_RE.match(path.name) is not None else None
    if found is None:
        return None
    thumb, _, st = found
    return st if thumb.maker is Maker.WATCHERD and orphan_label(path.name, thumb.sha256) else None


class Collisions:
    """Records name clashes and files the newcomer's files under ``_collisions``."""

    def __init__(self, ctx: Context, filing: Filing, render: Renderer) -> None:
        self.ctx = ctx
        self.filing = filing
        self.decisions = Decisions(ctx, filing, render)

    def collide(
        self, path: Path, where: Place, st: os.stat_result, image: NewImage, rec: ImageRecord | None, folder: Path
    ) -> Result:
        """``image`` (from ``path``) wants a name that ``rec`` (or a file in ``folder``) holds."""
        places, catalog = self.ctx.places, self.ctx.catalog
        rel = places.rel(path)
        existing_thumb = rec.path if rec is not None else places.rel(folder / image.name)
        kind = CollisionKind.EXACT if rec is not None and rec.sha256 == image.sha256 else CollisionKind.PERCEPTUAL
        label = f"{image.name[: -len('.png')]}~{image.sha256[:12]}"
        same_name = catalog.collisions_named(image.name)
        if where.area is Area.TREE:
            decided = self.decisions.remembered(image.sha256, same_name)
            settled = self.decisions.again(path, image.sha256, decided) if decided is not None else None
            if settled is not None:
                return Result(Outcome.INGESTED, path, settled, detail="settled as decided before")
            unfiled = self._unfiled(image, same_name)
            if unfiled is not None:
                return self._refile(path, image, unfiled)
        places.collisions.mkdir(parents=True, exist_ok=True)
        # One label names the record, the thumbnail and the original; it is claimed by
        # publishing the thumbnail (which never replaces), so two newcomers never share it.
        thumb = self._publish_thumbnail(label, image, st, {c.id for c in same_name})
        cid = thumb.name[: -len(".png")]
        newcomer = Newcomer(
            thumbnail=places.rel(thumb),
            sha256=image.sha256,
            filename=safe_text(path.name),
            source=where.area is Area.SOURCE,
            dropped=places.rel(path.parent if where.area is Area.TREE else places.thumbs),
            dropped_id=ident_of(path.parent) if where.area is Area.TREE else None,
            keywords=list(image.keywords),
            keyword_paths=list(image.keyword_paths),
        )
        if where.area is Area.SOURCE:
            newcomer.original, newcomer.source_stat = rel, (st.st_size, st.st_mtime_ns)
        else:
            newcomer.original = self.filing.planned(cid, path.suffix, collision=True)
            newcomer.moving_from = rel
        existing = Existing(existing_thumb, rec.original, rec.sha256) if rec is not None else Existing(existing_thumb)
        record = CollisionRecord(cid, image.name, kind, self.ctx.stamp(), existing, newcomer)
        said = (
            f"collision ({kind.value}) {shown(rel)} has the same name as {shown(existing_thumb)}; "
            f"kept as {shown(newcomer.thumbnail or '')}"
        )
        with catalog.transaction():
            catalog.put_collision(record)
            catalog.clear_error(rel)
            catalog.after_commit(lambda: log.warning("%s", said))
        self.filing.file_collision(record)
        return Result(Outcome.COLLISION, path, image.name, detail=kind.value)

    def take_back_orphans(self) -> int:
        """Remove newcomers' thumbnails that no collision record owns; return how many.

        Only a batch stopped between publishing a newcomer's thumbnail and committing its
        record (SIGKILL, power loss) leaves one: its original was not moved (originals move
        after the commit), so it is ingested again and the collision recorded afresh under
        the same id. A file is removed only if it is watcherd's own (its chunks say so and
        its ``sha256`` fits the name); anything else in the folder is left alone.
        """
        folder = self.ctx.places.collisions
        try:
            names = sorted(e.name for e in os.scandir(folder) if e.is_file(follow_symlinks=False))
        except FileNotFoundError:
            return 0
        known: set[str] = set()
        for col in self.ctx.catalog.collisions():
            known.add(col.id)
            if col.newcomer.thumbnail:
                known.add(Path(col.newcomer.thumbnail).name[: -len(".png")])
        taken = 0
        for name in names:
            path = folder / name
            if name[: -len(".png")] in known:
                continue
            try:
                if not remove_own_newcomer_thumbnail(path):
                    continue
            except OSError as exc:
                log.warning("cannot take back %s: %s", shown(self.ctx.places.rel(path)), exc.strerror)
                continue
            taken += 1
            log.info("took back %s: an interrupted batch published it, no record owns it", shown(name))
        return taken

    def _unfiled(self, image: NewImage, same_name: list[CollisionRecord]) -> CollisionRecord | None:
        """An undecided collision of these very bytes whose original went astray before filing.

        Its newcomer is this file seen again (after a folder rename, say): it must be
        filed under that record, not recorded as a collision a second time. A decided one
        has none to file: its decision gave the original away (to the image ``distinct`` or
        ``keep-newcomer`` made, or set it aside), which ``remembered`` settles.
        """
        for col in same_name:
            new = col.newcomer
            if col.decision is not None or new.sha256 != image.sha256 or new.source:
                continue
            if self.decisions.newcomer_original_at(col) is None:  # at neither place: astray
                return col
        return None

    def _refile(self, path: Path, image: NewImage, col: CollisionRecord) -> Result:
        catalog = self.ctx.catalog
        rel = self.ctx.places.rel(path)
        col.newcomer.original = self.filing.planned(col.id, path.suffix, collision=True)
        col.newcomer.moving_from = rel
        with catalog.transaction():
            catalog.put_collision(col)
            catalog.clear_error(rel)
        self.filing.file_collision(col)
        log.info("filed %s as the original of collision %s", shown(rel), col.id)
        return Result(Outcome.COLLISION, path, image.name, detail=col.kind.value)

    def _publish_thumbnail(self, label: str, image: NewImage, st: os.stat_result, taken: set[str]) -> Path:
        """Publish the newcomer's thumbnail under the first free ``label``, ``label~2``… not in ``taken``."""
        folder = self.ctx.places.collisions
        for n in range(1, 10_000):
            name = f"{label}.png" if n == 1 else f"{label}~{n}.png"
            if name[: -len(".png")] in taken or os.path.lexists(folder / name):
                continue
            try:
                target = folder / name
                published = publish.write_new(
                    folder,
                    name,
                    image.png,
                    st.st_mtime_ns,
                    functools.partial(self.ctx.checkpoint, "publishing", target),
                    self.ctx.sync_later,
                )
                self.ctx.published(published)
                return published
            except FileExistsError:
                continue
        raise OSError("no free name in the collisions folder")
