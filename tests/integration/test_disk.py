"""A full disk and a read-only folder while writing a thumbnail, on a real small tmpfs.

Needs permission to mount (root, as on CI); skipped with the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import drop, scene
from watcherd.catalog import open_for_writing
from watcherd.core.config import Config
from watcherd.core.outcomes import Outcome
from watcherd.flow.pipeline import Pipeline


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _library(small_fs: Path, tmp_path: Path) -> tuple[Config, Pipeline]:
    root = small_fs / "lib"
    root.mkdir()
    cfg = dataclasses.replace(Config(), database=str(tmp_path / "catalog.sqlite"), settle=0).with_root(root)
    return cfg, Pipeline(cfg, open_for_writing(cfg).catalog)


def _fill(folder: Path) -> Path:
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


def test_full_disk_keeps_the_original_and_retries(small_fs: Path, tmp_path: Path) -> None:
    cfg, pipeline = _library(small_fs, tmp_path)
    try:
        src = drop(cfg.thumbs_dir / "a.jpg", scene((600, 400), seed=1))
        data = src.read_bytes()
        assert cfg.root is not None
        filler = _fill(cfg.root)
        result = pipeline.process(src)
        assert result.outcome is Outcome.ERROR and result.retry
        assert "cannot write" in result.detail
        assert src.read_bytes() == data
        assert sorted(p.name for p in cfg.thumbs_dir.iterdir()) == ["a.jpg"]  # no temporaries
        assert [e.path for e in pipeline.catalog.errors()] == ["thumbs/a.jpg"]
        filler.unlink()
        assert pipeline.process(src).outcome is Outcome.INGESTED
        assert pipeline.catalog.errors() == []
    finally:
        pipeline.catalog.close()


def test_read_only_folder_keeps_the_original_and_retries(small_fs: Path, tmp_path: Path) -> None:
    cfg, pipeline = _library(small_fs, tmp_path)
    try:
        src = drop(cfg.thumbs_dir / "a.jpg", scene(seed=2))
        subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
        try:
            result = pipeline.process(src)
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
        assert result.outcome is Outcome.ERROR and result.retry
        assert src.exists() and sorted(os.listdir(cfg.thumbs_dir)) == ["a.jpg"]
        assert pipeline.process(src).outcome is Outcome.INGESTED
    finally:
        pipeline.catalog.close()
