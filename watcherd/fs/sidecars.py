"""XMP sidecars beside files, as files: where an original's sidecar is, finding one dropped
beside a picture (``photo.jpg.xmp``, ``photo.xmp``), reading it safely and bounded, and
moving it along with its original without replacing anything. What a sidecar says is
``core.xmp``; keeping them current is ``filing.tagfiles``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from watcherd.core import xmp
from watcherd.fs import fsops

__all__ = ["SIDECAR_SUFFIX", "beside", "move_beside", "read_beside", "read_bounded", "sidecar_of"]

SIDECAR_SUFFIX = ".xmp"


def sidecar_of(original: Path) -> Path:
    """Where an original's sidecar is: ``{original}.xmp`` (the name digiKam, darktable and Immich look for first)."""
    return original.with_name(original.name + SIDECAR_SUFFIX)


def beside(path: Path, *, stem_too: bool = True) -> Path | None:
    """An XMP sidecar beside the file at ``path``: ``photo.jpg.xmp``, else (``stem_too``) ``photo.xmp``
    (Lightroom's and darktable's other spelling); a regular file, never followed through a link."""
    names = [path.name + ".xmp", path.name + ".XMP"]
    if stem_too:
        names += [path.stem + ".xmp", path.stem + ".XMP"]
    for name in names:
        candidate = path.with_name(name)
        try:
            st = os.lstat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            return candidate
    return None


def read_bounded(path: Path, limit: int = xmp.MAX_DOCUMENT) -> bytes:
    """At most ``limit + 1`` bytes of a regular file (more is refused by ``xmp.parse``), never
    through a symlink, never blocking on a FIFO; OSError when it cannot be read."""
    return fsops.read_held(path, limit)[0]


def read_beside(path: Path) -> bytes:
    """The bytes of an XMP sidecar dropped beside ``path`` (b"" when there is none or it cannot be read)."""
    found = beside(path)
    if found is None:
        return b""
    try:
        return read_bounded(found)
    except OSError:
        return b""


def move_beside(src: Path, dst: Path, *, stem_too: bool, later: fsops.OldNames | None = None) -> Path | None:
    """The original at ``src`` went to ``dst``: the sidecar beside it follows, as ``{dst}.xmp`` (or
    a free name next to it: nothing is replaced). Returns where it went (None: there was none)."""
    found = beside(src, stem_too=stem_too)
    if found is None:
        return None
    target = sidecar_of(dst)
    # Already linked there by a move stopped between its two names: ``move_no_replace`` sees the
    # same file at ``target`` and only removes the old name (which must not outlive the move).
    return fsops.move_no_replace(found, target.parent, target.name, later)
