"""What ``watcherd check`` reads from the catalog besides typed records: its integrity, the raw
values (so one unreadable record is reported, not fatal), the ``hashes`` rows and the near log.

Everything here reads through a ``CatalogReader`` (the writer's ``Catalog`` is one), inside
``consistent`` when the answers must describe one state of the catalog.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from watcherd.catalog.hashes import MASK64, log_state
from watcherd.catalog.reads import CatalogReader
from watcherd.core.errors import CatalogError


def _conn(reader: CatalogReader) -> sqlite3.Connection:
    conn = reader._conn
    if conn is None:
        raise CatalogError(f"no catalog at {reader.path}")
    return conn


@contextlib.contextmanager
def consistent(reader: CatalogReader) -> Iterator[None]:
    """One read transaction around the block: every read in it sees the same catalog state.

    A writer's commit waits meanwhile (its busy timeout and commit retries cover that).
    """
    conn = _conn(reader)
    try:
        conn.execute("BEGIN")
    except sqlite3.Error as exc:
        raise CatalogError(f"cannot read catalog {reader.path}: {exc}") from None
    try:
        yield
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("COMMIT")


def integrity(reader: CatalogReader) -> list[str]:
    """What ``PRAGMA integrity_check`` finds wrong (empty when it says ok)."""
    try:
        rows = _conn(reader).execute("PRAGMA integrity_check").fetchall()
    except sqlite3.Error as exc:
        raise CatalogError(f"cannot check catalog {reader.path}: {exc}") from None
    lines = [str(r[0]) for r in rows]
    return [] if lines == ["ok"] else lines


def raw_values(reader: CatalogReader, table: str) -> Iterator[tuple[str, str]]:
    """(key, value text) of every row of a key/value table, in insertion order (none when it is absent)."""
    for key, value in reader._stream(f'SELECT key, value FROM "{table}" ORDER BY rowid'):
        yield str(key), value if isinstance(value, str) else bytes(value).decode("utf-8", "surrogatepass")


def hash_rows(reader: CatalogReader) -> dict[int, tuple[str, int, bool]]:
    """Row id -> (name, unsigned hash, low) of every present row of ``hashes``."""
    rows = reader._stream("SELECT rowid, name, hash, low FROM hashes WHERE present = 1")
    return {int(r): (str(n), int(h) & MASK64, bool(low)) for r, n, h, low in rows}


def near_position(reader: CatalogReader) -> tuple[str | None, int, int]:
    """(epoch, trimmed, head) of the near log: which index builds it can bring up to date."""
    try:
        return log_state(_conn(reader))
    except sqlite3.Error as exc:
        raise CatalogError(f"cannot read catalog {reader.path}: {exc}") from None


def near_changes(reader: CatalogReader, since: int) -> dict[int, tuple[int, bool] | None]:
    """Row id -> (unsigned hash, low) if present now, else None, for every row the log after ``since`` touches."""
    now: dict[int, tuple[int, bool] | None] = {}
    rows = reader._stream("SELECT row, hash, present, low FROM near_log WHERE seq > ? ORDER BY seq", (since,))
    for row, h, present, low in rows:
        now[int(row)] = (int(h) & MASK64, bool(low)) if h is not None and present else None
    return now
