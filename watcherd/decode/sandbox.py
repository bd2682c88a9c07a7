"""Decoding in a worker process with a time and a memory limit.

Pillow parses hostile bytes. A file that makes a decoder loop, allocate without end or
crash must cost one error line, never the daemon: the worker runs under an address
space limit (``RLIMIT_AS``), the parent waits at most ``timeout`` seconds for an
answer, and a worker that hangs or dies is killed and replaced.

The worker is a plain subprocess (``python -m watcherd.decode.child``, see there for
its frames), never a fork of this process: the daemon has observer and heartbeat
threads, and a dask worker under its nanny is daemonic and may not start
``multiprocessing`` children at all.

Workers run in a session of their own and ignore SIGINT: a Ctrl-C at a terminal is
for the parent, which stops its workers itself. Whatever a worker's C libraries write
(libtiff's messages) comes back with the answer of the job it belongs to, so it
reaches the log as part of that file's one line instead of as raw library output.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import watcherd
from watcherd.core.errors import ChannelClosed, ImageError
from watcherd.decode.child import Job, frame, job_name, read_frame, rendered_from, request
from watcherd.decode.rendered import RENDER, Rendered, RenderSpec

STARTUP_TIMEOUT = 120.0

__all__ = ["DecoderPool", "Job", "Sandbox"]

# The folder watcherd is imported from, first on the worker's path: the worker runs this very code.
_HOME = str(Path(watcherd.__file__).resolve().parent.parent)


class _Timeout(Exception):
    pass


class _Pipe:
    """Reads exact byte counts from a worker's stdout, giving up at a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.deadline = 0.0

    def read(self, n: int) -> bytes:
        parts: list[bytes] = []
        while n:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise _Timeout
            chunk = os.read(self.fd, min(n, 1 << 20))
            if not chunk:
                raise ChannelClosed("the decoder process closed its channel")
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)


class Sandbox:
    """A replaceable worker process that runs ``job`` (``imaging.render`` by default, by name)."""

    def __init__(self, timeout: float, memory_limit: int, job: Job | str = RENDER) -> None:
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.job = job
        self._proc: subprocess.Popen[bytes] | None = None
        self._pipe: _Pipe | None = None

    def _start(self) -> tuple[subprocess.Popen[bytes], _Pipe]:
        if self._proc is not None and self._pipe is not None and self._proc.poll() is None:
            return self._proc, self._pipe
        self._kill()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_HOME, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcherd.decode.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # out of the terminal's process group: Ctrl-C is ours
            close_fds=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        pipe = _Pipe(proc.stdout.fileno())
        self._proc, self._pipe = proc, pipe
        hello = {"job": job_name(self.job), "path": [p for p in sys.path if p], "memory_limit": self.memory_limit}
        try:
            proc.stdin.write(frame(hello))
            proc.stdin.flush()
            pipe.deadline = time.monotonic() + STARTUP_TIMEOUT
            if read_frame(pipe.read)[0].get("status") != "ready":
                raise ChannelClosed("the decoder process did not say it is ready")
        except (ChannelClosed, OSError, ValueError, _Timeout):
            self._kill()
            raise ImageError("the decoder process did not start", transient=True) from None
        return proc, pipe

    def start(self) -> None:
        """Start the worker now (a job would start it anyway), so the first file is not kept waiting."""
        self._start()

    def _kill(self) -> None:
        proc, self._proc, self._pipe = self._proc, None, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __call__(
        self, data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes = b""
    ) -> Rendered:
        """Run the job in the worker; a hang, a crash or a limit becomes ImageError."""
        proc, pipe = self._start()
        assert proc.stdin is not None
        try:
            proc.stdin.write(request(data, spec, filename, sha256, now, sidecar))
            proc.stdin.flush()
        except (OSError, ValueError):
            self._kill()
            raise ImageError("the decoder process died", transient=True) from None
        pipe.deadline = time.monotonic() + self.timeout
        try:
            header, payload = read_frame(pipe.read)
        except _Timeout:
            self._kill()
            raise ImageError(f"decoding took longer than {self.timeout:g}s (stopped)") from None
        except (ChannelClosed, OSError, ValueError):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            code = proc.returncode
            self._kill()
            raise ImageError(f"the decoder process crashed on this file (exit {code})") from None
        return rendered_from(header, payload)

    def close(self) -> None:
        """Stop the worker."""
        self._kill()

    def interrupt(self) -> None:
        """Kill the worker process only, from another thread: a caller waiting on it sees it die."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

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

    def __init__(self, workers: int, timeout: float, memory_limit: int, job: Job | str = RENDER) -> None:
        self.workers = max(1, workers)
        self._boxes = [Sandbox(timeout, memory_limit, job) for _ in range(self.workers)]
        self._idle: queue.SimpleQueue[Sandbox] = queue.SimpleQueue()
        for box in self._boxes:
            self._idle.put(box)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="watcherd-decode")
        self._closed = False

    def _run(
        self, data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes = b""
    ) -> Rendered:
        if self._closed:
            raise ImageError("the decoders are stopping", transient=True)
        box = self._idle.get()
        try:
            return box(data, spec, filename, sha256, now, sidecar)
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
                    box.start()
            finally:
                self._idle.put(box)

        for _ in self._boxes:
            self._executor.submit(start)

    def submit(
        self, data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes = b""
    ) -> Future[Rendered]:
        """Start one job; its future raises ImageError as the Sandbox would."""
        return self._executor.submit(self._run, data, spec, filename, sha256, now, sidecar)

    def __call__(
        self, data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes = b""
    ) -> Rendered:
        """Run one job and wait for it."""
        return self.submit(data, spec, filename, sha256, now, sidecar).result()

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
