"""New files published whole: written under a reserved temporary name, fsynced, then given
their name by a link that never replaces anything (``write_new``); written ahead of their
turn and published later by one link (``Staged``); taken back when the records that name
them roll back (``take_back``)."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path

from watcherd.fs import fsops

__all__ = ["Staged", "take_back", "write_new"]


def write_new(
    folder: Path,
    name: str,
    data: bytes,
    mtime_ns: int | None = None,
    before_publish: Callable[[], None] | None = None,
    sync_later: Callable[[int], None] | None = None,
    *,
    sync_folder: bool = True,
) -> Path:
    """Create ``folder/name`` with ``data``; raise FileExistsError if the name is taken.

    The bytes go to a temporary file that is fsynced before it is published, so the
    final name never shows a half-written file. Every step works relative to the
    folder opened once, so a folder renamed meanwhile keeps the file (under its new
    path) and never keeps the temporary. The folder is fsynced once the name is
    published, or, with ``sync_later``, handed (open) to it: a batch syncs each folder
    once, before the records that name its files commit. Without ``sync_folder`` the
    new name is made durable by the caller, who syncs the folder once for many files.
    """
    tmp = fsops.temp_path(Path(), ".png").name
    dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
        try:
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            if mtime_ns is not None:
                os.utime(tmp, ns=(mtime_ns, mtime_ns), dir_fd=dir_fd)
            if before_publish is not None:
                before_publish()
            fsops.link_no_replace(tmp, name, dir_fd, sync=False)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)
        if sync_later is not None:
            sync_later(dir_fd)
        elif sync_folder:
            with contextlib.suppress(OSError):
                os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return folder / name


class Staged:
    """A new file written and fsynced ahead of its turn under a reserved temporary name,
    its folder held open: publishing it later is one link, with no fsync of its data
    left to wait for. Unpublished, it is discarded (a crash's leftover is swept at the
    next start like every temporary of ours)."""

    def __init__(self, dir_fd: int, tmp: str) -> None:
        self.dir_fd: int | None = dir_fd
        self.tmp = tmp

    @classmethod
    def write(cls, folder: Path, data: bytes, mtime_ns: int | None) -> Staged:
        """Write and fsync ``data`` under a reserved temporary name in ``folder``."""
        tmp = fsops.temp_path(Path(), ".png").name
        dir_fd = os.open(folder, fsops.DIR_FLAGS)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            if mtime_ns is not None:
                os.utime(tmp, ns=(mtime_ns, mtime_ns), dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            os.close(dir_fd)
            raise
        return cls(dir_fd, tmp)

    def in_folder(self, folder: Path) -> bool:
        """Is it waiting in ``folder`` (the very folder, whatever it is called now)?"""
        if self.dir_fd is None:
            return False
        try:
            return os.path.samestat(os.fstat(self.dir_fd), os.stat(folder))
        except OSError:
            return False

    def publish(
        self,
        name: str,
        before_publish: Callable[[], None] | None = None,
        sync_later: Callable[[int], None] | None = None,
    ) -> None:
        """Give it the name ``name`` in its folder, failing with FileExistsError if that is taken;
        the folder is synced as ``write_new`` does."""
        if self.dir_fd is None:
            raise FileNotFoundError(errno.ENOENT, "already published or discarded", self.tmp)
        if before_publish is not None:
            before_publish()
        fsops.link_no_replace(self.tmp, name, self.dir_fd, sync=False)
        if sync_later is not None:
            sync_later(self.dir_fd)
        else:
            with contextlib.suppress(OSError):
                os.fsync(self.dir_fd)
        self.discard()

    def discard(self) -> None:
        """Remove the temporary name if it is still there, and let go of the folder (idempotent)."""
        dir_fd, self.dir_fd = self.dir_fd, None
        if dir_fd is None:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)


def take_back(path: Path, published: os.stat_result) -> bool:
    """Remove the file this process published at ``path``, if that very file is still there.

    For a publication whose records were rolled back: the file is ours only while it is
    the inode we linked (``published``); anything else at that name now is left alone.
    """
    return fsops.remove_same(path, published)
