"""Hypothesis's state machine: ``Interleaving`` draws a script step by step (each rule one
step, run in a world as it is drawn) and ``draw`` runs it from a seed.
"""

from __future__ import annotations

import time
from typing import ClassVar

from hypothesis import HealthCheck, Phase, assume, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from tests.interleaving.runner import Runner, remove_tree
from tests.interleaving.script import BASES, DECISIONS, DOWNLOADS, VARIANTS, Op, Step
from tests.interleaving.world import World

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
CHANGES = ["arrange", "resolve", "undo", "retag", "untag"]  # the change commands an interrupt or a second command meets
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

    @rule(item=PICK, count=st.integers(2, 4), decision=st.sampled_from(DECISIONS))
    def page_batch(self, item: int, count: int, decision: str) -> None:
        self._do(Op.PAGE_BATCH, item=item, count=count, decision=decision)

    @rule(pick=PICK)
    def page_undo_batch(self, pick: int) -> None:
        self._do(Op.PAGE_UNDO_BATCH, pick=pick)

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

    @rule(
        what=st.sampled_from(CHANGES),
        pick=PICK,
        delay=st.integers(0, 400),
        how=st.sampled_from(["ctrl-c", "ctrl-c", "kill"]),
    )
    def interrupted_command(self, what: str, pick: int, delay: int, how: str) -> None:
        self._do(Op.INTERRUPTED_COMMAND, what=what, pick=pick, delay=delay, how=how)

    @rule(
        what=st.sampled_from(CHANGES),
        pick=PICK,
        delay=st.integers(0, 300),
    )
    def interrupted_request(self, what: str, pick: int, delay: int) -> None:
        self._do(Op.INTERRUPTED_REQUEST, what=what, pick=pick, delay=delay)

    @rule(what=st.sampled_from(CHANGES), other=st.sampled_from(CHANGES), pick=PICK)
    def two_commands(self, what: str, other: str, pick: int) -> None:
        self._do(Op.TWO_COMMANDS, what=what, other=other, pick=pick)

    @rule(count=st.integers(1, 24), folder=PICK, delay=st.integers(0, 800))
    def scan_then_run(self, count: int, folder: int, delay: int) -> None:
        self._do(Op.SCAN_THEN_RUN, count=count, folder=folder, delay=delay)

    @rule(delay=st.integers(0, 600))
    def interrupted_rebuild(self, delay: int) -> None:
        self._do(Op.INTERRUPTED_REBUILD, delay=delay)

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
