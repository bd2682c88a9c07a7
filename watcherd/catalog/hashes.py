"""Reading the hashes in bulk: what near-duplicate search reads from the catalog.

``load_hashes`` reads every present hash at once; ``NearLogReader`` reads the log of
changes to the ``hashes`` table since a persisted index was built (``near.persisted``).
Both use short-lived plain connections, apart from the writer's.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from watcherd.catalog.reads import Connected, connect
from watcherd.core.errors import CatalogError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

T = TypeVar("T")
MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Source:
    """One derived table of 64-bit hashes, its change log and where its persisted index lives.

    ``WHOLE``: the names' hashes (``hashes``, ``near_log``, ``near/index.bin``).
    ``CROPS``: the stored window hashes (``crop_hashes``, ``crop_log``, ``near/crops.bin``),
    several rows per image. Both logs share ``near_meta``'s epoch.
    """

    name: str  # how the builder's command line names it
    table: str
    log: str
    trimmed: str  # the near_meta key saying how far the log has been trimmed
    file: str  # the index file's name in the ``near`` folder


WHOLE = Source("whole", "hashes", "near_log", "trimmed", "index.bin")
CROPS = Source("crops", "crop_hashes", "crop_log", "crop_trimmed", "crops.bin")
SNAPSHOT_CHUNK = 500_000  # rows per read transaction while an index is built (~0.3 s each)


def load_hashes(path: Path) -> tuple[NDArray[np.int64], NDArray[np.uint64], NDArray[np.bool_]]:
    """Row ids, unsigned hashes and low-information flags of present images, read in bulk.

    SQLite writes them as one hex string, which numpy reads in one step: a million
    hashes load in about 0.5 s, against 0.75 s for a million Python tuples and a
    fraction of their memory. ``hash_rows`` gives names and paths for the few hits.
    """
    import numpy as np

    if not Path(path).exists():
        return np.empty(0, np.int64), np.empty(0, np.uint64), np.empty(0, np.bool_)
    con = connect(path)
    try:
        row = con.execute(
            "SELECT group_concat(printf('%016x%016x%02x', hash, rowid, low), '') FROM hashes WHERE present = 1"
        ).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise CatalogError(
                f"catalog {path} has no hash table yet: scan its library once ('watcherd scan ROOT')"
            ) from None
        raise CatalogError(f"cannot read catalog {path}: {exc}") from None
    finally:
        con.close()
    records = np.frombuffer(bytes.fromhex(row[0] or ""), dtype=np.dtype([("h", ">u8"), ("r", ">u8"), ("l", "u1")]))
    return records["r"].astype(np.int64), records["h"].astype(np.uint64), records["l"].astype(np.bool_)


def hash_rows(path: Path, rowids: list[int]) -> dict[int, tuple[str, str]]:
    """Row id -> (name, path) for the given rows of the ``hashes`` table."""
    if not rowids:
        return {}
    con = connect(path)
    try:
        return names_of(con, rowids)
    except sqlite3.Error as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc}") from None
    finally:
        con.close()


def log_state(conn: sqlite3.Connection, source: Source = WHOLE) -> tuple[str | None, int, int]:
    """(epoch, trimmed, head) of the source's log; epoch None when the catalog has no such log yet."""
    have = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (source.log,)).fetchone()
    if have is None:
        return None, 0, 0
    meta = dict(conn.execute("SELECT key, value FROM near_meta").fetchall())
    (head,) = conn.execute(f"SELECT ifnull(max(seq), 0) FROM {source.log}").fetchone()
    trimmed = int(meta.get(source.trimmed, 0))  # a log trimmed to nothing is still at that position
    return (str(meta["epoch"]) if "epoch" in meta else None), trimmed, max(int(head), trimmed)


def log_now(conn: sqlite3.Connection, since: int, source: Source = WHOLE) -> dict[int, int | None]:
    """Row id -> its unsigned hash if present now, else None, for every row the log after ``since`` touches."""
    now: dict[int, int | None] = {}
    sql = f"SELECT row, hash, present FROM {source.log} WHERE seq > ? ORDER BY seq"
    for row, h, present in conn.execute(sql, (since,)):
        now[row] = h & MASK64 if h is not None and present else None  # a row's last entry is its state now
    return now


def names_of(conn: sqlite3.Connection, rowids: list[int], source: Source = WHOLE) -> dict[int, tuple[str, str]]:
    """Row id -> (name, path) for the given rows of the source's table (gone rows are left out)."""
    if not rowids:
        return {}
    rows = conn.execute(
        f"SELECT rowid, name, path FROM {source.table} WHERE rowid IN (SELECT value FROM json_each(?))",
        (json.dumps(rowids),),
    ).fetchall()
    return {int(r): (str(n), str(p)) for r, n, p in rows}


def read_delta(
    conn: sqlite3.Connection, since: int, source: Source = WHOLE
) -> tuple[str | None, int, int, NDArray[np.void]]:
    """(epoch, trimmed, head, entries after ``since``) of the source's log in log order, on an open connection.

    Each entry has ``row`` (the source table's row id), ``kind`` (0 removed, 1 added and
    present, 2 added but missing), ``low`` and ``hash`` (unsigned).
    """
    import numpy as np

    delta_dtype = np.dtype([("row", ">u8"), ("hash", ">u8"), ("kind", "u1"), ("low", "u1")])
    epoch, trimmed, head = log_state(conn, source)
    text = ""
    if epoch is not None and head > since:
        (text,) = conn.execute(
            "SELECT group_concat(printf('%016x%016x%02x%02x', row, ifnull(hash, 0), "
            "CASE WHEN hash IS NULL THEN 0 WHEN present THEN 1 ELSE 2 END, ifnull(low, 0)), '') "
            f"FROM {source.log} WHERE seq > ?",
            (since,),
        ).fetchone()
    return epoch, trimmed, head, np.frombuffer(bytes.fromhex(text or ""), dtype=delta_dtype)


def present_hashes(conn: sqlite3.Connection) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """Row ids and unsigned hashes of every present image that is not low-information, on an open connection."""
    import numpy as np

    (text,) = conn.execute(
        "SELECT group_concat(printf('%016x%016x', hash, rowid), '') FROM hashes WHERE present = 1 AND low = 0"
    ).fetchone()
    records = np.frombuffer(bytes.fromhex(text or ""), dtype=np.dtype([("h", ">u8"), ("r", ">u8")]))
    return records["r"].astype(np.int64), records["h"].astype(np.uint64)


class NearLogReader(Connected):
    """What the persisted near-duplicate index needs from the catalog, on one open connection.

    ``delta`` and ``snapshot`` each read inside one transaction, so the log position
    they report and the rows they return describe the same catalog state. ``source``
    says which table and log (``WHOLE`` or ``CROPS``).
    """

    def __init__(self, path: Path, source: Source = WHOLE) -> None:
        super().__init__(path)
        self.source = source

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` inside one read transaction; SQLite errors become ``CatalogError``."""
        if self._conn is None:
            raise CatalogError(f"no catalog at {self.path}")
        conn = self._conn
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise CatalogError(
                    f"catalog {self.path} has no hash table yet: scan its library once ('watcherd scan ROOT')"
                ) from None
            raise CatalogError(f"cannot read catalog {self.path}: {exc}") from None
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot read catalog {self.path}: {exc}") from None

    def state(self) -> tuple[str | None, int, int]:
        """(epoch, trimmed, head): which index builds the log can still bring up to date."""
        return self.read(lambda conn: log_state(conn, self.source))

    def delta(self, since: int) -> tuple[str | None, int, int, NDArray[np.void]]:
        """(epoch, trimmed, head, entries after ``since``) in log order (see ``read_delta``)."""
        return self.read(lambda conn: read_delta(conn, since, self.source))

    def snapshot(
        self, chunk: int = SNAPSHOT_CHUNK
    ) -> tuple[str | None, int, NDArray[np.int64], NDArray[np.uint64], NDArray[np.bool_]]:
        """(epoch, head, row ids, hashes, low flags) of present images, by row id, valid at log position ``head``.

        Read ``chunk`` rows per transaction, so a reader never keeps the writer from
        committing for long. Rows read after ``head`` may be newer than at ``head``;
        that is harmless: every row changed since is in the log after ``head``, and the
        delta decides those rows (``near.persisted``). The epoch is read again at the end.
        """
        import numpy as np

        dtype = np.dtype([("h", ">u8"), ("r", ">u8"), ("l", "u1")])
        epoch, _, head = self.state()

        def rows_after(after: int) -> Callable[[sqlite3.Connection], tuple[str | None]]:
            return lambda conn: conn.execute(
                "SELECT group_concat(printf('%016x%016x%02x', hash, rowid, low), '') FROM "
                f"(SELECT rowid, hash, low FROM {self.source.table} WHERE present = 1 AND rowid > ? "
                "ORDER BY rowid LIMIT ?)",
                (after, chunk),
            ).fetchone()

        parts, after = [], -(2**63)
        while True:
            (text,) = self.read(rows_after(after))
            part = np.frombuffer(bytes.fromhex(text or ""), dtype=dtype)
            parts.append(part)
            if part.size < chunk:
                break
            after = int(part["r"][-1])
        if self.state()[0] != epoch:
            epoch = None  # re-derived meanwhile: row ids changed meaning, the build is void
        records = np.concatenate(parts)
        return epoch, head, records["r"].astype(np.int64), records["h"].astype(np.uint64), records["l"] != 0

    def where(self, rowids: list[int]) -> dict[int, tuple[str, str]]:
        """Row id -> (name, path) for the given rows of ``hashes`` (gone rows are left out)."""
        return self.read(lambda conn: names_of(conn, rowids, self.source))


def present_windows(conn: sqlite3.Connection) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """``crop_hashes`` row ids (of the whole-picture rows) and the first ``crops.HEX`` window hashes
    (one row an image, the whole picture first) of present, not low-information images that
    have window hashes, on an open connection: one text from SQLite, no row objects."""
    import numpy as np

    from watcherd.catalog.cropschema import CROP_HEX

    (text,) = conn.execute(
        "SELECT group_concat(printf('%016x', rowid) || asks, '') FROM crop_hashes "
        "WHERE slot = 0 AND present = 1 AND low = 0 AND asks IS NOT NULL"
    ).fetchone()
    found = np.frombuffer(bytes.fromhex(text or ""), dtype=np.dtype([("r", ">u8"), ("w", ">u8", (CROP_HEX,))]))
    return found["r"].astype(np.int64), found["w"].astype(np.uint64)


def window_rows(conn: sqlite3.Connection, names: list[str]) -> list[int]:
    """The ``crop_hashes`` row ids of the named images' whole-picture rows (those that have window hashes)."""
    rows = conn.execute(
        "SELECT rowid FROM crop_hashes WHERE slot = 0 AND name IN (SELECT value FROM json_each(?))",
        (json.dumps(names),),
    )
    return [int(r) for (r,) in rows]


def row_wholes(conn: sqlite3.Connection, rows: NDArray[np.int64]) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
    """The whole-picture window hash of each ``hashes`` row in ``rows`` and whether it has one
    (on an open connection)."""
    import numpy as np

    (text,) = conn.execute(
        "SELECT group_concat(printf('%016x%016x', h.rowid, c.hash), '') FROM hashes AS h "
        "JOIN crop_hashes AS c ON c.name = h.name AND c.slot = 0 WHERE h.present = 1 AND h.low = 0"
    ).fetchone()
    found = np.frombuffer(bytes.fromhex(text or ""), dtype=np.dtype([("r", ">u8"), ("w", ">u8")]))
    order = np.argsort(found["r"].astype(np.int64))
    known, values = found["r"].astype(np.int64)[order], found["w"].astype(np.uint64)[order]
    at = np.clip(np.searchsorted(known, rows), 0, max(known.size - 1, 0))
    has = (known[at] == rows) if known.size else np.zeros(rows.size, bool)
    wholes = np.where(has, values[at], np.uint64(0)) if known.size else np.zeros(rows.size, np.uint64)
    return wholes.astype(np.uint64), has
