"""The ``World``: a running library with every step (``STEPS``, each ``Op``'s method,
inherited from the steps' modules), performing one (``World.perform``), and the quiet point
(``World.check``) that holds the library to every invariant.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import table
from tests.interleaving.commands import CommandSteps
from tests.interleaving.gestures import GestureSteps
from tests.interleaving.interrupts import InterruptSteps
from tests.interleaving.page import PageSteps
from tests.interleaving.pictures import snapshot_diff, tree_snapshot
from tests.interleaving.script import GESTURES, Broken, Op, Step, broken, internal_error_class, symptom
from tests.invariants import check_library, kept_from_thumbnails


class World(InterruptSteps, GestureSteps, CommandSteps, PageSteps):
    """A library under test taking the steps of a script, one at a time, and its quiet points."""

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
    Op.PAGE_BATCH: World.page_batch,
    Op.PAGE_UNDO_BATCH: World.page_undo_batch,
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
    Op.INTERRUPTED_COMMAND: World.interrupted_command,
    Op.INTERRUPTED_REQUEST: World.interrupted_request,
    Op.TWO_COMMANDS: World.two_commands,
    Op.SCAN_THEN_RUN: World.scan_then_run,
    Op.INTERRUPTED_REBUILD: World.interrupted_rebuild,
    Op.PAUSE: World.pause,
    Op.LOOK: World.look,
    Op.CHECK: World.check,
}
