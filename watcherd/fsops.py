"""Safe file operations: write under a temporary name, fsync, publish without replacing.

Nothing here ever replaces or deletes a file it did not create, with one exception
that is a move by definition: once an original has a durable second name in
``originals/``, its first name is unlinked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from watcherd.filters import TEMP_PREFIX
from watcherd.naming import numbered

# Filesystems that cannot hard-link (FAT, some SMB and FUSE mounts) answer with one of these.
_NO_LINK = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS, errno.EACCES}


def temp_path(folder: Path, suffix: str = "") -> Path:
    """A fresh reserved temporary name in ``folder`` (hidden, so every watcher skips it)."""
    return folder / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}{suffix}"


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


def _link_no_replace(src: str | Path, dst: str | Path, dir_fd: int | None = None) -> None:
    """Give ``src`` the name ``dst`` atomically, failing if ``dst`` exists.

    With ``dir_fd`` both names are relative to that open folder, so they stay in it
    even if the folder is renamed or moved meanwhile.
    """
    try:
        os.link(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        # No hard links here: check-then-rename leaves a tiny window in which a file
        # created meanwhile at dst could be replaced; documented in the README.
        try:
            os.stat(dst, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            os.rename(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return
        raise FileExistsError(errno.EEXIST, "file exists", str(dst)) from None
    os.unlink(src, dir_fd=dir_fd)


def rename_no_replace(src: Path, dst: Path) -> None:
    """Give ``src`` (one of our own files) the name ``dst``, failing if ``dst`` exists."""
    _link_no_replace(src, dst)
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)


def write_new(
    folder: Path, name: str, data: bytes, mtime_ns: int | None = None, before_publish: Callable[[], None] | None = None
) -> Path:
    """Create ``folder/name`` with ``data``; raise FileExistsError if the name is taken.

    The bytes go to a temporary file that is fsynced before it is published, so the
    final name never shows a half-written file. Every step works relative to the
    folder opened once, so a folder renamed meanwhile keeps the file (under its new
    path) and never keeps the temporary.
    """
    tmp = temp_path(Path(), ".png").name
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
            _link_no_replace(tmp, name, dir_fd)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)
        with contextlib.suppress(OSError):
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return folder / name


def _copy_then_publish(src: Path, dst: Path) -> None:
    tmp = temp_path(dst.parent, src.suffix)
    try:
        with open(src, "rb") as fin, open(tmp, "xb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copystat(src, tmp, follow_symlinks=False)
        _link_no_replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def move_no_replace(src: Path, folder: Path, name: str, later: list[Path] | None = None) -> Path:
    """Move ``src`` into ``folder`` as ``name``, or as ``name~2`` ... if that is taken.

    Within one filesystem the file gets its new name by a hard link before the old
    name goes, so at no moment does it have no name; across filesystems it is copied,
    fsynced and published first. Returns where the file now is. With ``later``, the
    old name is not removed yet but added to ``later`` for ``finish_moves``, so a batch
    of moves syncs each folder once instead of twice per file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        dst = folder / (name if n == 1 else numbered(name, n))
        if os.path.lexists(dst):
            with contextlib.suppress(OSError):
                if os.path.samefile(src, dst):  # an earlier move stopped half-way
                    os.unlink(src)
                    fsync_dir(src.parent)
                    return dst
            continue
        try:
            try:
                os.link(src, dst, follow_symlinks=False)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    raise
                if exc.errno == errno.EXDEV:
                    _copy_then_publish(src, dst)
                elif exc.errno in _NO_LINK:
                    if os.path.lexists(dst):
                        raise FileExistsError(errno.EEXIST, "file exists", str(dst)) from None
                    os.rename(src, dst)
                    fsync_dir(folder)
                    fsync_dir(src.parent)
                    return dst
                else:
                    raise
        except FileExistsError:
            continue
        if later is not None:
            later.append(src)
            return dst
        fsync_dir(folder)
        os.unlink(src)
        fsync_dir(src.parent)
        return dst
    raise FileExistsError(errno.EEXIST, "no free name", str(folder / name))


def finish_moves(folders: set[Path], old_names: list[Path]) -> None:
    """Second half of a batch of moves: the new names made durable (each folder synced once),
    then the old names removed and their folders synced."""
    for folder in folders:
        fsync_dir(folder)
    for src in old_names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(src)
    for folder in {src.parent for src in old_names}:
        fsync_dir(folder)


def remove_temporaries(top: Path) -> list[Path]:
    """Delete our own leftover temporaries under ``top`` (after a crash); return them."""
    removed = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
        for fname in filenames:
            if fname.startswith(TEMP_PREFIX):
                path = Path(dirpath) / fname
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                    removed.append(path)
    return removed
