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

The package, read top to bottom (each module imports only from the ones above it):

- ``script``: the script values: what a step does (``Op``), a step (``Step``), a script and
  its file (``Script``), a broken promise and its symptom (``Broken``, ``broken``,
  ``symptom``), and the constants the other modules share;
- ``pictures``: the pictures a world drops, as bytes, and the helpers the steps share
  (``pick``, snapshots of the tree);
- ``library``: a running library (``Library``): its daemon and page started and stopped,
  commands run and requests sent, and what is there now;
- ``gestures``, ``commands``, ``page``, ``interrupts``: the steps by kind, each a mixin of
  ``Library``: a person's gestures in the file manager (and pauses and looks); commands;
  decisions, undos and views through the page; interrupts (kills, a scan interrupted
  mid-batch, records written as an older watcherd wrote them);
- ``world``: the ``World``, a library with every step (``STEPS``): ``World.perform`` runs
  one, ``World.check`` is the quiet point that holds the library to every invariant;
- ``runner``: running scripts: ``Runner`` (a workdir per world, the shortest failing script
  per symptom), ``replay`` of a script in a fresh world, ``reduce`` to a shorter one;
- ``machine``: Hypothesis's state machine (``Interleaving``) and ``draw``, which runs it
  from a seed.
"""

from tests.interleaving.machine import draw
from tests.interleaving.runner import Runner, reduce, replay
from tests.interleaving.script import Op, Script, Step, symptom

__all__ = ["Op", "Runner", "Script", "Step", "draw", "reduce", "replay", "symptom"]
