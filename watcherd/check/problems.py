"""What ``watcherd check`` reports: stable problem codes, one problem, and an image as the check sees it (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from watcherd.core.documents import CheckProblem
from watcherd.core.records import ImageRecord


class Code(str, Enum):
    """A kind of problem; the values are a stable contract (scripts match them)."""

    CATALOG_DAMAGED = "catalog-damaged"  # PRAGMA integrity_check is not ok
    UNREADABLE_RECORD = "unreadable-record"  # a record that is not JSON or not a record
    DERIVED_TABLE = "derived-table"  # the hashes table disagrees with the records
    STALE_PLACE = "stale-place"  # a place a present record lists holds no file
    UNREACHABLE_PLACE = "unreachable-place"  # a place that cannot be looked up (a share out of reach)
    UNRECORDED_THUMBNAIL = "unrecorded-thumbnail"  # a canonical file that is no place of a present record
    MISSING_BUT_THERE = "missing-but-there"  # a missing image's last place holds its thumbnail
    MISSING_ORIGINAL = "missing-original"  # an original a record names is not there
    CHANGED_ORIGINAL = "changed-original"  # --read-data: an original's bytes are not its record's
    UNFINISHED_MOVE = "unfinished-move"  # an original being filed or set aside (moving_from, setting_aside)
    PENDING_STEPS = "pending-steps"  # journaled thumbnail steps of a decision not carried out
    MISSING_COLLISION_FILE = "missing-collision-file"  # an undecided collision's newcomer file is gone
    ORPHAN_COLLISION_FILE = "orphan-collision-file"  # a file in _collisions/ no undecided collision owns
    TEMPORARY = "temporary"  # a .watcherd-tmp-* file left behind
    STALE_EXPORT = "stale-export"  # the catalog export disagrees with the catalog
    NEAR_INDEX = "near-index"  # the persisted near-duplicate index disagrees with the catalog
    UNFINISHED_REBUILD = "unfinished-rebuild"  # a rebuild stopped before the catalog was whole (meta rebuilding)


@dataclass(frozen=True)
class Problem:
    """One problem: its code, the path it is about (relative to ROOT; empty for the catalog as a
    whole), what is wrong, and whether ``--repair`` mends it."""

    code: Code
    path: str
    detail: str
    repairable: bool = False
    name: str | None = None  # the image record concerned, when there is one
    target: str | None = None  # stale-place: where its thumbnail went (the repair follows it there)

    def document(self) -> CheckProblem:
        """The problem as ``check --json`` prints it."""
        return {"code": self.code.value, "path": self.path, "detail": self.detail, "repairable": self.repairable}

    def line(self) -> str:
        """The problem as one line of text: code, path, explanation."""
        return f"{self.code.value} {self.path or '-'}: {self.detail}"


@dataclass(frozen=True)
class Image:
    """An image record, as far as the check needs it."""

    name: str
    present: bool
    places: tuple[str, ...]  # every place when present; the last place known when missing
    original: str | None = None
    moving_from: str | None = None
    sha256: str | None = None
    hash: str = ""
    low: bool = False
    source: bool = False  # the original stays in a source inbox

    @classmethod
    def of(cls, rec: ImageRecord) -> Image:
        """The check's view of a record."""
        places = tuple(rec.paths) if rec.present else ((rec.path,) if rec.path else ())
        return cls(rec.name, rec.present, places, rec.original, rec.moving_from, rec.sha256, rec.hash,
                   rec.low_information, rec.source)  # fmt: skip
