"""The writer's loop body, shared by ``run`` and ``scan``: changes in, settled files ingested.

A change is handed to the pipeline; files that need decoding wait in the ``Settler``
until they are still; ready files are processed in order; transient failures are
tried again with backoff, up to ``retry_limit`` times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from watcherd.core.events import Change
from watcherd.core.outcomes import Result
from watcherd.flow.pipeline import Pipeline
from watcherd.fs.settle import Settler


class Worker:
    """Feeds one pipeline from hints and from the settler."""

    def __init__(
        self,
        pipeline: Pipeline,
        settle: float,
        *,
        retry_limit: int = 12,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.pipeline = pipeline
        self.settler = Settler(settle)
        self.retry_limit = retry_limit
        self.clock = clock
        self.wall = wall

    def apply(self, change: Change) -> list[Result]:
        """Hand one hint to the pipeline; files it wants settled start waiting."""
        handled = self.pipeline.handle(change)
        now = self.clock()
        for path in handled.settle:
            self.settler.touch(path, now)
        return handled.results

    def wait_for(self, fresh: Iterable[Path], retry: Iterable[Path] = ()) -> None:
        """Files a full scan found too fresh to read, and ones it wants tried again."""
        now = self.clock()
        for path in fresh:
            self.settler.touch(path, now)
        for path in retry:
            self.settler.retry(path, now, limit=self.retry_limit)

    def process_ready(self, stop: threading.Event | None = None) -> list[Result]:
        """Process every file that has settled; stop early (between batches) when ``stop`` is set.

        Returns the final results: a file to be tried again is not in them until its
        last try.
        """
        ready, vanished = self.settler.poll(self.clock(), self.wall())
        out = [self.pipeline.moves.gone(path) for path in vanished]
        results = self.pipeline.process_all(ready)
        try:
            for result in results:
                if not result.retry or not self.settler.retry(result.path, self.clock(), limit=self.retry_limit):
                    self.settler.done(result.path)
                    out.append(result)
                if stop is not None and stop.is_set():
                    break  # the rest waits for the next start-up scan
        finally:
            results.close()
        return out

    def next_due(self) -> float:
        """Seconds until something may be ready."""
        return self.settler.next_due(self.clock())

    def drain(self, sleep: Callable[[float], None] | None = None) -> list[Result]:
        """Wait for every pending file to settle and process it (``scan``)."""
        sleep = sleep if sleep is not None else time.sleep  # as it is now, not at import
        out: list[Result] = []
        while self.settler.pending:
            sleep(self.next_due())
            out.extend(self.process_ready())
        return out
