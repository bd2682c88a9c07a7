"""Reading the catalog: typed records, and SQL over the derived tables for the commands.

``CatalogReader`` is what the read commands get: it has no way to write. The writer
(``store.Catalog``) adds writes and transactions on the same connection, so its reads
see its own uncommitted changes. An absent catalog reads as an empty library and is
not created.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watcherd.catalog import finding
from watcherd.catalog.cropschema import CROP_PREFIX, WINDOWLESS
from watcherd.catalog.finding import TagQuery, as_json
from watcherd.catalog.schema import DERIVED
from watcherd.core.collisionrecords import CollisionRecord
from watcherd.core.errors import CatalogError
from watcherd.core.exif import Exif
from watcherd.core.naming import safe_text
from watcherd.core.nearpairs import Member, NearRecord
from watcherd.core.records import ErrorRecord, ImageRecord


def encode(value: Any) -> str:
    """JSON for one value, ASCII-only so lone surrogates from odd file names are kept."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


def _text(raw: bytes) -> str:
    """Text from SQLite. json_extract turns the ``\\udcXX`` escapes of odd file names into
    the bytes of a lone surrogate; surrogatepass gives back the very string we stored."""
    return raw.decode("utf-8", "surrogatepass")


def connect(path: Path, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), reading odd names back.

    Never ``mode=ro``: after a crash mid-transaction the hot journal must be rolled
    back, which a read-only connection cannot do.
    """
    con = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    con.text_factory = _text
    return con


class Connected:
    """A connection to the catalog file when it exists (none when it does not: nothing is created)."""

    def __init__(self, path: Path, conn: sqlite3.Connection | None = None) -> None:
        self.path = Path(path)
        self._conn = conn
        if conn is None and self.path.exists():
            try:
                self._conn = connect(self.path)
            except sqlite3.Error as exc:
                raise CatalogError(f"cannot open catalog {self.path}: {exc}") from None

    def close(self) -> None:
        """Close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class CatalogReader(Connected):
    """Typed reads of the key/value tables and the derived tables; nothing here writes."""

    def __enter__(self) -> CatalogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------

    def _stream(self, sql: str, args: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of one query, fetched in chunks (none when there is no catalog)."""
        if self._conn is None:
            return
        try:
            cursor = self._conn.execute(sql, args)
            while rows := cursor.fetchmany(10_000):
                yield from rows
        except sqlite3.OperationalError as exc:
            text = str(exc)
            older = ("no such column", "no such index", *(f"no such table: {t}" for t in DERIVED))
            if any(part in text for part in older):
                raise CatalogError(
                    f"catalog {self.path} was written by an older watcherd: start its daemon or scan its "
                    "library once ('watcherd scan ROOT') to index it"
                ) from None
            if "no such table" not in text:  # a missing key/value table reads as empty
                raise CatalogError(f"cannot read catalog {self.path}: {text}") from None
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot read catalog {self.path}: {exc}") from None

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return list(self._stream(sql, args))

    def _value(self, table: str, key: str) -> Any:
        rows = self._query(f'SELECT value FROM "{table}" WHERE key = ?', (key,))
        return json.loads(rows[0][0]) if rows else None

    def _values(self, table: str) -> Iterator[Any]:
        for (value,) in self._stream(f'SELECT value FROM "{table}" ORDER BY rowid'):
            yield json.loads(value)

    # -- records --------------------------------------------------------------------

    def image(self, name: str) -> ImageRecord | None:
        """The record for a canonical name."""
        value = self._value("images", name)
        return ImageRecord.from_json(value) if value is not None else None

    def images(self) -> Iterator[ImageRecord]:
        """Every image record, in insertion order (streamed)."""
        return (ImageRecord.from_json(v) for v in self._values("images"))

    def images_by_name(self) -> Iterator[ImageRecord]:
        """Every image record, by name (streamed)."""
        return (ImageRecord.from_json(json.loads(v)) for (v,) in self._stream("SELECT value FROM images ORDER BY key"))

    def images_named(self, names: list[str]) -> dict[str, ImageRecord]:
        """The records of these names that exist, fetched in one query."""
        if not names:
            return {}
        rows = self._query(
            "SELECT key, value FROM images WHERE key IN (SELECT value FROM json_each(?))", (json.dumps(names),)
        )
        return {str(k): ImageRecord.from_json(json.loads(v)) for k, v in rows}

    def recorded(self, names: list[str]) -> set[str]:
        """Which of these names have a record (one query; nothing decoded)."""
        if not names:
            return set()
        rows = self._query("SELECT key FROM images WHERE key IN (SELECT value FROM json_each(?))", (json.dumps(names),))
        return {str(k) for (k,) in rows}

    def members_named(self, names: list[str]) -> dict[str, Member]:
        """What a near group's listing needs of these records (``nearpairs.Member``), in one query."""
        if not names:
            return {}
        fields = ", ".join(
            f"json_extract(value, '$.{f}')"
            for f in ("first_seen", "original", "width", "height", "file_size", "path", "exif")
        )
        rows = self._query(
            f"SELECT key, {fields} FROM images WHERE key IN (SELECT value FROM json_each(?))", (json.dumps(names),)
        )
        return {
            str(k): Member(
                str(k),
                str(seen or ""),
                orig,
                (int(w or 0), int(h or 0)),
                size,
                str(path or ""),
                Exif.from_json(json.loads(exif)) if exif else None,
            )
            for k, seen, orig, w, h, size, path, exif in rows
        }

    def images_with_hash(self, hash_hex: str) -> list[ImageRecord]:
        """Records whose hash is ``hash_hex`` (any hash size), found in SQL without decoding the rest."""
        rows = self._query("SELECT value FROM images WHERE json_extract(value, '$.hash') = ?", (hash_hex,))
        return [ImageRecord.from_json(json.loads(r[0])) for r in rows]

    def collisions(self) -> list[CollisionRecord]:
        """Every recorded collision, oldest first."""
        return [CollisionRecord.from_json(v) for v in self._values("collisions")]

    def collision(self, ident: str) -> CollisionRecord | None:
        """The collision with id ``ident``, if it is recorded."""
        value = self._value("collisions", ident)
        return CollisionRecord.from_json(value) if value is not None else None

    def collisions_named(self, name: str) -> list[CollisionRecord]:
        """The collisions over one canonical name (found in SQL, not by decoding them all)."""
        rows = self._query("SELECT value FROM collisions WHERE json_extract(value, '$.name') = ?", (name,))
        return [CollisionRecord.from_json(json.loads(r[0])) for r in rows]

    def near_decisions(self) -> list[NearRecord]:
        """Every near-duplicate group decided keep-existing or keep-newcomer, oldest first."""
        return [NearRecord.from_json(v) for v in self._values("near_decisions")]

    def near_decision(self, ident: str) -> NearRecord | None:
        """The keep decision about near group ``ident``, if one is in effect."""
        value = self._value("near_decisions", ident)
        return NearRecord.from_json(value) if value is not None else None

    def near_holding(self, sha256: str) -> NearRecord | None:
        """The keep decision that merged an image made of exactly these bytes, if any."""
        rows = self._query(
            "SELECT value FROM near_decisions WHERE key IN (SELECT id FROM near_merged WHERE sha256 = ?)", (sha256,)
        )
        return NearRecord.from_json(json.loads(rows[0][0])) if rows else None

    def existing_holder(self, col: CollisionRecord) -> ImageRecord | None:
        """The image that holds a collision's existing side now: the one named ``col.name``, or,
        once a near keep merged that image, the image it was merged into."""
        rec = self.image(col.name)
        if rec is None and col.existing.sha256:
            near = self.near_holding(col.existing.sha256)
            if near is not None and near.decision.image:
                rec = self.image(near.decision.image)
        return rec

    def error(self, rel_path: str) -> ErrorRecord | None:
        """The error recorded for a path, if any."""
        value = self._value("errors", safe_text(rel_path))
        return ErrorRecord.from_json(value) if value is not None else None

    def errors(self) -> list[ErrorRecord]:
        """Every file that could not be ingested and is still there."""
        return [ErrorRecord.from_json(v) for v in self._values("errors")]

    def meta(self, key: str) -> Any:
        """A value from the ``meta`` table (plain JSON)."""
        return self._value("meta", key)

    # -- the derived tables -----------------------------------------------------------

    def name_at(self, rel_path: str) -> str | None:
        """The name of the present image with a copy at ``rel_path``, from the path index."""
        cut = rel_path.rfind("/") + 1
        rows = self._query(
            "SELECT name FROM placed WHERE folder = json_extract(?, '$') AND name = json_extract(?, '$')",
            (as_json(rel_path[:cut]), as_json(rel_path[cut:])),
        )
        return str(rows[0][0]) if rows else None

    def names_with_sha256(self, sha256: str) -> list[str]:
        """Names of the images made from exactly these bytes (usually one)."""
        return [str(r[0]) for r in self._query("SELECT name FROM contents WHERE sha256 = ?", (sha256,))]

    def present_under(self, folder: str) -> list[str]:
        """Paths of present thumbnails (copies included) anywhere under ``folder`` (relative to
        ROOT, ending in /): one range of the folder key."""
        upper = folder[:-1] + chr(ord("/") + 1)  # every folder that starts with this one sorts below this
        rows = self._query(
            "SELECT folder || name FROM placed WHERE folder >= json_extract(?, '$') AND folder < json_extract(?, '$')",
            (as_json(folder), as_json(upper)),
        )
        return [str(r[0]) for r in rows]

    def present_in(self, folder: str) -> set[str]:
        """Names of present thumbnails (copies included) directly in ``folder`` (relative to ROOT,
        ending in /): one exact key, names only."""
        # One row, split here: a folder of 10k thumbnails costs one string, not 10k rows.
        rows = self._query(
            "SELECT group_concat(name, '/') FROM placed WHERE folder = json_extract(?, '$')", (as_json(folder),)
        )
        joined = rows[0][0] if rows else None
        return set(joined.split("/")) if joined else set()

    def placed_count(self) -> int:
        """How many places present thumbnails are in (copies count once each)."""
        rows = self._query("SELECT count(*) FROM placed")
        return int(rows[0][0]) if rows else 0

    def iter_placed(self) -> Iterator[tuple[str, str]]:
        """(path, name) of every place a present thumbnail is in, streamed."""
        return ((str(p), str(n)) for p, n in self._stream("SELECT folder || name, name FROM placed"))

    def tagfile_marks(self, after: int, limit: int = 1000) -> list[tuple[int, str]]:
        """(seq, name) of images marked due after ``after`` (``tagfiles``), oldest first."""
        rows = self._query("SELECT seq, name FROM tagfiles_due WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        return [(int(seq), str(name)) for seq, name in rows]

    def tagfile_marks_end(self) -> int:
        """The last mark's ``seq`` (0 when none)."""
        rows = self._query("SELECT ifnull(max(seq), 0) FROM tagfiles_due")
        return int(rows[0][0]) if rows else 0

    def pending_moves(self) -> list[str]:
        """Names of images whose original was being moved when the last run stopped."""
        return [str(r[0]) for r in self._query("SELECT name FROM listing WHERE moving = 1")]

    def source_stamps(self) -> dict[str, tuple[int, int]]:
        """Original path -> (size, mtime_ns) of every file recorded from a source inbox (merged ones too)."""
        out: dict[str, tuple[int, int]] = {}
        for table, side in (("images", "$"), ("collisions", "$.newcomer")):
            rows = self._query(
                f"SELECT json_extract(value, '{side}.original'), json_extract(value, '{side}.source_stat') "
                f"FROM \"{table}\" WHERE json_extract(value, '{side}.source') AND "
                f"json_extract(value, '{side}.source_stat') IS NOT NULL"
            )
            for original, stamp in rows:
                size, mtime_ns = json.loads(stamp)
                out[str(original)] = (int(size), int(mtime_ns))
        # Images a near keep decision merged: their source files stay in the inbox, done.
        rows = self._query(
            "SELECT json_extract(m.value, '$.record.original'), json_extract(m.value, '$.record.source_stat') "
            "FROM near_decisions, json_each(near_decisions.value, '$.merged') AS m "
            "WHERE json_extract(m.value, '$.record.source') "
            "AND json_extract(m.value, '$.record.source_stat') IS NOT NULL"
        )
        for original, stamp in rows:
            size, mtime_ns = json.loads(stamp)
            out[str(original)] = (int(size), int(mtime_ns))
        return out

    def counts(self) -> dict[str, int]:
        """Image, tag, collision and error counts, from the derived tables."""
        out = {"present": 0, "missing": 0, "low_information": 0}
        for present, low, n in self._query("SELECT present, low, count(*) FROM listing GROUP BY 1, 2"):
            out["present" if present else "missing"] += n
            if present and low:
                out["low_information"] += n
        tags = self._query("SELECT count(*) FROM tag_totals WHERE n > 0")
        out["tags"] = tags[0][0] if tags else 0
        undecided = "SELECT count(*) FROM collisions WHERE json_extract(value, '$.decision') IS NULL"
        for table, sql in (("collisions", undecided), ("errors", 'SELECT count(*) FROM "errors"')):
            rows = self._query(sql)
            out[table] = rows[0][0] if rows else 0
        return out

    def tag_counts(self) -> list[tuple[str, int]]:
        """(tag, number of present images) pairs."""
        return [(str(tag), int(n)) for tag, n in self._query("SELECT tag, n FROM tag_totals WHERE n > 0")]

    def with_tags(self, tags: list[str]) -> list[tuple[str, str, list[str]]]:
        """(name, path, tags) of present images carrying every tag in ``tags``."""
        wanted = sorted(set(tags))
        names = " INTERSECT ".join("SELECT name FROM tagged WHERE tag = json_extract(?, '$')" for _ in wanted)
        rows = self._query(
            f"SELECT name, path, tags FROM listing WHERE name IN ({names})", tuple(as_json(t) for t in wanted)
        )
        return [(str(n), str(p), json.loads(t)) for n, p, t in rows]

    def names_tagged(self, tag: str) -> list[str]:
        """Names of every image, present or missing, whose record carries ``tag``."""
        rows = self._query(
            "SELECT key FROM images WHERE EXISTS (SELECT 1 FROM json_each(images.value, '$.tags') AS j "
            "WHERE j.value = json_extract(?, '$')) ORDER BY key",
            (as_json(tag),),
        )
        return [str(r[0]) for r in rows]

    def missing_images(self) -> list[ImageRecord]:
        """Records of images whose thumbnail is in no folder of the tree, by name."""
        rows = self._query(
            "SELECT value FROM images WHERE key IN (SELECT name FROM listing WHERE present = 0) ORDER BY key"
        )
        return [ImageRecord.from_json(json.loads(r[0])) for r in rows]

    def find(
        self, query: TagQuery, *, limit: int | None = None, offset: int = 0
    ) -> Iterator[tuple[str, str, list[str]]]:
        """(name, path, tags) of present images matching every criterion of ``query``, by path,
        streamed; ``offset`` rows skipped, at most ``limit`` given (see ``finding``)."""
        return finding.rows(self, query, limit, offset)

    def find_count(self, query: TagQuery) -> int:
        """How many present images ``find`` would give for ``query``."""
        return finding.count(self, query)

    def fold_function(self) -> None:
        """Register ``watcherd_fold(text)``: Python's casefold in SQL (SQLite's lower() knows only ASCII)."""
        if self._conn is not None:
            self._conn.create_function("watcherd_fold", 1, finding.fold, deterministic=True)

    def lacking_windows(self, prefix: str) -> list[str]:
        """Names of present images whose ``crops`` (window hashes) do not start with ``prefix``.

        Every present image with window hashes of this version has one whole-picture row in
        ``crop_hashes``, and one whose thumbnail is too small for any (``WINDOWLESS``, noted by
        the last pass that decoded it) never will: when those two make up every present
        image, none lacks them, and the records are not read (a rescan's usual case, two
        counts by index and one by name)."""
        if prefix == CROP_PREFIX:
            (present,) = self._query("SELECT count(*) FROM listing WHERE present = 1")[0]
            (windowed,) = self._query("SELECT count(*) FROM crop_hashes WHERE slot = 0 AND present = 1")[0]
            noted = self.meta(WINDOWLESS)
            if isinstance(noted, dict) and noted.get("prefix") == prefix and isinstance(noted.get("names"), list):
                (small,) = self._query(
                    "SELECT count(*) FROM listing WHERE present = 1 AND name IN (SELECT value FROM json_each(?))",
                    (json.dumps(noted["names"]),),
                )[0]
                windowed += small
            if present == windowed:
                return []
        rows = self._query(
            "SELECT key FROM images WHERE json_extract(value, '$.state') = 'present' "
            "AND ifnull(substr(json_extract(value, '$.crops'), 1, ?), '') != ? ORDER BY key",
            (len(prefix), prefix),
        )
        return [str(k) for (k,) in rows]

    def paired_lacking_exif(self) -> list[str]:
        """Names of present images in a kept near or crop pair whose records keep no EXIF (``Exif``):
        catalogued before it was kept, so a near listing reads their thumbnails."""
        rows = self._query(
            "SELECT key FROM images WHERE key IN (SELECT a FROM near_pairs UNION SELECT b FROM near_pairs "
            "UNION SELECT a FROM crop_pairs UNION SELECT b FROM crop_pairs) "
            "AND json_type(value, '$.exif') IS NULL AND json_extract(value, '$.state') = 'present' ORDER BY key"
        )
        return [str(k) for (k,) in rows]

    def waiting_for_pairs(self) -> bool:
        """Whether an image waits for its near pairs to be recorded (``near_pending``)."""
        return bool(self._query("SELECT 1 FROM near_pending LIMIT 1"))

    def export_entries(self) -> Iterator[str]:
        """``"name": {...}`` JSON text per image with what only the catalog knows (all of it for a
        missing image), streamed."""
        fields = ", ".join(
            f"'{k}', json_extract(value, '$.{k}')" for k in ("original", "source", "first_seen", "original_filename")
        )
        remembered = (
            "json_object('tags', json(ifnull(json_extract(value, '$.tags'), '[]')), "
            "'other_filenames', json(ifnull(json_extract(value, '$.other_filenames'), '[]')), "
            "'keywords', json(ifnull(json_extract(value, '$.keywords'), '[]')), "
            "'keyword_paths', json(ifnull(json_extract(value, '$.keyword_paths'), '[]')), "
            f"{fields})"
        )
        # A missing image has no thumbnail to be rebuilt from: its whole record goes along.
        sql = (
            "SELECT json_quote(key) || ':' || CASE WHEN json_extract(value, '$.state') = 'missing' "
            f"THEN json_set({remembered}, '$.record', json(value)) ELSE {remembered} END FROM images"
        )
        for (text,) in self._stream(sql):
            # The export stays ASCII JSON, like the catalog's own values.
            yield text if text.isascii() else json.dumps(json.loads("{" + text + "}"), ensure_ascii=True)[1:-1]
