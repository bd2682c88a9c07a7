"""A new file becomes a ``NewImage``: its bytes read safely, hashed, decoded and thumbnailed.

Decoding is the only slow step and the only parallel one: with a decoder pool
(``sandbox.DecoderPool``), files are read and handed to a worker before their turn,
and an early result is used only if the file's size, mtime and inode are unchanged
when its turn comes. A staging thread writes and fsyncs each early result's thumbnail
under a reserved temporary name in its folder, so the writer only links it. Everything
else (publishing, recording, moving) stays on the one writer, in order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from watcherd.core.config import Config
from watcherd.core.errors import ImageError
from watcherd.core.exif import Exif
from watcherd.core.naming import canonical_name, shown
from watcherd.core.records import Json
from watcherd.decode.rendered import Rendered, RenderSpec
from watcherd.fs import publish, sidecars

log = logging.getLogger("watcherd")


class Renderer(Protocol):
    """Bytes of an original (and of an XMP sidecar dropped beside it) in, a Rendered out:
    ``imaging.render`` itself, or a sandbox running it (``decoders``)."""

    def __call__(
        self, data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes = b"", /
    ) -> Rendered: ...


class Submitter(Protocol):
    """A renderer that can also start a job and return at once (``sandbox.DecoderPool``)."""

    workers: int

    def __call__(
        self, data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes = b"", /
    ) -> Rendered: ...

    def submit(
        self, data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes = b"", /
    ) -> Future[Rendered]: ...


@dataclass(frozen=True)
class NewImage:
    """A decoded newcomer, ready to be published."""

    name: str
    width: int
    height: int
    hash: str
    sha256: str
    format: str
    png: bytes
    low_information: bool = False
    keywords: tuple[str, ...] = ()  # tags given by the photo's own keywords (and its dropped sidecar's)
    keyword_paths: tuple[str, ...] = ()  # the hierarchies among them (``a|b``)
    staged: publish.Staged | None = None  # the thumbnail already written and fsynced (see ``ImageReader.prefetch``)
    crops: str = ""  # window hashes (``core.crops.join``), kept in the record
    exif: Exif | None = None  # what the keeper rule reads of its EXIF, kept in the record


def spec_for(cfg: Config) -> RenderSpec:
    """The decoding settings of a config."""
    return RenderSpec(
        formats=cfg.formats,
        max_pixels=cfg.max_image_pixels,
        background=cfg.background,
        algorithm=cfg.hash.algorithm,
        hash_size=cfg.hash.size,
        thumbnail_size=cfg.thumbnail_size,
        decode=cfg.decode,
        keywords=cfg.import_keywords,
    )


def library_spec(cfg: Config, pinned: Json | None) -> RenderSpec:
    """The decoding settings that name images in a library: ``pinned`` (its catalog's ``library``
    meta) wins over the config's hash settings. A library pinned before the decode mode was
    pinned was named in reference mode."""
    spec = spec_for(cfg)
    if not pinned:
        return spec
    return dataclasses.replace(
        spec,
        algorithm=pinned.get("algorithm", spec.algorithm),
        hash_size=pinned.get("hash_size", spec.hash_size),
        decode=pinned.get("decode", "reference"),
    )


def read_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file, never through a symlink, never blocking on a FIFO."""
    return read_stamped(path, limit, check=False)[0]


def read_stamped(path: Path, limit: int, *, check: bool = True) -> tuple[bytes, tuple[int, int]]:
    """``read_file``, with the file's (size, mtime_ns) as read; with ``check``, a file
    that changed while it was read is an ImageError (transient)."""
    # O_NOFOLLOW and O_NONBLOCK: a name swapped for a symlink or a FIFO since the
    # lstat must neither lead outside the tree nor block the daemon.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror or exc}", transient=True) from None
    try:
        with open(fd, "rb", buffering=0, closefd=True) as fh:
            before = os.fstat(fh.fileno())
            if not stat.S_ISREG(before.st_mode):
                raise ImageError("not a regular file")
            data = fh.read(limit + 1)
            stamp = (before.st_size, before.st_mtime_ns)
            if check:
                after = os.fstat(fh.fileno())
                if (after.st_size, after.st_mtime_ns) != stamp:
                    raise ImageError("the file changed while it was read", transient=True)
            return data, stamp
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror or exc}", transient=True) from None


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


@dataclass(frozen=True)
class Fetched:
    """A file read and rendered elsewhere (a cluster worker), as that reader saw it.

    ``stamp`` is the (size, mtime_ns) the reader read (None when it could not say);
    ``error`` is (reason, transient) when there is no ``rendered``.
    """

    stamp: tuple[int, int] | None
    sha256: str
    rendered: Rendered | None
    error: tuple[str, bool] | None = None


class Pending(Protocol):
    """A file on its way to a remote decoder."""

    def result(self) -> Fetched:
        """Wait for the answer (``errors.StopWork`` when the remote is gone)."""
        ...

    def cancel(self) -> None:
        """The answer is no longer wanted."""
        ...


class Remote(Protocol):
    """Decoders that open files by path themselves (``cluster.ClusterDecoder``)."""

    lookahead: int

    def submit(self, path: Path) -> Pending:
        """Send ``path`` off for decoding (perhaps only when its batch fills up)."""
        ...


@dataclass
class _Ahead:
    """A file read and handed to a decoder before its turn; valid while its stat is unchanged.

    ``staged``: its thumbnail, written and fsynced by the staging thread once decoded,
    so the writer only has to link it; ``dropped``: no longer wanted (then a thumbnail
    staged for it is removed, by whichever side comes last, under the decoder's lock).
    """

    stamp: tuple[int, int, int]
    sha256: str
    future: Future[Rendered]
    staging: Future[None] | None = None
    staged: publish.Staged | None = None
    dropped: bool = False


class ImageReader:
    """Reads and renders newcomers, in this process or in a pool of sandboxed workers."""

    def __init__(self, cfg: Config, render: Renderer, now: Callable[[], float], remote: Remote | None = None) -> None:
        self.cfg = cfg
        self.render = render
        self.pool: Submitter | None = render if hasattr(render, "submit") else None  # type: ignore[assignment]
        self.remote = remote
        self.spec = spec_for(cfg)
        self.now = now
        self._ahead: dict[Path, _Ahead] = {}
        self._sent: dict[Path, tuple[tuple[int, int], Pending]] = {}
        self.remote_used = 0  # answers from the remote decoders used as they came
        self._coarse_said = False
        self._stager: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def lookahead(self) -> int:
        """How many files may be read ahead of the writer (0 without a pool)."""
        if self.remote is not None:
            return self.remote.lookahead
        return 2 * self.pool.workers if self.pool is not None else 0

    def prefetch(self, path: Path, st: os.stat_result, stage_in: Path | None = None) -> None:
        """Read ``path`` and start decoding it in the pool, for ``make`` to pick up later.

        With ``stage_in`` (the folder its thumbnail will be published in), a thread then
        writes and fsyncs the thumbnail there under a reserved temporary name, so the
        writer's turn is a link: the fsyncs of a burst overlap the writer's other work
        instead of adding to it, and a thumbnail is still never published before its
        bytes are on disk.
        """
        if self.remote is not None:
            if path not in self._sent:
                self._sent[path] = ((st.st_size, st.st_mtime_ns), self.remote.submit(path))
            return
        if self.pool is None or path in self._ahead:
            return
        try:
            data = read_file(path, self.cfg.max_file_size)
        except ImageError:
            return  # ``make`` reads it again and says why
        sha = hashlib.sha256(data).hexdigest()
        future = self.pool.submit(data, self.spec, path.name, sha, self.now(), self._sidecar(path))
        ahead = self._ahead[path] = _Ahead(_stamp(st), sha, future)
        if stage_in is not None:
            if self._stager is None:
                self._stager = ThreadPoolExecutor(max(1, self.lookahead), thread_name_prefix="watcherd-stage")
            ahead.staging = self._stager.submit(self._stage, ahead, stage_in, st.st_mtime_ns)

    def _stage(self, ahead: _Ahead, folder: Path, mtime_ns: int) -> None:
        """In the staging thread: once decoded, write and fsync the thumbnail (no harm if it fails:
        the writer then writes it itself)."""
        try:
            png = ahead.future.result().png
        except BaseException:
            return
        with self._lock:
            if ahead.dropped:
                return
        try:
            staged = publish.Staged.write(folder, png, mtime_ns)
        except OSError:
            return
        with self._lock:
            if ahead.dropped:
                staged.discard()
            else:
                ahead.staged = staged

    def _drop(self, ahead: _Ahead) -> None:
        """``ahead`` is not wanted: cancel its decode, remove a thumbnail staged for it."""
        ahead.future.cancel()
        with self._lock:
            ahead.dropped = True
            staged, ahead.staged = ahead.staged, None
        if staged is not None:
            staged.discard()

    def _picked(self, ahead: _Ahead) -> publish.Staged | None:
        """The thumbnail staged for ``ahead``, now that its turn has come (None: not staged)."""
        if ahead.staging is not None:
            with contextlib.suppress(CancelledError):
                ahead.staging.result()
        with self._lock:
            ahead.dropped = True  # taken: from here on the caller publishes or discards it
            staged, ahead.staged = ahead.staged, None
        return staged

    def _sidecar(self, path: Path) -> bytes:
        """The bytes of an XMP sidecar dropped beside ``path`` (b"" when there is none or keywords are not read)."""
        return sidecars.read_beside(path) if self.spec.keywords else b""

    def make(self, path: Path, st: os.stat_result) -> NewImage:
        """Decode ``path`` (as of ``st``) into a NewImage, or raise ImageError saying why not."""
        if st.st_size > self.cfg.max_file_size:
            raise ImageError(f"file too large ({st.st_size} bytes > max_file_size)")
        ahead = self._ahead.pop(path, None)
        fetched = self._fetched(path, st)
        staged: publish.Staged | None = None
        if fetched is not None:
            sha, out = fetched
        elif ahead is not None and ahead.stamp == _stamp(st):
            try:
                sha, out = ahead.sha256, ahead.future.result()
            except BaseException:
                self._drop(ahead)
                raise
            staged = self._picked(ahead)
        else:
            if ahead is not None:
                self._drop(ahead)
            data = read_file(path, self.cfg.max_file_size)
            sha = hashlib.sha256(data).hexdigest()
            out = self.render(data, self.spec, path.name, sha, self.now(), self._sidecar(path))
        rel = os.path.relpath(path, self.cfg.root) if self.cfg.root is not None else str(path)
        if out.warnings:
            log.warning("decoder warnings for %s: %s", shown(rel), "; ".join(out.warnings))
        if out.refused:
            log.warning("XMP of %s not read: %s; its other keywords are kept", shown(rel), shown(out.refused))
        name = canonical_name(out.width, out.height, out.hash)
        return NewImage(
            name,
            out.width,
            out.height,
            out.hash,
            sha,
            out.format,
            out.png,
            out.low_information,
            out.keywords,
            out.keyword_paths,
            staged,
            out.crops,
            out.exif,
        )

    def _fetched(self, path: Path, st: os.stat_result) -> tuple[str, Rendered] | None:
        """A remote answer for ``path`` if the file is as the remote read it (else decode here).

        The remote's inode is not compared: another mount may number files differently.
        Size and mtime (to the nanosecond) are, as the remote read them and as the writer
        sees the file now; a file the remote could not even stat answers with its error.
        """
        sent = self._sent.pop(path, None)
        if sent is None:
            return None
        stamp, pending = sent
        got = pending.result()
        now = (st.st_size, st.st_mtime_ns)
        if got.stamp is None and got.error is not None and not got.error[1]:
            raise ImageError(got.error[0])  # it never got as far as reading (a worker died on it)
        if got.stamp != now or stamp != now:
            if got.stamp is not None and stamp == now and _coarser(got.stamp, now) and not self._coarse_said:
                self._coarse_said = True
                log.warning(
                    "cluster workers see file times at a coarser precision than this machine, so their "
                    "answers cannot be checked and files are decoded here (mount the share alike on both)"
                )
            return None
        if got.rendered is None:
            reason, transient = got.error or ("no answer", True)
            raise ImageError(reason, transient=transient)
        self.remote_used += 1
        return got.sha256, got.rendered

    def cancel_all(self) -> None:
        """Drop every early decode (the caller stopped before their turn)."""
        for ahead in self._ahead.values():
            self._drop(ahead)
        self._ahead.clear()
        if self._stager is not None:
            self._stager.shutdown(wait=False, cancel_futures=True)  # its thread ends once idle
            self._stager = None
        for _, pending in self._sent.values():
            pending.cancel()
        self._sent.clear()


def _coarser(remote: tuple[int, int], here: tuple[int, int]) -> bool:
    """The same size, and the remote's time is this one cut to the microsecond, millisecond or
    second: the remote's mount keeps times at a coarser precision (not a file that changed)."""
    size, ns = here
    return remote[0] == size and remote[1] != ns and any(remote[1] == ns - ns % unit for unit in (10**3, 10**6, 10**9))
