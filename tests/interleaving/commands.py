"""The steps that run a command while the daemon runs: ``resolve`` with each decision and
``resolve --undo``, ``retag``, ``untag --everywhere``, ``arrange``, ``forget``, ``check
--repair``, ``errors --retry``, a second writer beside the daemon, read-only commands, and
``rebuild`` (the daemon stopped for it).
"""

from __future__ import annotations

import json
from typing import Any

from tests.interleaving.library import Library
from tests.interleaving.pictures import pick
from tests.interleaving.script import ACCEPTED, broken


class CommandSteps(Library):
    """Commands, as a person runs them in a terminal beside the daemon."""

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

    def tags_now(self) -> dict[str, set[str]]:
        """Every image's tags, as ``export`` says."""
        return {str(i["name"]): set(i["tags"]) for i in self.cli_json("export", str(self.root))}

    def kept_tags(self, before: dict[str, set[str]], how: str) -> None:
        """After a rebuild: every image has the tags it had before (and its record)."""
        after = self.tags_now()
        lost = {n: sorted(t - after.get(n, set())) for n, t in before.items() if not t <= after.get(n, set())}
        if lost:
            first = sorted(lost)[:5]
            raise broken(f"{how} lost tags", f"{len(lost)} images, first: {[(n, lost[n]) for n in first]}")

    def rebuild(self, a: dict[str, Any]) -> str:
        """What ``check`` advises for a damaged catalog: the daemon stopped, the catalog set aside and
        made again from the tree, the thumbnails' chunks and the export; the daemon started again.
        Every image keeps its record and its tags."""
        self.stop_daemon()
        before = self.tags_now()
        counts = self.cli_json("rebuild", str(self.root))["counts"]
        self.kept_tags(before, "a rebuild")
        self.start_daemon()
        return f"rebuild -> {counts}; started again"
