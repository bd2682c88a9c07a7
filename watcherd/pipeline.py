"""One file in, one outcome out: the safe ingest, move and collision sequences.

The order of every ingest is what makes a crash at any moment recoverable:

1. the thumbnail is written under a temporary name, fsynced, and published under its
   canonical name without replacing anything (a name taken meanwhile is a collision);
2. the catalog record is committed, naming where the original is about to go
   (``original``) and where it still is (``moving_from``);
3. the original is moved (hard link, then unlink) and the record is committed again.

A restart that finds ``moving_from`` set finishes step 3; one that finds a thumbnail
with no record adopts it from its PNG text chunks and then treats the original as its
own. Nothing is decoded twice when it need not be, and nothing is ever replaced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, cast

from watcherd import fsops, imaging
from watcherd.catalog import Catalog, Record
from watcherd.config import Config
from watcherd.errors import ImageError
from watcherd.naming import (
    IMAGE_SUFFIXES,
    canonical_name,
    has_image_suffix,
    is_ignored,
    parse_canonical,
    safe_text,
    shown,
    tags_for,
    variant_name,
)

log = logging.getLogger("watcherd")


class Outcome(str, Enum):
    """What processing one path did."""

    INGESTED = "ingested"
    ADOPTED = "adopted"
    MOVED = "moved"
    UNCHANGED = "unchanged"
    COLLISION = "collision"
    IGNORED = "ignored"
    ERROR = "error"
    MISSING = "missing"
    DEFERRED = "deferred"


@dataclass(frozen=True)
class Result:
    """The outcome for one path; ``retry`` asks the caller to try again later."""

    outcome: Outcome
    path: Path
    name: str | None = None
    detail: str = ""
    retry: bool = False


@dataclass(frozen=True)
class Place:
    """Where a path sits: in the thumbs tree or in a source inbox, relative to that top."""

    area: str  # "tree" or "source"
    top: Path
    rel: PurePosixPath


@dataclass(frozen=True)
class _Image:
    """A decoded newcomer, ready to be published."""

    name: str
    width: int
    height: int
    hash: str
    sha256: str
    format: str
    png: bytes
    low_information: bool = False


Renderer = Callable[[bytes, imaging.RenderSpec, str, str, float], imaging.Rendered]


class Submitter(Protocol):
    """A renderer that can also start a job and return at once (sandbox.DecoderPool)."""

    workers: int

    def submit(
        self, data: bytes, spec: imaging.RenderSpec, filename: str, sha256: str, now: float
    ) -> Future[imaging.Rendered]: ...


@dataclass
class _Ahead:
    """A file read and handed to a decoder before its turn; valid while its stat is unchanged."""

    stamp: tuple[int, int, int]
    sha256: str
    future: Future[imaging.Rendered]


def spec_for(cfg: Config) -> imaging.RenderSpec:
    """The decoding settings of a config."""
    return imaging.RenderSpec(
        formats=cfg.formats,
        max_pixels=cfg.max_image_pixels,
        background=cfg.background,
        algorithm=cfg.hash.algorithm,
        hash_size=cfg.hash.size,
        thumbnail_size=cfg.thumbnail_size,
        decode=cfg.decode,
    )


def iso(ts: float) -> str:
    """UTC timestamp as ISO 8601 text, second precision."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


class Pipeline:
    """Turns paths into catalog changes for one library."""

    def __init__(
        self,
        cfg: Config,
        catalog: Catalog,
        now: Callable[[], float] = time.time,
        render: Renderer = imaging.render,
    ) -> None:
        assert cfg.root is not None
        self.cfg = cfg
        self.render = render
        self.spec = spec_for(cfg)
        self.catalog = catalog
        self.now = now
        self.root = cfg.root
        self._root_prefix = os.fspath(cfg.root).rstrip(os.sep) + os.sep
        self.thumbs = cfg.thumbs_dir
        self.originals = cfg.originals_dir
        self.collisions_dir = self.thumbs / cfg.collisions
        self._sources: dict[str, tuple[int, int]] | None = None
        self._ahead: dict[Path, _Ahead] = {}
        # Filled from the catalog export when a fresh catalog is being rebuilt.
        self.restore: dict[str, Record] = {}
        self.restore_collisions: list[Record] = []

    # -- locating -----------------------------------------------------------------

    def rel(self, path: Path) -> str:
        """Path relative to ROOT in POSIX form, as the catalog stores it."""
        text = os.fspath(path)
        if text.startswith(self._root_prefix) and os.sep == "/":
            return text[len(self._root_prefix) :]  # the common case, without pathlib's cost
        return Path(os.path.relpath(path, self.root)).as_posix()

    def place(self, path: Path) -> Place | None:
        """Classify a path; None for anything watcherd must leave alone."""
        for area, top in [("tree", self.thumbs), *(("source", s) for s in self.cfg.source_dirs)]:
            try:
                rel = PurePosixPath(Path(path).relative_to(top).as_posix())
            except ValueError:
                continue
            if not rel.parts or rel.parts[0] in (".", ".."):
                return None
            if area == "tree" and rel.parts[0] == self.cfg.collisions:
                return None
            if is_ignored(rel.parts, self.cfg.ignore):
                return None
            return Place(area, top, rel)
        return None

    # -- entry points ---------------------------------------------------------------

    def process(self, path: Path) -> Result:
        """Bring the catalog up to date with one file that appeared or changed."""
        path = Path(path)
        where = self.place(path)
        if where is None:
            return Result(Outcome.IGNORED, path)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return self.gone(path)
        except OSError as exc:
            return self._error(path, f"cannot stat: {exc.strerror}", None, transient=True)
        if not stat.S_ISREG(st.st_mode):
            return Result(Outcome.IGNORED, path, detail="not a regular file")
        parsed = parse_canonical(path.name) if where.area == "tree" else None
        if parsed is not None:
            result = self._canonical(path, where, st)
            if result is not None:
                return result
        if not has_image_suffix(path.name):
            log.debug("ignoring %s: not an image file name", shown(self.rel(path)))
            return Result(Outcome.IGNORED, path, detail="not an image file name")
        return self._ingest(path, where, st)

    def process_all(self, paths: Iterable[Path]) -> Generator[tuple[Path, Result], None, None]:
        """``process`` each path in order while the next few decode in parallel.

        Decoding is the only parallel part: every catalog write and file move still
        happens here, one path at a time and in order, so the write sequence of a
        single ingest is unchanged. Reads run at most ``2 x workers`` files ahead.
        """
        todo = list(paths)
        if not hasattr(self.render, "submit"):
            for path in todo:
                yield path, self.process(path)
            return
        pool = cast(Submitter, self.render)
        started = 0
        try:
            for i, path in enumerate(todo):
                while started < len(todo) and started <= i + 2 * pool.workers:
                    self._start_early(pool, todo[started])
                    started += 1
                yield path, self.process(path)
        finally:
            for ahead in self._ahead.values():
                ahead.future.cancel()
            self._ahead.clear()

    def _start_early(self, pool: Submitter, path: Path) -> None:
        """Read ``path`` and start decoding it, if ``process`` is going to want that."""
        where = self.place(path)
        if where is None or not has_image_suffix(path.name) or path in self._ahead:
            return
        if where.area == "tree" and parse_canonical(path.name) is not None:
            return  # a thumbnail: adopted or moved without decoding, rarely ingested
        try:
            st = os.lstat(path)
        except OSError:
            return
        if not stat.S_ISREG(st.st_mode) or st.st_size > self.cfg.max_file_size or self._skip(self.rel(path), st, where):
            return
        try:
            data = self._read(path)
        except ImageError:
            return  # ``process`` reads it again and says why
        sha = hashlib.sha256(data).hexdigest()
        future = pool.submit(data, self.spec, path.name, sha, self.now())
        self._ahead[path] = _Ahead((st.st_size, st.st_mtime_ns, st.st_ino), sha, future)

    def follow(self, paths: list[Path]) -> list[Path]:
        """Update the records of catalogued thumbnails among ``paths`` (a folder moved in).

        Records are fetched in one query and written with one commit: moved
        thumbnails are changes the tree itself proves again at the next scan, so
        nothing is lost if the daemon dies before that commit. Returns the paths
        that are not catalogued thumbnails, which need settling and decoding.
        """
        known = self.catalog.images_named([p.name for p in paths if parse_canonical(p.name) is not None])
        rest = []
        with self.catalog.one_commit():
            for path in paths:
                rec = known.get(path.name)
                where = self.place(path) if rec is not None else None
                if rec is None or where is None:
                    rest.append(path)
                    continue
                try:
                    st = os.lstat(path)
                except OSError:
                    continue  # gone again already
                self._canonical(path, where, st, rec)
        return rest

    def is_known_thumbnail(self, path: Path) -> bool:
        """A catalogued canonical name in the tree: moving it needs no decoding."""
        return parse_canonical(path.name) is not None and self.catalog.image(path.name) is not None

    def visited(self, path: Path) -> Result:
        """A thumbnail was moved to ``path``: add that folder's tags even if it moved on since."""
        where = self.place(path)
        if where is None or where.area != "tree" or not self.is_known_thumbnail(path):
            return Result(Outcome.IGNORED, path)
        if os.path.lexists(path):
            return self.process(path)
        rec = self.catalog.image(path.name)
        assert rec is not None
        tags = self._merge_tags(rec["tags"], where.rel.parent, rec)
        if tags == rec["tags"]:
            return Result(Outcome.UNCHANGED, path, path.name)
        rec["tags"] = tags
        self.catalog.put_image(rec)
        self.catalog.commit()
        log.info("passed through %s: tags=%s", shown(str(where.rel.parent)), ",".join(tags))
        return Result(Outcome.MOVED, path, path.name)

    def gone(self, path: Path) -> Result:
        """A path disappeared: a thumbnail that was there is now missing."""
        rel = self.rel(path)
        if self.catalog.error(rel) is not None and not os.path.lexists(path):
            self.catalog.clear_error(rel)
            self.catalog.commit()
        name = self.catalog.name_at(rel)
        if name is None or os.path.lexists(path):
            return Result(Outcome.IGNORED, path)
        rec = self.catalog.image(name)
        if rec is None or rec["path"] != rel or rec["state"] == "missing":
            return Result(Outcome.IGNORED, path)
        self.mark_missing(rec)
        self.catalog.commit()
        log.info("missing %s (%s)", shown(rel), name)
        return Result(Outcome.MISSING, path, name)

    def gone_dir(self, folder: Path) -> int:
        """A folder disappeared: every thumbnail recorded under it that is gone is missing."""
        prefix = self.rel(folder).rstrip("/") + "/"
        count = self.mark_gone((p, p[p.rfind("/") + 1 :]) for p in self.catalog.present_under(prefix))
        if count:
            log.info("missing %d thumbnails under %s", count, shown(prefix))
        return count

    def mark_gone(self, placed: Iterable[tuple[str, str]]) -> int:
        """Of these (path, name) pairs of present thumbnails, mark the ones no longer on disk missing."""
        count = 0
        for rel, name in placed:
            if os.path.lexists(self.root / rel):
                continue
            rec = self.catalog.image(name)
            if rec is not None and rec["state"] == "present" and rec["path"] == rel:
                self.mark_missing(rec)
                count += 1
        if count:
            self.catalog.commit()
        return count

    def mark_missing(self, rec: Record) -> None:
        """Record that a thumbnail is no longer where the catalog says."""
        rec.update(state="missing", last_seen=iso(self.now()))
        self.catalog.put_image(rec)

    # -- canonical files: moves, renames, adoption ----------------------------------

    def _canonical(self, path: Path, where: Place, st: os.stat_result, rec: Record | None = None) -> Result | None:
        rel = self.rel(path)
        rec = rec or self.catalog.image(path.name)
        if rec is None:
            adopted = self._adopt(path, st)
            if adopted is None:
                return None  # a user's file that only looks canonical: ingest it
            self.catalog.put_image(adopted)
            self.catalog.commit()
            log.info("adopted %s from its PNG metadata", shown(rel))
            return Result(Outcome.ADOPTED, path, path.name)
        if rec["path"] == rel and rec["state"] == "present":
            return Result(Outcome.UNCHANGED, path, path.name)
        old = rec["path"]
        if old != rel and os.path.lexists(self.root / old) and rec["state"] == "present":
            log.warning("%s is also at %s; following the newer place", path.name, shown(old))
        tags = self._merge_tags(rec["tags"], where.rel.parent, rec)
        rec.update(path=rel, state="present", tags=tags, last_seen=iso(self.now()))
        self.catalog.put_image(rec)
        self.catalog.commit()
        log.info("moved %s -> %s tags=%s", path.name, shown(str(where.rel.parent)), ",".join(tags))
        return Result(Outcome.MOVED, path, path.name)

    def _tag_folder(self, folder: Path) -> PurePosixPath:
        """A folder of the thumbs tree, relative to it: what its tags are read from."""
        return PurePosixPath(Path(os.path.relpath(folder, self.thumbs)).as_posix())

    def _merge_tags(self, old: list[str], folder: PurePosixPath, rec: Record) -> list[str]:
        size_tag = f"{rec['width']}x{rec['height']}"
        tags = list(old)
        for tag in [*tags_for(folder), size_tag]:
            if tag not in tags:
                tags.append(tag)
        return tags

    def _adopt(self, path: Path, st: os.stat_result) -> Record | None:
        """A record rebuilt from one of our thumbnails, or None if it is not ours."""
        parsed = parse_canonical(path.name)
        if parsed is None or st.st_size > self.cfg.max_file_size:
            return None
        try:
            text = imaging.read_text(path.read_bytes())
        except OSError:
            return None
        if not text.get("software", "").startswith("watcherd") or text.get("hash") != parsed.hash:
            return None
        where = self.place(path)
        folder = where.rel.parent if where is not None else PurePosixPath()
        now = iso(self.now())
        rec: Record = {
            "name": path.name,
            "hash": parsed.hash,
            "algorithm": text.get("hash_algorithm", self.cfg.hash.algorithm),
            "hash_size": int(text.get("hash_size", self.cfg.hash.size)),
            "decode": text.get("hash_decode", "reference"),
            "width": parsed.width,
            "height": parsed.height,
            "format": text.get("format"),
            "sha256": text.get("sha256"),
            "file_size": int(text["file_size"]) if text.get("file_size", "").isdigit() else None,
            "original_filename": text.get("original_filename"),
            "path": self.rel(path),
            "original": self._find_original(path.name),
            "moving_from": None,
            "source": False,
            "tags": [],
            "state": "present",
            "first_seen": text.get("ingested", now),
            "last_seen": now,
        }
        remembered = self.restore.pop(path.name, None)
        if remembered:
            original = remembered.get("original")
            if original and os.path.lexists(self.root / original):
                rec["original"] = original
                rec["source"] = bool(remembered.get("source"))
            rec["first_seen"] = remembered.get("first_seen") or rec["first_seen"]
            rec["tags"] = [t for t in remembered.get("tags") or [] if isinstance(t, str)]
        rec["tags"] = self._merge_tags(rec["tags"], folder, rec)
        return rec

    def _find_original(self, name: str) -> str | None:
        stem = name[: -len(".png")]
        for suffix in sorted(IMAGE_SUFFIXES):
            candidate = self.originals / f"{stem}{suffix}"
            if os.path.lexists(candidate):
                return self.rel(candidate)
        return None

    # -- new images -------------------------------------------------------------------

    def _known_sources(self) -> dict[str, tuple[int, int]]:
        if self._sources is None:
            self._sources = {}
            for rec in [*self.catalog.images(), *self.catalog.collisions()]:
                side = rec.get("newcomer", rec)
                if side.get("source") and side.get("source_stat"):
                    self._sources[side["original"]] = tuple(side["source_stat"])
        return self._sources

    def _skip(self, rel: str, st: os.stat_result, where: Place) -> Outcome | None:
        """An outcome that needs no decoding: a known bad file, or a source seen before."""
        stamp = (st.st_size, st.st_mtime_ns)
        err = self.catalog.error(rel)
        if err is not None and not err.get("transient") and (err["size"], err["mtime_ns"]) == stamp:
            return Outcome.IGNORED
        if where.area == "source" and self._known_sources().get(rel) == stamp:
            return Outcome.UNCHANGED
        return None

    def _ingest(self, path: Path, where: Place, st: os.stat_result) -> Result:
        rel = self.rel(path)
        skip = self._skip(rel, st, where)
        if skip is not None:
            return Result(skip, path, detail="already reported" if skip is Outcome.IGNORED else "")
        try:
            image = self._make(path, st)
        except ImageError as exc:
            if exc.transient and self._still_changing(path, st):
                log.debug("deferring %s: %s while the file is still changing", shown(rel), exc.reason)
                return Result(Outcome.DEFERRED, path, detail=exc.reason, retry=True)
            return self._error(path, exc.reason, st, transient=exc.transient)
        folder = path.parent if where.area == "tree" else self.thumbs
        try:
            return self._place_new(path, where, st, image, folder)
        except OSError as exc:
            return self._error(path, f"cannot write: {exc.strerror or exc}", st, transient=True)

    def _still_changing(self, path: Path, st: os.stat_result) -> bool:
        """Did the file change since ``st``, or was it written too recently to judge?

        A writer that pauses longer than ``settle`` between chunks leaves a file that
        looks truncated; that is not an error until the file has been quiet a while.
        """
        try:
            now_st = os.lstat(path)
        except OSError:
            return False
        if (now_st.st_size, now_st.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            return True
        return self.now() - now_st.st_mtime < max(5.0, 10 * self.cfg.settle)

    def _make(self, path: Path, st: os.stat_result) -> _Image:
        if st.st_size > self.cfg.max_file_size:
            raise ImageError(f"file too large ({st.st_size} bytes > max_file_size)")
        ahead = self._ahead.pop(path, None)
        if ahead is not None and ahead.stamp == (st.st_size, st.st_mtime_ns, st.st_ino):
            sha, out = ahead.sha256, ahead.future.result()
        else:
            if ahead is not None:
                ahead.future.cancel()
            data = self._read(path)
            sha = hashlib.sha256(data).hexdigest()
            out = self.render(data, self.spec, path.name, sha, self.now())
        name = canonical_name(out.width, out.height, out.hash)
        return _Image(name, out.width, out.height, out.hash, sha, out.format, out.png, out.low_information)

    def _read(self, path: Path) -> bytes:
        """The bytes of a regular file, never through a symlink, never blocking on a FIFO."""
        # O_NOFOLLOW and O_NONBLOCK: a name swapped for a symlink or a FIFO since the
        # lstat must neither lead outside the tree nor block the daemon.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            raise ImageError(f"cannot read: {exc.strerror or exc}", transient=True) from None
        try:
            with open(fd, "rb", buffering=0, closefd=True) as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    raise ImageError("not a regular file")
                data = fh.read(self.cfg.max_file_size + 1)
        except OSError as exc:
            raise ImageError(f"cannot read: {exc.strerror or exc}", transient=True) from None
        return data

    def _holder(self, name: str, folder: Path) -> Record | None:
        """The record owning ``name``: from the catalog, else adopted from a file in ``folder``."""
        rec = self.catalog.image(name)
        if rec is None and os.path.lexists(folder / name):
            rec = self._adopt(folder / name, os.lstat(folder / name))
            if rec is not None:
                self.catalog.put_image(rec)
                self.catalog.commit()
        return rec

    def _place_new(self, path: Path, where: Place, st: os.stat_result, image: _Image, folder: Path) -> Result:
        rec = self._holder(image.name, folder)
        if image.low_information and rec is not None and rec.get("sha256") != image.sha256:
            image = dataclasses.replace(image, name=variant_name(image.name, image.sha256))
            rec = self._holder(image.name, folder)
        if rec is not None and rec["sha256"] == image.sha256 and self._is_own(rec, path):
            return self._resume(path, where, st, image, folder, rec)
        if rec is None and not os.path.lexists(folder / image.name):
            try:
                fsops.write_new(folder, image.name, image.png, st.st_mtime_ns)
            except FileExistsError:
                pass  # the name appeared meanwhile: a collision with whatever is there
            else:
                rec = self._new_record(path, where, st, image, folder)
                return self._settle_original(path, where, st, image, rec, Outcome.INGESTED)
        return self._collide(path, where, st, image, rec, folder)

    def _is_own(self, rec: Record, path: Path) -> bool:
        """Is ``path`` the original this record was made from (or a stand-in for a lost one)?"""
        rel = self.rel(path)
        if rel in (rec.get("moving_from"), rec.get("original")):
            return True
        original = rec.get("original")
        return original is None or not os.path.lexists(self.root / original)

    def _new_record(self, path: Path, where: Place, st: os.stat_result, image: _Image, folder: Path) -> Record:
        now = iso(self.now())
        rec: Record = {
            "name": image.name,
            "hash": image.hash,
            "algorithm": self.cfg.hash.algorithm,
            "hash_size": self.cfg.hash.size,
            "decode": self.cfg.decode,
            "width": image.width,
            "height": image.height,
            "format": image.format,
            "sha256": image.sha256,
            "file_size": st.st_size,
            "original_filename": safe_text(path.name),
            "path": self.rel(folder / image.name),
            "original": None,
            "moving_from": None,
            "source": where.area == "source",
            "low_information": image.low_information,
            "tags": [],
            "state": "present",
            "first_seen": now,
            "last_seen": now,
        }
        rec["tags"] = self._merge_tags([], self._tag_folder(folder), rec)
        return rec

    def _resume(self, path: Path, where: Place, st: os.stat_result, image: _Image, folder: Path, rec: Record) -> Result:
        """The record already describes this very file: finish whatever was left undone."""
        if rec["state"] != "present" or not os.path.lexists(self.root / rec["path"]):
            with contextlib.suppress(FileExistsError):
                fsops.write_new(folder, image.name, image.png, st.st_mtime_ns)
            rec.update(path=self.rel(folder / image.name), state="present")
            rec["tags"] = self._merge_tags(rec["tags"], self._tag_folder(folder), rec)
        return self._settle_original(path, where, st, image, rec, Outcome.INGESTED)

    def _settle_original(
        self, path: Path, where: Place, st: os.stat_result, image: _Image, rec: Record, outcome: Outcome
    ) -> Result:
        """Record the image, then move its original out of the tree (sources stay put)."""
        rel = self.rel(path)
        rec["last_seen"] = iso(self.now())
        if where.area == "source":
            rec.update(original=rel, moving_from=None, source=True, source_stat=[st.st_size, st.st_mtime_ns])
            self._known_sources()[rel] = (st.st_size, st.st_mtime_ns)
            self.catalog.put_image(rec)
            self.catalog.clear_error(rel)
            self.catalog.commit()
        else:
            planned = self.originals / (image.name[: -len(".png")] + path.suffix.lower())
            rec.update(original=self.rel(planned), moving_from=rel, source=False)
            self.catalog.put_image(rec)
            self.catalog.clear_error(rel)
            self.catalog.commit()
            self.finish_move(rec, self.catalog.put_image)
        log.info("%s %s -> %s", outcome.value, shown(rel), shown(rec["path"]))
        return Result(outcome, path, rec["name"])

    def finish_move(self, rec: Record, save: Callable[[Record], None]) -> None:
        """Move an original from ``moving_from`` to (about) ``original``; commit the result."""
        side = rec.get("newcomer", rec)
        src_rel = side.get("moving_from")
        if not src_rel:
            return
        src = self.root / src_rel
        planned = self.root / side["original"]
        astray = False
        if os.path.lexists(src):
            try:
                before = os.lstat(src)
                dst = fsops.move_no_replace(src, planned.parent, planned.name)
                after = os.lstat(dst)
            except FileNotFoundError:
                astray = True  # gone between the look and the move
            except OSError as exc:
                log.error("cannot move original %s: %s (will retry)", shown(src_rel), exc)
                return
            else:
                if before.st_nlink > 1 and after.st_ino != before.st_ino:
                    log.warning(
                        "%s had %d hard links and was copied across filesystems: its other names are now a copy",
                        shown(src_rel),
                        before.st_nlink,
                    )
                side["original"] = self.rel(dst)
        elif not os.path.lexists(planned):
            astray = True
        if astray:
            # Moved away (a folder renamed, say) before we could file it. A record
            # without an original adopts these bytes when they are seen again.
            log.info("original of %s left %s before it was filed; waiting to see it again", rec["name"], shown(src_rel))
            side["original"] = None
        side["moving_from"] = None
        save(rec)
        self.catalog.commit()

    # -- collisions -------------------------------------------------------------------

    def _collide(
        self, path: Path, where: Place, st: os.stat_result, image: _Image, rec: Record | None, folder: Path
    ) -> Result:
        rel = self.rel(path)
        existing_thumb = rec["path"] if rec is not None else self.rel(folder / image.name)
        kind = "exact" if rec is not None and rec.get("sha256") == image.sha256 else "perceptual"
        stem = image.name[: -len(".png")]
        label = f"{stem}~{image.sha256[:12]}"
        same_name = self.catalog.collisions_named(image.name)
        if where.area == "tree":
            unfiled = self._unfiled_collision(image, same_name)
            if unfiled is not None:
                return self._refile_collision(path, image, unfiled, label)
        self.collisions_dir.mkdir(parents=True, exist_ok=True)
        thumb = self._publish_collision_thumb(label, image, st)
        ids = {c["id"] for c in same_name}  # ids start with the name's stem
        cid = label
        n = 2
        while cid in ids:
            cid, n = f"{label}~{n}", n + 1
        newcomer: dict[str, Any] = {
            "thumbnail": self.rel(thumb),
            "sha256": image.sha256,
            "filename": safe_text(path.name),
            "source": where.area == "source",
        }
        if where.area == "source":
            newcomer.update(original=rel, moving_from=None, source_stat=[st.st_size, st.st_mtime_ns])
            self._known_sources()[rel] = (st.st_size, st.st_mtime_ns)
        else:
            planned = self.originals / self.cfg.collisions / f"{label}{path.suffix.lower()}"
            newcomer.update(original=self.rel(planned), moving_from=rel)
        record: Record = {
            "id": cid,
            "name": image.name,
            "kind": kind,
            "detected": iso(self.now()),
            "existing": {
                "thumbnail": existing_thumb,
                "original": rec.get("original") if rec else None,
                "sha256": rec.get("sha256") if rec else None,
            },
            "newcomer": newcomer,
        }
        self.catalog.put_collision(record)
        self.catalog.clear_error(rel)
        self.catalog.commit()
        self.finish_move(record, self.catalog.put_collision)
        log.warning(
            "collision (%s) %s has the same name as %s; kept as %s",
            kind,
            shown(rel),
            shown(existing_thumb),
            shown(newcomer["thumbnail"]),
        )
        return Result(Outcome.COLLISION, path, image.name, detail=kind)

    def _unfiled_collision(self, image: _Image, same_name: list[Record]) -> Record | None:
        """A recorded collision of these very bytes whose original went astray before filing.

        Its newcomer is this file seen again (after a folder rename, say): it must be
        filed under that record, not recorded as a collision a second time.
        """
        for col in same_name:
            new = col["newcomer"]
            if new.get("sha256") != image.sha256 or new.get("source"):
                continue
            original = new.get("original")
            src = new.get("moving_from")
            astray = original is None or (
                not os.path.lexists(self.root / original) and (not src or not os.path.lexists(self.root / src))
            )
            if astray:
                return col
        return None

    def _refile_collision(self, path: Path, image: _Image, col: Record, label: str) -> Result:
        rel = self.rel(path)
        planned = self.originals / self.cfg.collisions / f"{label}{path.suffix.lower()}"
        col["newcomer"].update(original=self.rel(planned), moving_from=rel)
        self.catalog.put_collision(col)
        self.catalog.clear_error(rel)
        self.catalog.commit()
        self.finish_move(col, self.catalog.put_collision)
        log.info("filed %s as the original of collision %s", shown(rel), col["id"])
        return Result(Outcome.COLLISION, path, image.name, detail=col["kind"])

    def _publish_collision_thumb(self, label: str, image: _Image, st: os.stat_result) -> Path:
        for n in range(1, 10_000):
            name = f"{label}.png" if n == 1 else f"{label}~{n}.png"
            target = self.collisions_dir / name
            if os.path.lexists(target):
                continue
            try:
                return fsops.write_new(self.collisions_dir, name, image.png, st.st_mtime_ns)
            except FileExistsError:
                continue
        raise OSError("no free name in the collisions folder")

    # -- errors -----------------------------------------------------------------------

    def _error(self, path: Path, reason: str, st: os.stat_result | None, *, transient: bool) -> Result:
        rel = self.rel(path)
        now = iso(self.now())
        old = self.catalog.error(rel)
        size = st.st_size if st else None
        mtime_ns = st.st_mtime_ns if st else None
        rec = {
            "path": rel,
            "reason": reason,
            "transient": transient,
            "size": size,
            "mtime_ns": mtime_ns,
            "first_seen": old["first_seen"] if old else now,
            "last_seen": now,
            "attempts": (old.get("attempts", 0) if old else 0) + 1,
        }
        self.catalog.put_error(rec)
        self.catalog.commit()
        if old is None or (old["reason"], old["size"], old["mtime_ns"]) != (reason, size, mtime_ns):
            log.warning("cannot ingest %s: %s", shown(rel), reason)
        return Result(Outcome.ERROR, path, detail=reason, retry=transient)
