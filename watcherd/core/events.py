"""What the observer tells the writer: typed hints about paths that may have changed (pure).

Events are hints; the tree is the truth. A ``Change`` only says which path to look at
again; the pipeline decides what it means by looking.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path


class ChangeKind(str, Enum):
    """The kinds of hint."""

    TOUCH = "touch"  # a file may be new or changed
    MOVED = "moved"  # a file was moved to ``path`` from ``src``
    GONE = "gone"  # a file was deleted
    GONE_DIR = "gone_dir"  # a folder was deleted or moved away
    SCAN_DIR = "scan_dir"  # a folder appeared (created, or moved in)
    RESCAN = "rescan"  # events may have been lost: a full scan is needed (``reason``)


@dataclass(frozen=True)
class Change:
    """One hint from the observer."""

    kind: ChangeKind
    path: Path
    src: Path | None = None
    reason: str = ""
