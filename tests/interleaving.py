"""Random interleavings of gestures, commands and interrupts against a real library (issue 16).

A *world* is a fresh library with a real ``watcherd run`` daemon and a ``watcherd serve``
page beside it. A *script* is a list of steps: a person's gestures in the file manager
(drops, some arriving as a hidden ``.part`` renamed into place; renames, copies, moves and
deletions of thumbnails; folder renames and moves; originals dropped again; a settle
gesture in ``_collisions/``), commands (``resolve`` with each decision, ``resolve --undo``,
``retag``, ``untag --everywhere``, ``arrange``, ``forget``, ``check --repair``, ``errors
--retry``, ``rebuild``, and read-only ones asked meanwhile; a second ``run`` or ``scan``; an
undo across a kill of the daemon), decisions and undos through the page's API,
interrupts (SIGKILL of the daemon, SIGINT of a ``scan`` mid-batch), records written as an
older watcherd wrote them (without window hashes and EXIF, which the daemon then fills while
the rest goes on), short pauses, and quiet points where every invariant is checked.

Hypothesis's stateful testing draws the scripts (``Interleaving``), in CI
(``tests/e2e/test_interleaving.py``) and in the soak (``tests/benchmarks/interleave_soak.py``);
a failing script is written to a file and replays with
``python -m tests.benchmarks.interleave_soak --replay FILE``.

Steps name their targets by *picks* (an index into what is there when the step runs,
sorted, modulo its length), so a script replays on any run even though the daemon's
timing makes the tree differ a little from one run to the next; each step also records
what it did, for a person to read.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import HealthCheck, Phase, assume, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from PIL import Image, ImageEnhance

from tests.helpers import DaemonProcess, encode, scene, sigint_default, table
from tests.invariants import check_library, kept_from_thumbnails
from watcherd.catalog.cropschema import WINDOWLESS
from watcherd.core.filters import TEMP_PREFIX, has_image_suffix
from watcherd.core.naming import parse_canonical
from watcherd.flow.cropfill import EXIF_KEPT

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


# --- the pictures -----------------------------------------------------------------------


def picture(world: int, base: int) -> Image.Image:
    """Picture ``base`` of a world: distinct pictures for distinct bases."""
    return scene((176 + 8 * (base % 3), 132), seed=world * 1000 + base)


@cache
def variant_bytes(world: int, base: int, variant: str) -> bytes:
    """Picture ``base`` as ``variant``: the same picture re-encoded, brightened or resized (look-alikes)."""
    im = picture(world, base)
    if variant == "png":
        return encode(im, "PNG")
    if variant == "q70":
        return encode(im, "JPEG", quality=70)
    if variant == "bright":
        return encode(ImageEnhance.Brightness(im).enhance(1.08), "JPEG")
    if variant == "smaller":
        return encode(im.resize((im.width - 4, im.height - 3)), "JPEG")
    return encode(im, "JPEG")


def suffix_of(variant: str) -> str:
    return ".png" if variant == "png" else ".jpg"


# --- the world --------------------------------------------------------------------------


def _files_named(doc: Any) -> list[str]:
    """Every original and thumbnail path a document of ``dupes --json`` names."""
    if isinstance(doc, dict):
        found = [str(v) for k, v in doc.items() if k in ("original", "thumbnail", "path") and isinstance(v, str) and v]
        return found + [f for v in doc.values() for f in _files_named(v)]
    if isinstance(doc, list):
        return [f for v in doc for f in _files_named(v)]
    return []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pick(items: list[Any], index: int) -> Any:
    """The item ``index`` points at (modulo), or None when there is none."""
    return items[index % len(items)] if items else None


def tree_snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file of the library outside ``.watcherd/``: path -> (size, sha256)."""
    out: dict[str, tuple[int, str]] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0] == ".watcherd" or not p.is_file():
            continue
        data = p.read_bytes()
        out[rel.as_posix()] = (len(data), hashlib.sha256(data).hexdigest())
    return out


def snapshot_diff(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> str:
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return f"gone {gone[:5]}, new {new[:5]}, changed {changed[:5]}"


class World:
    """A library under test: the tree, the running daemon and page, and every input's bytes."""

    def __init__(self, workdir: Path, world: int, *, seed: int | None = None, tolerate: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.root = workdir / "lib"
        self.thumbs = self.root / "thumbs"
        self.conf = workdir / "watcherd.yaml"
        self.logs = workdir / "logs"
        self.script = Script(world, seed=seed)
        self.inputs: dict[str, tuple[str, bytes]] = {}  # sha256 -> (where it was first dropped, bytes)
        self.tags_seen: set[str] = set()
        self.daemon: DaemonProcess | None = None
        self.serve: subprocess.Popen[bytes] | None = None
        self.serve_log = self.logs / "serve.log"
        self.port = 0
        self.counter = 0
        self.starts = 0
        self.since_check = 0
        self.checks = 0
        self.tolerate = tolerate  # problems containing one of these are counted, not failed (the soak's --tolerate)
        self.tolerated: list[str] = []
        self.log_offsets: dict[Path, int] = {}

    # --- processes ---

    def open(self) -> None:
        """Make the library's folders, start the daemon and the page."""
        for folder in FOLDERS:
            (self.thumbs / folder).mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.script.config)
        self.start_daemon()
        self.start_serve()

    def close(self) -> None:
        """Stop every process this world started: SIGTERM, then SIGKILL after 30 s."""
        for proc in (self.daemon.proc if self.daemon else None, self.serve):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=30)
        self.daemon = None
        self.serve = None

    def next_log(self, what: str) -> Path:
        self.starts += 1
        return self.logs / f"{self.starts:03d}-{what}.log"

    def start_daemon(self) -> None:
        self.daemon = DaemonProcess(self.root, self.conf, self.next_log("run"))
        try:
            self.daemon.wait_started()
        except AssertionError as exc:
            raise broken("the daemon does not start", f"{exc}\n{self.daemon.log_text()[-3000:]}") from None

    def stop_daemon(self) -> None:
        """SIGTERM the daemon and wait; it must exit 0."""
        daemon = self.daemon
        if daemon is None:
            return
        self.daemon_alive(daemon)
        try:
            code = daemon.stop(signal.SIGTERM)
        except subprocess.TimeoutExpired:
            raise broken("the daemon does not stop on SIGTERM", daemon.log_text()[-3000:]) from None
        self.daemon = None
        if code != 0:
            raise broken(f"the daemon exits {code} on SIGTERM", daemon.log_text()[-3000:])

    def daemon_alive(self, daemon: DaemonProcess | None = None) -> None:
        daemon = daemon or self.daemon
        if daemon is not None and daemon.proc.poll() is not None:
            raise broken(f"the daemon exited {daemon.proc.returncode} by itself", daemon.log_text()[-3000:])

    def start_serve(self) -> None:
        self.port = free_port()
        log = self.serve_log = self.next_log("serve")
        with open(log, "wb") as out:
            argv = ["serve", str(self.root), "-c", str(self.conf), "--port", str(self.port)]
            self.serve = subprocess.Popen(
                [sys.executable, "-m", "watcherd", *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.request("GET", "/api/dupes")[0] == 200:
                    return
            except OSError:
                pass
            if self.serve.poll() is not None or time.monotonic() > deadline:
                raise broken("the page does not start", log.read_text(errors="replace")[-3000:])
            time.sleep(0.1)

    def cli(self, *args: str, accept: frozenset[int] = ACCEPTED) -> subprocess.CompletedProcess[str]:
        """Run ``watcherd ARGS -c CONF``; an exit outside ``accept``, 70 or a traceback is broken."""
        argv = [sys.executable, "-m", "watcherd", *args, "-c", str(self.conf)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        with open(self.logs / "000-commands.log", "a") as said_log:  # what each command said, for a person
            said_log.write(f"$ watcherd {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
        verb = " ".join(a for a in args[:2] if not a.startswith("/"))
        said = proc.stderr.strip()
        if proc.returncode == 70 or "Traceback" in proc.stderr or "internal error" in proc.stderr:
            raise broken(f"{verb} ends with an internal error ({internal_error_class(said)})", f"{args}: {said}")
        if proc.returncode not in accept:
            raise broken(f"{verb} exits {proc.returncode}", f"{args}: {said}")
        return proc

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json", accept=frozenset({0})).stdout)

    def page(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request to the page; a page that does not answer is broken."""
        try:
            return self.request(method, path, body)
        except OSError as exc:
            gone = self.serve.poll() if self.serve else None
            raise broken("the page does not answer", f"{method} {path}: {exc} (exit {gone})") from None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request to the page, as its own script would send it (same origin)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            headers = {"Origin": f"http://127.0.0.1:{self.port}", "Sec-Fetch-Site": "same-origin"}
            payload = None
            if body is not None:
                payload = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=payload, headers=headers)
            answer = conn.getresponse()
            raw = answer.read()
        finally:
            conn.close()
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = raw.decode(errors="replace")
        return answer.status, doc

    def page_failed(self, path: str, status: int, said: str) -> Broken:
        """The page answered with an internal error: the exception its log ends with."""
        deadline = time.monotonic() + 5  # the server logs the exception after it answered
        while True:
            text = self.serve_log.read_text(errors="replace")
            raised = re.findall(r"^(\w+(?:Error|Exception)\b.*)$", text, re.M)
            if raised or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        cause = raised[-1] if raised else said
        return broken(f"page {path} answers {status} with an internal error ({internal_error_class(cause)})", cause)

    def page_change(self, path: str, body: Any = None, also: frozenset[int] = frozenset()) -> str:
        status, doc = self.page("POST", path, body)
        error = doc.get("error", "") if isinstance(doc, dict) else str(doc)
        if "internal error" in error or not isinstance(doc, (dict, list)):
            raise self.page_failed(path, status, error)
        accepted = PAGE_ACCEPTED | also
        if status not in accepted and not (status == 500 and isinstance(doc, dict) and "error" in doc):
            raise broken(f"page {path} answers {status}", str(doc))
        return f"{status} {error or doc}"

    # --- what is there now ---

    def folders(self) -> list[Path]:
        """The thumbs folder and every folder below it a person sorts into (not _collisions, not hidden)."""
        out = [self.thumbs]
        for p in sorted(self.thumbs.rglob("*")):
            rel = p.relative_to(self.thumbs).parts
            if p.is_dir() and rel[0] != "_collisions" and not any(part.startswith(".") for part in rel):
                out.append(p)
        return out

    def thumbnails(self) -> list[Path]:
        """Canonical thumbnails in the tree (not in _collisions)."""
        return [
            p
            for p in sorted(self.thumbs.rglob("*.png"))
            if "_collisions" not in p.relative_to(self.thumbs).parts and parse_canonical(p.name)
        ]

    def newcomers(self) -> list[Path]:
        return sorted((self.thumbs / "_collisions").glob("*.png"))

    def rel(self, p: Path) -> str:
        return p.relative_to(self.root).as_posix()

    def fresh_name(self, prefix: str, suffix: str = "") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}{suffix}"

    def remember(self, rel: str, data: bytes) -> None:
        self.inputs.setdefault(hashlib.sha256(data).hexdigest(), (rel, data))

    def idle(self) -> bool:
        """Nothing left for the daemon: no file waiting to be ingested or renamed, no request open."""
        for p in self.thumbs.rglob("*"):
            rel = p.relative_to(self.thumbs).parts
            if rel[0] == "_collisions" or any(part.startswith(".") or part.endswith(".part") for part in rel):
                continue
            if p.is_file() and has_image_suffix(p.name) and not parse_canonical(p.name):
                return False
        requests = self.root / ".watcherd" / "requests"
        return not (requests.is_dir() and any(requests.glob("*.request.json")))

    # --- steps ---

    def perform(self, step: Step) -> None:
        """Run one step and record it (with what it did) in the script, even when it fails."""
        self.script.steps.append(step)
        if step.op is not Op.CHECK:
            self.daemon_alive()
        try:
            step.did = STEPS[step.op](self, step.args)
        except Broken as exc:
            if self.sift([str(exc)]):
                raise
            step.did = f"tolerated: {str(exc)[:300]}"
            if self.daemon is None:  # the step stopped it and did not get to start it again
                self.start_daemon()
        except OSError as exc:
            if step.op not in GESTURES:
                raise
            # The daemon moved the file between our look and our gesture, as it would
            # under a person's hand: the gesture did nothing.
            step.did = f"skipped: {type(exc).__name__}: {exc.strerror}"
        if step.op is Op.CHECK:
            self.since_check = 0
        else:
            self.since_check += 1

    def sift(self, problems: list[str]) -> list[str]:
        """The problems not tolerated; the tolerated ones are kept in ``tolerated``."""
        kept = []
        for problem in problems:
            if any(t in problem for t in self.tolerate):
                self.tolerated.append(problem)
            else:
                kept.append(problem)
        return kept

    def drop(self, a: dict[str, Any]) -> str:
        base, variant, via = int(a["base"]), str(a["variant"]), str(a["via"])
        folder = pick(self.folders(), int(a["folder"]))
        if a.get("new_folder"):
            folder = folder / self.fresh_name("n")
            folder.mkdir(parents=True)
        data = variant_bytes(self.script.world, base, variant)
        target = folder / self.fresh_name("img", suffix_of(variant))
        if via == "direct":
            with open(target, "xb") as out:
                out.write(data)
            self.remember(self.rel(target), data)
            return f"write {self.rel(target)}"
        part = target.with_name(("." if via == "hidden-part" else "") + target.name + ".part")
        with open(part, "xb") as out:  # a download: half, a moment, the rest, then renamed into place
            out.write(data[: len(data) // 2])
            out.flush()
            time.sleep(0.05)
            out.write(data[len(data) // 2 :])
        self.remember(self.rel(part), data)
        os.rename(part, target)
        return f"download {self.rel(part)} -> {target.name}"

    def drop_again(self, a: dict[str, Any]) -> str:
        dropped = sorted(self.inputs.values())
        if not dropped:
            return "nothing dropped yet"
        first, data = pick(dropped, int(a["input"]))
        suffix = Path(first.removesuffix(".part")).suffix  # a download's bytes under the name it got
        target = pick(self.folders(), int(a["folder"])) / self.fresh_name("same", suffix)
        with open(target, "xb") as out:
            out.write(data)
        return f"cp {first} {self.rel(target)} (its bytes again)"

    def burst(self, a: dict[str, Any], folders: list[Path] | None = None) -> str:
        """``count`` pictures never dropped before, spread over the folders."""
        folders = folders or self.folders()
        done = []
        for i in range(int(a["count"])):
            data = encode(picture(self.script.world, 100 + self.counter))
            target = pick(folders, int(a["folder"]) + i) / self.fresh_name("new", ".jpg")
            with open(target, "xb") as out:
                out.write(data)
            self.remember(self.rel(target), data)
            done.append(self.rel(target))
        return f"write {' '.join(done)}"

    def redrop(self, a: dict[str, Any]) -> str:
        # A person drops a photo again, not the sidecar watcherd keeps beside it (a lone
        # ``.xmp`` in the tree is nobody's photo and stays where it is dropped), nor a hidden
        # file watcherd is writing that moment (a copy of half of it is no image).
        originals = sorted(
            p
            for p in (self.root / "originals").rglob("*")
            if p.is_file() and p.suffix != ".xmp" and not p.name.startswith(TEMP_PREFIX)
        )
        source = pick(originals, int(a["original"]))
        if source is None:
            return "no original yet"
        target = pick(self.folders(), int(a["folder"])) / self.fresh_name("again", source.suffix)
        data = source.read_bytes()
        with open(target, "xb") as out:
            out.write(data)
        return f"cp {self.rel(source)} {self.rel(target)}"

    def rename(self, a: dict[str, Any]) -> str:
        thumb = pick(self.thumbnails(), int(a["thumb"]))
        if thumb is None:
            return "no thumbnail yet"
        style = str(a["style"])
        name = f"{thumb.stem} (copy).png" if style == "copy-name" else self.fresh_name("my ", ".png")
        target = thumb.with_name(name)
        if target.exists():
            return f"{target.name} is taken"
        os.rename(thumb, target)
        return f"mv {self.rel(thumb)} {target.name}"

    def duplicate(self, a: dict[str, Any]) -> str:
        thumb = pick(self.thumbnails(), int(a["thumb"]))
        if thumb is None:
            return "no thumbnail yet"
        target = thumb.with_name(f"{thumb.stem} (copy).png")
        if target.exists():
            return f"{target.name} is taken"
        data = thumb.read_bytes()
        with open(target, "xb") as out:
            out.write(data)
        return f"cp {self.rel(thumb)} {target.name}"

    def _into_folder(self, a: dict[str, Any], *, copy: bool) -> str:
        thumb = pick(self.thumbnails(), int(a["thumb"]))
        if thumb is None:
            return "no thumbnail yet"
        folder = pick(self.folders(), int(a["folder"]))
        target = folder / thumb.name
        if folder == thumb.parent or target.exists():
            return f"{self.rel(target)} is there already"
        if copy:
            data = thumb.read_bytes()
            with open(target, "xb") as out:
                out.write(data)
            return f"cp {self.rel(thumb)} {self.rel(folder)}/"
        os.rename(thumb, target)
        return f"mv {self.rel(thumb)} {self.rel(folder)}/"

    def copy(self, a: dict[str, Any]) -> str:
        return self._into_folder(a, copy=True)

    def move(self, a: dict[str, Any]) -> str:
        return self._into_folder(a, copy=False)

    def delete(self, a: dict[str, Any]) -> str:
        thumb = pick(self.thumbnails(), int(a["thumb"]))
        if thumb is None:
            return "no thumbnail yet"
        thumb.unlink()
        return f"rm {self.rel(thumb)}"

    def rename_folder(self, a: dict[str, Any]) -> str:
        folder = pick(self.folders()[1:], int(a["folder"]))
        if folder is None:
            return "no folder"
        target = folder.with_name(self.fresh_name("r"))
        os.rename(folder, target)
        self.tags_seen.add(target.name)
        return f"mv {self.rel(folder)} {self.rel(target)}"

    def put_aside(self, a: dict[str, Any]) -> str:
        if int(a["roll"]) != 0:  # rare: the whole tree and its collisions leave at once
            return "thumbs/ stays"
        aside = self.root / self.fresh_name("thumbs aside ")
        os.rename(self.thumbs, aside)
        self.thumbs.mkdir()
        return f"mv thumbs '{aside.name}'; mkdir thumbs"

    def move_folder(self, a: dict[str, Any]) -> str:
        folder = pick(self.folders()[1:], int(a["folder"]))
        if folder is None:
            return "no folder"
        into = pick([f for f in self.folders() if f != folder and folder not in f.parents], int(a["into"]))
        if into is None or into == folder.parent:
            return f"{self.rel(folder)} stays"
        target = into / folder.name
        if target.exists():
            target = into / self.fresh_name(folder.name + "-")
        os.rename(folder, target)
        return f"mv {self.rel(folder)} {self.rel(target)}"

    def gesture(self, a: dict[str, Any]) -> str:
        newcomer = pick(self.newcomers(), int(a["newcomer"]))
        if newcomer is None:
            return "no newcomer in _collisions"
        if a["decision"] == "keep-existing":
            newcomer.unlink()
            return f"rm {self.rel(newcomer)}"
        folder = pick(self.folders(), int(a["folder"]))
        target = folder / newcomer.name
        if target.exists():
            return f"{self.rel(target)} is there already"
        os.rename(newcomer, target)
        return f"mv {self.rel(newcomer)} {self.rel(folder)}/"

    def _item(self, items: list[dict[str, Any]], a: dict[str, Any]) -> dict[str, Any] | None:
        return pick(sorted(items, key=lambda i: str(i["id"])), int(a["item"])) if items else None

    def resolve(self, a: dict[str, Any]) -> str:
        near = ("--near", "4") if a["near"] else ()
        item = self._item(self.cli_json("dupes", str(self.root), *near), a)
        if item is None:
            return "nothing to decide"
        proc = self.cli("resolve", str(self.root), str(item["id"]), str(a["decision"]))
        return f"resolve {item['id']} {a['decision']} -> {proc.returncode} {proc.stderr.strip()[:200]}"

    def undo(self, a: dict[str, Any]) -> str:
        # 7: a decision made between the command (which names the decision last then) and the
        # writer applying it (a gesture settling meanwhile) is not undone in its place.
        proc = self.cli("resolve", str(self.root), "--undo", accept=ACCEPTED | {7})
        return f"resolve --undo -> {proc.returncode} {(proc.stdout + proc.stderr).strip()[:200]}"

    def page_resolve(self, a: dict[str, Any]) -> str:
        status, items = self.page("GET", "/api/dupes?near=4" if a["near"] else "/api/dupes")
        if status != 200:
            raise self.page_failed("/api/dupes", status, str(items))
        item = self._item(items, a)
        if item is None:
            return "nothing to decide on the page"
        answer = self.page_change("/api/resolve", {"id": item["id"], "decision": a["decision"]})
        return f"POST /api/resolve {item['id']} {a['decision']} -> {answer[:200]}"

    def page_undo(self, a: dict[str, Any]) -> str:
        # 409: a decision made between the request (which names the decision last then) and
        # the writer applying it (a gesture settling meanwhile) is not undone in its place.
        return f"POST /api/undo -> {self.page_change('/api/undo', also=frozenset({409}))[:200]}"

    def page_view(self, a: dict[str, Any]) -> str:
        status, items = self.page("GET", "/api/dupes?near=4" if a["near"] else "/api/dupes")
        if status != 200:
            raise self.page_failed("/api/dupes", status, str(items))
        item = self._item(items, a)
        named = sorted(set(_files_named(item))) if item is not None else []
        rel = pick(named, int(a["file"]))
        if rel is None:
            return "nothing to look at on the page"
        said = []
        for path in (f"/file/{rel}", f"/preview/{rel}?size=small"):
            status, doc = self.page("GET", path)
            if status not in VIEW_ACCEPTED:
                raise self.page_failed(path, status, str(doc)[:200])
            said.append(f"GET {path} -> {status}")
        return "; ".join(said)

    def tags(self) -> list[str]:
        self.tags_seen.update(f.name for f in self.folders()[1:])
        return sorted(self.tags_seen)

    def retag(self, a: dict[str, Any]) -> str:
        tags = self.tags()
        old = pick(tags, int(a["old"]))
        new = pick(tags, int(a["new"])) if a["merge"] else self.fresh_name("t")
        if old is None or new is None:
            return "no tag"
        self.tags_seen.add(new)
        proc = self.cli("retag", str(self.root), old, new)
        return f"retag {old} {new} -> {proc.returncode} {proc.stderr.strip()[:200]}"

    def untag(self, a: dict[str, Any]) -> str:
        tag = pick(self.tags(), int(a["tag"]))
        if tag is None:
            return "no tag"
        proc = self.cli("untag", str(self.root), "--everywhere", tag)
        return f"untag --everywhere {tag} -> {proc.returncode} {proc.stderr.strip()[:200]}"

    def arrange(self, a: dict[str, Any]) -> str:
        folder = None if a["whole"] else pick(self.folders(), int(a["under"]))
        under = ("--under", str(folder)) if folder is not None else ()
        proc = self.cli("arrange", str(self.root), str(a["how"]), *under)
        where = f" --under {self.rel(folder)}" if folder is not None else ""
        return f"arrange {a['how']}{where} -> {proc.returncode} {proc.stderr.strip()[:200]}"

    def forget(self, a: dict[str, Any]) -> str:
        name = pick(sorted(m["name"] for m in self.cli_json("missing", str(self.root))), int(a["image"]))
        if name is None:
            return "nothing missing"
        proc = self.cli("forget", str(self.root), name)  # 2: present again meanwhile
        return f"forget {name} -> {proc.returncode} {proc.stderr.strip()[:200]}"

    def repair(self, a: dict[str, Any]) -> str:
        # 1: it found problems (a library changing under it may show some in flight).
        proc = self.cli("check", str(self.root), "--repair", accept=ACCEPTED | {1})
        return f"check --repair -> {proc.returncode} {(proc.stdout + proc.stderr).strip()[:300]}"

    def retry(self, a: dict[str, Any]) -> str:
        proc = self.cli("errors", str(self.root), "--retry")
        return f"errors --retry -> {proc.returncode} {proc.stderr.strip()[:200]}"

    def decided_stack(self) -> list[str]:
        """The decisions in effect, oldest first (``meta.decided``)."""
        con = sqlite3.connect(self.root / ".watcherd" / "catalog.sqlite", timeout=30)
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'decided'").fetchone()
        finally:
            con.close()
        return [str(i) for i in json.loads(row[0])] if row else []

    def kill_mid(self, a: dict[str, Any]) -> str:
        """``resolve --undo`` while the daemon is killed ``delay`` ms after it was asked (maybe
        mid-undo, maybe after it and before the answer): started again, the daemon applies a
        request it had taken once more. The undo must undo at most the one decision that was last."""
        assert self.daemon is not None
        before = self.decided_stack()
        log = self.next_log("undo")
        with open(log, "wb") as err:
            undo = subprocess.Popen(
                [sys.executable, "-m", "watcherd", "resolve", str(self.root), "--undo", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        time.sleep(int(a["delay"]) / 1000)
        self.daemon.stop(signal.SIGKILL)
        self.start_daemon()
        try:
            code = undo.wait(timeout=180)
        except subprocess.TimeoutExpired:
            undo.kill()
            undo.wait()
            raise broken("an undo does not end after the daemon's restart", log.read_text(errors="replace")) from None
        said = log.read_text(errors="replace").strip()
        if code not in ACCEPTED | {7} or "Traceback" in said or "internal error" in said:
            raise broken(f"resolve --undo exits {code} across a kill", said[-2000:])
        after = self.decided_stack()
        kept = before[:-1]
        if after[: len(kept)] != kept:
            gone = [d for d in kept if d not in after]
            raise broken("an undo undid more than the last decision", f"before {before}, after {after}: {gone}")
        return f"resolve --undo, kill -9 after {a['delay']} ms, started again -> {code} {said[:200]}"

    def second(self, a: dict[str, Any]) -> str:
        """A second writer started while the daemon runs (a second terminal, a second host):
        it refuses at once with one line (exit 4), and the daemon keeps the lease and runs on."""
        assert self.daemon is not None
        proc = self.cli(str(a["what"]), str(self.root), accept=frozenset({4}))
        self.daemon_alive()
        if self.lease_pid() != self.daemon.proc.pid:
            raise broken(
                "the lease left the running daemon", f"lease pid {self.lease_pid()} after a second {a['what']}"
            )
        return f"a second {a['what']} -> {proc.returncode} {proc.stderr.strip()[:200]}"

    def read(self, a: dict[str, Any]) -> str:
        """A read-only command while the library changes: it answers (a name gone meanwhile is
        exit 2) with one JSON document, never a traceback."""
        root = str(self.root)
        thumb = pick(self.thumbnails(), int(a["index"]))
        tag = pick(self.tags(), int(a["index"]))
        asks: dict[str, tuple[str, ...]] = {
            "status": ("status", root),
            "tags": ("tags", root),
            "find": ("find", root, "--tag", tag or "a", "--limit", "20"),
            "similar": ("similar", root, thumb.name if thumb is not None else "0" * 16, "--distance", "8"),
            "export": ("export", root),
            "dupes": ("dupes", root, "--near", "4", "--all"),
            "missing": ("missing", root),
            "errors": ("errors", root),
            "check": ("check", root),
        }
        args = asks[str(a["what"])]
        # check: 1 when it finds a problem (a library changing under it may show one in flight).
        proc = self.cli(*args, "--json", accept=frozenset({0, 2} | ({1} if a["what"] == "check" else set())))
        if proc.returncode in (0, 1):
            try:
                json.loads(proc.stdout)
            except ValueError as exc:
                raise broken(f"{a['what']} --json prints no JSON document", f"{exc}: {proc.stdout[:500]}") from None
        return f"{' '.join(x for x in args if x != root)} -> {proc.returncode} {proc.stderr.strip()[:200]}"

    def rebuild(self, a: dict[str, Any]) -> str:
        """What ``check`` advises for a damaged catalog: the daemon stopped, the catalog set aside and
        made again from the tree, the thumbnails' chunks and the export; the daemon started again."""
        self.stop_daemon()
        counts = self.cli_json("rebuild", str(self.root))["counts"]
        self.start_daemon()
        return f"rebuild -> {counts}; started again"

    def kill(self, a: dict[str, Any]) -> str:
        assert self.daemon is not None
        self.daemon.stop(signal.SIGKILL)
        self.start_daemon()
        return "kill -9 the daemon; started again"

    def interrupted_scan(self, a: dict[str, Any]) -> str:
        """Stop the daemon, drop fresh pictures (and ``alike`` look-alikes of the first ones
        dropped, which collide), scan them, SIGINT the scan ``delay`` ms after it took the lease."""
        self.stop_daemon()
        dropped = self.burst(a)
        for base in range(int(a.get("alike", 0))):
            data = variant_bytes(self.script.world, base % BASES, "png")
            target = pick(self.folders(), int(a["folder"]) + base) / self.fresh_name("alike", ".png")
            with open(target, "xb") as out:
                out.write(data)
            self.remember(self.rel(target), data)
            dropped += f" {self.rel(target)}"
        log = self.next_log("scan")
        with open(log, "wb") as err:
            scan = subprocess.Popen(
                [sys.executable, "-m", "watcherd", "scan", str(self.root), "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                preexec_fn=sigint_default,
            )
        # Mid-batch: ``delay`` ms after the scan holds the lease (its imports done, the work
        # begun; a Ctrl-C while Python still imports is Python's traceback, not watcherd's),
        # or after it logged its first file (``after: file``: the batch is under way).
        deadline = time.monotonic() + 60
        while scan.poll() is None and self.lease_pid() != scan.pid and time.monotonic() < deadline:
            time.sleep(0.01)
        if a.get("after") == "file":
            while scan.poll() is None and " INFO " not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.01)
        time.sleep(int(a["delay"]) / 1000)
        scan.send_signal(signal.SIGINT)
        try:
            code = scan.wait(timeout=120)
        except subprocess.TimeoutExpired:
            scan.kill()
            scan.wait()
            raise broken("an interrupted scan does not stop", log.read_text(errors="replace")[-3000:]) from None
        said = log.read_text(errors="replace")
        # -SIGINT: it died of the signal itself, which a shell shows as 130 too.
        self.start_daemon()
        if code not in (0, 130, -signal.SIGINT) or "Traceback" in said:
            raise broken(f"an interrupted scan exits {code}", said[-3000:])
        return f"{dropped}; scan, SIGINT {a['delay']} ms after its {a.get('after', 'lease')} -> {code}"

    def older(self, a: dict[str, Any]) -> str:
        """Stop the daemon; every ``every``-th record (from ``first``) is written again as an older
        watcherd wrote it, without window hashes or EXIF (whole rows, as sqlitedict writes them),
        and the notes that both were given are dropped; start it again. The daemon then fills
        them while the next steps happen."""
        self.stop_daemon()
        con = sqlite3.connect(self.root / ".watcherd" / "catalog.sqlite", timeout=30)
        try:
            with con:
                names = [k for (k,) in con.execute("SELECT key FROM images ORDER BY key")]
                chosen = names[int(a["first"]) % max(len(names), 1) :: int(a["every"])]
                con.executemany(
                    "INSERT OR REPLACE INTO images (key, value) "
                    "SELECT key, json_remove(value, '$.crops', '$.exif') FROM images WHERE key = ?",
                    [(n,) for n in chosen],
                )
                con.execute("DELETE FROM meta WHERE key IN (?, ?)", (EXIF_KEPT, WINDOWLESS))
        finally:
            con.close()
        self.start_daemon()
        return f"{len(chosen)} of {len(names)} records without window hashes and EXIF; started again"

    def lease_pid(self) -> int | None:
        try:
            return int(json.loads((self.root / ".watcherd" / "lock").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    def pause(self, a: dict[str, Any]) -> str:
        time.sleep(int(a["ms"]) / 1000)
        return ""

    def look(self, a: dict[str, Any]) -> str:
        start = time.monotonic()
        while not self.idle():
            if time.monotonic() - start > IDLE_WAIT:
                return f"still busy after {IDLE_WAIT:.0f} s"
            self.daemon_alive()
            time.sleep(0.05)
        return f"caught up in {time.monotonic() - start:.1f} s"

    # --- the quiet point ---

    def check(self, a: dict[str, Any]) -> str:
        """Stop the daemon, scan twice, and hold the library to every promise; start it again."""
        self.stop_daemon()
        self.scan()
        before = tree_snapshot(self.root)
        counts = self.scan()
        after = tree_snapshot(self.root)
        problems = []
        if before != after:
            problems.append(f"the second scan changed the tree: {snapshot_diff(before, after)}")
        busy = {k: v for k, v in counts.items() if k not in ("unchanged", "ignored")}
        if busy:
            problems.append(f"the second scan still had work: {busy}")
        problems += self.invariants()
        problems += self.logs_clean()
        problems = self.sift(problems)
        if problems:
            raise broken(symptom(problems[0]), "\n".join(problems[:30]))
        self.checks += 1
        if a.get("final"):
            return f"sound ({len(after)} files)"
        self.start_daemon()
        return f"sound ({len(after)} files)"

    def scan(self) -> dict[str, int]:
        counts: dict[str, int] = self.cli_json("scan", str(self.root))["counts"]
        return counts

    def invariants(self) -> list[str]:
        """Every invariant of a quiet library, one line per check (the daemon is stopped)."""
        errors = self.cli_json("errors", str(self.root))
        # Documented leftovers: a byte-identical copy of a thumbnail beside it, under another name.
        copies = {Path(e["path"]).name for e in errors if str(e["reason"]).startswith("a copy of")}
        return [
            *check_library(self.root, {rel: data for rel, data in self.inputs.values()}, bad=copies),
            *kept_from_thumbnails(self.root, self.conf),
            *[f"error recorded: {e['path']}: {e['reason']}" for e in errors if Path(e["path"]).name not in copies],
            *self.dupes_current(),
            *self.collisions_owned(),
        ]

    def dupes_current(self) -> list[str]:
        """Every undecided collision ``dupes`` lists shows where its files are now."""
        db = self.root / ".watcherd" / "catalog.sqlite"
        images = {r["name"]: r for r in table(db, "images")}
        problems = []
        for item in self.cli_json("dupes", str(self.root), "--near", "4"):
            if item["kind"] == "near":
                for rel in item["paths"]:
                    if not (self.root / rel).is_file():
                        problems.append(f"dupes shows a near group's file where it is not: {rel} ({item['id']})")
                continue
            new, old = item["newcomer"], item["existing"]
            for what in ("thumbnail", "original"):
                if new[what] and not (self.root / new[what]).is_file():
                    problems.append(f"dupes shows the newcomer's {what} where it is not: {new[what]} ({item['id']})")
            rec = images.get(item["name"])
            if rec is None or rec["state"] != "present":
                continue
            if old["thumbnail"] not in (rec.get("paths") or [rec["path"]]):
                problems.append(f"dupes shows a stale existing thumbnail: {old['thumbnail']} ({item['id']})")
            gone = old["original"] is not None and not (self.root / old["original"]).is_file()
            if old["original"] != rec.get("original") or gone:
                problems.append(
                    f"dupes shows a stale existing original: {old['original']}, the image's is {rec.get('original')} "
                    f"({item['id']})"
                )
            if old["sha256"] != rec["sha256"]:
                problems.append(
                    f"dupes shows stale existing bytes: {old['sha256'][:12]}, the image's are "
                    f"{rec['sha256'][:12]} ({item['id']})"
                )
        return problems

    def collisions_owned(self) -> list[str]:
        """Every file in a ``_collisions/`` folder is an undecided collision's newcomer."""
        db = self.root / ".watcherd" / "catalog.sqlite"
        owned: set[str | None] = set()
        for c in table(db, "collisions"):
            if not c.get("decision"):
                owned.update(c["newcomer"].get(k) for k in ("thumbnail", "original"))
        problems = []
        for folder in (self.thumbs / "_collisions", self.root / "originals" / "_collisions"):
            for p in sorted(folder.glob("*")) if folder.is_dir() else []:
                # An original's XMP sidecar (``X.jpg.xmp``) is its original's: it follows it (issue 20).
                rel = self.rel(p.with_suffix("")) if p.suffix == ".xmp" and folder.parent.name == "originals" else None
                if p.is_file() and self.rel(p) not in owned and (rel is None or rel not in owned):
                    problems.append(f"orphan in _collisions: {self.rel(p)} belongs to no undecided collision")
        return problems

    def logs_clean(self) -> list[str]:
        """No daemon, scan or page log holds a traceback or an internal error (each one said once)."""
        problems = []
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text(errors="replace")
            start = self.log_offsets.get(log, 0)
            self.log_offsets[log] = len(text)
            for m in re.finditer(r"^.*(?:Traceback|internal error).*$", text[start:], re.M):
                at = start + m.start()
                if "Traceback" in m.group(0) and "internal error" in text[max(0, at - 300) : at]:
                    continue  # the traceback of the internal error just reported
                raised = re.search(r"^(\w+(?:Error|Exception|Interrupt))\b.*$", text[at:], re.M)
                cause = raised.group(1) if raised else internal_error_class(m.group(0))
                last = f" ... {raised.group(0)}" if raised else ""
                what = log.stem.split("-", 1)[1]  # run, scan, serve
                problems.append(f"internal error in a {what} log ({cause}): {log.name}: {m.group(0)}{last}")
        return problems


STEPS: dict[Op, Callable[[World, dict[str, Any]], str]] = {
    Op.DROP: World.drop,
    Op.DROP_AGAIN: World.drop_again,
    Op.BURST: World.burst,
    Op.REDROP: World.redrop,
    Op.RENAME: World.rename,
    Op.DUPLICATE: World.duplicate,
    Op.COPY: World.copy,
    Op.MOVE: World.move,
    Op.DELETE: World.delete,
    Op.RENAME_FOLDER: World.rename_folder,
    Op.PUT_ASIDE: World.put_aside,
    Op.MOVE_FOLDER: World.move_folder,
    Op.GESTURE: World.gesture,
    Op.RESOLVE: World.resolve,
    Op.UNDO: World.undo,
    Op.PAGE_RESOLVE: World.page_resolve,
    Op.PAGE_UNDO: World.page_undo,
    Op.PAGE_VIEW: World.page_view,
    Op.RETAG: World.retag,
    Op.UNTAG: World.untag,
    Op.ARRANGE: World.arrange,
    Op.FORGET: World.forget,
    Op.REPAIR: World.repair,
    Op.RETRY: World.retry,
    Op.KILL_MID: World.kill_mid,
    Op.SECOND: World.second,
    Op.READ: World.read,
    Op.REBUILD: World.rebuild,
    Op.KILL: World.kill,
    Op.INTERRUPTED_SCAN: World.interrupted_scan,
    Op.OLDER: World.older,
    Op.PAUSE: World.pause,
    Op.LOOK: World.look,
    Op.CHECK: World.check,
}


# --- running scripts: drawn by Hypothesis, or replayed -----------------------------------------


@dataclass
class WorldEnd:
    """How one world ended."""

    world: int
    steps: int
    checks: int
    seconds: float
    failure: str | None = None  # the symptom's kind
    tolerated: list[str] = field(default_factory=list)
    script: Path | None = None


@dataclass
class Runner:
    """Makes a workdir per world, keeps each symptom's shortest failing script, counts outcomes."""

    base: Path
    seed: int | None = None
    check_every: int = CHECK_EVERY
    keep: bool = False  # keep the libraries of passing worlds too
    tolerate: tuple[str, ...] = ()  # problems to count instead of failing on (a known bug while its fix is pending)
    outcomes: list[WorldEnd] = field(default_factory=list)
    shortest: dict[str, Path] = field(default_factory=dict)
    made: int = 0

    def workdir(self) -> Path:
        self.made += 1
        path = self.base / f"world-{self.made:03d}"
        path.mkdir(parents=True)
        return path

    def ended(self, world: World, started: float, exc: BaseException | None) -> None:
        """Record a world's end; a failing one's script is saved (the shortest per symptom is kept)."""
        kind = exc.kind if isinstance(exc, Broken) else (type(exc).__name__ if exc is not None else None)
        outcome = WorldEnd(
            world.script.world, len(world.script.steps), world.checks, time.monotonic() - started, kind, world.tolerated
        )
        if exc is not None and kind is not None:
            world.script.failure = {"kind": kind, "message": str(exc)[:4000]}
            path = world.script.save(world.workdir / "script.json")
            outcome.script = path
            known = self.shortest.get(kind)
            if known is None or len(Script.load(known).steps) > len(world.script.steps):
                self.shortest[kind] = path
            print(failure_report(world.script, path), file=sys.stderr)
        elif self.keep:
            outcome.script = world.script.save(world.workdir / "script.json")
        self.outcomes.append(outcome)


def failure_report(script: Script, path: Path) -> str:
    """What a failure prints: the symptom, the steps, and how to replay them."""
    assert script.failure is not None
    return (
        f"\n=== interleaving failure: {script.failure['kind']} ===\n{script.failure['message'][:2000]}\n"
        f"--- script ({len(script.steps)} steps, {path}) ---\n{script.text()}\n"
        f"--- replay: python -m tests.benchmarks.interleave_soak --replay {path}\n"
        f"--- (the file, should its folder be gone: save this line as FILE)\n{json.dumps(script.to_json())}\n"
    )


def replay(script: Script, runner: Runner) -> WorldEnd:
    """Run ``script``'s steps in a fresh world (ending with a quiet point); return how it ended."""
    world = World(runner.workdir(), script.world, seed=script.seed, tolerate=runner.tolerate)
    world.script.config = script.config
    started = time.monotonic()
    error: BaseException | None = None
    try:
        world.open()
        for step in script.steps:
            world.perform(Step(step.op, dict(step.args)))
        if not script.steps or script.steps[-1].op is not Op.CHECK:
            world.perform(Step(Op.CHECK, {"final": True}))
    except Exception as exc:
        error = exc
    finally:
        world.close()
    runner.ended(world, started, error)
    outcome = runner.outcomes[-1]
    if outcome.script is None:
        outcome.script = world.script.save(world.workdir / "script.json")
    return outcome


# Every drawn script starts from a small library (recorded as its first steps): pictures in
# each folder, two look-alikes of them (a collision or a near group each), and a wait for
# the daemon, so that the drawn steps have thumbnails, collisions and groups to work on.
STARTER = (
    *(
        Step(Op.DROP, {"base": b, "variant": "jpeg", "folder": f, "via": "direct", "new_folder": False})
        for b, f in ((0, 1), (1, 3), (2, 2), (3, 0))
    ),
    Step(Op.DROP, {"base": 0, "variant": "bright", "folder": 3, "via": "direct", "new_folder": False}),
    Step(Op.DROP, {"base": 1, "variant": "smaller", "folder": 0, "via": "direct", "new_folder": False}),
    Step(Op.LOOK),
)
PICK = st.integers(0, 999)  # an index into what is there when the step runs (modulo)
BASE = st.integers(0, BASES - 1)
VARIANT = st.sampled_from(VARIANTS)


class Interleaving(RuleBasedStateMachine):
    """Draws scripts step by step, running each step in a world as it is drawn.

    ``runner`` is set by ``machine(runner)``, which makes a subclass per run.
    """

    runner: ClassVar[Runner]

    def __init__(self) -> None:
        super().__init__()
        self.world: World | None = None
        self.started = time.monotonic()
        self.over = False

    def _do(self, op: Op, **args: int | str | bool) -> None:
        assert self.world is not None
        try:
            self.world.perform(Step(op, args))
            if op is not Op.CHECK and self.world.since_check >= self.runner.check_every:
                self.world.perform(Step(Op.CHECK))
        except BaseException as exc:
            self.over = True
            self.runner.ended(self.world, self.started, exc)
            raise

    @initialize(world=st.integers(0, 9999))
    def open(self, world: int) -> None:
        # Hypothesis runs its simplest example first: every step the first rule with its
        # simplest arguments, half a minute of real processes that finds nothing. Its
        # world is 0; every other example's is not.
        assume(world != 0)
        self.world = World(self.runner.workdir(), world, seed=self.runner.seed, tolerate=self.runner.tolerate)
        try:
            self.world.open()
            for step in STARTER:
                self.world.perform(Step(step.op, dict(step.args)))
        except BaseException as exc:
            self.over = True
            self.runner.ended(self.world, self.started, exc)
            raise

    @rule(base=BASE, variant=VARIANT, folder=PICK, new_folder=st.booleans())
    def drop(self, base: int, variant: str, folder: int, new_folder: bool) -> None:
        self._do(Op.DROP, base=base, variant=variant, folder=folder, via="direct", new_folder=new_folder)

    @rule(base=BASE, variant=VARIANT, folder=PICK, via=st.sampled_from(DOWNLOADS))
    def download(self, base: int, variant: str, folder: int, via: str) -> None:
        self._do(Op.DROP, base=base, variant=variant, folder=folder, via=via, new_folder=False)

    @rule(input=PICK, folder=PICK)
    def drop_again(self, input: int, folder: int) -> None:
        self._do(Op.DROP_AGAIN, input=input, folder=folder)

    @rule(count=st.integers(1, 4), folder=PICK)
    def burst(self, count: int, folder: int) -> None:
        self._do(Op.BURST, count=count, folder=folder)

    @rule(original=PICK, folder=PICK)
    def redrop(self, original: int, folder: int) -> None:
        self._do(Op.REDROP, original=original, folder=folder)

    @rule(thumb=PICK, style=st.sampled_from(["my-name", "copy-name"]))
    def rename(self, thumb: int, style: str) -> None:
        self._do(Op.RENAME, thumb=thumb, style=style)

    @rule(thumb=PICK)
    def duplicate(self, thumb: int) -> None:
        self._do(Op.DUPLICATE, thumb=thumb)

    @rule(thumb=PICK, folder=PICK)
    def copy(self, thumb: int, folder: int) -> None:
        self._do(Op.COPY, thumb=thumb, folder=folder)

    @rule(thumb=PICK, folder=PICK)
    def move(self, thumb: int, folder: int) -> None:
        self._do(Op.MOVE, thumb=thumb, folder=folder)

    @rule(thumb=PICK)
    def delete(self, thumb: int) -> None:
        self._do(Op.DELETE, thumb=thumb)

    @rule(folder=PICK)
    def rename_folder(self, folder: int) -> None:
        self._do(Op.RENAME_FOLDER, folder=folder)

    @rule(roll=st.integers(0, 7))
    def put_aside(self, roll: int) -> None:
        self._do(Op.PUT_ASIDE, roll=roll)

    @rule(folder=PICK, into=PICK)
    def move_folder(self, folder: int, into: int) -> None:
        self._do(Op.MOVE_FOLDER, folder=folder, into=into)

    @rule(newcomer=PICK, decision=st.sampled_from(["distinct", "keep-existing"]), folder=PICK)
    def gesture(self, newcomer: int, decision: str, folder: int) -> None:
        self._do(Op.GESTURE, newcomer=newcomer, decision=decision, folder=folder)

    @rule(item=PICK, decision=st.sampled_from(DECISIONS), near=st.booleans())
    def resolve(self, item: int, decision: str, near: bool) -> None:
        self._do(Op.RESOLVE, item=item, decision=decision, near=near)

    @rule()
    def undo(self) -> None:
        self._do(Op.UNDO)

    @rule(item=PICK, decision=st.sampled_from(DECISIONS), near=st.booleans())
    def page_resolve(self, item: int, decision: str, near: bool) -> None:
        self._do(Op.PAGE_RESOLVE, item=item, decision=decision, near=near)

    @rule()
    def page_undo(self) -> None:
        self._do(Op.PAGE_UNDO)

    @rule(item=PICK, near=st.booleans(), file=PICK)
    def page_view(self, item: int, near: bool, file: int) -> None:
        self._do(Op.PAGE_VIEW, item=item, near=near, file=file)

    @rule(old=PICK, new=PICK, merge=st.booleans())
    def retag(self, old: int, new: int, merge: bool) -> None:
        self._do(Op.RETAG, old=old, new=new, merge=merge)

    @rule(tag=PICK)
    def untag(self, tag: int) -> None:
        self._do(Op.UNTAG, tag=tag)

    @rule(how=st.sampled_from(["by-size", "by-similarity"]), whole=st.booleans(), under=PICK)
    def arrange(self, how: str, whole: bool, under: int) -> None:
        self._do(Op.ARRANGE, how=how, whole=whole, under=under)

    @rule(image=PICK)
    def forget(self, image: int) -> None:
        self._do(Op.FORGET, image=image)

    @rule()
    def repair(self) -> None:
        self._do(Op.REPAIR)

    @rule()
    def retry(self) -> None:
        self._do(Op.RETRY)

    @rule(delay=st.integers(0, 600))
    def kill_mid(self, delay: int) -> None:
        self._do(Op.KILL_MID, delay=delay)

    @rule(what=st.sampled_from(["run", "scan"]))
    def second(self, what: str) -> None:
        self._do(Op.SECOND, what=what)

    @rule(
        what=st.sampled_from(["status", "tags", "find", "similar", "export", "dupes", "missing", "errors", "check"]),
        index=PICK,
    )
    def read(self, what: str, index: int) -> None:
        self._do(Op.READ, what=what, index=index)

    @rule()
    def rebuild(self) -> None:
        self._do(Op.REBUILD)

    @rule()
    def kill(self) -> None:
        self._do(Op.KILL)

    @rule(
        count=st.integers(1, 24),
        alike=st.integers(0, 3),
        folder=PICK,
        after=st.sampled_from(["lease", "file"]),
        delay=st.integers(0, 800),
    )
    def interrupted_scan(self, count: int, alike: int, folder: int, after: str, delay: int) -> None:
        self._do(Op.INTERRUPTED_SCAN, count=count, alike=alike, folder=folder, after=after, delay=delay)

    @rule(first=PICK, every=st.integers(1, 4))
    def older(self, first: int, every: int) -> None:
        self._do(Op.OLDER, first=first, every=every)

    @rule(ms=st.integers(0, 300))
    def pause(self, ms: int) -> None:
        self._do(Op.PAUSE, ms=ms)

    @rule()
    def look(self) -> None:
        self._do(Op.LOOK)

    def teardown(self) -> None:
        if self.world is None:
            return
        try:
            if not self.over:
                self._do(Op.CHECK, final=True)
                self.runner.ended(self.world, self.started, None)
        finally:
            self.world.close()
            if not self.over and not self.runner.keep:
                remove_tree(self.world.workdir)


def machine(runner: Runner) -> type[Interleaving]:
    """The state machine bound to ``runner`` (where its worlds live, what it keeps)."""
    return type("Interleaving", (Interleaving,), {"runner": runner})


def remove_tree(path: Path) -> None:
    """Remove a passing world's folder (only files this test made)."""
    for p in sorted(path.rglob("*"), key=lambda q: len(q.parts), reverse=True):
        if p.is_dir() and not p.is_symlink():
            p.rmdir()
        else:
            p.unlink()
    path.rmdir()


def draw(runner: Runner, *, examples: int, steps: int, shrink: bool) -> None:
    """Let Hypothesis draw ``examples`` scripts of ``steps`` steps from ``runner.seed`` and run them.

    Without ``shrink`` the first failure ends the run at once (CI: a failure costs one
    world, not half an hour of shrinking); with it Hypothesis shrinks each symptom to a
    shorter script (its shrinking stops after five minutes of trying), and the runner keeps
    the shortest one that failed.
    """
    assert runner.seed is not None
    phases = (Phase.explicit, Phase.generate, *((Phase.shrink,) if shrink else ()))
    budget = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        phases=phases,
        report_multiple_bugs=shrink,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    run_state_machine_as_test(seed(runner.seed)(machine(runner)), settings=budget)


def reduce(script: Script, base: Path, budget: float, tolerate: tuple[str, ...] = ()) -> Script:
    """A shorter script that still fails with ``script``'s symptom, found within ``budget`` seconds.

    Replays with steps left out, greedily: every pause and look at once, then chunks of
    halving size (the failing last step always stays). A replay that passes only keeps
    its steps; the daemon's timing can make a failure come and go, so a shorter script
    is kept only when it failed again.
    """
    assert script.failure is not None
    kind = script.failure["kind"]
    runner = Runner(base, seed=script.seed, tolerate=tolerate)
    deadline = time.monotonic() + budget
    best = script

    def fails(steps: list[Step]) -> bool:
        nonlocal best
        trial = Script(script.world, [Step(s.op, dict(s.args)) for s in steps], script.seed, config=script.config)
        outcome = replay(trial, runner)
        said = Script.load(outcome.script).failure if outcome.script else None
        same = said is not None and (said["kind"] == kind or kind in map(symptom, said["message"].splitlines()))
        print(f"  {len(steps)} steps: {'fails the same' if same else outcome.failure or 'passes'}", flush=True)
        if same and outcome.script is not None:
            best = Script.load(outcome.script)
        return same

    steps = list(script.steps)
    quiet = [s for s in steps[:-1] if s.op in (Op.PAUSE, Op.LOOK)]
    if quiet and fails([s for s in steps[:-1] if s not in quiet] + steps[-1:]):
        steps = [s for s in steps[:-1] if s not in quiet] + steps[-1:]
    chunk = max(1, (len(steps) - 1) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i = 0
        while i < len(steps) - 1 and time.monotonic() < deadline:
            candidate = steps[:i] + steps[i + chunk : -1] + steps[-1:] if i + chunk < len(steps) else steps
            if candidate != steps and fails(candidate):
                steps = candidate
            else:
                i += chunk
        chunk //= 2
    return best
