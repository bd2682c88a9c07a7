"""Opening a library: check the root, create its folders, open and vet the catalog."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from watcherd.catalog import Catalog
from watcherd.config import Config
from watcherd.errors import ConfigError

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


def open_for_writing(cfg: Config) -> Catalog:
    """Open the catalog for the one writer, refusing a library named with other hash settings.

    Mixing hash functions in one library would make equal pictures get different
    names, so the settings that named the first image are pinned in ``meta``.
    """
    prepare(cfg)
    db = cfg.database_path
    if db.exists():
        damage = Catalog.damage(db)
        if damage is not None:
            aside = move_aside(db, "corrupt")
            log.error("catalog %s is damaged (%s); moved it to %s and rebuilding from the tree", db, damage, aside)
    catalog = Catalog(db)
    wanted = {"algorithm": cfg.hash.algorithm, "hash_size": cfg.hash.size, "decode": cfg.decode}
    pinned = catalog.meta("library")
    catalog.fresh = pinned is None
    if pinned is None:
        catalog.set_meta("library", {**wanted, "created_by": "watcherd", "thumbs": cfg.thumbs})
        catalog.commit()
        return catalog
    # Libraries made before the decode mode was pinned were all named in reference mode.
    had = {"algorithm": pinned.get("algorithm"), "hash_size": pinned.get("hash_size")}
    had["decode"] = pinned.get("decode", "reference")
    if had != wanted:
        catalog.close()
        raise ConfigError(
            f"this library's names were made with {describe_naming(had)}; the config asks for "
            f"{describe_naming(wanted)}. Mixing them would give one picture two names: "
            "use the library's settings, or a new root."
        )
    if "decode" not in pinned:
        catalog.set_meta("library", {**pinned, "decode": "reference"})
        catalog.commit()
    return catalog


def describe_naming(settings: dict[str, object]) -> str:
    """``whash size 8, decode: reference``: how a library's names are made, for messages."""
    return f"{settings['algorithm']} size {settings['hash_size']}, decode: {settings['decode']}"


def move_aside(db: Path, why: str) -> Path:
    """Rename a catalog (and its journal) out of the way; it is never deleted."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    aside = db.with_name(f"{db.name}.{why}-{stamp}")
    n = 2
    while aside.exists():
        aside = db.with_name(f"{db.name}.{why}-{stamp}-{n}")
        n += 1
    os.rename(db, aside)
    journal = db.with_name(db.name + "-journal")
    if journal.exists():
        os.rename(journal, aside.with_name(aside.name + "-journal"))
    return aside


def open_for_reading(cfg: Config) -> Catalog:
    """Open the catalog read-only (an absent catalog reads as empty)."""
    check_root(cfg)
    return Catalog(cfg.database_path, readonly=True)


def database_display(cfg: Config) -> str:
    """Absolute path of the catalog, for status output."""
    return os.path.abspath(cfg.database_path)
