"""Previews and differences for the page: rendered in the decoder sandbox, cached beside the catalog.

The web process only reads an original's bytes and hands them to a sandboxed worker
(``previews.view``, under ``decode_timeout`` and ``decode_memory``); it never decodes
them. Renderings are kept in ``STATE/previews/`` (``.watcherd/previews/`` by default),
named by what they were made from: the original's sha256, its size and its modification
time (ns), and the view; an original that changes (another size or time) is rendered
again, and a copy of the same bytes elsewhere with the same size and time shares it. The
cache is watcherd's own: it is trimmed, oldest used first, beyond ``LIMIT`` bytes, and
may be deleted at any time. When it cannot be written (a read-only state folder) each
view is rendered for the request alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.exceptions import HTTPException

from watcherd.core.config import Config
from watcherd.core.errors import ImageError
from watcherd.decode import previews
from watcherd.decode.newimage import spec_for
from watcherd.decode.rendered import Rendered
from watcherd.decode.sandbox import DecoderPool
from watcherd.fs import fsops

LIMIT = 1 << 30  # the cache is trimmed back to 3/4 of this
SIDES = {"full": 8192, "small": 480}  # the longest side of each preview size
DIFFERENCE_SIDE = 1600
SHA = re.compile(r"^[0-9a-f]{64}$")
OURS = re.compile(r"^[0-9a-f]{64}-\d+-\d+-\w+\.(jpg|json)$")


@dataclass(frozen=True)
class Made:
    """A view: its JPEG bytes and what the sandbox said about it."""

    data: bytes
    note: dict[str, object]


class Views:
    """The page's previews and differences, each rendered once in the sandbox and cached."""

    def __init__(self, cfg: Config, workers: int = 2) -> None:
        self.cfg = cfg
        self.folder = Path(cfg.state_dir) / "previews"
        self.workers = max(1, min(workers, cfg.worker_count))
        self._pool: DecoderPool | None = None
        self._lock = threading.Lock()
        self._making: dict[str, threading.Lock] = {}

    def close(self) -> None:
        """Stop the sandboxed workers."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _render(self, job: bytes) -> Rendered:
        with self._lock:
            if self._pool is None:
                self._pool = DecoderPool(self.workers, self.cfg.decode_timeout, self.cfg.decode_memory, previews.view)
            pool = self._pool
        return pool(job, spec_for(self.cfg), "view", "", 0.0)

    def _read(self, path: Path) -> tuple[bytes, os.stat_result]:
        """The bytes of the original at ``path`` and the status of that very file as it was read;
        404 when it is not there (moved or deleted since the page listed it)."""
        try:
            return fsops.read_held(path, self.cfg.max_file_size)
        except (FileNotFoundError, NotADirectoryError):
            raise HTTPException(404) from None
        except OSError as exc:
            raise ImageError(f"cannot read: {exc.strerror or exc}", transient=True) from None

    @staticmethod
    def _stamp(data: bytes, st: os.stat_result) -> str:
        return f"{hashlib.sha256(data).hexdigest()}-{st.st_size}-{st.st_mtime_ns}"

    def preview(self, path: Path, size: str = "full", claimed: str | None = None) -> Made:
        """A preview of the original at ``path`` (inside the root, already checked).

        ``claimed``: the sha256 the catalog knows it by, so a cached preview is found
        without reading the file; a wrong one only costs reading it."""
        side = SIDES.get(size, SIDES["full"])
        if claimed is not None and SHA.match(claimed):
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                raise HTTPException(404) from None
            found = self._cached(f"{claimed}-{st.st_size}-{st.st_mtime_ns}-{size}")
            if found is not None:
                return found
        data, st = self._read(path)
        return self._made(f"{self._stamp(data, st)}-{size}", lambda: previews.preview_job(data, side))

    def preview_data(self, data: bytes, size: str = "small") -> bytes:
        """A preview of bytes that are no file of the library (an uploaded picture), not cached."""
        return self._render(previews.preview_job(data, SIDES.get(size, SIDES["small"]))).png

    def difference(self, first: Path, second: Path) -> Made:
        """The difference of two originals (inside the root, already checked)."""
        a, sa = self._read(first)
        b, sb = self._read(second)
        pair = hashlib.sha256(f"{self._stamp(a, sa)}:{self._stamp(b, sb)}".encode()).hexdigest()
        return self._made(f"{pair}-0-0-difference", lambda: previews.difference_job(a, b, DIFFERENCE_SIDE))

    def _cached(self, key: str) -> Made | None:
        picture, note = self.folder / f"{key}.jpg", self.folder / f"{key}.json"
        try:  # read, not served by name: the cache may be emptied at any moment (the manual says so)
            said = json.loads(note.read_text())
            data = picture.read_bytes()
            os.utime(picture)  # used now: trimmed last
        except (OSError, ValueError):
            return None
        return Made(data, said if isinstance(said, dict) else {})

    def _made(self, key: str, job: Callable[[], bytes]) -> Made:
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:  # the same view asked for twice at once is rendered once
            found = self._cached(key)
            if found is not None:
                return found
            rendered = self._render(job())
            note = json.loads(rendered.note) if rendered.note else {}
            with contextlib.suppress(OSError):  # not cached: made again when asked again
                self._store(key, rendered.png, rendered.note or "{}")
            return Made(rendered.png, note)

    def _store(self, key: str, picture: bytes, note: str) -> None:
        """Write a view into the cache (temporary name, then renamed: a reader never sees half)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, data in ((f"{key}.jpg", picture), (f"{key}.json", note.encode())):
            temporary = self.folder / f".watcherd-tmp-{secrets.token_hex(6)}"
            try:
                with open(temporary, "xb") as out:
                    out.write(data)
                os.replace(temporary, self.folder / name)  # our own cache file, never a user's
            finally:
                with contextlib.suppress(FileNotFoundError):
                    temporary.unlink()
        self._trim()

    def _trim(self) -> None:
        """Keep the cache under ``LIMIT``: the views used longest ago go first."""
        files: list[tuple[float, int, Path]] = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if OURS.match(entry.name) and entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    files.append((st.st_mtime, st.st_size, Path(entry.path)))
        total = sum(size for _, size, _ in files)
        if total <= LIMIT:
            return
        for _, size, path in sorted(files):
            with contextlib.suppress(OSError):
                path.unlink()
            total -= size
            if total <= LIMIT * 3 // 4:
                return
