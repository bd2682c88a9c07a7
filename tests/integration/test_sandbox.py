"""The decoder worker process: real decoding, and hangs, memory hogs and crashes contained."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.queues import Queue
from pathlib import Path

import pytest

from tests.helpers import encode, scene, tiff_libtiff_fails, tiff_pillow_warns, wait_for
from watcherd.core.config import Config
from watcherd.core.errors import ImageError
from watcherd.decode import imaging
from watcherd.decode.newimage import spec_for
from watcherd.decode.rendered import Rendered
from watcherd.decode.sandbox import Job, Sandbox

SPEC = spec_for(Config())


def hang(*args: object) -> Rendered:
    time.sleep(60)
    raise AssertionError("not reached")


def hog(*args: object) -> Rendered:
    chunks = [bytearray(64 << 20) for _ in range(64)]  # 4 GiB, over the limit below
    raise AssertionError(f"allocated {len(chunks)} chunks")


def crash(*args: object) -> Rendered:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("not reached")


def test_real_render_matches_in_process() -> None:
    data = encode(scene(seed=1))
    with Sandbox(timeout=30, memory_limit=2 << 30) as box:
        out = box(data, SPEC, "a.jpg", "ab", 0.0)
    assert out == imaging.render(data, SPEC, "a.jpg", "ab", 0.0)


def test_image_errors_come_back_as_image_errors() -> None:
    with Sandbox(timeout=30, memory_limit=2 << 30) as box, pytest.raises(ImageError, match="not an image"):
        box(b"text", SPEC, "a.jpg", "ab", 0.0)


@pytest.mark.parametrize(
    ("job", "timeout", "reason"),
    [
        (hang, 1.0, "longer than 1s"),
        (hog, 60.0, "memory limit"),
        (crash, 60.0, "crashed"),
    ],
)
def test_bad_decodes_are_contained_and_the_worker_replaced(job: Job, timeout: float, reason: str) -> None:
    box = Sandbox(timeout=timeout, memory_limit=1 << 30, job=job)
    try:
        with pytest.raises(ImageError, match=reason):
            box(b"x", SPEC, "a.jpg", "ab", 0.0)
        # The next file gets a fresh worker, running the real decoder.
        box.job = imaging.render
        box._kill()
        assert box(encode(scene(seed=2)), SPEC, "b.jpg", "cd", 0.0).width == 320
    finally:
        box.close()


def which_worker(*args: object) -> Rendered:
    """Answer with the worker's pid (as the width), after long enough for the other worker to take a job."""
    time.sleep(0.5)
    return Rendered(width=os.getpid(), height=0, hash="", format="", png=b"")


def test_pool_spreads_jobs_over_its_workers_and_contains_a_crash() -> None:
    from watcherd.decode.sandbox import DecoderPool

    with DecoderPool(2, 60, 1 << 30, job=which_worker) as pool:
        futures = [pool.submit(b"x", SPEC, f"{i}.jpg", "ab", 0.0) for i in range(4)]
        pids = {f.result(timeout=120).width for f in futures}
    assert len(pids) == 2 and os.getpid() not in pids
    data = encode(scene(seed=2))
    with DecoderPool(2, 60, 2 << 30) as pool:
        assert pool(data, SPEC, "a.jpg", "ab", 0.0) == imaging.render(data, SPEC, "a.jpg", "ab", 0.0)
    with DecoderPool(2, 60, 1 << 30, job=crash) as pool, pytest.raises(ImageError, match="crashed"):
        pool(b"x", SPEC, "a.jpg", "ab", 0.0)
    with DecoderPool(2, 60, 1 << 30, job=crash) as pool, pytest.raises(ImageError, match="crashed"):
        pool(b"x", SPEC, "a.jpg", "ab", 0.0)


def announce_then_hang(data: bytes, spec: object, filename: str, *args: object) -> Rendered:
    """Create ``filename`` (so the test sees the job has started in the worker), then hang."""
    Path(filename).touch()
    return hang()


def test_pool_close_stops_a_running_job_at_once(tmp_path: Path) -> None:
    from watcherd.decode.sandbox import DecoderPool

    started = tmp_path / "started"
    pool = DecoderPool(1, 60, 1 << 30, job=announce_then_hang)
    future = pool.submit(b"x", SPEC, str(started), "ab", 0.0)
    wait_for(started.exists, timeout=60, what="the worker to take the job")
    pool.close()
    with pytest.raises(ImageError):
        future.result(timeout=30)


def test_warm_starts_every_worker_before_any_job() -> None:
    from watcherd.decode.sandbox import DecoderPool

    with DecoderPool(2, 60, 2 << 30) as pool:
        pool.warm()
        wait_for(lambda: all(b.pid is not None for b in pool._boxes), timeout=60, what="workers")
        data = encode(scene(seed=3))
        assert pool(data, SPEC, "a.jpg", "ab", 0.0) == imaging.render(data, SPEC, "a.jpg", "ab", 0.0)


def test_library_output_comes_back_with_its_file_not_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    im = scene((96, 64), seed=3)
    with Sandbox(timeout=30, memory_limit=2 << 30) as box:
        warned = box(tiff_pillow_warns(im), SPEC, "w.tif", "ab", 0.0)
        with pytest.raises(ImageError) as failed:
            box(tiff_libtiff_fails(im), SPEC, "f.tif", "ab", 0.0)
        clean = box(encode(im, "TIFF"), SPEC, "c.tif", "ab", 0.0)
    assert warned.warnings == ("Truncated File Read (3 times)",)
    # libtiff writes this with fprintf(stderr): only the worker's fd 2 could catch it.
    assert failed.value.reason.startswith("cannot decode image: decoder error -2 (decoder: TIFFFillStrip: Read error")
    assert clean.warnings == ()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_a_worker_ignores_ctrl_c_and_keeps_working() -> None:
    # A terminal's Ctrl-C reaches every process of the group; the parent decides what stops.
    data = encode(scene(seed=1))
    with Sandbox(timeout=30, memory_limit=2 << 30) as box:
        box(data, SPEC, "a.jpg", "ab", 0.0)
        pid = box.pid
        assert pid is not None
        os.kill(pid, signal.SIGINT)
        out = box(data, SPEC, "a.jpg", "ab", 0.0)
        assert box.pid == pid
    assert out == imaging.render(data, SPEC, "a.jpg", "ab", 0.0)


def render_in_a_daemonic_process(data: bytes, answers: Queue[tuple[int, str]]) -> None:
    """What a dask worker under its nanny does: decode in a sandbox from a daemonic process."""
    with Sandbox(timeout=30, memory_limit=2 << 30) as box:
        out = box(data, SPEC, "a.jpg", "ab", 0.0)
    answers.put((out.width, out.hash))


def test_a_daemonic_process_can_run_a_sandbox() -> None:
    # multiprocessing refuses children to daemonic processes; the sandbox is a plain subprocess.
    ctx = multiprocessing.get_context("spawn")
    answers: Queue[tuple[int, str]] = ctx.Queue()
    data = encode(scene(seed=4))
    proc = ctx.Process(target=render_in_a_daemonic_process, args=(data, answers), daemon=True)
    proc.start()
    try:
        got = answers.get(timeout=60)
    finally:
        proc.join(timeout=30)
    expected = imaging.render(data, SPEC, "a.jpg", "ab", 0.0)
    assert got == (expected.width, expected.hash) and proc.exitcode == 0


def test_similar_given_an_image_file_decodes_it_in_the_sandbox_never_in_the_caller(
    cfg: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from watcherd.commands import search
    from watcherd.core.errors import UsageError

    im = scene(seed=81)
    picture = tmp_path / "query.png"
    picture.write_bytes(encode(im, "PNG"))
    expected = imaging.render(picture.read_bytes(), spec_for(cfg), "query.png", "", 0.0).hash

    def in_the_caller(*args: object) -> object:
        raise AssertionError("a query image was decoded in the calling process")

    # The sandbox's worker is a fresh interpreter: this process's patch does not reach it.
    monkeypatch.setattr(imaging, "decode", in_the_caller)
    assert search.hash_of_file(cfg, picture) == expected
    (tmp_path / "not.png").write_bytes(b"not an image")
    with pytest.raises(UsageError, match=r"not\.png"):
        search.hash_of_file(cfg, tmp_path / "not.png")
