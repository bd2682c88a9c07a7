"""The decoder worker process (``python -m watcherd.decode.child``) and the frames it speaks.

The parent (``sandbox.Sandbox``) starts this module as a plain subprocess rather than
a ``multiprocessing`` child, so it also runs inside processes that may not have
children of their own (a dask worker under its nanny is daemonic). Requests and
answers are frames on the child's stdin and stdout: a JSON header and raw bytes (the
image in, the thumbnail PNG out). Nothing is pickled: a frame can say only what its
JSON can.

The first frame names the job (``module:function``, ``imaging.render`` unless a test
says otherwise), the import path and the memory limit; the child imports the job,
limits its address space and answers ``ready``, so start-up never counts against a
file's time. Whatever C libraries write to the child's stdout or stderr goes to a
temporary file that each job empties into its answer, never into the frames.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import signal
import struct
import sys
import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO

from watcherd.core.errors import ChannelClosed, ImageError
from watcherd.core.exif import Exif
from watcherd.decode.rendered import Rendered, RenderSpec, summarize_warnings

# Each frame: the lengths of its JSON header and of its payload, then both.
FRAME = struct.Struct(">II")

# What a worker's stderr said about one file is cut to this many bytes.
MAX_SAID = 2000

Job = Callable[[bytes, RenderSpec, str, str, float], Rendered]
Reader = Callable[[int], bytes]


def frame(header: dict[str, Any], payload: bytes = b"") -> bytes:
    """One message: its header as JSON, then its payload."""
    text = json.dumps(header, separators=(",", ":")).encode()
    return FRAME.pack(len(text), len(payload)) + text + payload


def read_frame(read: Reader) -> tuple[dict[str, Any], bytes]:
    """The next message, from ``read(n)`` which returns exactly n bytes or raises ``ChannelClosed``."""
    size, length = FRAME.unpack(read(FRAME.size))
    try:
        header = json.loads(read(size))
    except ValueError:
        raise ChannelClosed("a frame's header is not JSON") from None
    if not isinstance(header, dict):
        raise ChannelClosed("a frame's header is not a JSON object")
    return header, read(length) if length else b""


def job_name(job: Job | str) -> str:
    """``module:qualname`` of a job, which the child imports (a name is taken as it is)."""
    return job if isinstance(job, str) else f"{job.__module__}:{job.__qualname__}"


def request(data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes = b"") -> bytes:
    """The frame asking for one render (the sidecar's bytes, if any, follow the image's in the payload)."""
    header: dict[str, Any] = {"spec": dataclasses.asdict(spec), "filename": filename, "sha256": sha256, "now": now}
    if sidecar:
        header["sidecar"] = len(sidecar)
    return frame(header, data + sidecar if sidecar else data)


def answer_of(out: Rendered) -> bytes:
    """The frame of a finished render (the PNG travels as the payload)."""
    fields = dataclasses.asdict(out)
    fields.pop("png")
    return frame({"status": "ok", "rendered": fields}, out.png)


def error_of(reason: str, transient: bool) -> bytes:
    """The frame of a failed render."""
    return frame({"status": "error", "reason": reason, "transient": transient})


def rendered_from(header: dict[str, Any], payload: bytes) -> Rendered:
    """The parent's reading of an answer: a Rendered, or the ImageError it stands for."""
    if header.get("status") != "ok":
        raise ImageError(str(header.get("reason")), transient=bool(header.get("transient")))
    fields = header["rendered"]
    return Rendered(
        width=fields["width"],
        height=fields["height"],
        hash=fields["hash"],
        format=fields["format"],
        png=payload,
        low_information=fields["low_information"],
        warnings=tuple(fields["warnings"]),
        keywords=tuple(str(k) for k in fields.get("keywords") or ()),
        keyword_paths=tuple(str(k) for k in fields.get("keyword_paths") or ()),
        refused=str(fields.get("refused") or ""),
        note=str(fields.get("note") or ""),
        crops=str(fields.get("crops") or ""),
        exif=Exif.from_json(fields.get("exif")),
    )


def _spec_from(fields: dict[str, Any]) -> RenderSpec:
    return RenderSpec(**{**fields, "formats": tuple(fields["formats"])})


def _limit_memory(limit: int) -> None:
    try:
        import resource
    except ImportError:  # not on this platform: time limit only
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class _Said:
    """File descriptors 1 and 2, pointed at a temporary file that each job empties."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        sys.stderr.flush()
        os.dup2(self._file.fileno(), 1)
        os.dup2(self._file.fileno(), 2)

    def take(self) -> str:
        """What was written since the last call, as one line ("" when nothing was)."""
        sys.stderr.flush()
        fd = self._file.fileno()
        size = os.lseek(fd, 0, os.SEEK_END)
        raw = os.pread(fd, min(size, MAX_SAID), 0) if size else b""
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        return "; ".join(summarize_warnings(raw.decode("utf-8", "replace").splitlines()))


def _run(job: Job, header: dict[str, Any], payload: bytes, said: _Said | None) -> bytes:
    """One job's answer frame, with what the libraries said folded in."""
    size = int(header.get("sidecar") or 0)
    data, sidecar = (payload[:-size], payload[-size:]) if size else (payload, b"")
    args = [data, _spec_from(header["spec"]), header["filename"], header["sha256"], header["now"]]
    run: Any = job  # a job takes the sidecar's bytes only when there are some (tests' jobs never get any)
    try:
        out: Rendered | None = run(*args, sidecar) if sidecar else run(*args)
        failure: tuple[str, bool] | None = None
    except ImageError as exc:
        out, failure = None, (exc.reason, exc.transient)
    except MemoryError:
        out, failure = None, ("image too large to decode within the memory limit", False)
    except RecursionError:
        out, failure = None, ("decoder recursion too deep", False)
    except Exception as exc:
        out, failure = None, (f"cannot decode image: {type(exc).__name__}: {exc}", False)
    text = said.take() if said is not None else ""
    if out is not None:
        return answer_of(dataclasses.replace(out, warnings=(*out.warnings, text)) if text else out)
    assert failure is not None
    reason, transient = failure
    return error_of(f"{reason} (decoder: {text})" if text else reason, transient)


def _exact(stream: BinaryIO) -> Reader:
    def read(n: int) -> bytes:
        data = stream.read(n)
        if data is None or len(data) != n:
            raise ChannelClosed("the channel ended")
        return data

    return read


def main() -> None:
    """Serve jobs from stdin until it closes."""
    # A terminal's Ctrl-C is the parent's to act on (it stops its workers itself).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The frames get their own descriptors: 0 and 1 are left to whatever libraries do.
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    with open(os.devnull, "r+b") as null:
        os.dup2(null.fileno(), 0)
        os.dup2(null.fileno(), 1)
    read = _exact(requests)
    try:
        hello, _ = read_frame(read)
    except ChannelClosed:
        return
    sys.path[:0] = [p for p in hello["path"] if p not in sys.path]
    module, _, name = hello["job"].partition(":")
    job: Any = importlib.import_module(module)
    for part in name.split("."):
        job = getattr(job, part)
    _limit_memory(hello["memory_limit"])
    said: _Said | None = None
    with contextlib.suppress(OSError):  # no temporary file: output goes where the parent's does
        said = _Said()
    answers.write(frame({"status": "ready"}))
    answers.flush()
    while True:
        try:
            header, data = read_frame(read)
        except (ChannelClosed, OSError, ValueError):
            return
        try:
            answers.write(_run(job, header, data, said))
            answers.flush()
        except OSError:
            return


if __name__ == "__main__":
    main()
