"""The library on disk: its root, the folders it needs, the lease file, our leftovers."""

from __future__ import annotations

import logging
import os
import shlex
import time
from pathlib import Path

from watcherd.core.config import Config
from watcherd.core.errors import ConfigError, UsageError
from watcherd.core.filters import TEMP_PREFIX
from watcherd.core.naming import shown

log = logging.getLogger("watcherd")


def lease_path(cfg: Config) -> Path:
    """Where the writer lease of a library lives."""
    return cfg.state_dir / "lock"


def requests_dir(cfg: Config) -> Path:
    """Where commands leave changes for the writer (``requests``)."""
    return cfg.state_dir / "requests"


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds a library's ``.watcherd/``."""
    for folder in (start, *start.parents):
        if (folder / ".watcherd").is_dir():
            return folder
    return None


def check_root(cfg: Config) -> Path:
    """The library root, which must be an existing directory."""
    if cfg.root is None:
        raise ConfigError("no library root: give ROOT on the command line or 'root' in the config")
    if not cfg.root.exists():
        raise ConfigError(f"root {cfg.root} does not exist")
    if not cfg.root.is_dir():
        raise ConfigError(f"root {cfg.root} is not a directory")
    return cfg.root


def check_library(cfg: Config, *, named: bool = True) -> Path:
    """The library root, which must hold ``.watcherd/`` (its catalog need not exist yet).

    ``named``: the user gave this folder (as ROOT or ``root`` in the config), so the
    error may say how to make it a library; a folder merely found (the current
    directory) is never offered as one.
    """
    root = check_root(cfg)
    if cfg.state_dir.is_dir():
        return root
    if named:
        raise UsageError(
            f"{root} is not a watcherd library (no {cfg.state_dir.name}/ there); make it one with "
            f"'watcherd scan {shlex.quote(str(root))}' or 'watcherd run {shlex.quote(str(root))}'"
        )
    raise UsageError(
        f"no watcherd library at {root} or above it (no {cfg.state_dir.name}/ found); give its ROOT, "
        "or run the command inside a library"
    )


def prepare(cfg: Config) -> None:
    """Create the folders a library needs (never anything else)."""
    check_root(cfg)
    for folder in (cfg.thumbs_dir, cfg.originals_dir, cfg.state_dir, cfg.database_path.parent, *cfg.source_dirs):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {folder}: {exc.strerror}") from None
    if cfg.originals_dir.resolve().is_relative_to(cfg.thumbs_dir.resolve()):
        raise ConfigError("originals must not be inside the thumbs tree")


def check_writable(cfg: Config) -> None:
    """Refuse to start a writer on a library it could not write: each folder it writes
    to is created if missing and must take a new file (a read-only mount, an immutable
    folder or missing permissions fail here, naming the folder, instead of mid-scan).
    """
    import tempfile  # here: read commands never probe a folder

    root = check_root(cfg)
    folders = (
        ("library root", root),
        ("thumbs folder", cfg.thumbs_dir),
        ("originals folder", cfg.originals_dir),
        ("state folder", cfg.state_dir),
        ("catalog folder", cfg.database_path.parent),
    )
    for what, folder in folders:
        if what == "library root" and all(f.is_dir() for _, f in folders[1:]):
            continue  # nothing left to create in the root itself
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise ConfigError(f"{what} {folder} is not writable: {exc.strerror or exc}") from None


REQUEST_LEFTOVER_AGE = 3600.0  # seconds after which a request's temporary is a leftover of a command that died
# The temporaries of the writer's answers (``requests``): only the lease holder writes them, so a
# writer that takes the lease knows any it finds are a killed writer's, however young.
ANSWER_TEMP_PREFIX = f"{TEMP_PREFIX}answer-"


def request_in_flight(name: str, mtime: float, now: float) -> bool:
    """Is the file ``name`` in ``requests`` a command's request being written (on any host,
    without the lease), rather than a leftover? A young temporary that is not an answer's."""
    ours = name.startswith(TEMP_PREFIX) and not name.startswith(ANSWER_TEMP_PREFIX)
    return ours and now - mtime < REQUEST_LEFTOVER_AGE


def remove_leftovers(cfg: Config) -> None:
    """Delete temporaries our own crashed runs left (only ever our reserved names) in the
    originals, the state folder and the collisions folder. The thumbs tree's own are removed
    by the reconcile walk that follows every start (``flow.reconcile``), which lists every
    folder of the tree anyway: a second walk of 100,000 thumbnails would cost a scan 0.15 s."""
    from watcherd.fs import fsops  # here: read commands, which never remove anything, skip it

    # Commands (on any host) write their requests without the lease: one being written now is
    # theirs, not a leftover (a daemon starting then removed it under the command's feet). An
    # answer's is a killed writer's: this one holds the lease now. ``check`` keeps the same rule.
    requests, now = requests_dir(cfg), time.time()

    def in_flight(path: Path, mtime: float) -> bool:
        return path.parent == requests and request_in_flight(path.name, mtime, now)

    for path in [
        *fsops.remove_temporaries(cfg.thumbs_dir / cfg.collisions),
        *fsops.remove_temporaries(cfg.originals_dir),
        *fsops.remove_temporaries(cfg.state_dir, keep=in_flight),
    ]:
        log.info("removed leftover temporary %s", shown(str(path)))
