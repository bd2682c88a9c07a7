"""Running scripts: a ``Runner`` makes a workdir per world and keeps each symptom's shortest
failing script; ``replay`` runs a script in a fresh world, ``reduce`` looks for a shorter
one failing the same way, ``failure_report`` is what a failure prints.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.interleaving.script import CHECK_EVERY, Broken, Op, Script, Step, symptom
from tests.interleaving.world import World

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


def remove_tree(path: Path) -> None:
    """Remove a passing world's folder (only files this test made)."""
    for p in sorted(path.rglob("*"), key=lambda q: len(q.parts), reverse=True):
        if p.is_dir() and not p.is_symlink():
            p.rmdir()
        else:
            p.unlink()
    path.rmdir()


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
