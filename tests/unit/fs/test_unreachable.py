"""A folder out of reach (a share gone: every look-up answers EIO) is not a folder gone."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import drop
from watcherd.catalog import Catalog
from watcherd.core.config import Config
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile


def out_of_reach(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Every look-up under ``folder`` fails with EIO, as through a client whose server went away."""
    prefix = os.fspath(folder)

    def failing(real: Any) -> Any:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(prefix):
                raise OSError(errno.EIO, "Input/output error", os.fspath(path))
            return real(path, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "scandir", failing(os.scandir))
    monkeypatch.setattr(os, "lstat", failing(os.lstat))


def states(catalog: Catalog) -> dict[str, str]:
    return {str(r.original_filename): r.state.value for r in catalog.images()}


def test_a_scan_does_not_mark_what_it_cannot_reach_missing(
    cfg: Config, pipeline: Pipeline, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i, rel in enumerate(["cats/a.jpg", "cats/old/b.jpg", "dogs/c.jpg"]):
        drop(cfg.thumbs_dir / rel, seed=i + 1)
    reconcile(pipeline, reason="test", settle=0)
    assert set(states(catalog).values()) == {"present"}
    cat = next(r for r in catalog.images() if r.original_filename == "a.jpg")
    with monkeypatch.context() as m:
        out_of_reach(m, cfg.thumbs_dir / "cats")
        reconcile(pipeline, reason="test", settle=0)
        pipeline.moves.gone(cfg.thumbs_dir.parent / cat.path)  # a deletion hint (a polling observer's, say) meanwhile
    assert states(catalog) == {"a.jpg": "present", "b.jpg": "present", "c.jpg": "present"}
    next((cfg.thumbs_dir / "dogs").glob("*.png")).unlink()  # really gone: missing, as before
    reconcile(pipeline, reason="test", settle=0)
    assert states(catalog)["c.jpg"] == "missing"
