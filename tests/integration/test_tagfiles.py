"""Tags that travel, on real filesystems and through the real decoder sandbox.

- A filesystem without user extended attributes (a ramfs: Linux gives it none, as FAT has
  none): everything is ingested, sidecars are written, one log line says the attributes
  are not. Needs permission to mount (root, as on CI); skipped with the reason elsewhere.
- An entity bomb or an external entity in a photo's XMP, read in the decoder process: one
  log line, the image ingested with its other keywords.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ENTITY_BOMB, EXTERNAL_ENTITY, encode, scene, with_iptc_keywords, write, xmp_packet
from watcherd.catalog import open_for_writing
from watcherd.core.config import Config
from watcherd.decode.sandbox import DecoderPool
from watcherd.filing import tagfiles
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import reconcile
from watcherd.fs import sidecars


@pytest.fixture
def no_xattrs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "ramfs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "ramfs", "ramfs", str(mnt)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a ramfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_filesystem_without_user_xattrs_costs_one_line_and_nothing_else(
    no_xattrs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    probe = write(no_xattrs / "probe", b"x")
    with pytest.raises(OSError) as refused:
        os.setxattr(probe, tagfiles.XATTR, b"x")
    assert refused.value.errno in (errno.ENOTSUP, errno.EOPNOTSUPP)  # the filesystem really has none
    os.unlink(probe)

    cfg = Config().with_root(no_xattrs / "lib")
    for i, folder in enumerate(("cats", "dogs", "cats/orange")):
        write(cfg.thumbs_dir / folder / f"{i}.jpg", encode(scene(seed=30 + i)))
    with open_for_writing(cfg).catalog as catalog, caplog.at_level(logging.INFO, logger="watcherd"):
        report = reconcile(Pipeline(cfg, catalog), reason="scan", settle=0)
        assert report.counts == {"ingested": 3}
        for rec in catalog.images():
            assert rec.original is not None
            assert sidecars.sidecar_of(cfg.root / rec.original).is_file()  # type: ignore[operator]
    said = [r.getMessage() for r in caplog.records if "extended attributes" in r.getMessage()]
    assert len(said) == 1 and "no user extended attributes" in said[0], said


@pytest.mark.parametrize("doctype", [ENTITY_BOMB, EXTERNAL_ENTITY], ids=["entity bomb", "external entity"])
def test_hostile_xmp_is_refused_in_the_sandbox_with_one_line_and_the_image_ingested(
    tmp_path: Path, doctype: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = Config().with_root(tmp_path / "lib")
    body = "<dc:title>&j;</dc:title>" if doctype == ENTITY_BOMB else "<dc:title>&xxe;</dc:title>"
    packet = xmp_packet(("never",), doctype=doctype, body=body)
    photo = write(cfg.thumbs_dir / "cats" / "x.jpg", with_iptc_keywords(encode(scene(seed=5), xmp=packet), ["alpha"]))
    with (
        open_for_writing(cfg).catalog as catalog,
        DecoderPool(1, 60, 1 << 30) as pool,
        caplog.at_level(logging.INFO, logger="watcherd"),
    ):
        Pipeline(cfg, catalog, render=pool).process(photo)
        (rec,) = catalog.images()
        assert rec.tags == ["cats", "320x240", "alpha"] and rec.keywords == ["alpha"]
    said = [r.getMessage() for r in caplog.records if "XMP" in r.getMessage()]
    assert len(said) == 1 and "thumbs/cats/x.jpg" in said[0] and "document type" in said[0], said
