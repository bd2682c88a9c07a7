"""What every step of the pipeline works with: settings, the catalog, places and a clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from watcherd.catalog import Catalog
from watcherd.config import Config
from watcherd.places import Places


def iso(ts: float) -> str:
    """UTC timestamp as ISO 8601 text, second precision."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Context:
    """Shared by the pipeline's steps; ``now`` is a parameter so tests need not patch time."""

    cfg: Config
    catalog: Catalog
    now: Callable[[], float] = time.time
    places: Places = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "places", Places(self.cfg))

    def stamp(self) -> str:
        """The current time as the catalog records it."""
        return iso(self.now())
