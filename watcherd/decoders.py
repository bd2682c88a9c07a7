"""Decoding in a worker process with a time and a memory limit.

Pillow parses hostile bytes. A file that makes a decoder loop, allocate without end or
crash must cost one error line, never the daemon: the worker runs under an address
space limit (``RLIMIT_AS``), the parent waits at most ``timeout`` seconds for an
answer, and a worker that hangs or dies is killed and replaced.

The worker is started with ``spawn`` (never ``fork``): the daemon has observer and
heartbeat threads, and forking a threaded process can deadlock the child.

Workers ignore SIGINT: a Ctrl-C at a terminal reaches the whole process group, and
the parent, which stops its workers itself, is the one to act on it. Whatever a
worker's C libraries write to stderr (libtiff's messages) goes to a temporary file
and comes back with the answer of the job it belongs to, so it reaches the log as
part of that file's one line instead of as raw library output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing import resource_tracker
from typing import Any

from watcherd import imaging
from watcherd.errors import ImageError

log = logging.getLogger("watcherd")

STARTUP_TIMEOUT = 120.0

Job = Callable[[bytes, imaging.RenderSpec, str, str, float], imaging.Rendered]


def _limit_memory(limit: int) -> None:
    try:
        import resource
    except ImportError:  # not on this platform: time limit only
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# What a worker's stderr said about one file is cut to this many bytes.
MAX_SAID = 2000


class _Stderr:
    """A worker's file descriptor 2, pointed at a temporary file that each job empties."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        sys.stderr.flush()
        os.dup2(self._file.fileno(), 2)

    def take(self) -> str:
        """What was written since the last call, as one line ("" when nothing was)."""
        sys.stderr.flush()
        size = os.lseek(2, 0, os.SEEK_END)
        raw = os.pread(2, min(size, MAX_SAID), 0) if size else b""
        os.ftruncate(2, 0)
        os.lseek(2, 0, os.SEEK_SET)
        return "; ".join(imaging.summarize_warnings(raw.decode("utf-8", "replace").splitlines()))


def _with_said(answer: tuple[str, Any], said: str) -> tuple[str, Any]:
    """Fold a worker's stderr into its answer: a warning of a result, part of an error's reason."""
    status, payload = answer
    if status == "ok" and isinstance(payload, imaging.Rendered):
        return status, dataclasses.replace(payload, warnings=(*payload.warnings, said))
    if status == "error":
        reason, transient = payload
        return status, (f"{reason} (decoder: {said})", transient)
    return answer


def _serve(conn: multiprocessing.connection.Connection, job: Job, memory_limit: int) -> None:
    """The worker's loop: one request in, one answer out, until the pipe closes."""
    # Ignore Ctrl-C, then unblock it: a SIGINT that arrived while we started (the
    # parent starts us with it blocked) is dropped, never a KeyboardInterrupt here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _limit_memory(memory_limit)
    stderr: _Stderr | None = None
    with contextlib.suppress(OSError):  # no temporary file: stderr stays the parent's
        stderr = _Stderr()
    conn.send(("ready", None))  # start-up (imports) does not count against a file's time
    while True:
        try:
            args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, Any] = ("ok", job(*args))
        except ImageError as exc:
            answer = ("error", (exc.reason, exc.transient))
        except MemoryError:
            answer = ("error", ("image too large to decode within the memory limit", False))
        except RecursionError:
            answer = ("error", ("decoder recursion too deep", False))
        except Exception as exc:
            answer = ("error", (f"cannot decode image: {type(exc).__name__}: {exc}", False))
        said = stderr.take() if stderr is not None else ""
        if said:
            answer = _with_said(answer, said)
        try:
            conn.send(answer)
        except (OSError, ValueError):
            return


class Sandbox:
    """A replaceable worker process that runs ``job`` (``imaging.render`` by default)."""

    def __init__(self, timeout: float, memory_limit: int, job: Job = imaging.render) -> None:
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.job = job
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._conn: multiprocessing.connection.Connection | None = None

    def _start(self) -> multiprocessing.connection.Connection:
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            return self._conn
        self._kill()
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_serve, args=(child, self.job, self.memory_limit), name="watcherd-decoder", daemon=True
        )
        # Started with SIGINT blocked (the mask is inherited), so a Ctrl-C during the
        # worker's start-up cannot interrupt its imports; ``_serve`` then ignores it.
        # multiprocessing's resource tracker unblocks SIGINT after starting itself, so
        # it is started first.
        resource_tracker.ensure_running()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        child.close()
        self._proc, self._conn = proc, parent
        try:
            if not parent.poll(STARTUP_TIMEOUT) or parent.recv()[0] != "ready":
                raise EOFError
        except (EOFError, OSError):
            self._kill()
            raise ImageError("the decoder process did not start", transient=True) from None
        return parent

    def _kill(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(timeout=5)
        self._proc, self._conn = None, None

    def __call__(
        self, data: bytes, spec: imaging.RenderSpec, filename: str, sha256: str, now: float
    ) -> imaging.Rendered:
        """Run the job in the worker; a hang, a crash or a limit becomes ImageError."""
        conn = self._start()
        try:
            conn.send((data, spec, filename, sha256, now))
            ready = conn.poll(self.timeout)
        except (OSError, EOFError):
            ready = False
            self._kill()
            raise ImageError("the decoder process died", transient=True) from None
        if not ready:
            self._kill()
            raise ImageError(f"decoding took longer than {self.timeout:g}s (stopped)")
        try:
            status, payload = conn.recv()
        except (EOFError, OSError):
            code = self._proc.exitcode if self._proc is not None else None
            self._kill()
            raise ImageError(f"the decoder process crashed on this file (exit {code})") from None
        if status == "ok":
            return payload  # type: ignore[no-any-return]
        reason, transient = payload
        raise ImageError(reason, transient=transient)

    def close(self) -> None:
        """Stop the worker."""
        self._kill()

    def interrupt(self) -> None:
        """Kill the worker process only, from another thread: a caller waiting on it sees it die."""
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.kill()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DecoderPool:
    """Several sandboxes decoding at once, sized to the cores; the catalog writer stays single.

    Each job runs in a worker process under the same limits as a lone Sandbox; the
    threads here only wait on pipes, so they cost no CPU and take no GIL while a
    picture decodes.
    """

    def __init__(self, workers: int, timeout: float, memory_limit: int, job: Job = imaging.render) -> None:
        self.workers = max(1, workers)
        self._boxes = [Sandbox(timeout, memory_limit, job) for _ in range(self.workers)]
        self._idle: queue.SimpleQueue[Sandbox] = queue.SimpleQueue()
        for box in self._boxes:
            self._idle.put(box)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="watcherd-decode")
        self._closed = False

    def _run(self, data: bytes, spec: imaging.RenderSpec, filename: str, sha256: str, now: float) -> imaging.Rendered:
        if self._closed:
            raise ImageError("the decoders are stopping", transient=True)
        box = self._idle.get()
        try:
            return box(data, spec, filename, sha256, now)
        finally:
            self._idle.put(box)

    def warm(self) -> None:
        """Start the workers now, in the background, so the first file is not kept waiting.

        Each start-up holds its worker as a job would, so a job never meets a worker
        that is still starting.
        """

        def start() -> None:
            box = self._idle.get()
            try:
                with contextlib.suppress(ImageError):  # tried again when a job needs it
                    box._start()
            finally:
                self._idle.put(box)

        for _ in self._boxes:
            self._executor.submit(start)

    def submit(
        self, data: bytes, spec: imaging.RenderSpec, filename: str, sha256: str, now: float
    ) -> Future[imaging.Rendered]:
        """Start one job; its future raises ImageError as the Sandbox would."""
        return self._executor.submit(self._run, data, spec, filename, sha256, now)

    def __call__(
        self, data: bytes, spec: imaging.RenderSpec, filename: str, sha256: str, now: float
    ) -> imaging.Rendered:
        """Run one job and wait for it."""
        return self.submit(data, spec, filename, sha256, now).result()

    def close(self) -> None:
        """Drop queued jobs, kill running ones and stop every worker."""
        self._closed = True
        for box in self._boxes:
            box.interrupt()
        self._executor.shutdown(wait=True, cancel_futures=True)
        for box in self._boxes:
            box.close()

    def __enter__(self) -> DecoderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
