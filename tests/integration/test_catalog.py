"""The catalog with a second connection or process: a reader holding a lock, a crash mid-write,
the check at opening and the clean close that spares it."""

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.unit.catalog.test_catalog import _put, _record
from watcherd.catalog import Catalog, CatalogReader, open_for_writing
from watcherd.catalog.vetting import closed_cleanly, damage
from watcherd.core.config import Config


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


def _checks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every ``PRAGMA quick_check`` the opening runs from now on (the real check, counted)."""
    from watcherd.catalog import vetting

    ran: list[Path] = []
    real = vetting.damage

    def counted(path: Path) -> str | None:
        ran.append(path)
        return real(path)

    monkeypatch.setattr(vetting, "damage", counted)
    return ran


def test_a_catalog_left_as_the_writer_closed_it_is_not_read_through_again(
    cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = _checks(monkeypatch)
    opened = open_for_writing(cfg)
    _put(opened.catalog, _record())
    assert not closed_cleanly(cfg.database_path)  # open: no mark while the writer may change the file
    opened.catalog.close()
    assert closed_cleanly(cfg.database_path)
    open_for_writing(cfg).catalog.close()
    assert checks == []  # neither the new catalog nor the one left clean was checked
    # Damaged in place, at the same size: the file no longer matches the mark.
    size = cfg.database_path.stat().st_size
    with open(cfg.database_path, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\xff" * (size - size // 2))
    catalog = open_for_writing(cfg).catalog
    catalog.close()
    assert checks == [cfg.database_path]
    assert len(list(cfg.database_path.parent.glob("catalog.sqlite.corrupt-*"))) == 1


def test_a_writer_that_stopped_mid_transaction_or_never_closed_leaves_the_check_to_the_next(
    cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = _checks(monkeypatch)
    catalog = open_for_writing(cfg).catalog
    with pytest.raises(KeyboardInterrupt), catalog.transaction():
        catalog.put_image(_record())
        raise KeyboardInterrupt  # a Ctrl-C inside a transaction: rolled back
    catalog.close()
    assert not closed_cleanly(cfg.database_path)
    open_for_writing(cfg).catalog.close()
    assert len(checks) == 1
    # Killed while open: the mark was taken away when it opened.
    writer = (
        "import os, sys\n"
        "from watcherd.catalog import open_for_writing\n"
        "from watcherd.core.config import Config\n"
        f"cfg = Config().with_root(__import__('pathlib').Path({str(cfg.root)!r}))\n"
        "open_for_writing(cfg)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", writer], check=True)
    assert not closed_cleanly(cfg.database_path)
    open_for_writing(cfg).catalog.close()
    assert len(checks) == 2


def test_a_writer_that_opened_a_clean_catalog_hands_the_mark_on(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command applied without a daemon opens the catalog as it is: when the last clean close
    vouched for it, its own clean close does too, so the next start is not a full read either.
    A file nobody vouched for is never marked by such a writer."""
    checks = _checks(monkeypatch)
    open_for_writing(cfg).catalog.close()
    with Catalog(cfg.database_path) as catalog:  # as ``commands.writer`` opens it
        _put(catalog, _record())
    assert closed_cleanly(cfg.database_path)
    open_for_writing(cfg).catalog.close()
    assert checks == []
    cfg.database_path.with_name(cfg.database_path.name + ".closed").unlink()
    with Catalog(cfg.database_path) as catalog:
        _put(catalog, _record("2x2_bbbb_.png", "thumbs/2x2_bbbb_.png"))
    assert not closed_cleanly(cfg.database_path)
