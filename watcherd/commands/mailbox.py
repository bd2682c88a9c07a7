"""The one-writer channel: commands hand catalog changes to the lease holder as files.

A command that wants a change while a daemon holds the lease writes a request into
``ROOT/.watcherd/requests/`` and waits for the answer beside it:

- ``{stamp}-{id}.request.json``: ``{"version", "id", "command", "arguments", "created",
  "host", "pid"}``, written under a temporary name, fsynced and renamed into place, so
  the writer never reads half a request. ``stamp`` (nanoseconds since the epoch, 20
  digits) makes names sort oldest first;
- the writer renames it to ``….taken.json`` before applying it (a command can then
  tell "not picked up yet", which it may withdraw, from "being applied");
- ``….answer.json``: ``{"version", "id", "ok", "result", "error", "exit_code",
  "answered"}``, written atomically; then the taken request is removed. ``result`` is
  what the command's ``--json`` prints; ``error`` and ``exit_code`` what it fails with.

A writer that dies between applying a request and answering it applies it again when
it starts (requests are applied at least once; every edit is idempotent). Nothing here
knows the catalog: encode/decode are pure, and the file exchange takes callables.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcherd.core.errors import UsageError
from watcherd.core.filters import TEMP_PREFIX
from watcherd.core.records import Json
from watcherd.filing.context import iso
from watcherd.fs import fsops
from watcherd.fs.layout import ANSWER_TEMP_PREFIX

VERSION = 1
REQUEST = ".request.json"
TAKEN = ".taken.json"
ANSWER = ".answer.json"
STALE_ANSWER = 3600.0  # answers nobody collected (the command was killed) are removed after this


@dataclass(frozen=True)
class Request:
    """One change a command asks the writer for."""

    command: str
    arguments: Json
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    created: float = field(default_factory=time.time)

    @property
    def stem(self) -> str:
        """The file name without its suffix: creation time first, so names sort oldest first."""
        return f"{int(self.created * 1e9):020d}-{self.id}"


@dataclass(frozen=True)
class Answer:
    """What the writer says back: the command's document, or its error and exit code."""

    id: str
    ok: bool
    result: Any = None
    error: str | None = None
    exit_code: int = 0


def encode_request(req: Request) -> bytes:
    """The request file's bytes."""
    return _dump(
        {
            "version": VERSION,
            "id": req.id,
            "command": req.command,
            "arguments": req.arguments,
            "created": iso(req.created),
            "created_ns": int(req.created * 1e9),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
    )


def decode_request(data: bytes) -> Request:
    """A request from its file's bytes; UsageError if it is not one."""
    obj = _load(data, "request")
    try:
        command, arguments, rid = obj["command"], obj["arguments"], obj["id"]
        created = int(obj.get("created_ns", 0)) / 1e9
    except (KeyError, TypeError, ValueError):
        raise UsageError("malformed request: it needs 'id', 'command' and 'arguments'") from None
    if not isinstance(command, str) or not isinstance(arguments, dict) or not isinstance(rid, str):
        raise UsageError("malformed request: 'command' and 'id' must be text, 'arguments' an object")
    return Request(command, arguments, rid, created)


def encode_answer(ans: Answer) -> bytes:
    """The answer file's bytes."""
    return _dump(
        {
            "version": VERSION,
            "id": ans.id,
            "ok": ans.ok,
            "result": ans.result,
            "error": ans.error,
            "exit_code": ans.exit_code,
            "answered": iso(time.time()),
        }
    )


def decode_answer(data: bytes) -> Answer:
    """An answer from its file's bytes; UsageError if it is not one."""
    obj = _load(data, "answer")
    try:
        return Answer(str(obj["id"]), bool(obj["ok"]), obj.get("result"), obj.get("error"), int(obj["exit_code"]))
    except (KeyError, TypeError, ValueError):
        raise UsageError("malformed answer from the daemon") from None


def _dump(obj: Json) -> bytes:
    # ASCII JSON: odd file names (lone surrogates) survive the round trip.
    return json.dumps(obj, ensure_ascii=True, sort_keys=True).encode("ascii")


def _load(data: bytes, what: str) -> Json:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UsageError(f"malformed {what}: not JSON") from None
    if not isinstance(obj, dict) or obj.get("version") != VERSION:
        raise UsageError(f"malformed {what}: not a version {VERSION} object")
    return obj


# -- the file exchange -------------------------------------------------------------------


def _publish(folder: Path, name: str, data: bytes, temp_prefix: str = TEMP_PREFIX) -> Path:
    """Write ``data`` under a temporary name, fsync, rename to ``name`` (never seen half-written)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{temp_prefix}{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        target = folder / name
        os.replace(tmp, target)
    except BaseException:  # Ctrl-C, a full disk: no temporary left behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsops.fsync_dir(folder)
    return target


def submit(folder: Path, req: Request) -> Path:
    """Put a request in place for the writer; return its path."""
    return _publish(folder, req.stem + REQUEST, encode_request(req))


def withdraw(folder: Path, req: Request) -> bool:
    """Take back a request the writer has not picked up; False if it already has."""
    try:
        os.unlink(folder / (req.stem + REQUEST))
    except FileNotFoundError:
        return False
    return True


def taken(folder: Path, req: Request) -> bool:
    """Is the writer applying this request right now?"""
    return (folder / (req.stem + TAKEN)).exists()


def collect(folder: Path, req: Request) -> Answer | None:
    """The answer to ``req`` if it is there (the answer file is removed once read)."""
    path = folder / (req.stem + ANSWER)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    # An SMB client may still hold the file it just read (a sharing violation, EIO
    # through rclone): the answer is ours already, and the writer sweeps old answers.
    with contextlib.suppress(OSError):
        os.unlink(path)
    return decode_answer(data)


def pending(folder: Path, now: float | None = None) -> list[Path]:
    """Requests waiting (and ones taken by a writer that died), oldest first: one scandir.

    Answers older than ``STALE_ANSWER`` that nobody collected are removed on the way.
    """
    now = time.time() if now is None else now
    out: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return out
    for entry in entries:
        name = entry.name
        if name.startswith(TEMP_PREFIX):
            continue
        if name.endswith(REQUEST) or name.endswith(TAKEN):
            out.append(Path(entry.path))
        elif name.endswith(ANSWER):
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime > STALE_ANSWER:
                    os.unlink(entry.path)
    return sorted(out, key=lambda p: p.name)


Handler = Callable[[Request], Answer]


def serve(folder: Path, handle: Handler, now: float | None = None) -> int:
    """Apply every waiting request, oldest first: take it, apply it, answer, remove it."""
    served = 0
    for path in pending(folder, now):
        if path.name.endswith(REQUEST):
            stem = path.name[: -len(REQUEST)]
            work = path.with_name(stem + TAKEN)
            try:
                os.rename(path, work)  # the command may have withdrawn it meanwhile
            except FileNotFoundError:
                continue
        else:
            stem, work = path.name[: -len(TAKEN)], path
        try:
            req: Request | None = decode_request(work.read_bytes())
        except FileNotFoundError:
            continue
        except UsageError as exc:
            req = None
            ans = Answer(stem.partition("-")[2], False, error=str(exc), exit_code=exc.exit_code)
        if req is not None:
            ans = handle(req)
        # Its temporary, should this writer be killed now, is one the next writer removes.
        _publish(folder, stem + ANSWER, encode_answer(ans), ANSWER_TEMP_PREFIX)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(work)
        served += 1
    return served
