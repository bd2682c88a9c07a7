"""One writer, always: a change to the catalog goes to the lease holder, or takes the lease.

With a live daemon (or ``scan``) holding the lease, the change is handed over as a
request file (``requests``) and this waits for the answer. Without one, the command
takes the lease for the moment it writes, applies the very same edit (``edits``), writes
the export and the published snapshot, and lets the lease go. Either way there is one
writer of the catalog file, on this host or any other.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watcherd.catalog import Catalog
from watcherd.commands import edits, mailbox
from watcherd.core.config import Config
from watcherd.core.errors import LockedError, NoAnswerError, Refused, UsageError
from watcherd.core.records import Json
from watcherd.filing import tagfiles
from watcherd.flow import restore
from watcherd.fs.layout import check_library, lease_path, requests_dir
from watcherd.fs.lease import Lease, Role, holding, live_holder, writer_live

log = logging.getLogger("watcherd")

PICK_UP = 30.0  # seconds a live writer has to pick a request up before the command gives up


def change(
    cfg: Config,
    command: str,
    arguments: Json,
    *,
    pick_up: float = PICK_UP,
    sleep: Callable[[float], None] | None = None,
) -> Any:
    """Apply one change through the library's one writer; return its document. (``sleep``:
    ``time.sleep`` as it is when called, not as it was when this module was imported.)"""
    sleep = sleep if sleep is not None else time.sleep
    check_library(cfg)
    for attempt in range(6):
        if attempt:
            # The lease seen between two hands (or read mid-write through a network client's
            # cache): look again a moment later, for a few seconds in all, before giving up.
            sleep(min(2.0, 0.25 * 2 ** (attempt - 1)))
        holder = live_holder(cfg)
        if holder is not None and holder.answers_requests:
            answer = _ask(cfg, mailbox.Request(command, arguments), pick_up, sleep)
            if answer is None:
                continue  # the writer stopped before picking it up: it was withdrawn
            if not answer.ok:
                details = answer.result if isinstance(answer.result, dict) else None
                raise Refused(answer.error or "the daemon refused the change", answer.exit_code or 1, details)
            return answer.result
        # No writer, or another command writing its own change: the lease is taken here, after
        # waiting for that command to let it go (nobody would answer a request meanwhile).
        try:
            return _apply_here(cfg, command, arguments)
        except LockedError:
            now = live_holder(cfg)
            if holder is not None and now is not None and not now.answers_requests:
                raise  # waited for a command's lease as long as a command is waited for
            continue  # a writer started meanwhile: hand it the change instead
    raise LockedError("the library's lease keeps changing hands; try again")


def _ask(cfg: Config, req: mailbox.Request, pick_up: float, sleep: Callable[[float], None]) -> mailbox.Answer | None:
    """Hand ``req`` to the live writer and wait for its answer; None if it was withdrawn unapplied."""
    folder = requests_dir(cfg)
    try:
        mailbox.submit(folder, req)  # in the try: a Ctrl-C as it lands (the folder's sync) withdraws it too
        deadline = time.monotonic() + pick_up
        next_check = 0.0
        delay = 0.01
        while True:
            answer = mailbox.collect(folder, req)
            if answer is not None:
                return answer
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 1.0
                if not mailbox.taken(folder, req):
                    holder = live_holder(cfg)
                    if (holder is None or not holder.answers_requests) and mailbox.withdraw(folder, req):
                        log.info("the daemon stopped before taking the change; applying it here")
                        return None
                    if now >= deadline and mailbox.withdraw(folder, req):
                        raise NoAnswerError(
                            f"the daemon did not take the change within {pick_up:.0f}s (it may be busy "
                            "or hung; see its log); nothing was changed"
                        )
                elif not writer_live(cfg):
                    raise NoAnswerError(
                        "the daemon stopped while applying the change; it applies it again when it starts"
                    )
            sleep(delay)
            delay = min(delay * 2, 0.05)
    except KeyboardInterrupt:
        log.warning("stopped: %s", _left_behind(folder, req))
        raise


def _left_behind(folder: Path, req: mailbox.Request) -> str:
    """Take ``req`` back if the writer has not taken it; what became of it, in words. (The
    writer publishes its answer before it lets the taken request go.)"""
    try:
        if mailbox.withdraw(folder, req):
            return "the daemon had not taken the change; nothing was changed"
        if mailbox.taken(folder, req):
            return "the daemon had already taken the change and finishes it (its log says how it ended)"
        answer = mailbox.collect(folder, req)
    except OSError as exc:  # a share gone meanwhile: say so, and still stop as asked
        return f"the change's request could not be taken back ({exc.strerror or exc}); the daemon may still apply it"
    if answer is None:  # stopped before the request was in place
        return "nothing was changed"
    if answer.ok:
        return "the daemon had already made the change"
    return f"the daemon had already refused the change: {answer.error or 'refused'}"


def _apply_here(cfg: Config, command: str, arguments: Json) -> Any:
    """Take the lease, apply the change with the same code the daemon runs, let the lease go."""
    db = cfg.database_path
    if not db.exists():
        root = shlex.quote(str(cfg.root))
        raise UsageError(f"no catalog at {db} yet: nothing to change until 'watcherd scan {root}' has made it")
    lease = Lease(lease_path(cfg), cfg.heartbeat, cfg.stale_after, role=Role.COMMAND)
    with holding(lease) as beat, Catalog(db) as catalog:
        catalog.guard = beat.confirm  # a commit only while the lease is still this command's
        files = tagfiles.attach(cfg, catalog)  # sidecars and attributes follow the change, as in the daemon
        try:
            result = edits.apply(cfg, catalog, command, arguments)
            files.catch_up()  # what a big change handed over, before the command returns
        finally:
            if catalog.changes:
                restore.save_copies(cfg, catalog, time.time())
        return result
