"""What handling one path did: an ``Outcome`` and the ``Result`` that carries it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path


class Outcome(str, Enum):
    """What processing one path did (the keys of a scan's counts)."""

    INGESTED = "ingested"
    ADOPTED = "adopted"
    MOVED = "moved"
    UNCHANGED = "unchanged"
    COLLISION = "collision"
    IGNORED = "ignored"
    ERROR = "error"
    MISSING = "missing"
    DEFERRED = "deferred"


@dataclass(frozen=True)
class Result:
    """The outcome for one path; ``retry`` asks the caller to try again later."""

    outcome: Outcome
    path: Path
    name: str | None = None
    detail: str = ""
    retry: bool = False
