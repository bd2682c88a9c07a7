"""The steps that interrupt: the daemon killed (alone, or while it may be applying an undo),
a ``scan`` interrupted mid-batch, a change command applied without the daemon interrupted
by Ctrl-C, one handed to the daemon interrupted so, a daemon started while a scan runs,
records written again as an older watcherd wrote them.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import DaemonProcess, sigint_default
from tests.interleaving.commands import CommandSteps
from tests.interleaving.gestures import GestureSteps
from tests.interleaving.pictures import pick, variant_bytes
from tests.interleaving.script import ACCEPTED, BASES, broken
from watcherd.catalog.cropschema import WINDOWLESS
from watcherd.commands import mailbox
from watcherd.flow.cropfill import EXIF_KEPT


class InterruptSteps(GestureSteps, CommandSteps):
    """Kills, an interrupted scan, older records (an interrupted scan drops a ``burst`` first)."""

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

    def kill(self, a: dict[str, Any]) -> str:
        assert self.daemon is not None
        self.daemon.stop(signal.SIGKILL)
        self.start_daemon()
        return "kill -9 the daemon; started again"

    def ctrl_c(
        self,
        what: str,
        args: tuple[str, ...],
        delay: int,
        *,
        after_first_line: bool = False,
        after_request: bool = False,
        how: signal.Signals = signal.SIGINT,
    ) -> tuple[int, str]:
        """Run ``watcherd ARGS`` and SIGINT it ``delay`` ms after it took the lease (its imports
        done, its work begun: a Ctrl-C while Python still imports is Python's traceback, not
        watcherd's), or, ``after_first_line``, after it logged its first line, or,
        ``after_request``, after it handed its change to the running daemon; its exit code
        (-SIGINT: it died of the signal itself, which a shell shows as 130 too) and what it said.
        ``how``: SIGKILL instead, a command killed (its host gone, the OOM killer)."""
        log = self.next_log(what)
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "watcherd", *args, "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                preexec_fn=sigint_default,
            )
        deadline = time.monotonic() + 60
        started = self.lease_pid() != proc.pid if not after_request else not self.requested()
        while proc.poll() is None and started and time.monotonic() < deadline:
            time.sleep(0.002)
            started = self.lease_pid() != proc.pid if not after_request else not self.requested()
        if after_first_line:
            while proc.poll() is None and " INFO " not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.01)
        time.sleep(delay / 1000)
        if proc.poll() is None:
            proc.send_signal(how)
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise broken(f"an interrupted {what} does not stop", log.read_text(errors="replace")[-3000:]) from None
        return code, log.read_text(errors="replace")

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
        # Mid-batch: after the scan holds the lease, or after it logged its first file (``after:
        # file``: the batch is under way).
        code, said = self.ctrl_c(
            "scan", ("scan", str(self.root)), int(a["delay"]), after_first_line=a.get("after") == "file"
        )
        self.start_daemon()
        if code not in (0, 130, -signal.SIGINT) or "Traceback" in said:
            raise broken(f"an interrupted scan exits {code}", said[-3000:])
        return f"{dropped}; scan, SIGINT {a['delay']} ms after its {a.get('after', 'lease')} -> {code}"

    def _command_args(self, a: dict[str, Any]) -> tuple[str, ...] | None:
        """The change command ``interrupted_command`` runs (None: nothing for it to change)."""
        root = str(self.root)
        what = str(a["what"])
        if what == "arrange":
            return ("arrange", root, "by-size" if int(a["pick"]) % 2 else "by-similarity")
        if what == "resolve":
            items = self.cli_json("dupes", root) + self.cli_json("dupes", root, "--near", "4")
            item = self._item(items, {"item": a["pick"]})
            decision = ("distinct", "keep-existing", "keep-newcomer")[int(a["pick"]) % 3]
            return ("resolve", root, str(item["id"]), decision) if item is not None else None
        if what == "undo":
            return ("resolve", root, "--undo")
        tag = pick(sorted(self.tags_seen | {f.name for f in self.folders()[1:]}), int(a["pick"]))
        if tag is None:
            return None
        return ("retag", root, tag, self.fresh_name("t")) if what == "retag" else ("untag", root, "--everywhere", tag)

    def interrupted_command(self, a: dict[str, Any]) -> str:
        """The daemon stopped, a change command applies itself (it takes the lease) and is
        stopped by Ctrl-C ``delay`` ms after it took it: its change is made whole or not at all
        (an arrange's moves taken back, a decision's moves finished by the next writer from
        its journal); the daemon started again."""
        self.stop_daemon()
        args = self._command_args(a)
        if args is None:
            self.start_daemon()
            return f"nothing to {a['what']}"
        killed = a.get("how") == "kill"
        how = signal.SIGKILL if killed else signal.SIGINT
        code, said = self.ctrl_c(str(a["what"]), args, int(a["delay"]), how=how)
        said = said.strip()
        self.start_daemon()  # killed: the next writer finishes or takes back what it left
        # 2: refused (a size tag, say); 7: an undo that names a decision no longer last.
        if (
            code not in (0, 2, 7, 130, -signal.SIGINT, -signal.SIGKILL)
            or "Traceback" in said
            or "internal error" in said
        ):
            raise broken(f"an interrupted {a['what']} exits {code}", said[-3000:])
        shown = " ".join(x for x in args if x != str(self.root))
        return f"{shown}, {'kill -9' if killed else 'Ctrl-C'} {a['delay']} ms after its lease -> {code} {said[:200]}"

    def requested(self) -> bool:
        """Is a command's request in the daemon's mailbox (waiting, or taken)?"""
        folder = self.root / ".watcherd" / "requests"
        try:
            return any(n.endswith((mailbox.REQUEST, mailbox.TAKEN)) for n in os.listdir(folder))
        except OSError:
            return False

    def interrupted_request(self, a: dict[str, Any]) -> str:
        """The daemon running, a change command hands it its change and is stopped by Ctrl-C
        ``delay`` ms after the request is in place: taken back if the daemon had not taken it
        (never applied later), finished by the daemon if it had."""
        args = self._command_args(a)
        if args is None:
            return f"nothing to {a['what']}"
        code, said = self.ctrl_c(str(a["what"]), args, int(a["delay"]), after_request=True)
        said = said.strip()
        if code not in (0, 2, 7, 130, -signal.SIGINT) or "Traceback" in said or "internal error" in said:
            raise broken(f"an interrupted {a['what']} handed to the daemon exits {code}", said[-3000:])
        shown = " ".join(x for x in args if x != str(self.root))
        return f"{shown}, Ctrl-C {a['delay']} ms after its request -> {code} {said[:200]}"

    def two_commands(self, a: dict[str, Any]) -> str:
        """The daemon stopped, two change commands started at once (two terminals): one takes
        the lease, the other waits for it and applies its own change after; each ends as it
        would alone."""
        self.stop_daemon()
        runs = []
        for what, picked in ((a["what"], a["pick"]), (a["other"], int(a["pick"]) + 1)):
            args = self._command_args({"what": what, "pick": picked})
            if args is None:
                continue
            err = open(self.next_log(str(what)), "wb")  # noqa: SIM115 - closed below, once it ended
            argv = [sys.executable, "-m", "watcherd", *args, "-c", str(self.conf)]
            runs.append(
                (args, err, subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err))
            )
        ended = []
        for args, err, proc in runs:
            try:
                code = proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            err.close()
            said = Path(err.name).read_text(errors="replace").strip()
            shown = " ".join(x for x in args if x != str(self.root))
            # 2: refused (a size tag, say); 7: an undo that names a decision no longer last.
            if code not in (0, 2, 7) or "Traceback" in said or "internal error" in said:
                raise broken(f"{shown}, run beside another command, exits {code}", said[-3000:])
            ended.append(f"{shown} -> {code}")
        self.start_daemon()
        return "; ".join(ended) or "nothing to change"

    def scan_then_run(self, a: dict[str, Any]) -> str:
        """The daemon stopped, fresh drops, ``watcherd scan`` (from cron, say), and the daemon
        started ``delay`` ms later (by systemd, say): it waits for the scan, then starts and
        holds the lease; the scan ends 0."""
        self.stop_daemon()
        dropped = self.burst(a)
        log = self.next_log("scan")
        with open(log, "wb") as err:
            scan = subprocess.Popen(
                [sys.executable, "-m", "watcherd", "scan", str(self.root), "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + 60  # the scan holds the lease first: the daemon starts beside it
        while scan.poll() is None and self.lease_pid() != scan.pid and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(int(a["delay"]) / 1000)
        self.daemon = DaemonProcess(self.root, self.conf, self.next_log("run"))
        try:
            code = scan.wait(timeout=300)
        except subprocess.TimeoutExpired:
            scan.kill()
            scan.wait()
            raise broken(
                "a scan beside a starting daemon does not end", log.read_text(errors="replace")[-3000:]
            ) from None
        said = log.read_text(errors="replace")
        if code != 0 or "Traceback" in said:
            raise broken(f"a scan beside a starting daemon exits {code}", said[-3000:])
        try:
            self.daemon.wait_started(timeout=120)
        except AssertionError as exc:
            raise broken("a daemon started beside a scan does not start", str(exc)[-3000:]) from None
        waited = "waiting for it" in self.daemon.log_text()
        return f"{dropped}; scan, run {a['delay']} ms later -> scan 0, daemon {'waited' if waited else 'started'}"

    def interrupted_rebuild(self, a: dict[str, Any]) -> str:
        """The daemon stopped, ``watcherd rebuild``, Ctrl-C ``delay`` ms after it took the lease;
        the daemon started again goes on with what the rebuild left: every image keeps its
        record and its tags."""
        self.stop_daemon()
        before = self.tags_now()
        code, said = self.ctrl_c("rebuild", ("rebuild", str(self.root)), int(a["delay"]))
        if code not in (0, 130, -signal.SIGINT) or "Traceback" in said:
            raise broken(f"an interrupted rebuild exits {code}", said[-3000:])
        self.start_daemon()
        self.kept_tags(before, "an interrupted rebuild, then the daemon")
        return f"rebuild, Ctrl-C {a['delay']} ms after its lease -> {code}; started again"

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
