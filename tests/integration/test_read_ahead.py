"""A restored library's thumbnails read ahead in worker processes while the writer adopts the ones before them."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import canonical_files, drop, table, wait_for
from watcherd.catalog import Catalog, open_for_writing
from watcherd.cli import main
from watcherd.core.config import Config
from watcherd.decode.chunks import png_facts
from watcherd.filing import readahead
from watcherd.filing.readahead import ReadAhead, Unread
from watcherd.flow import reconcile

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: the writer reads every thumbnail itself")


def _library(cfg: Config, n: int) -> list[Path]:
    """``n`` images ingested into three folders by a scan; their thumbnails."""
    for i in range(n):
        drop(cfg.thumbs_dir / f"f{i % 3}" / f"{i}.jpg", seed=i)
    assert main(["scan", str(cfg.root)]) == 0
    thumbs = sorted(p for folder in sorted(cfg.thumbs_dir.iterdir()) for p in canonical_files(folder))
    assert len(thumbs) == n
    return thumbs


def _restored(cfg: Config, to: Path) -> Config:
    """A copy of the library without its catalog (a backup restored): thumbnails and originals."""
    assert cfg.root is not None
    shutil.copytree(cfg.root, to, ignore=shutil.ignore_patterns(cfg.state_dir.name))
    return dataclasses.replace(cfg).with_root(to)


def _adopted(cfg: Config) -> dict[str, Any]:
    assert main(["scan", str(cfg.root)]) == 0
    keep = ("path", "tags", "original", "sha256", "hash", "first_seen", "crops", "state")
    return {r["name"]: {k: r[k] for k in keep} for r in table(cfg.database_path, "images")}


def test_a_library_adopted_while_its_thumbnails_are_read_ahead_is_the_one_adopted_without(
    cfg: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _library(cfg, 9)
    plain = _adopted(_restored(cfg, tmp_path / "plain"))
    # Sets of two, read ahead from the second thumbnail found on: most are read by a worker.
    monkeypatch.setattr(reconcile, "SET_FILES", 2)
    monkeypatch.setattr(reconcile, "READ_AHEAD_MIN", 2)
    monkeypatch.setattr(readahead, "READ_AHEAD_MIN", 2)
    monkeypatch.setattr(readahead, "FIRST_BLOCK", 1)
    answered: list[bool] = []
    take = ReadAhead.take

    def counted(self: ReadAhead, path: Path, st: os.stat_result) -> object:
        got = take(self, path, st)
        answered.append(not isinstance(got, Unread))
        return got

    monkeypatch.setattr(ReadAhead, "take", counted)
    ahead = _adopted(_restored(cfg, tmp_path / "ahead"))
    assert sum(answered) >= 3, answered  # the workers did read
    assert len(ahead) == 9 and ahead == plain


def _reading(catalog: Catalog, cfg: Config, paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> ReadAhead:
    monkeypatch.setattr(readahead, "READ_AHEAD_MIN", 1)
    ahead = ReadAhead(catalog, 1, 4 << 20)
    ahead.expect(paths)
    return ahead


def test_a_thumbnail_changed_after_it_was_read_ahead_is_read_again(
    cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third = _library(cfg, 3)
    restored = _restored(cfg, cfg.root.parent / "restored")  # type: ignore[union-attr]
    paths = [restored.thumbs_dir / p.relative_to(cfg.thumbs_dir) for p in (first, second, third)]
    catalog = open_for_writing(restored).catalog
    ahead = _reading(catalog, restored, paths, monkeypatch)
    try:
        ahead.take(paths[0], os.lstat(paths[0]))  # the workers are done with every block by now
        # Another thumbnail's bytes put under the second name after the worker read it.
        tmp = paths[1].with_name("replacement.tmp")
        shutil.copyfile(paths[2], tmp)
        os.replace(tmp, paths[1])
        assert ahead.take(paths[1], os.lstat(paths[1])) is Unread.NOT_READ
        assert ahead.take(paths[2], os.lstat(paths[2])) == png_facts(paths[2].read_bytes())
        assert ahead.take(paths[2], os.lstat(paths[2])) is Unread.NOT_READ  # each answer is used once
    finally:
        ahead.stop()
        catalog.close()


def test_a_worker_that_dies_leaves_its_thumbnails_to_the_writer(
    cfg: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    thumbs = _library(cfg, 2)
    restored = _restored(cfg, cfg.root.parent / "restored")  # type: ignore[union-attr]
    paths = [restored.thumbs_dir / p.relative_to(cfg.thumbs_dir) for p in thumbs]
    catalog = open_for_writing(restored).catalog
    monkeypatch.setattr(readahead, "FIRST_BLOCK", 1)
    ahead = _reading(catalog, restored, paths[:1], monkeypatch)
    try:
        assert ahead.take(paths[0], os.lstat(paths[0])) == png_facts(paths[0].read_bytes())
        workers = list(ahead._readers._pool._processes)  # type: ignore[union-attr]
        for pid in workers:
            os.kill(pid, signal.SIGKILL)  # killed for memory, say
        with caplog.at_level(logging.WARNING, logger="watcherd"):
            ahead.expect(paths[1:])
            assert ahead.take(paths[1], os.lstat(paths[1])) is Unread.NOT_READ
        assert sum("cannot read thumbnails ahead" in r.message for r in caplog.records) == 1
        ahead.expect(paths[1:])  # no worker again in this scan: the writer reads the rest
        assert ahead.take(paths[1], os.lstat(paths[1])) is Unread.NOT_READ
    finally:
        ahead.stop()
        catalog.close()


def test_workers_end_and_leave_no_folder_when_the_scan_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "scan.py"
    script.write_text(
        "import sys, time\n"
        "from watcherd.decode.chunkpool import ChunkReaders\n"
        "if __name__ == '__main__':\n"
        "    readers = ChunkReaders(1)\n"
        "    readers.submit([], 1).read()\n"
        "    print(readers._folder, *readers._pool._processes, flush=True)\n"
        "    time.sleep(600)\n"
    )
    scan = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert scan.stdout is not None
        folder, *workers = scan.stdout.readline().split()
        assert workers and Path(folder).is_dir()
    finally:
        scan.kill()  # kill -9: no finally, no atexit in the scan
        scan.wait()
        scan.stdout.close()  # type: ignore[union-attr]
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), what="workers gone")
    assert not Path(folder).exists()


def test_a_workers_answer_is_the_chunks_as_the_writer_reads_them(tmp_path: Path) -> None:
    from PIL import Image, PngImagePlugin

    from watcherd.decode.chunkpool import ChunkReaders, identity

    info = PngImagePlugin.PngInfo()
    info.add_text("original_filename", "Zoë am Meer 🐈.jpg")  # iTXt
    info.add_text("software", "watcherd 0")
    info.add_text("note", "x" * 5000, zip=True)  # zTXt
    png = tmp_path / "a.png"
    Image.new("L", (7, 5)).save(png, pnginfo=info)
    (tmp_path / "not.png").write_bytes(b"no PNG at all")
    readers = ChunkReaders(1)
    try:
        answer = readers.submit([png, tmp_path / "not.png", tmp_path / "gone.png"], 4 << 20).read()
    finally:
        readers.close()
    assert answer[str(png)] == (identity(os.lstat(png)), png_facts(png.read_bytes()))
    assert answer[str(tmp_path / "not.png")][1] is None
    assert str(tmp_path / "gone.png") not in answer
