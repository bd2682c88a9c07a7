"""How the writer takes a remote decoder's answer: only for the file as the remote read it."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from tests.helpers import encode, scene, sha, write
from watcherd.core.config import Config
from watcherd.core.errors import ImageError
from watcherd.decode import imaging
from watcherd.decode.cluster import KILLED
from watcherd.decode.newimage import Fetched, ImageReader
from watcherd.decode.rendered import Rendered


class Answered:
    """A remote whose answer is given by the test (one file in flight)."""

    lookahead = 4

    def __init__(self, fetched: Fetched) -> None:
        self.fetched = fetched

    def submit(self, path: Path) -> Answered:
        return self

    def result(self) -> Fetched:
        return self.fetched

    def cancel(self) -> None:
        pass


def remote_render(cfg: Config, data: bytes) -> Rendered:
    # A render the writer could not have made itself: its hash says where it came from.
    return dataclasses.replace(
        imaging.render(data, ImageReader(cfg, imaging.render, float).spec, "a.jpg", "", 0.0), hash="f" * 16
    )


def test_an_answer_for_the_file_as_it_is_is_used(cfg: Config) -> None:
    path = write(cfg.thumbs_dir / "a.jpg", encode(scene(seed=1)))
    st = os.lstat(path)
    remote = Answered(Fetched((st.st_size, st.st_mtime_ns), "ab", remote_render(cfg, path.read_bytes())))
    decoder = ImageReader(cfg, imaging.render, float, remote)
    decoder.prefetch(path, st)
    image = decoder.make(path, st)
    assert image.hash == "f" * 16 and image.sha256 == "ab" and decoder.remote_used == 1


def test_an_answer_for_an_older_version_of_the_file_is_not(cfg: Config) -> None:
    path = write(cfg.thumbs_dir / "a.jpg", encode(scene(seed=1)))
    st = os.lstat(path)
    stale = Fetched((st.st_size, st.st_mtime_ns - 1), "ab", remote_render(cfg, path.read_bytes()))
    decoder = ImageReader(cfg, imaging.render, float, Answered(stale))
    decoder.prefetch(path, st)
    image = decoder.make(path, st)
    assert image.hash != "f" * 16 and image.sha256 != "ab" and decoder.remote_used == 0


def test_a_file_that_killed_workers_is_decoded_here(cfg: Config) -> None:
    path = write(cfg.thumbs_dir / "a.jpg", encode(scene(seed=1)))
    st = os.lstat(path)
    decoder = ImageReader(cfg, imaging.render, float, Answered(Fetched(None, "", None, (KILLED, True))))
    decoder.prefetch(path, st)
    image = decoder.make(path, st)  # by the writer's own renderer (its sandbox, in a scan)
    assert image.sha256 == sha(path) and decoder.remote_used == 0


def test_a_file_a_worker_found_no_image_is_an_error_without_decoding_here(cfg: Config) -> None:
    path = write(cfg.thumbs_dir / "a.jpg", encode(scene(seed=1)))
    st = os.lstat(path)
    decoder = ImageReader(cfg, imaging.render, float, Answered(Fetched(None, "", None, ("not a regular file", False))))
    decoder.prefetch(path, st)
    with pytest.raises(ImageError, match="not a regular file"):
        decoder.make(path, st)


def test_workers_that_see_coarser_file_times_are_said_once_and_their_files_decoded_here(
    cfg: Config, caplog: pytest.LogCaptureFixture
) -> None:
    paths = [write(cfg.thumbs_dir / f"{n}.jpg", encode(scene(seed=n))) for n in (1, 2)]
    os.utime(paths[0], ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    os.utime(paths[1], ns=(1_700_000_001_987_654_321, 1_700_000_001_987_654_321))
    remote = Answered(Fetched(None, "", None))
    decoder = ImageReader(cfg, imaging.render, float, remote)
    for path in paths:
        st = os.lstat(path)
        seconds = st.st_mtime_ns - st.st_mtime_ns % 10**9  # as a mount keeping whole seconds shows it
        remote.fetched = Fetched((st.st_size, seconds), "ab", None)
        decoder.prefetch(path, st)
        assert decoder.make(path, st).sha256 != "ab"
    assert decoder.remote_used == 0
    coarse = [r for r in caplog.records if "coarser precision" in r.getMessage()]
    assert len(coarse) == 1  # once per scan, not once per file
    caplog.clear()
    path = paths[0]
    st = os.lstat(path)
    stale = Fetched((st.st_size, st.st_mtime_ns - 1), "ab", None)  # changed since: nothing to say
    decoder = ImageReader(cfg, imaging.render, float, Answered(stale))
    decoder.prefetch(path, st)
    decoder.make(path, st)
    assert not [r for r in caplog.records if "coarser precision" in r.getMessage()]
