"""What ``--json`` prints: one TypedDict per document, so the contract has one written form.

The manual (docs/commands.md) lists the same keys; a key added here is an addition to a stable contract,
a key renamed or removed breaks it.
"""

from __future__ import annotations

from typing import Literal, TypedDict


class Naming(TypedDict):
    """The settings a library's names were made with."""

    algorithm: str
    size: int
    decode: str


class DaemonState(TypedDict):
    """Who holds the writer lease, as ``status`` shows it."""

    running: bool
    pid: int
    host: str
    since: str
    heartbeat_age: float


class LastScan(TypedDict):
    """When the last full scan finished, why it ran, how long it took and what it did."""

    finished: str
    reason: str
    seconds: float
    counts: dict[str, int]


class Status(TypedDict):
    """``status --json``."""

    root: str
    images: int
    missing: int
    low_information: int
    tags: int
    collisions: int
    errors: int
    database: str
    hash: Naming
    last_scan: LastScan | None
    daemon: DaemonState | None


class ImageSummary(TypedDict):
    """``tags NAME --json`` and ``untag --json``."""

    name: str
    tags: list[str]
    path: str  # the first place (the last known one when missing)
    paths: list[str]  # every place the thumbnail is in (empty when missing)
    state: str
    keywords: list[str]  # the tags that came from the photo's own keywords, not from a folder
    sources: dict[str, str]  # each tag's source: "folder", "keyword" or "size" (its WxH)


class ExportItem(TypedDict):
    """One image of ``export``: where it is, its original, its tags and where each came from."""

    name: str
    state: str
    path: str  # the first place (the last known one when missing)
    places: list[str]  # every place the thumbnail is in (empty when missing)
    original: str | None
    source: bool  # the original stays in a source inbox
    tags: list[str]
    sources: dict[str, str]  # as ``tags NAME``: "folder", "keyword" or "size"


class FindHit(TypedDict):
    """One item of ``find --json``."""

    name: str
    path: str
    tags: list[str]


class CollisionSide(TypedDict):
    """The side of a collision that held the name first."""

    thumbnail: str | None
    original: str | None
    sha256: str | None


class NewcomerSide(CollisionSide):
    """The side that arrived second, with its original file name."""

    filename: str | None


class Collision(TypedDict):
    """A recorded collision in ``dupes --json``."""

    id: str  # what ``resolve`` takes
    decision: str | None  # distinct, keep-existing, keep-newcomer; None while undecided (listed with --all)
    decided: str | None  # when it was decided (ISO time), None while undecided
    name: str
    kind: Literal["exact", "perceptual"]
    detected: str | None
    paths: list[str]
    existing: CollisionSide
    newcomer: NewcomerSide
    # The side the keeper rule (``keeper``: the camera original, more pixels, larger file, more
    # EXIF, older date) would keep; None once decided.
    suggested: Literal["existing", "newcomer"] | None
    reasons: list[str]  # why, each "existing: ..." or "newcomer: ..."; empty once decided


class NearGroup(TypedDict):
    """A group of near-duplicates in ``dupes --near N --json``."""

    id: str  # its sorted names joined by "+": ``resolve ID distinct|keep-existing|keep-newcomer`` takes it
    decision: str | None  # "distinct", "keep-existing" or "keep-newcomer" once decided (listed with --all)
    decided: str | None  # when a keep decision was made; None for a group decided distinct (not dated)
    kind: Literal["near", "burst"]  # burst: frames one camera took a few seconds apart (keeper.is_burst)
    name: str
    names: list[str]
    paths: list[str]
    max_distance: int  # the largest distance between two members' names (a crop's may be larger than --near)
    existing: str  # the first catalogued image: what keep-existing keeps
    newcomer: str  # the last catalogued image: what keep-newcomer keeps
    suggested: str | None  # the member the keeper rule keeps (a name); None once decided, and for a burst
    reasons: list[str]  # why, each "NAME: ..."; empty once decided, and for a burst
    # crop: some pair of the group is linked as a crop; None for a group decided keep-* (``--all``)
    match: Literal["whole", "crop"] | None


class SimilarHit(TypedDict):
    """One item of ``similar --json``: whole-picture matches nearest first, then crops nearest first."""

    name: str
    distance: int  # whole: bits between the names' hashes; crop: bits between the matching windows' hashes
    path: str
    match: Literal["whole", "crop"]  # how it matched: the whole picture, or a window of one in the other


class ScanSummary(TypedDict):
    """``scan --json`` and ``rebuild --json``."""

    counts: dict[str, int]
    seconds: float


class ErrorItem(TypedDict):
    """One item of ``errors --json``: a file that could not be ingested."""

    path: str
    reason: str
    transient: bool
    first_seen: str
    last_seen: str
    attempts: int


class MissingItem(TypedDict):
    """One item of ``missing --json``: an image whose thumbnail is in no folder any more."""

    name: str
    path: str  # the last place it was seen
    tags: list[str]
    last_seen: str
    original: str | None


class Forgotten(TypedDict):
    """``forget --json``."""

    forgotten: list[str]


class Retried(TypedDict):
    """``errors --retry --json``: the files whose error records were forgotten, by path."""

    retried: list[str]


class TagChange(TypedDict):
    """``retag --json`` and ``untag --everywhere --json``."""

    old: str
    new: str | None  # None: the tag was removed
    images: int
    names: list[str]


class PlannedMove(TypedDict):
    """One thumbnail ``arrange`` moves (or could not move: then ``skipped`` says why)."""

    name: str
    source: str
    target: str
    skipped: str | None


class Arrangement(TypedDict):
    """``arrange --json``."""

    mode: str
    under: str
    dry_run: bool
    moved: int
    moves: list[PlannedMove]


class DecisionRef(TypedDict):
    """One decision in effect, as undo names it: what, how, when, and its token."""

    id: str  # the collision (or near group) it decided
    decision: str | None  # distinct, keep-existing or keep-newcomer (None: not known any more)
    via: str | None  # command, page or gesture (None: made before watcherd recorded it)
    decided: str | None  # ISO time (None: not recorded, as for a near group decided distinct before)
    token: str | None  # tells this decision from an earlier one on the same id (None: not recorded)
    batch: str | None  # the batch the page made it in ("apply the suggested keeper to all"), else None


class Resolution(TypedDict):
    """``resolve --json`` and ``resolve --undo --json``."""

    id: str  # the collision (or near group) decided, or whose decision was undone
    decision: str | None  # what was decided; None after an undo
    image: str | None  # the record that now holds the newcomer's bytes (distinct) or the kept picture
    undone: bool


class Decided(Resolution):
    """``resolve --json``: the decision made, as its undo will name it."""

    made: DecisionRef


class Undone(Resolution):
    """``resolve --undo --json``: which decision was undone."""

    undid: DecisionRef


class Refusal(TypedDict):
    """One decision of a batch that was not made, and why."""

    id: str
    decision: str
    error: str


class BatchDecided(TypedDict):
    """``POST /api/resolve`` with ``decisions``: several decisions made at once, undone as one."""

    batch: str  # what an undo of the whole batch names
    made: list[Decided]  # in the order asked
    refused: list[Refusal]  # the ones not made (decided meanwhile, unknown...), each with its reason


class BatchUndone(TypedDict):
    """``POST /api/undo`` with ``batch``: the decisions of one batch undone, newest first."""

    batch: str
    undone: bool
    undid: list[DecisionRef]
    left: list[str]  # ids of the batch still decided: an undo that failed half-way (``error`` says why)
    error: str | None


class CheckProblem(TypedDict):
    """One problem (or note) in ``check --json``."""

    code: str  # stable: stale-place, unrecorded-thumbnail, missing-original, temporary, … (see the manual (docs/))
    path: str  # relative to ROOT; "" for the catalog as a whole
    detail: str
    repairable: bool


class Repaired(TypedDict):
    """One repair ``check --repair`` made."""

    code: str  # the problem it mended
    path: str
    done: str  # what was done, in a few words


class RepairReport(TypedDict):
    """What the writer answers to a ``check-repair`` request."""

    repaired: list[Repaired]


class CheckReport(TypedDict):
    """``check --json``."""

    root: str
    sound: bool  # no problem (notes do not count)
    checked: dict[str, int]  # what was looked at: images, places, originals, collisions, …
    problems: list[CheckProblem]
    notes: list[CheckProblem]  # what a running writer may be in the middle of (moves, steps, the export)
    repaired: list[Repaired]  # with --repair: what was mended (empty otherwise)
