"""Soak: random interleavings of gestures, commands and interrupts, for as long as you like.

    python -m tests.benchmarks.interleave_soak --seeds 1-8 --steps 300
    python -m tests.benchmarks.interleave_soak --replay FAILURE.json [--repeat 3]
    python -m tests.benchmarks.interleave_soak --shrink FAILURE.json [--minutes 20]

Each seed lets Hypothesis draw scripts against a fresh library with a real daemon and
page (``tests/interleaving/``), checking every invariant at a quiet point every
``--check-every`` steps and at the end; a failure is shrunk (unless ``--no-shrink``) and
its shortest script saved. Prints one line per seed and a total; exits 1 if any seed
failed. CI runs a short budget of the same machine (tests/e2e/test_interleaving.py).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.interleaving import Runner, Script, draw, reduce, replay, symptom


def seed_range(text: str) -> list[int]:
    """``1-8`` or ``3`` or ``1,5,9``."""
    out: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        out += range(int(first), int(last or first) + 1)
    return out


def soak(args: argparse.Namespace, base: Path) -> int:
    seeds, steps, examples, shrink = seed_range(args.seeds), args.steps, args.examples, not args.no_shrink
    total_steps = total_checks = failed_seeds = 0
    kinds: dict[str, Path] = {}
    tolerated: Counter[str] = Counter()
    started = time.monotonic()
    for s in seeds:
        runner = Runner(
            base / f"seed-{s}", seed=s, check_every=args.check_every, keep=args.keep, tolerate=tuple(args.tolerate)
        )
        t0 = time.monotonic()
        error = ""
        try:
            draw(runner, examples=examples, steps=steps, shrink=shrink)
        except Exception as exc:  # the failure itself was printed and saved by the runner
            error = type(exc).__name__
        ran = sum(o.steps for o in runner.outcomes)
        checks = sum(o.checks for o in runner.outcomes)
        total_steps += ran
        tolerated.update(symptom(t) for o in runner.outcomes for t in o.tolerated)
        total_checks += checks
        line = f"seed {s}: {len(runner.outcomes)} worlds, {ran} steps, {checks} quiet points passed"
        if runner.shortest or error:
            failed_seeds += 1
            for kind, path in runner.shortest.items():
                if kind not in kinds or len(Script.load(kinds[kind]).steps) > len(Script.load(path).steps):
                    kinds[kind] = path
            found = "; ".join(f"{k} ({len(Script.load(p).steps)} steps: {p})" for k, p in runner.shortest.items())
            line += f", FAILED: {found or error}"
        else:
            line += ", 0 failures"
        print(f"{line} [{time.monotonic() - t0:.0f} s]", flush=True)
    print(
        f"total: {len(seeds)} seeds, {total_steps} steps, {total_checks} quiet points, "
        f"{failed_seeds} seeds failed, {len(kinds)} distinct failures [{time.monotonic() - started:.0f} s]"
    )
    for kind, path in sorted(kinds.items()):
        print(f"  {kind}: shortest {len(Script.load(path).steps)} steps, {path}")
    for kind, n in tolerated.most_common():
        print(f"  tolerated {n}x: {kind}")
    return 1 if failed_seeds else 0


def replay_file(path: Path, repeat: int, base: Path, tolerate: tuple[str, ...]) -> int:
    script = Script.load(path)
    failed = 0
    for i in range(repeat):
        runner = Runner(base / f"replay-{i + 1}", seed=script.seed, tolerate=tolerate)
        outcome = replay(script, runner)
        said = f"failed: {outcome.failure}" if outcome.failure else "passed"
        said += f" (what each step did: {outcome.script and outcome.script.with_suffix('.txt')})"
        print(f"replay {i + 1}/{repeat} of {path} ({len(script.steps)} steps): {said} [{outcome.seconds:.0f} s]")
        failed += outcome.failure is not None
    return 1 if failed else 0


def shrink_file(path: Path, minutes: float, base: Path, tolerate: tuple[str, ...]) -> int:
    script = Script.load(path)
    if script.failure is None:
        print(f"{path} did not fail: nothing to shrink")
        return 2
    print(f"shrinking {path} ({len(script.steps)} steps, {script.failure['kind']}) for up to {minutes:.0f} minutes")
    best = reduce(script, base, minutes * 60, tolerate)
    out = best.save(path.with_name(path.stem + "-shrunk.json"))
    print(f"shortest: {len(best.steps)} steps, {out}\n{best.text()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1-4", help="Hypothesis seeds: 1-8, 3 or 1,5,9 (default 1-4)")
    parser.add_argument("--steps", type=int, default=200, help="steps per script (default 200)")
    parser.add_argument("--examples", type=int, default=1, help="scripts drawn per seed (default 1)")
    parser.add_argument("--check-every", type=int, default=25, help="steps between quiet points (default 25)")
    parser.add_argument("--no-shrink", action="store_true", help="stop at a failure without shrinking it")
    parser.add_argument("--workdir", type=Path, help="where the libraries go (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the libraries of passing scripts too")
    parser.add_argument(
        "--tolerate",
        action="append",
        default=[],
        metavar="TEXT",
        help="count problems containing TEXT instead of failing on them (a known bug whose fix is pending)",
    )
    parser.add_argument("--replay", type=Path, metavar="FILE", help="run the steps of a saved script")
    parser.add_argument("--shrink", type=Path, metavar="FILE", help="look for a shorter script failing the same way")
    parser.add_argument("--minutes", type=float, default=20, help="with --shrink: how long to try (default 20)")
    parser.add_argument("--repeat", type=int, default=1, help="with --replay: how many times (timing varies)")
    args = parser.parse_args(argv)
    # Ctrl-C or SIGTERM ends the run through KeyboardInterrupt, so every world stops its
    # daemon and page; also when a shell started this in the background (SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    base = args.workdir or Path(tempfile.mkdtemp(prefix="watcherd-interleave-"))
    print(f"libraries under {base}", flush=True)
    if args.shrink:
        return shrink_file(args.shrink, args.minutes, base, tuple(args.tolerate))
    if args.replay:
        return replay_file(args.replay, args.repeat, base, tuple(args.tolerate))
    if args.tolerate:
        print(f"tolerating problems that contain: {args.tolerate}")
    return soak(args, base)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: every world's daemon and page are stopped", file=sys.stderr)
        sys.exit(130)
