"""Random interleavings of gestures, commands and interrupts keep every promise (issue 16).

Hypothesis draws scripts from a fixed seed (reproducible in CI) and runs each against a
fresh library with a real ``watcherd run`` daemon and ``watcherd serve`` page: drops
(some downloaded as a ``.part`` and renamed into place), look-alikes and the same bytes
again, thumbnail renames, copies, moves and deletions, folder renames and moves, originals
dropped again, settle gestures in ``_collisions/``, ``resolve`` with each decision and
``--undo``, decisions and undos through the page's API, ``retag``, ``untag --everywhere``,
``arrange``, ``forget``, ``check --repair``, ``errors --retry``, ``rebuild``, read-only
commands (``status``, ``find``, ``similar``, ``export``, ...) asked meanwhile, a second
``run`` or ``scan`` beside the daemon, ``resolve --undo`` across a kill of the daemon,
SIGKILL of the daemon and SIGINT of a ``scan`` mid-batch, records written as an older
watcherd wrote them (the daemon fills their window hashes and EXIF meanwhile), with short
pauses between. At
quiet points (every ``CHECK_EVERY`` steps and at the end) the daemon is stopped, two full
scans run, and every invariant is checked (``tests/interleaving/world.py``, ``World.check``).

The budget is under a minute on two cores; failures are not shrunk here (a shrink
re-runs whole libraries). A failure prints the seed, the symptom and the steps, saved as a
script that replays with ``python -m tests.benchmarks.interleave_soak --replay FILE``;
the soak (same module, more seeds and steps, shrinking on) runs on demand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interleaving import Runner, Script, draw, replay

SEED = 16
EXAMPLES = 2  # libraries, each a script of STEPS steps after the starting drops (tests/interleaving/machine.py STARTER)
STEPS = 30
CHECK_EVERY = 15


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_random_interleavings_keep_every_promise(tmp_path: Path) -> None:
    runner = Runner(tmp_path, seed=SEED, check_every=CHECK_EVERY)
    try:
        draw(runner, examples=EXAMPLES, steps=STEPS, shrink=False)
    except Exception as exc:
        found = "\n".join(
            f"{kind}: {len(Script.load(path).steps)} steps, replay with "
            f"python -m tests.benchmarks.interleave_soak --replay {path}"
            for kind, path in runner.shortest.items()
        )
        raise AssertionError(f"Hypothesis seed {SEED} broke a promise:\n{found or exc}") from exc
    assert runner.shortest == {}
    assert sum(o.checks for o in runner.outcomes) >= EXAMPLES  # every library reached its quiet points


FOUND = sorted((Path(__file__).parents[1] / "data" / "interleavings").glob("*.json"))


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", FOUND, ids=[p.stem for p in FOUND])
def test_an_interleaving_that_failed_once_keeps_every_promise(path: Path, tmp_path: Path) -> None:
    """The shortest script of each failure found so far (tests/data/interleavings/), replayed once."""
    outcome = replay(Script.load(path), Runner(tmp_path))
    assert outcome.failure is None, (
        f"{outcome.failure}: see {outcome.script} ({outcome.script and outcome.script.with_suffix('.txt')})"
    )
