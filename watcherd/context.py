"""What every step of the pipeline works with: settings, the catalog, places and a clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from watcherd.catalog import Catalog
from watcherd.config import Config
from watcherd.places import Places

Checkpoint = Callable[[str, Path], None]


def no_checkpoint(step: str, path: Path) -> None:
    """The default checkpoint: nothing happens between steps."""


def iso(ts: float) -> str:
    """UTC timestamp as ISO 8601 text, second precision."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Context:
    """Shared by the pipeline's steps; ``now`` is a parameter so tests need not patch time."""

    cfg: Config
    catalog: Catalog
    now: Callable[[], float] = time.time
    # Called between the steps of a file's journey (``publishing``: its thumbnail is
    # written under a temporary name and not yet published; ``filing``: its record is
    # committed and its original about to move), so a test can do exactly what a user
    # might do at that moment, deterministically.
    checkpoint: Checkpoint = no_checkpoint
    places: Places = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "places", Places(self.cfg))

    def stamp(self) -> str:
        """The current time as the catalog records it."""
        return iso(self.now())
