"""A batch is all-or-nothing to the user: stopped at any instant, it leaves nothing the next
start could mistake for someone else's file, and says "ingested" only once it is durable."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import encode, scene, table, write
from tests.invariants import check_library
from watcherd.catalog import Catalog
from watcherd.core.config import Config
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile


def _pairs(cfg: Config, n: int) -> dict[str, bytes]:
    """``n`` pictures, each dropped twice (PNG in ``a/``, JPEG in ``b/``): n images and n collisions."""
    dropped: dict[str, bytes] = {}
    for seed in range(n):
        im = scene(seed=200 + seed)
        for rel, data in ((f"a/p{seed}.png", encode(im, "PNG")), (f"b/p{seed}.jpg", encode(im, "JPEG", quality=95))):
            write(cfg.thumbs_dir / rel, data)
            dropped[rel] = data
    return dropped


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_a_scan_stopped_mid_batch_leaves_none_of_the_batchs_thumbnails(
    cfg: Config, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    dropped = _pairs(cfg, 3)
    published = 0

    def interrupt(step: str, path: Path) -> None:
        nonlocal published
        if step == "publishing":
            published += 1
            if published == 5:  # 4 thumbnails published (images and newcomers), the 5th about to be
                raise KeyboardInterrupt

    caplog.set_level(logging.INFO, logger="watcherd")
    with pytest.raises(KeyboardInterrupt):
        reconcile(Pipeline(cfg, catalog, checkpoint=interrupt), reason="test", settle=0)
    assert published == 5
    assert table(cfg.database_path, "images") == [] and table(cfg.database_path, "collisions") == []
    # Nothing of the batch is left: every dropped file where it was, no thumbnail of ours.
    assert {p.relative_to(cfg.thumbs_dir).as_posix() for p in _files_under(cfg.thumbs_dir)} == set(dropped)
    assert _files_under(cfg.originals_dir) == []
    assert not [r.message for r in caplog.records if r.message.startswith(("ingested", "collision"))]

    report = reconcile(Pipeline(cfg, catalog), reason="test", settle=0)
    assert report.counts.get("ingested") == 3 and report.counts.get("collision") == 3
    ids = sorted(c["id"] for c in table(cfg.database_path, "collisions"))
    assert not [i for i in ids if i.count("~") > 1]  # never a collision with itself ("~2")
    assert sorted(p.name[: -len(".png")] for p in _files_under(cfg.thumbs_dir / "_collisions")) == ids
    assert cfg.root is not None
    assert check_library(cfg.root, dropped) == []


def test_ingested_is_said_only_once_its_record_is_durable(cfg: Config, catalog: Catalog) -> None:
    for seed in range(3):
        write(cfg.thumbs_dir / f"p{seed}.png", encode(scene(seed=230 + seed), "PNG"))
    said: list[tuple[str, int]] = []  # each "ingested" line, with the records another reader sees then

    class Reader(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("ingested"):
                said.append((record.getMessage(), len(table(cfg.database_path, "images"))))

    handler = Reader(level=logging.INFO)
    logger = logging.getLogger("watcherd")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        reconcile(Pipeline(cfg, catalog), reason="test", settle=0)  # one batch of three
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert len(said) == 3
    assert all(seen == 3 for _, seen in said)  # the batch was committed before the first line


def test_a_newcomers_thumbnail_left_by_a_killed_batch_is_taken_back_not_collided_with(
    cfg: Config, catalog: Catalog
) -> None:
    dropped = _pairs(cfg, 1)
    reconcile(Pipeline(cfg, catalog), reason="test", settle=0)
    (col,) = table(cfg.database_path, "collisions")
    # What SIGKILL between publishing the newcomer's thumbnail and committing its record
    # leaves: the thumbnail in _collisions/, no record, the original still where it was dropped.
    assert cfg.root is not None
    os.rename(cfg.root / col["newcomer"]["original"], cfg.thumbs_dir / "b" / "p0.jpg")
    with catalog.transaction():
        catalog.conn.execute('DELETE FROM "collisions"')
        catalog.set_meta("scan", None)
    orphan = cfg.root / col["newcomer"]["thumbnail"]
    assert orphan.exists()
    # A file of someone else's that only looks like one of ours stays.
    foreign = cfg.thumbs_dir / "_collisions" / f"{col['name'][: -len('.png')]}~0123456789ab.png"
    shutil.copyfile(orphan, foreign)
    with open(foreign, "ab") as fh:
        fh.write(b"\0")  # its chunks still say sha256 = the orphan's, which does not fit this name

    reconcile(Pipeline(cfg, catalog), reason="test", settle=0)
    (again,) = table(cfg.database_path, "collisions")
    assert again["id"] == col["id"]  # the same id: not "~2" beside an orphan of itself
    assert sorted(p.name for p in _files_under(cfg.thumbs_dir / "_collisions")) == sorted(
        [f"{col['id']}.png", foreign.name]
    )
    assert foreign.exists()
    problems = check_library(cfg.root, dropped)
    assert [p for p in problems if foreign.name not in p] == []
