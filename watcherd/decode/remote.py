"""What a cluster worker does with a batch of paths: read, sha256, decode in the sandbox.

This runs inside a dask worker (``cluster.ClusterDecoder`` sends it there) and imports
nothing of dask: a task is a plain function of plain values. Each file is read as the
writer would read it (``newimage.read_stamped``: no symlinks, no FIFOs, the size cap),
and decoded in a ``sandbox.Sandbox`` subprocess with the library's own timeout and
memory limit, so a hostile file costs the sandbox, not the worker. Only the thumbnail
and its facts travel back, with the size and mtime the worker read, which the writer
checks against the file at its turn.
"""

from __future__ import annotations

import atexit
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from watcherd.core.errors import ImageError
from watcherd.decode.newimage import read_stamped
from watcherd.decode.rendered import Rendered, RenderSpec
from watcherd.decode.sandbox import Sandbox
from watcherd.fs import sidecars


@dataclass(frozen=True)
class Limits:
    """What every file of a batch is held to."""

    max_file_size: int
    timeout: float
    memory_limit: int


# One sandbox per worker thread: its subprocess outlives the task, so start-up is paid once.
_local = threading.local()
_all: list[Sandbox] = []
_lock = threading.Lock()


def _sandbox(limits: Limits) -> Sandbox:
    box: Sandbox | None = getattr(_local, "box", None)
    if box is None or (box.timeout, box.memory_limit) != (limits.timeout, limits.memory_limit):
        if box is not None:
            box.close()
        box = Sandbox(limits.timeout, limits.memory_limit)
        _local.box = box
        with _lock:
            _all.append(box)
    return box


@atexit.register
def _close_all() -> None:
    with _lock:
        for box in _all:
            box.close()


# One file's answer: (size, mtime_ns) as read, sha256, then the Rendered or (reason, transient).
Answer = tuple[tuple[int, int] | None, str, "Rendered | None", "tuple[str, bool] | None"]


def decode_one(path: str, spec: RenderSpec, limits: Limits, now: float) -> Answer:
    """Read one file and render it in this worker's sandbox; failures are answers too."""
    try:
        data, stamp = read_stamped(Path(path), limits.max_file_size)
    except ImageError as exc:
        return None, "", None, (exc.reason, exc.transient)
    if len(data) > limits.max_file_size:
        return stamp, "", None, (f"file too large ({len(data)} bytes > max_file_size)", False)
    sha = hashlib.sha256(data).hexdigest()
    sidecar = sidecars.read_beside(Path(path)) if spec.keywords else b""  # its keywords, read in the sandbox
    try:
        return stamp, sha, _sandbox(limits)(data, spec, Path(path).name, sha, now, sidecar), None
    except ImageError as exc:
        return stamp, sha, None, (exc.reason, exc.transient)


def probe() -> str:
    """A task that proves a worker can import watcherd (the client checks it before a scan)."""
    import watcherd

    return watcherd.__name__


def decode_batch(paths: list[str], spec: RenderSpec, limits: Limits, now: float) -> list[Answer]:
    """A dask task: each path's answer, in order."""
    return [decode_one(path, spec, limits, now) for path in paths]
