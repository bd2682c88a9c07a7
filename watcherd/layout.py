"""The library on disk: its root, the folders it needs, the lease file, our leftovers."""

from __future__ import annotations

import logging
from pathlib import Path

from watcherd import fsops
from watcherd.config import Config
from watcherd.errors import ConfigError
from watcherd.naming import shown

log = logging.getLogger("watcherd")


def lease_path(cfg: Config) -> Path:
    """Where the writer lease of a library lives."""
    return cfg.state_dir / "lock"


def check_root(cfg: Config) -> Path:
    """The library root, which must be an existing directory."""
    if cfg.root is None:
        raise ConfigError("no library root: give ROOT on the command line or 'root' in the config")
    if not cfg.root.exists():
        raise ConfigError(f"root {cfg.root} does not exist")
    if not cfg.root.is_dir():
        raise ConfigError(f"root {cfg.root} is not a directory")
    return cfg.root


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


def remove_leftovers(cfg: Config) -> None:
    """Delete temporaries our own crashed runs left (only ever our reserved names)."""
    for top in (cfg.thumbs_dir, cfg.originals_dir, cfg.state_dir):
        for path in fsops.remove_temporaries(top):
            log.info("removed leftover temporary %s", shown(str(path)))
