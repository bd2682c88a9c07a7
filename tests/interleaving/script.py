"""The script values: what a step does (``Op``), a step (``Step``), a script and its file
(``Script``), a broken promise and its symptom (``Broken``, ``broken``, ``symptom``), and the
constants every other module of the package shares.

A script's file is JSON (``Script.to_json``), with its text beside it (``Script.text``);
``tests/data/interleavings/`` keeps the ones that failed once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

CONFIG = "settle: 0.2\nheartbeat: 0.5\nstale_after: 2\nworkers: 1\nrescan_interval: 5\n"
FOLDERS = ("a", "b", "a/c")  # the tree a world starts with
BASES = 8  # pictures dropped by ``drop``: few, so that look-alikes and the same bytes meet often
VARIANTS = ("jpeg", "png", "q70", "bright", "smaller")  # the same picture re-encoded, brightened, resized
DOWNLOADS = ("part", "hidden-part")  # a download: written as NAME.part or .NAME.part, then renamed to NAME
DECISIONS = ("distinct", "keep-existing", "keep-newcomer")
# Exit codes a command may end with while the world changes under it (README "Commands"):
# 2 an id or tag that is gone (usage), 4 the lease changing hands, 5 the daemon did not take it.
ACCEPTED = frozenset({0, 2, 4, 5})
PAGE_ACCEPTED = frozenset({200, 400, 503})
VIEW_ACCEPTED = frozenset({200, 400, 404})  # a file moved since the page listed it is 404
IDLE_WAIT = 10.0  # seconds a LOOK waits for the daemon to catch up before going on anyway
CHECK_EVERY = 15  # steps between quiet points while drawing a script


class Op(str, Enum):
    """What one step does."""

    DROP = "drop"
    DROP_AGAIN = "drop-again"  # bytes dropped before, dropped again (an exact re-drop)
    BURST = "burst"  # several fresh pictures at once, into several folders
    REDROP = "redrop"  # a file of originals/ copied back into the tree
    RENAME = "rename"  # a thumbnail renamed in its folder
    DUPLICATE = "duplicate"  # a thumbnail copied beside itself as "X (copy).png" (a file manager's duplicate)
    COPY = "copy"  # a thumbnail copied into another folder
    MOVE = "move"  # a thumbnail moved into another folder
    DELETE = "delete"  # a thumbnail deleted
    RENAME_FOLDER = "rename-folder"
    PUT_ASIDE = "put-aside"  # now and then: the whole thumbs/ renamed away, a fresh one made
    MOVE_FOLDER = "move-folder"  # a folder moved into another one
    GESTURE = "gesture"  # a newcomer in _collisions/ moved into a folder (distinct) or deleted (keep-existing)
    RESOLVE = "resolve"  # watcherd resolve ID DECISION on an item of dupes --json
    UNDO = "undo"  # watcherd resolve --undo
    PAGE_RESOLVE = "page-resolve"  # POST /api/resolve on an item of GET /api/dupes
    PAGE_UNDO = "page-undo"  # POST /api/undo
    PAGE_BATCH = "page-batch"  # POST /api/resolve {decisions, batch} on items of GET /api/dupes (both kinds)
    PAGE_UNDO_BATCH = "page-undo-batch"  # POST /api/undo {batch} of a batch the page made
    PAGE_VIEW = "page-view"  # GET /file/… and /preview/… of a file an item of GET /api/dupes names
    RETAG = "retag"
    UNTAG = "untag"  # watcherd untag --everywhere TAG
    ARRANGE = "arrange"  # watcherd arrange by-size|by-similarity [--under FOLDER]
    FORGET = "forget"  # watcherd forget NAME of an image missing now
    REPAIR = "repair"  # watcherd check --repair, the daemon running
    RETRY = "retry"  # watcherd errors --retry
    KILL_MID = "kill-mid"  # resolve --undo started, the daemon killed while it may be applying it, started again
    SECOND = "second"  # a second writer (watcherd run or scan) started beside the running daemon
    READ = "read"  # a read-only command (status, tags, find, similar, export, dupes, missing, errors, check)
    REBUILD = "rebuild"  # daemon stopped, watcherd rebuild (the catalog set aside, made again), started again
    KILL = "kill"  # SIGKILL the daemon, start it again
    INTERRUPTED_SCAN = "interrupted-scan"  # daemon stopped, fresh drops, scan, SIGINT after a delay
    OLDER = "older"  # daemon stopped, some records written as an older watcherd wrote them, started again
    INTERRUPTED_COMMAND = "interrupted-command"  # daemon stopped, a change command, Ctrl-C (or kill -9) after a delay
    INTERRUPTED_REQUEST = "interrupted-request"  # a change command handed to the daemon, Ctrl-C after a delay
    TWO_COMMANDS = "two-commands"  # daemon stopped, two change commands started at once
    SCAN_THEN_RUN = "scan-then-run"  # daemon stopped, fresh drops, scan, the daemon started meanwhile
    INTERRUPTED_REBUILD = "interrupted-rebuild"  # daemon stopped, rebuild, Ctrl-C after a delay, started again
    PAUSE = "pause"
    LOOK = "look"  # the person waits until the daemon has caught up
    CHECK = "check"  # a quiet point: every invariant


# What a person does in the file manager: a file the daemon moved meanwhile makes it do nothing.
GESTURES = frozenset(
    {
        Op.DROP,
        Op.DROP_AGAIN,
        Op.BURST,
        Op.REDROP,
        Op.RENAME,
        Op.DUPLICATE,
        Op.COPY,
        Op.MOVE,
        Op.DELETE,
        Op.RENAME_FOLDER,
        Op.PUT_ASIDE,
        Op.MOVE_FOLDER,
        Op.GESTURE,
        Op.LOOK,
    }
)


@dataclass
class Step:
    """One step of a script: what to do (``op``, ``args``) and, once done, what it did."""

    op: Op
    args: dict[str, int | str | bool] = field(default_factory=dict)
    did: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op.value, **self.args, "did": self.did}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Step:
        args = {k: v for k, v in obj.items() if k not in ("op", "did")}
        return cls(Op(obj["op"]), args, obj.get("did", ""))

    def line(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.op.value} {args}".rstrip() + (f"    # {self.did}" if self.did else "")


@dataclass
class Script:
    """The steps a world ran, with what made it (``seed``) and how it ended (``failure``)."""

    world: int
    steps: list[Step] = field(default_factory=list)
    seed: int | None = None  # the Hypothesis seed that drew it, when one did
    failure: dict[str, str] | None = None  # {"kind", "message"}
    config: str = CONFIG  # the library's watcherd.yaml

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "seed": self.seed,
            "world": self.world,
            "config": self.config,
            "failure": self.failure,
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def load(cls, path: Path) -> Script:
        obj = json.loads(path.read_text())
        steps = [Step.from_json(s) for s in obj["steps"]]
        return cls(int(obj["world"]), steps, obj.get("seed"), obj.get("failure"), obj.get("config", CONFIG))

    def text(self) -> str:
        head = f"# world {self.world}" + (f", Hypothesis seed {self.seed}" if self.seed is not None else "")
        if self.failure:
            head += f"\n# failed: {self.failure['kind']}"
        return "\n".join([head, *(s.line() for s in self.steps)])

    def save(self, path: Path) -> Path:
        """Write the script as JSON (``path``) and as text beside it (``.txt``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        path.with_suffix(".txt").write_text(self.text() + "\n")
        return path


# --- failures ---------------------------------------------------------------------------


class Broken(AssertionError):
    """A broken promise; ``kind`` names the symptom without paths, so equal symptoms compare equal."""

    kind = "broken"


@cache
def _kind_class(kind: str) -> type[Broken]:
    # One class per symptom: Hypothesis tells failures apart by exception type and place,
    # so each symptom is shrunk (and reported) on its own.
    slug = re.sub(r"\W+", "_", kind).strip("_")[:60] or "broken"
    return type(f"Broken_{slug}", (Broken,), {"kind": kind})


def broken(kind: str, message: str) -> Broken:
    """A ``Broken`` of this symptom ``kind``."""
    return _kind_class(kind)(message if message.startswith(kind) else f"{kind}: {message}")


def symptom(problem: str) -> str:
    """A problem line without its paths, names, hashes and numbers: its kind."""
    text = re.sub(r"\S*/\S*", "PATH", problem)
    text = re.sub(r"\b\d+x\d+_[0-9a-f]+_\S*", "NAME", text)
    text = re.sub(r"[0-9a-f]{8,}", "HEX", text)
    text = re.sub(r"\d+", "N", text)
    return text.split(":")[0].strip()[:80]


def internal_error_class(text: str) -> str:
    """``FileNotFoundError`` from ``internal error: FileNotFoundError: …`` or a traceback's last line."""
    m = re.search(r"internal error: (\w+)", text) or re.search(r"^(\w+(?:Error|Exception))\b", text, re.M)
    return m.group(1) if m else "?"
