"""Tags that travel: an XMP sidecar beside each original and ``user.xdg.tags`` on each file,
kept current by the one writer.

The catalog marks an image due, by a trigger in the same statement, whenever a change of
its record touches what these are made from (its tags, keywords, places, original); see
``schema.create_tagfiles_due``. After every commit the writer (``TagFiles.committed``)
brings the files of the newly marked images up to date and then clears their marks, so a
crash between a commit and the files leaves the marks, and the next start finishes the
job: every full reconcile begins a pass over the marks left (``begin``, then
``catch_up``: the first chunk at once, the rest between the daemon's events, all of it
before ``scan`` exits). A commit that marked more than a chunk hands the rest to that
pass too, so a folder of 10,000 renamed has its records followed at once and its files
a chunk at a time between events. An image whose original is
still on its way (``moving_from``), or whose decision's thumbnail steps are not done yet,
waits for the commit that completes them.

The sidecar (``originals/{name}.{ext}.xmp``) is written under a temporary name, fsynced
and renamed into place. It is watcherd's to replace, but never blindly: what is there is
read first (``xmp.sidecar`` keeps every keyword watcherd did not write, and everything
else in it), and if the file changes between that read and the rename it is read again.
One that cannot be read safely (``xmp.Refused``) is left as it is, with one log line.

The attribute ``user.xdg.tags`` (freedesktop: comma-separated) goes on every thumbnail
of the image and on its original, merged the same way: ``user.watcherd.tags`` remembers
what watcherd put there, so a tag added in Dolphin stays. A filesystem without user
extended attributes (FAT, some shares) costs one log line, once; nothing fails.

Nothing is ever written into a source inbox: a source original gets neither.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from watcherd.core import xmp
from watcherd.core.keywords import keyword_lists, xattr_tags, xattr_value
from watcherd.core.naming import shown
from watcherd.fs import fsops, publish
from watcherd.fs.sidecars import SIDECAR_SUFFIX, read_bounded, sidecar_of

if TYPE_CHECKING:
    from watcherd.catalog import Catalog
    from watcherd.core.config import Config
    from watcherd.core.records import ImageRecord

log = logging.getLogger("watcherd")

XATTR = "user.xdg.tags"
XATTR_OURS = "user.watcherd.tags"  # what watcherd last wrote into user.xdg.tags
META = "tagfiles"  # meta key: the settings (and format) the files were last made with
FORMAT = 1  # bumped when what is written changes: every image is marked again
CHUNK = 500  # images brought up to date per commit of their marks
# ... when nothing waits behind them (a scan's last pass, before it exits): a commit per 500
# was a second of the 100,000 a restored library's adoption marks.
LAST_PASS_CHUNK = 5000
_STEPS = "decision_steps"  # journal.STEPS (not imported: the journal imports the pipeline's modules)
_UNSUPPORTED = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


class TagFiles:
    """The writer's side: sidecars and extended attributes brought up to date after each commit."""

    def __init__(self, cfg: Config, catalog: Catalog) -> None:
        from watcherd.core.places import Places  # here: the decoders import this module for ``beside``

        self.cfg = cfg
        self.catalog = catalog
        self.places = Places(cfg)
        self.seen = catalog.tagfile_marks_end()  # older marks are ``finish``'s
        self.waiting: set[str] = set()  # marked, but an original or a decision's steps are under way
        self.backlog: int | None = None  # where the pass over older marks is (None: no pass under way)
        self._passed = 0
        self._busy = False
        self._synced: set[Path] = set()
        self._no_xattrs: set[int] = set()  # devices without user extended attributes
        self._said: set[str] = set()

    # -- when -------------------------------------------------------------------------

    def committed(self) -> None:
        """After a commit: the images it marked (and those waiting) brought up to date."""
        if self._busy:
            return
        self._busy = True
        try:
            steps = bool(self.catalog.meta(_STEPS))
            while marks := self.catalog.tagfile_marks(self.seen, CHUNK):
                self.seen = marks[-1][0]
                self.waiting.update(name for _, name in marks)
                if steps:
                    continue
                self._bring(sorted(self.waiting), self.seen)
                if len(marks) == CHUNK:
                    self._hand_over()
                    break
            if self.waiting and not steps:
                self._bring(sorted(self.waiting), self.seen)
        finally:
            self._busy = False

    def _hand_over(self) -> None:
        """A commit that marked more than a chunk (a folder of 10,000 renamed, a big retag): its first
        chunk is done; the rest joins the pass ``catch_up`` goes on with, between the daemon's events
        and before a scan or a command exits, so the next change is not held up behind it."""
        end = self.catalog.tagfile_marks_end()
        if end <= self.seen:
            return
        if self.backlog is None:
            self.backlog, self._passed = self.seen, 0
        self.seen = end

    def begin(self) -> None:
        """Start a pass over every image still marked (``catch_up`` does the work); after a change of
        settings every image is marked first. At the start of every full reconcile: a crash between
        a commit and the files, or a write that failed (a full disk), is finished by that pass."""
        wanted = {"format": FORMAT, "sidecars": self.cfg.sidecars, "xattr_tags": self.cfg.xattr_tags}
        had = self.catalog.meta(META) or {}
        if had != wanted:
            more = had.get("format") != FORMAT or (
                (wanted["sidecars"] != "none" and had.get("sidecars") != wanted["sidecars"])
                or (wanted["xattr_tags"] and not had.get("xattr_tags"))
            )
            self._busy = True  # the marks are the pass's, not the listener's
            try:
                with self.catalog.transaction():
                    if more:
                        self.catalog.mark_all_tagfiles()
                    self.catalog.set_meta(META, wanted)
            finally:
                self._busy = False
        self.backlog, self._passed = 0, 0

    def catch_up(self, limit: int | None = None) -> int:
        """Go on with the pass ``begin`` started: at most ``limit`` marks (None: all of them); how many
        images were brought up to date. The daemon calls it between events, a chunk at a time, so a
        library marked whole (its first start with sidecars) never holds up the files dropped meanwhile."""
        if self.backlog is None or self._busy:
            return 0
        self._busy = True
        done = 0
        try:
            left = limit
            while left is None or left > 0:
                marks = self.catalog.tagfile_marks(self.backlog, LAST_PASS_CHUNK if left is None else min(CHUNK, left))
                if not marks:
                    if self._passed:
                        log.info("brought the sidecars and tags of %d images up to date", self._passed)
                    self.backlog = None
                    break
                self.backlog = marks[-1][0]
                names = sorted({name for _, name in marks})
                self.waiting.difference_update(names)
                done += self._bring(names, self.backlog)
                left = None if left is None else left - len(marks)
            self.seen = max(self.seen, self.backlog or 0)
            self._passed += done
            return done
        finally:
            self._busy = False

    def _bring(self, names: list[str], through: int) -> int:
        """Write the files of ``names``; clear the marks (up to ``through``) of those that now match."""
        records = self.catalog.images_named(names)
        done: list[str] = []
        for name in names:
            rec = records.get(name)
            if rec is not None and rec.moving_from:
                self.waiting.add(name)  # its original is on its way: the commit that files it marks it again
                continue
            self.waiting.discard(name)
            if rec is None or self.write(rec):
                done.append(name)
        for folder in self._synced:
            fsops.fsync_dir(folder)
        self._synced.clear()
        if done:
            self.catalog.clear_tagfile_marks(done, through)
        return len(done)

    # -- what -------------------------------------------------------------------------

    def write(self, rec: ImageRecord) -> bool:
        """The sidecar and attributes of ``rec`` as its record says; False when the sidecar must be tried again."""
        places = self.places
        original = places.absolute(rec.original) if rec.original and not rec.source else None
        if original is not None and not os.path.lexists(original):
            original = None  # gone astray: nothing to put a sidecar beside
        ok = True
        if self.cfg.sidecars == "xmp" and original is not None:
            ok = self._sidecar(rec, sidecar_of(original))
        if self.cfg.xattr_tags:
            value = xattr_value(rec.tags, rec.size_tag)
            for path in [*(places.absolute(p) for p in rec.paths), *([original] if original else [])]:
                self._xattr(path, value)
        return ok

    def facts(self, rec: ImageRecord) -> xmp.SidecarFacts:
        """What ``rec``'s sidecar says."""
        folders = [self._folder(p) for p in (rec.paths or ([rec.path] if rec.path else []))]
        lists = keyword_lists(rec.tags, rec.size_tag, folders, rec.keyword_paths)
        return xmp.SidecarFacts(rec.name, rec.hash, rec.sha256, lists, tuple(rec.keywords))

    def _folder(self, rel: str) -> tuple[str, ...]:
        parent = self.places.absolute(rel).parent
        return tuple(p for p in self.places.tag_folder(parent).parts if p not in (".", ""))

    def _sidecar(self, rec: ImageRecord, path: Path) -> bool:
        rel = self.places.rel(path)
        facts = self.facts(rec)
        for _ in range(3):
            stamp = fsops.identity(path)
            try:
                existing = read_bounded(path) if stamp is not None else None
            except OSError as exc:
                self._once("read", "cannot read sidecar %s: %s (not updated)", rel, str(exc.strerror or exc))
                return False
            try:
                document = xmp.sidecar(existing, facts)
            except xmp.Refused as exc:
                log.warning("left the sidecar %s as it is: %s (watcherd's tags are not in it)", shown(rel), exc.reason)
                return True  # marked again by the next change of its tags
            if document == existing:
                return True
            try:
                if existing is None:  # the folder is synced once for the batch (``_bring``)
                    publish.write_new(path.parent, path.name, document, sync_folder=False)
                elif not self._replace(path, document, stamp):
                    continue  # changed while it was read: read it again
            except FileExistsError:
                continue  # another tool made it meanwhile: merge with that
            except OSError as exc:
                self._once("write", "cannot write sidecar %s: %s (will retry)", rel, str(exc.strerror or exc))
                return False
            self._synced.add(path.parent)
            return True
        log.warning("the sidecar %s keeps changing under watcherd; it is brought up to date later", shown(rel))
        return False

    def _replace(self, path: Path, document: bytes, stamp: tuple[int, int, int] | None) -> bool:
        """Write ``document`` under a temporary name, fsync it, and rename it over ``path`` if ``path``
        is still the file that was read (``stamp``); False (nothing replaced) if it changed."""
        tmp = fsops.temp_path(path.parent, SIDECAR_SUFFIX)
        try:
            with open(tmp, "xb") as fh:
                fh.write(document)
                fh.flush()
                os.fsync(fh.fileno())
            if fsops.identity(path) != stamp:
                return False
            os.replace(tmp, path)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _xattr(self, path: Path, value: str) -> None:
        """``user.xdg.tags`` of ``path``: watcherd's tags, plus whatever others put there."""
        try:
            st = os.lstat(path)
        except OSError:
            return
        if st.st_dev in self._no_xattrs or not stat.S_ISREG(st.st_mode):
            return
        try:
            current = _getxattr(path, XATTR)
            # No user.xdg.tags: no one else's tags to tell from ours, so what watcherd wrote last
            # need not be read, only written (a thumbnail new to the library has neither).
            before = _getxattr(path, XATTR_OURS) if current is not None else _UNREAD
            ours = xattr_tags(value)
            others = [t for t in xattr_tags(current or "") if t not in xattr_tags(before or "")]
            merged = ",".join([*ours, *(t for t in others if t not in ours)])
            _setxattr(path, XATTR, merged, current)
            _setxattr(path, XATTR_OURS, value, before)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                self._no_xattrs.add(st.st_dev)
                self._once(
                    "xattrs",
                    "the filesystem of %s has no user extended attributes: tags are not written to files there "
                    "(xattr_tags: false says so once and for all)",
                    self.places.rel(path),
                )
                return
            self._once(f"xattr {exc.errno}", "cannot set user.xdg.tags on %s: %s", self.places.rel(path), exc.strerror)

    def _once(self, key: str, message: str, *args: object) -> None:
        """Log ``message`` once per ``key`` (a repeat goes to the debug log): a share without
        attributes, or a full disk, must not write a line per file."""
        shown_args = tuple(shown(a) if isinstance(a, str) else a for a in args)
        if key in self._said:
            log.debug(message, *shown_args)
            return
        self._said.add(key)
        log.warning(message, *shown_args)


def _getxattr(path: Path, name: str) -> str | None:
    if not hasattr(os, "getxattr"):
        raise OSError(errno.ENOTSUP, "extended attributes are not supported on this platform")
    try:
        return os.getxattr(path, name, follow_symlinks=False).decode("utf-8", "replace")
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            return None
        raise


# ``current`` for ``_setxattr`` when the attribute was not read: it is set (or removed) as it is.
_UNREAD = "\0unread"


def _setxattr(path: Path, name: str, value: str, current: str | None) -> None:
    """Set (or, empty, remove) one attribute, only when it changes: an unchanged file is not touched."""
    if value == (current or ""):
        return
    if value:
        os.setxattr(path, name, value.encode("utf-8"), follow_symlinks=False)
    else:
        with contextlib.suppress(OSError):
            os.removexattr(path, name, follow_symlinks=False)


def attach(cfg: Config, catalog: Catalog) -> TagFiles:
    """The catalog's TagFiles for ``cfg``, made and listening after every commit the first time it is
    asked for (several pipelines of one process share it)."""
    listener = catalog.listener("tagfiles")
    owner = getattr(listener, "__self__", None)
    if isinstance(owner, TagFiles) and owner.cfg == cfg:
        return owner
    files = TagFiles(cfg, catalog)
    catalog.listen("tagfiles", files.committed)
    return files
