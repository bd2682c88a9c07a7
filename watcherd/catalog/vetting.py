"""Is the catalog's file sound? ``PRAGMA quick_check``, and the writer's mark that spares it.

The check reads the whole file: 0.4 s at 100,000 images, 4 s at a million, at every start
of the writer. When the writer closes the catalog between transactions it marks the file's
identity as it left it; a file that still matches was not touched since, so opening it
again needs no check. Anything else (a crash, a copy, another program, another host's
mount, a transaction that broke) is checked as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from pathlib import Path

from watcherd.core.errors import CatalogError
from watcherd.fs import fsops

log = logging.getLogger("watcherd")

CLEAN_SUFFIX = ".closed"


def _identity(db: Path) -> dict[str, int] | None:
    try:
        st = os.stat(db)
    except OSError:
        return None
    if not fsops.absent(db.with_name(db.name + "-journal")):
        return None  # a journal left behind: a transaction did not end
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
    }


def mark_clean_close(db: Path) -> None:
    """Say that ``db`` is as the writer left it, closed between transactions (best effort)."""
    ident = _identity(db)
    if ident is None:
        return
    mark = db.with_name(db.name + CLEAN_SUFFIX)
    tmp = fsops.temp_path(db.parent)
    try:
        tmp.write_text(json.dumps(ident))
        os.replace(tmp, mark)  # our own mark, replaced as a whole
    except OSError as exc:
        log.warning("cannot mark catalog %s as closed cleanly: %s", db, exc)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def forget_clean_close(db: Path) -> None:
    """Take the mark away: the writer is about to change the file."""
    mark = db.with_name(db.name + CLEAN_SUFFIX)
    try:
        os.unlink(mark)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CatalogError(f"cannot take back the clean-close mark {mark}: {exc}") from None
    fsops.fsync_dir(db.parent)


def closed_cleanly(db: Path) -> bool:
    """Whether ``db`` is exactly as the writer's last clean close left it."""
    try:
        said = json.loads(db.with_name(db.name + CLEAN_SUFFIX).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(said, dict) and said == _identity(db)


def damage(path: Path) -> str | None:
    """Why the file at ``path`` is not a sound SQLite database, or None if it is."""
    # Opened read-write on purpose: after a crash mid-transaction the hot journal
    # must be rolled back, which a read-only connection cannot do (it would report
    # "attempt to write a readonly database" and look like damage).
    try:
        con = sqlite3.connect(path, timeout=30)
        try:
            rows = con.execute("PRAGMA quick_check").fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        raise CatalogError(f"cannot check catalog {path}: {exc}") from None
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
        return str(exc)
    verdict = "; ".join(str(r[0]) for r in rows[:3])
    return None if verdict == "ok" else verdict
