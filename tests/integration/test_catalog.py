"""The catalog with a second connection or process: a reader holding a lock, a crash mid-write."""

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.unit.catalog.test_catalog import _put, _record
from watcherd.catalog import Catalog, CatalogReader
from watcherd.catalog.store import damage


def test_a_reader_holding_a_lock_delays_but_never_drops_a_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "c.sqlite"
    with Catalog(db, busy_timeout=0.1) as cat:
        _put(cat, _record("1x1_aaaa_.png", "thumbs/1x1_aaaa_.png"))
        reader = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM images").fetchone()  # holds a SHARED lock
        release = threading.Timer(1.5, lambda: reader.execute("COMMIT"))
        release.start()
        try:
            _put(cat, _record("2x2_bbbb_.png", "thumbs/2x2_bbbb_.png"))  # waits for the reader, past its timeout
        finally:
            release.join()
            reader.close()
    assert "locked by a reader; the write waits" in caplog.text  # the retry path ran
    with CatalogReader(db) as cat:
        assert {r.name for r in cat.images()} == {"1x1_aaaa_.png", "2x2_bbbb_.png"}


def test_hot_journal_after_a_crash_is_not_damage(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    with Catalog(db) as cat:
        _put(cat, _record())
    crash = (
        "import os, signal, sqlite3\n"
        f"con = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
        "con.execute('PRAGMA cache_size = 1')\n"
        "con.execute('BEGIN')\n"
        "rows = ((str(i), '\"' + 'x' * 4000 + '\"') for i in range(500))\n"
        "con.executemany('INSERT INTO images VALUES (?, ?)', rows)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", crash], check=False)
    assert (tmp_path / "c.sqlite-journal").exists()  # a hot journal, as after kill -9
    assert damage(db) is None
    with CatalogReader(db) as cat:
        assert [r.name for r in cat.images()] == ["10x10_abcd_.png"]
