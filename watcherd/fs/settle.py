"""Settling: a path is read only once its size and mtime have been still for ``settle`` seconds.

A file still being written is never read half-done. ``Settler`` is pure apart from
``os.stat``; callers pass the clock.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class _Pending:
    stamp: tuple[int, int] | None
    since: float
    not_before: float = 0.0


@dataclass
class Settler:
    """Holds paths until they have stopped changing; pure apart from ``os.stat``."""

    settle: float
    pending: dict[Path, _Pending] = field(default_factory=dict)
    attempts: dict[Path, int] = field(default_factory=dict)

    def touch(self, path: Path, now: float) -> None:
        """Note that ``path`` may have changed; its quiet period starts again."""
        entry = self.pending.get(path)
        if entry is None:
            self.pending[path] = _Pending(stamp=None, since=now)
        else:
            entry.stamp, entry.since = None, now

    def retry(self, path: Path, now: float, limit: int = 8) -> bool:
        """Try ``path`` again later with exponential backoff; False once given up."""
        attempts = self.attempts.get(path, 0) + 1
        if attempts > limit:
            self.pending.pop(path, None)
            self.attempts.pop(path, None)
            return False
        self.attempts[path] = attempts
        self.pending[path] = _Pending(
            stamp=None, since=now, not_before=now + min(60.0, self.settle + 2.0 ** (attempts - 1))
        )
        return True

    def done(self, path: Path) -> None:
        """Forget the retry history of a path that was handled."""
        self.attempts.pop(path, None)

    def poll(self, now: float, wall_now: float) -> tuple[list[Path], list[Path]]:
        """Return (paths ready to read, paths that vanished) and forget both."""
        ready: list[Path] = []
        vanished: list[Path] = []
        for path, entry in list(self.pending.items()):
            if now < entry.not_before:
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                vanished.append(path)
                del self.pending[path]
                continue
            except OSError:
                ready.append(path)  # let the pipeline report why it cannot be read
                del self.pending[path]
                continue
            stamp = (st.st_size, st.st_mtime_ns)
            if stamp != entry.stamp:
                entry.stamp, entry.since = stamp, now
                # A file whose mtime is already older than settle (a backlog, a rename
                # of a finished file) needs no further wait.
                if wall_now - st.st_mtime < self.settle:
                    continue
            elif now - entry.since < self.settle:
                continue
            ready.append(path)
            del self.pending[path]
        return ready, vanished

    def next_due(self, now: float) -> float:
        """Seconds until something may be ready (for the main loop's wait)."""
        if not self.pending:
            return 1.0
        soonest = min(max(e.not_before, e.since + self.settle) for e in self.pending.values())
        return max(0.02, min(1.0, soonest - now))
