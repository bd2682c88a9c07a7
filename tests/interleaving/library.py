"""A running library (``Library``): its folders, its ``watcherd run`` daemon and ``watcherd
serve`` page started and stopped, commands run and requests sent to the page, and what is
there now. The steps (``gestures``, ``commands``, ``page``, ``interrupts``) are mixins of it;
``world.World`` puts them together.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import DaemonProcess
from tests.interleaving.pictures import free_port, pick
from tests.interleaving.script import ACCEPTED, FOLDERS, PAGE_ACCEPTED, Broken, Script, broken, internal_error_class
from watcherd.core.filters import has_image_suffix
from watcherd.core.naming import parse_canonical


class Library:
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
        self.batches: list[str] = []  # the batches the page made, oldest first
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
        error = (doc.get("error") or "") if isinstance(doc, dict) else str(doc)
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

    def lease_pid(self) -> int | None:
        try:
            return int(json.loads((self.root / ".watcherd" / "lock").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    def _item(self, items: list[dict[str, Any]], a: dict[str, Any]) -> dict[str, Any] | None:
        return pick(sorted(items, key=lambda i: str(i["id"])), int(a["item"])) if items else None
