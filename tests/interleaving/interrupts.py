"""The steps that interrupt: the daemon killed (alone, or while it may be applying an undo),
a ``scan`` interrupted mid-batch, records written again as an older watcherd wrote them.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from typing import Any

from tests.helpers import sigint_default
from tests.interleaving.gestures import GestureSteps
from tests.interleaving.pictures import pick, variant_bytes
from tests.interleaving.script import ACCEPTED, BASES, broken
from watcherd.catalog.cropschema import WINDOWLESS
from watcherd.flow.cropfill import EXIF_KEPT


class InterruptSteps(GestureSteps):
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
