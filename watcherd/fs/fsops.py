"""Safe file operations: write under a temporary name, fsync, publish without replacing.

Nothing here ever replaces or deletes a file it did not create, with one exception
that is a move by definition: once an original has a durable second name in
``originals/``, its first name is unlinked.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from watcherd.core.filters import TEMP_PREFIX
from watcherd.core.naming import numbered

log = logging.getLogger("watcherd")

# Filesystems that cannot hard-link (FAT, some SMB and FUSE mounts) answer with one of these.
_NO_LINK = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS, errno.EACCES}
# Some FUSE clients (rclone's SMB mount) answer every link with EIO: a probe tells that
# from a real I/O error, once per filesystem.
_MAYBE_NO_LINK = {errno.EIO}
_linkless: dict[int, bool] = {}  # st_dev -> whether that filesystem was found unable to hard-link


def temp_path(folder: Path, suffix: str = "") -> Path:
    """A fresh reserved temporary name in ``folder`` (hidden, so every watcher skips it)."""
    return folder / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}{suffix}"


def absent(path: str | Path) -> bool:
    """Whether the filesystem says ``path`` does not exist. A name that cannot be looked
    up (EIO from a share that went away) is not absent: nothing is known about it."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def identity(path: str | Path) -> tuple[int, int, int] | None:
    """The inode, size and mtime of the file at ``path``, None when nothing is there: the same
    triple twice is the same file, unchanged (another written under its name differs)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # a folder on its way replaced by a file: nothing there either
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def open_held(path: Path) -> tuple[BinaryIO, os.stat_result]:
    """The regular file at ``path``, open (unbuffered), and the status of that very file: never
    through a symlink, never blocking on a FIFO; OSError when it cannot be opened or is no
    regular file. The caller closes it."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    fh = open(fd, "rb", buffering=0, closefd=True)  # noqa: SIM115 - handed to the caller
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
    except BaseException:
        fh.close()
        raise
    return fh, st


def read_held(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """At most ``limit + 1`` bytes of the regular file at ``path`` and the status of that very
    file, as it was opened (``open_held``); OSError when it cannot be read. What is decided from
    the bytes is decided of that file (``remove_same``)."""
    fh, st = open_held(path)
    with fh:
        # As much as the file holds, plus one byte to see it grew: a read of ``limit + 1`` would
        # make a buffer of ``limit`` bytes for every small file (three times the cost of the read).
        want = min(limit + 1, st.st_size + 1)
        data = fh.read(want)
        if len(data) == want and want <= limit:
            data += fh.read(limit + 1 - want)
        return data, st


def remove_same(path: Path, held: os.stat_result) -> bool:
    """Remove ``path`` if it still names the file ``held`` was taken of; False (nothing removed)
    when it is gone or another file has its name now (put there meanwhile: not ours to remove)."""
    try:
        now = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
        return False
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def fsync_dir(folder: Path) -> None:
    """Flush a directory entry so a rename or link survives a crash (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def link_no_replace(src: str | Path, dst: str | Path, dir_fd: int | None = None, *, sync: bool = True) -> None:
    """Give ``src`` the name ``dst`` atomically, failing if ``dst`` exists.

    With ``dir_fd`` both names are relative to that open folder, so they stay in it
    even if the folder is renamed or moved meanwhile. ``sync``: make the removal of
    ``src`` durable at once (else the caller syncs the folder).
    """
    old = OldName.of(Path(src), dir_fd)
    try:
        _link(old, dst, dir_fd)
        old.remove(sync=sync)
    finally:
        old.close()  # only the folder it opened itself (not ``dir_fd``)


def _link(old: OldName, dst: str | Path, dst_dir_fd: int | None) -> None:
    """Give the file ``old`` names a second name ``dst``; on a filesystem without hard links, rename it."""
    dev = os.fstat(old.folder).st_dev
    if not _linkless.get(dev, False):
        try:
            os.link(old.name, dst, src_dir_fd=old.folder, dst_dir_fd=dst_dir_fd, follow_symlinks=False)
            return
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _NO_LINK and not (exc.errno in _MAYBE_NO_LINK and _cannot_link(old.folder, exc)):
                raise
    # No hard links here: check-then-rename leaves a tiny window in which a file
    # created meanwhile at dst could be replaced; documented in the manual (docs/).
    try:
        os.stat(dst, dir_fd=dst_dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        os.rename(old.name, dst, src_dir_fd=old.folder, dst_dir_fd=dst_dir_fd)
        old.renamed = True
        return
    raise FileExistsError(errno.EEXIST, "file exists", str(dst)) from None


def _cannot_link(folder: int, first: OSError) -> bool:
    """Whether the filesystem of ``folder`` answers every hard link with ``first``'s error.

    Asked once per filesystem, by linking a fresh empty temporary of our own: if that
    link works, ``first`` was a real error and is raised again by the caller.
    """
    dev = os.fstat(folder).st_dev
    known = _linkless.get(dev)
    if known is not None:
        return known
    probe = temp_path(Path(), ".probe").name
    second = probe + "-link"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=folder)
    os.close(fd)
    try:
        os.link(probe, second, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
    except OSError as exc:
        if exc.errno != first.errno:
            raise
        _linkless[dev] = True
        log.warning(
            "this filesystem answers hard links with %r (a FUSE or SMB client?): files are published there by "
            "rename after checking the name is free",
            exc.strerror,
        )
        return True
    finally:
        for name in (probe, second):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=folder)
    _linkless[dev] = False
    return False


class OldName:
    """A file's first name, held through its open folder.

    A move gives the file its new name first and removes the first name after; the
    folder is held open in between, so a folder renamed meanwhile cannot strand the
    first name as a second copy under the folder's new path. The first name is
    removed only while it still names the same file.
    """

    def __init__(self, folder: int, name: str, st: os.stat_result, *, owned: bool) -> None:
        self.folder = folder
        self.name = name
        self.identity = (st.st_dev, st.st_ino)
        self.owned = owned
        self.renamed = False  # the move was a rename: there is no first name left

    @classmethod
    def of(cls, path: Path, dir_fd: int | None = None) -> OldName:
        """Hold ``path``'s folder open (or use ``dir_fd``, relative to which ``path`` is a name)."""
        folder = dir_fd if dir_fd is not None else os.open(path.parent, DIR_FLAGS)
        try:
            st = os.stat(path.name if dir_fd is None else path, dir_fd=folder, follow_symlinks=False)
        except BaseException:
            if dir_fd is None:
                os.close(folder)
            raise
        return cls(folder, path.name if dir_fd is None else str(path), st, owned=dir_fd is None)

    def remove(self, *, sync: bool = True) -> None:
        """Remove the first name if it still names the moved file, and make that durable
        (unless ``sync`` is False: the caller syncs the folder once for many names)."""
        if not self.renamed:
            try:
                st = os.stat(self.name, dir_fd=self.folder, follow_symlinks=False)
            except FileNotFoundError:
                return
            if (st.st_dev, st.st_ino) != self.identity:
                return  # someone put another file under that name meanwhile: not ours to remove
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.name, dir_fd=self.folder)
        if sync:
            with contextlib.suppress(OSError):
                os.fsync(self.folder)

    def close(self) -> None:
        """Let go of the folder."""
        if self.owned:
            self.owned = False
            os.close(self.folder)


def rename_no_replace(src: Path, dst: Path) -> None:
    """Give ``src`` (one of our own files) the name ``dst``, failing if ``dst`` exists."""
    link_no_replace(src, dst)
    fsync_dir(dst.parent)


def file_sha256(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    """The sha256 (hex) and size of the regular file at ``path``, read a chunk at a time;
    OSError when it cannot be read, IsADirectoryError when it is no regular file."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path))
        while block := fh.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and the folders above it that are not there; the ones made, outermost first."""
    missing: list[Path] = []
    at = folder
    while not at.is_dir():
        missing.append(at)
        if at.parent == at:
            break
        at = at.parent
    made = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(path)) from None
            continue  # made meanwhile by someone else: not ours
        made.append(path)
    return made


def move_back(moved: Path, first: Path, st: os.stat_result) -> bool:
    """Take back a move of our own, of the file ``st`` from ``first`` to ``moved``, however far
    it got: the file given its first name again, or (linked there, its first name not yet
    removed) the new name removed. Nothing is done to a name that holds another file. True
    when something was taken back."""
    try:
        there = os.lstat(moved)
    except FileNotFoundError:
        return False  # it never got there
    if not os.path.samestat(there, st):
        return False
    try:
        before = os.lstat(first)
    except FileNotFoundError:
        rename_no_replace(moved, first)
        return True
    if not os.path.samestat(before, st):
        return False  # another file has its first name now: it stays where it was moved
    os.unlink(moved)  # the second name the move had just made
    fsync_dir(moved.parent)
    return True


class OldNames:
    """The first names of a batch of moves, removed together by ``finish_moves``.

    Names in one folder share one open descriptor of it, so a batch of hundreds of
    files from a few folders holds a few descriptors, not hundreds.
    """

    def __init__(self) -> None:
        self._names: list[OldName] = []
        self._folders: dict[str, int] = {}
        self._fds: list[int] = []

    def hold(self, path: Path) -> OldName:
        """``path``'s first name, through its folder held open (shared with the batch's other names there)."""
        key = os.fspath(path.parent)
        fd = self._folders.get(key)
        if fd is not None:
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(key, follow_symlinks=False))
            except OSError:
                same = False
            if not same:  # that folder was renamed and another took its name
                fd = None
        if fd is None:
            fd = os.open(key, DIR_FLAGS)
            self._fds.append(fd)
            self._folders[key] = fd
        return OldName.of(Path(path.name), fd)

    def add(self, old: OldName) -> None:
        """Remember ``old`` (from ``hold``), moved: its first name goes in ``remove_all``."""
        self._names.append(old)

    def remove_all(self) -> None:
        """Remove every first name that still names its moved file; sync each folder once."""
        for old in self._names:
            old.remove(sync=False)
        for fd in {old.folder for old in self._names}:
            with contextlib.suppress(OSError):
                os.fsync(fd)

    def close(self) -> None:
        """Let go of every folder."""
        self._names.clear()
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        self._folders.clear()

    def __enter__(self) -> OldNames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _copy_then_publish(src: Path, dst: Path) -> None:
    tmp = temp_path(dst.parent, src.suffix)
    try:
        with open(src, "rb") as fin, open(tmp, "xb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copystat(src, tmp, follow_symlinks=False)
        link_no_replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def move_no_replace(src: Path, folder: Path, name: str, later: OldNames | None = None) -> Path:
    """Move ``src`` into ``folder`` as ``name``, or as ``name~2`` ... if that is taken.

    Within one filesystem the file gets its new name by a hard link before the old
    name goes, so at no moment does it have no name; across filesystems it is copied,
    fsynced and published first. Returns where the file now is. With ``later``, the
    old name is not removed yet but added to ``later`` for ``finish_moves``, so a batch
    of moves syncs each folder once instead of twice per file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    old = later.hold(src) if later is not None else OldName.of(src)
    try:
        dst = _new_name(old, src, folder, name)
        if later is not None:
            later.add(old)
            return dst
        fsync_dir(folder)
        old.remove()
        return dst
    finally:
        old.close()  # nothing to do for a name ``later`` holds: it lets go of the folder


def _new_name(old: OldName, src: Path, folder: Path, name: str) -> Path:
    for n in range(1, 10_000):
        dst = folder / (name if n == 1 else numbered(name, n))
        if os.path.lexists(dst):
            with contextlib.suppress(OSError):
                if os.path.samestat(os.stat(dst, follow_symlinks=False), os.stat(src, follow_symlinks=False)):
                    return dst  # an earlier move stopped half-way: only the first name is left to remove
            continue
        try:
            try:
                _link(old, dst, None)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _copy_then_publish(src, dst)
        except FileExistsError:
            continue
        return dst
    raise FileExistsError(errno.EEXIST, "no free name", str(folder / name))


def finish_moves(folders: set[Path], old_names: OldNames) -> None:
    """Second half of a batch of moves: the new names made durable (each folder synced once),
    then the old names removed (each only while it still names its moved file)."""
    for folder in folders:
        fsync_dir(folder)
    old_names.remove_all()


def remove_temporaries(top: Path, *, keep: Callable[[Path, float], bool] | None = None) -> list[Path]:
    """Delete our own leftover temporaries under ``top`` but those ``keep`` (given a path and
    its mtime) says are still being written; return them."""
    removed = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
        for fname in filenames:
            if fname.startswith(TEMP_PREFIX):
                path = Path(dirpath) / fname
                with contextlib.suppress(FileNotFoundError):
                    if keep is not None and keep(path, os.lstat(path).st_mtime):
                        continue
                    os.unlink(path)
                    removed.append(path)
    return removed
