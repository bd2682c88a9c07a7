"""Errors cost once: a file recorded as an error is not read again by a scan until it changes
(size, mtime, inode), the file it was in the way of goes, or ``errors --retry`` forgets it."""

from __future__ import annotations

import os
import shutil
import time

from tests.helpers import canonical_files, drop, encode, scene, write
from watcherd.catalog import Catalog
from watcherd.commands import edits
from watcherd.core.config import Config
from watcherd.core.errors import ImageError
from watcherd.core.outcomes import Outcome
from watcherd.core.records import ErrorRecord
from watcherd.decode import imaging
from watcherd.decode.rendered import Rendered, RenderSpec
from watcherd.flow.pipeline import Pipeline
from watcherd.flow.reconcile import Report, reconcile


class Clock:
    """The pipeline's and the scan's time, moved by the test (never slept through)."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


class Counted:
    """The real renderer, counting the files it is asked to decode."""

    def __init__(self) -> None:
        self.files: list[str] = []

    def __call__(
        self, data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes = b""
    ) -> Rendered:
        self.files.append(filename)
        return imaging.render(data, spec, filename, sha256, now, sidecar)


def scan(pipeline: Pipeline, clock: Clock) -> Report:
    return reconcile(pipeline, reason="scan", settle=pipeline.cfg.settle, now=clock)


def error_of(catalog: Catalog, rel: str) -> ErrorRecord:
    err = catalog.error(rel)
    assert err is not None, rel
    return err


def test_a_truncated_file_long_quiet_is_decoded_once_until_touched_or_retried(cfg: Config, catalog: Catalog) -> None:
    clock, decodes = Clock(), Counted()
    pipeline = Pipeline(cfg, catalog, now=clock, render=decodes)
    whole = encode(scene((640, 480), seed=8))
    half = write(cfg.thumbs_dir / "half.jpg", whole[: len(whole) // 2])
    os.utime(half, (clock() - 3600,) * 2)  # an hour old: no writer is coming back

    first = scan(pipeline, clock)
    assert first.counts == {"error": 1} and first.retry == [] and first.deferred == []  # nothing to wait for
    err = error_of(catalog, "thumbs/half.jpg")
    assert "truncated" in err.reason and not err.transient and err.attempts == 1
    assert err.inode == half.stat().st_ino
    assert decodes.files == ["half.jpg"]

    second = scan(pipeline, clock)
    assert second.counts == {"ignored": 1} and second.retry == []
    assert decodes.files == ["half.jpg"]  # not decoded again
    assert error_of(catalog, "thumbs/half.jpg").attempts == 1

    os.utime(half)  # touch: its mtime changes
    clock.t += 3600
    assert scan(pipeline, clock).counts == {"error": 1}
    assert decodes.files == ["half.jpg"] * 2 and error_of(catalog, "thumbs/half.jpg").attempts == 2

    assert edits.apply(cfg, catalog, "retry-errors", {}) == {"retried": ["thumbs/half.jpg"]}
    assert catalog.errors() == []
    assert scan(pipeline, clock).counts == {"error": 1}
    assert decodes.files == ["half.jpg"] * 3 and error_of(catalog, "thumbs/half.jpg").attempts == 1
    assert half.read_bytes() == whole[: len(whole) // 2]  # left exactly as it was


def test_a_file_put_in_its_place_is_read_again_though_size_and_mtime_match(cfg: Config, catalog: Catalog) -> None:
    clock = Clock()
    pipeline = Pipeline(cfg, catalog, now=clock)
    bad = write(cfg.thumbs_dir / "bad.jpg", b"not an image at all")
    os.utime(bad, (clock() - 3600,) * 2)
    assert scan(pipeline, clock).counts == {"error": 1}
    assert scan(pipeline, clock).counts == {"ignored": 1}
    # Another file of the same size and mtime takes its name (a new inode).
    st = bad.stat()
    other = write(cfg.thumbs_dir / ".incoming", b"not an image, again")
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, bad)
    assert (bad.stat().st_size, bad.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert bad.stat().st_ino != st.st_ino
    assert scan(pipeline, clock).counts == {"error": 1}
    assert error_of(catalog, "thumbs/bad.jpg").attempts == 2


def test_an_error_recorded_before_the_inode_was_kept_still_holds(cfg: Config, catalog: Catalog) -> None:
    clock = Clock()
    pipeline = Pipeline(cfg, catalog, now=clock)
    bad = write(cfg.thumbs_dir / "bad.jpg", b"not an image at all")
    st = bad.stat()
    old = {"path": "thumbs/bad.jpg", "reason": "not an image", "transient": False, "size": st.st_size}
    old |= {"mtime_ns": st.st_mtime_ns, "first_seen": "2024-01-01T00:00:00+00:00", "last_seen": "x", "attempts": 3}
    with catalog.transaction():
        catalog.put_error(ErrorRecord.from_json(old))
    err = error_of(catalog, "thumbs/bad.jpg")
    assert err.inode is None and err.beside is None and err.same_file(st)
    clock.t += 3600
    assert scan(pipeline, clock).counts == {"ignored": 1}
    assert error_of(catalog, "thumbs/bad.jpg").attempts == 3


def test_a_copy_beside_its_thumbnail_is_reported_once(cfg: Config, catalog: Catalog) -> None:
    clock = Clock()
    clock.t += 3600  # every file below is long settled
    pipeline = Pipeline(cfg, catalog, now=clock)
    assert pipeline.process(drop(cfg.thumbs_dir / "cats" / "tom.jpg", seed=3)).outcome is Outcome.INGESTED
    (thumb,) = canonical_files(cfg.thumbs_dir / "cats")
    copy = thumb.with_name(f"{thumb.stem} (copy).png")
    shutil.copyfile(thumb, copy)
    rel = f"thumbs/cats/{copy.name}"

    first = scan(pipeline, clock)
    assert first.counts == {"unchanged": 1, "error": 1}
    err = error_of(catalog, rel)
    assert err.reason == f"a copy of {thumb.name} in the same folder; left as it is"
    assert err.beside == f"thumbs/cats/{thumb.name}" and err.attempts == 1

    assert scan(pipeline, clock).counts == {"unchanged": 1, "ignored": 1}  # not read again
    assert error_of(catalog, rel).attempts == 1

    os.utime(copy, ns=(copy.stat().st_mtime_ns + 10**9,) * 2)  # touched
    assert scan(pipeline, clock).counts == {"unchanged": 1, "error": 1}
    assert error_of(catalog, rel).attempts == 2
    assert edits.apply(cfg, catalog, "retry-errors", {}) == {"retried": [rel]}
    assert scan(pipeline, clock).counts == {"unchanged": 1, "error": 1}
    assert error_of(catalog, rel).attempts == 1

    # The file it was in the way of is gone: the copy takes its name, the image goes on.
    data = thumb.read_bytes()
    thumb.unlink()
    scan(pipeline, clock)
    assert not copy.exists() and thumb.read_bytes() == data
    assert catalog.errors() == []
    rec = catalog.image(thumb.name)
    assert rec is not None and rec.present and rec.path == f"thumbs/cats/{thumb.name}"


def test_errors_retry_with_nothing_recorded_changes_nothing(cfg: Config, catalog: Catalog) -> None:
    assert edits.apply(cfg, catalog, "retry-errors", {}) == {"retried": []}
    assert catalog.errors() == []


def test_a_transient_error_is_waited_for_at_its_first_scan_only(cfg: Config, catalog: Catalog) -> None:
    def died(data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes = b"") -> Rendered:
        raise ImageError("the decoder process died", transient=True)  # what the pool says when a worker dies

    clock = Clock()
    pipeline = Pipeline(cfg, catalog, now=clock, render=died)
    photo = drop(cfg.thumbs_dir / "photo.jpg", seed=4)
    os.utime(photo, (clock() - 3600,) * 2)
    first = scan(pipeline, clock)
    assert first.counts == {"deferred": 1} and first.retry == [photo]  # a new failure: tried again soon
    second = scan(pipeline, clock)
    assert second.counts == {"error": 1} and second.retry == []  # the same failure again: counted, not waited for
    err = error_of(catalog, "thumbs/photo.jpg")
    assert err.transient and err.attempts == 2
    os.utime(photo)  # changed: a new failure is worth waiting for again
    clock.t += 3600
    assert scan(pipeline, clock).retry == [photo]
