"""The catalog writer: one SQLite connection, explicit transactions that roll back.

Every change goes through ``with catalog.transaction():``. The block commits when it
ends normally and rolls back on any exception, so a write that fails half-way leaves
nothing behind; nested blocks are savepoints, so one file's failure inside a batch
undoes only that file's changes. Writing outside a transaction is a bug and raises.

The connection runs with ``synchronous=FULL`` and the rollback journal (never WAL,
which does not work on network filesystems), because the pipeline moves a user's
original only after the record about it is on disk. Values are JSON, never pickle:
the file sits on a folder other people can write, and unpickling would run their code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from watcherd.catalog import batch, cropschema, pairs, schema
from watcherd.catalog.hashes import WHOLE, Source
from watcherd.catalog.reads import CatalogReader, connect, encode
from watcherd.catalog.vetting import closed_cleanly, forget_clean_close, mark_clean_close
from watcherd.core.collisionrecords import CollisionRecord
from watcherd.core.errors import CatalogError
from watcherd.core.naming import safe_text
from watcherd.core.nearpairs import NearRecord
from watcherd.core.records import ErrorRecord, ImageRecord
from watcherd.fs import fsops

log = logging.getLogger("watcherd")


class Catalog(CatalogReader):
    """The one writer's view of the catalog: typed reads plus transactional writes."""

    def __init__(
        self, path: Path, *, busy_timeout: float = 30.0, lock_patience: float = 600.0, vetted: bool = False
    ) -> None:
        self.lock_patience = lock_patience
        # Found sound as it was opened (``vetted``: checked by the opener; or exactly as the
        # last clean close left it): then a clean close may say so and spare the next check.
        self._vetted = False
        self.changes = 0  # committed writes so far; lets the daemon export only when needed
        self._depth = 0
        self._staged = 0
        # What the open transaction owes the world once it ends: ``after`` runs once the
        # outermost block commits (a log line that must not claim more than is durable),
        # ``undo`` if its block rolls back (a thumbnail published for records that are
        # then not written is taken back). A savepoint that rolls back runs and drops
        # its own entries; one that is released hands them to the enclosing block.
        self._after: list[Callable[[], None]] = []
        self._undo: list[Callable[[], None]] = []
        # Called after every commit that wrote something, for as long as the catalog is open
        # (``tagfiles``: sidecars and extended attributes follow the records), by name.
        self._listeners: dict[str, Callable[[], None]] = {}
        # ``before``: what must be durable before the outermost block commits (a folder whose
        # new names the records point at), once per key; each with what lets it go on a rollback.
        self._before: dict[object, tuple[Callable[[], None], Callable[[], None]]] = {}
        # Asked before every commit whether this writer may still write (a scan's or a
        # command's lease: ``Heartbeat.confirm``); raising rolls the transaction back.
        self.guard: Callable[[], None] | None = None
        vetted = vetted or closed_cleanly(Path(path))  # handed on by every writer, checked or not
        forget_clean_close(Path(path))  # before any write of this writer can reach the file
        try:
            conn = connect(Path(path), busy_timeout)
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot open catalog {path}: {exc}") from None
        super().__init__(path, conn)
        try:
            conn.execute("PRAGMA synchronous = FULL")
            # 64 MB of page cache (the default is 2 MB): a record's derived rows are spread over a
            # dozen indexes, and at a million images their pages are read again for every record.
            conn.execute("PRAGMA cache_size = -65536")
            with self.transaction():
                schema.create_tables(conn)
                if schema.needs_derived(conn):
                    schema.create_derived(conn)
                else:
                    schema.create_forget_trigger(conn)
                    schema.create_near_log(conn)
                    schema.stage_sets(conn)
                    cropschema.create_whole_index(conn)
                schema.create_near_merged(conn)
                schema.create_tagfiles_due(conn)
                schema.create_export_mark(conn)
                if pairs.kept_radius(conn) != schema.PAIR_RADIUS:
                    pairs.reset(conn)  # kept at another radius: every image is paired again
                self.fold_function()
                conn.execute(
                    "UPDATE filenames SET folded = CAST(watcherd_fold(CAST(fname AS BLOB)) AS TEXT) "
                    "WHERE odd = 1 AND folded IS NULL"
                )
        except sqlite3.Error as exc:
            self.close()
            raise CatalogError(f"cannot open catalog {self.path}: {exc}") from None
        except CatalogError:
            self.close()
            raise
        self._vetted = vetted

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection (a closed catalog has none)."""
        if self._conn is None:
            raise CatalogError(f"catalog {self.path} is closed")
        return self._conn

    @property
    def in_transaction(self) -> bool:
        """Is a transaction open (a change applied now would join it)?"""
        return self._depth > 0

    # -- transactions -------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit the block's writes when it ends, roll them back if it raises.

        Inside another transaction the block is a savepoint: its own writes are undone
        on an exception, and the outer transaction carries on.
        """
        conn = self.conn
        if self._depth:
            name, staged = f"s{self._depth}", self._staged
            marks = len(self._after), len(self._undo)
            self._execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._execute(f"ROLLBACK TO {name}")
                self._staged = staged
                del self._after[marks[0] :]
                self._take_back(marks[1])
                raise
            finally:
                self._depth -= 1
                self._execute(f"RELEASE {name}")
            return
        self._execute("BEGIN IMMEDIATE")
        self._depth, self._staged = 1, 0
        self._after, self._undo, self._before = [], [], {}
        try:
            yield
            if self.guard is not None:
                self.guard()
            before, self._before = self._before, {}
            for run, _ in before.values():
                run()
            self._depth = 0
            self._commit(conn)
        except BaseException:
            self._depth = 0
            self._vetted = False  # whatever broke the transaction, the next opening checks the file
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._after = []
            for _, drop in self._before.values():
                drop()
            self._before = {}
            self._take_back(0)
            raise
        self.changes += self._staged
        after, self._after, self._undo = self._after, [], []
        for callback in after:
            callback()
        if self._staged:
            for listener in list(self._listeners.values()):
                try:
                    listener()
                except Exception:  # the commit is done; a listener's failure must not undo the caller's work
                    log.exception("after a commit")

    def listen(self, name: str, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every commit that wrote something (one listener per ``name``)."""
        self._listeners[name] = listener

    def listener(self, name: str) -> Callable[[], None] | None:
        """The listener registered under ``name``, if any."""
        return self._listeners.get(name)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the open transaction commits (now, outside one); never if it rolls back."""
        if self._depth:
            self._after.append(callback)
        else:
            callback()

    def before_commit(self, key: object, run: Callable[[], None], drop: Callable[[], None]) -> bool:
        """Run ``run`` just before the open transaction commits, once per ``key`` (False: that key
        is registered already); ``drop`` instead if it rolls back. Outside a transaction: now."""
        if not self._depth:
            run()
            return True
        if key in self._before:
            return False
        self._before[key] = (run, drop)
        return True

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` if the open transaction (or the savepoint open now) rolls back."""
        if self._depth:
            self._undo.append(callback)

    def _take_back(self, mark: int) -> None:
        """Run the rollback callbacks registered since ``mark``, newest first, and drop them."""
        undo, self._undo = self._undo[mark:], self._undo[:mark]
        for callback in reversed(undo):
            try:
                callback()
            except Exception:  # one failure must not keep the others from running
                log.exception("while taking back a rolled-back change")

    def _execute(self, sql: str) -> None:
        try:
            self.conn.execute(sql)
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot write catalog {self.path}: {exc}") from None

    def _commit(self, conn: sqlite3.Connection) -> None:
        """COMMIT, waiting out readers that hold the file; roll back if it never goes through.

        A commit refused because the database is locked keeps its transaction and is
        tried again, so a reader holding a lock delays a write but never drops it.
        """
        delay, waited, warned = 0.05, 0.0, False
        while True:
            try:
                conn.execute("COMMIT")
                return
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if ("locked" not in text and "busy" not in text) or waited >= self.lock_patience:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise CatalogError(f"cannot write catalog {self.path}: {text}") from None
                if not warned:
                    log.warning("catalog %s is locked by a reader; the write waits", self.path)
                    warned = True
                time.sleep(delay)
                waited += delay
                delay = min(delay * 2, 2.0)
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise CatalogError(f"cannot write catalog {self.path}: {exc}") from None

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        if not self._depth:
            raise CatalogError("a catalog write outside a transaction (a bug)")
        try:
            self.conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot write catalog {self.path}: {exc}") from None
        self._staged += 1

    def _put(self, table: str, key: str, value: Any) -> None:
        # INSERT OR REPLACE, as sqlitedict writes; the derive_image trigger fires on images.
        self._write(f'INSERT OR REPLACE INTO "{table}" (key, value) VALUES (?, ?)', (key, encode(value)))

    # -- writes ---------------------------------------------------------------------

    def put_image(self, record: ImageRecord) -> None:
        """Write a new or changed image record."""
        self._put("images", record.name, record.to_json())
        self._fold(record)

    def put_images(self, records: Iterable[ImageRecord]) -> None:
        """Write a set of new or changed image records at once (a name given twice: its last).

        The same rows as ``put_image`` for each, but the derived tables follow the whole set
        in one statement per table (``batch``) rather than one trigger run per
        record; a set that fails leaves nothing behind.
        """
        latest = {r.name: r for r in records}
        if not latest:
            return
        values = [(name, encode(r.to_json())) for name, r in latest.items()]
        staged = [(*v, *batch.staged_integers(r.hash, r.crops)) for v, r in zip(values, latest.values(), strict=True)]
        with self.transaction():
            try:
                self.conn.executemany(batch.STAGE, staged)
                # What the row triggers of a record written alone do, once for the set: the
                # tag files' marks (``due``, staged against the records replaced) and the count
                # the export is written by.
                self.conn.execute(
                    "INSERT INTO tagfiles_due (name) SELECT key FROM derive_staged WHERE due ORDER BY rowid"
                )
                self.conn.executemany('INSERT OR REPLACE INTO "images" (key, value) VALUES (?, ?)', values)
                self.conn.execute("UPDATE export_mark SET generation = generation + 1 WHERE id = 1")
                for sql in batch.STATEMENTS:
                    self.conn.execute(sql)
                self.conn.execute("DELETE FROM derive_staged")
            except sqlite3.Error as exc:
                raise CatalogError(f"cannot write catalog {self.path}: {exc}") from None
            self._staged += len(values)
            for record in latest.values():
                self._fold(record)

    def _fold(self, record: ImageRecord) -> None:
        """What SQLite cannot fold of an original file name, beside what it can (``finding``):
        Python's casefold, part of the record's write."""
        name = record.original_filename
        if name is not None and not name.isascii():
            folded = json.dumps(name.casefold())  # as JSON: lone surrogates of odd names survive
            self._write(
                "UPDATE filenames SET folded = json_extract(?, '$') WHERE name = json_extract(?, '$') "
                "AND folded IS NOT json_extract(?, '$')",
                (folded, json.dumps(record.name), folded),
            )
            self._staged -= 1  # part of the record's write, not a change of its own

    def trim_near_log(self, through: int, source: Source = WHOLE) -> None:
        """Drop the near-duplicate log of ``source`` up to ``through``: a published index covers it.

        Not counted in ``changes``: no record changed, so there is nothing to export.
        """
        with self.transaction():
            try:
                self.conn.execute(f"DELETE FROM {source.log} WHERE seq <= ?", (through,))
                self.conn.execute("UPDATE near_meta SET value = max(value, ?) WHERE key = ?", (through, source.trimmed))
            except sqlite3.Error as exc:
                raise CatalogError(f"cannot write catalog {self.path}: {exc}") from None

    def clear_tagfile_marks(self, names: list[str], through: int) -> None:
        """Forget the marks of ``names`` up to ``through``: their sidecars and attributes match.

        Not counted in ``changes`` (no record changed) and calls no listener."""
        with self.transaction():
            try:
                self.conn.execute(
                    "DELETE FROM tagfiles_due WHERE seq <= ? AND name IN (SELECT value FROM json_each(?))",
                    (through, encode(names)),
                )
            except sqlite3.Error as exc:
                raise CatalogError(f"cannot write catalog {self.path}: {exc}") from None

    def mark_all_tagfiles(self) -> None:
        """Mark every image due (``tagfiles``), inside the open transaction."""
        self._write("INSERT INTO tagfiles_due (name) SELECT key FROM images", ())

    def delete_image(self, name: str) -> None:
        """Drop an image record (the ``forget_image`` trigger drops its derived rows)."""
        self._write('DELETE FROM "images" WHERE key = ?', (name,))

    def put_collision(self, record: CollisionRecord) -> None:
        """Write a collision record (keyed by its ``id``)."""
        self._put("collisions", record.id, record.to_json())

    def put_near_decision(self, record: NearRecord) -> None:
        """Write a near group's keep decision (keyed by the group's ``id``)."""
        self._put("near_decisions", record.id, record.to_json())

    def delete_near_decision(self, ident: str) -> None:
        """Drop a near group's keep decision (it was undone)."""
        self._write('DELETE FROM "near_decisions" WHERE key = ?', (ident,))

    def put_error(self, record: ErrorRecord) -> None:
        """Write an error record (keyed by its ``path``)."""
        self._put("errors", safe_text(record.path), record.to_json())

    def clear_error(self, rel_path: str) -> None:
        """Forget the error for a path that was ingested or went away."""
        self._write('DELETE FROM "errors" WHERE key = ?', (safe_text(rel_path),))

    def export_generation(self) -> tuple[int, int | None]:
        """(the generation of what the export holds now, the one the export file was written at)."""
        row = self._query("SELECT generation, exported FROM export_mark WHERE id = 1")
        return (int(row[0][0]), None if row[0][1] is None else int(row[0][1])) if row else (0, None)

    def mark_exported(self, generation: int) -> None:
        """The export file now holds ``generation`` (written, fsynced and renamed into place)."""
        with self.transaction():
            self._write("UPDATE export_mark SET exported = ? WHERE id = 1", (generation,))
            # Bookkeeping about the export, not a change of the library: counted, the daemon
            # would export (and publish its snapshot) again at every interval.
            self._staged -= 1

    def set_meta(self, key: str, value: Any) -> None:
        """Write a ``meta`` value (plain JSON)."""
        self._put("meta", key, value)

    def drop_meta(self, key: str) -> None:
        """Remove a ``meta`` value."""
        self._write('DELETE FROM "meta" WHERE key = ?', (key,))

    # -- the file itself ------------------------------------------------------------

    def publish(self, dest: Path) -> None:
        """Write a consistent copy of the catalog to ``dest`` for readers on other hosts.

        SQLite's backup API copies a consistent state while the daemon keeps writing;
        the copy is fsynced under a temporary name and renamed over the previous
        snapshot (ours to replace), so readers see the old or the new, never half.
        """
        dest = Path(dest)
        tmp = fsops.temp_path(dest.parent, ".sqlite")
        try:
            src = sqlite3.connect(self.path, timeout=30)
            out = sqlite3.connect(tmp)
            try:
                src.backup(out)
                out.execute("PRAGMA journal_mode = DELETE")
            finally:
                out.close()
                src.close()
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, dest)
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot publish a snapshot to {dest}: {exc}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def __enter__(self) -> Catalog:
        return self

    def close(self) -> None:
        """Close the connection; a vetted catalog closed between transactions is marked clean."""
        clean = self._vetted and self._conn is not None and not self._depth
        self._vetted = False
        super().close()
        if clean:
            mark_clean_close(self.path)
