"""Opening a library's catalog: vet it, move a damaged one aside, pin the naming settings."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from watcherd.catalog.reads import CatalogReader
from watcherd.core.config import Config
from watcherd.core.errors import ConfigError
from watcherd.core.records import Json
from watcherd.fs.layout import check_root, prepare

if TYPE_CHECKING:
    from watcherd.catalog.store import Catalog

log = logging.getLogger("watcherd")

# Set in ``meta`` while a fresh catalog is being made from the tree and the export, and
# dropped once it is whole (``flow.restore.restore_rest``): a writer stopped before that (Ctrl-C
# in a rebuild) leaves it, and the next writer goes on rebuilding from the same export, which
# is not written meanwhile (``flow.restore.export_now``).
REBUILDING = "rebuilding"


@dataclass
class Opened:
    """The writer's catalog, and whether it is being made (just created, or its making was
    stopped before it was whole): then the tree and the export rebuild it."""

    catalog: Catalog
    fresh: bool


def open_for_writing(cfg: Config, *, reconciles: bool = False) -> Opened:
    """Open the catalog for the one writer, refusing a library named with other hash settings.

    Mixing hash functions in one library would make equal pictures get different
    names, so the settings that named the first image are pinned in ``meta``. A writer that
    ``reconciles`` the catalog with the tree at once (the daemon, ``scan``) marks a fresh one
    as being made (``REBUILDING``) until that first reconcile is whole.
    """
    from watcherd.catalog.store import Catalog  # here: read commands never load the writer
    from watcherd.catalog.vetting import closed_cleanly, damage

    prepare(cfg)
    db = cfg.database_path
    # A catalog exactly as this writer last closed it is not read through again.
    if db.exists() and not closed_cleanly(db):
        why = damage(db)
        if why is not None:
            aside = move_aside(db, "corrupt")
            log.error("catalog %s is damaged (%s); moved it to %s and rebuilding from the tree", db, why, aside)
    catalog = Catalog(db, vetted=True)
    wanted: Json = {"algorithm": cfg.hash.algorithm, "hash_size": cfg.hash.size, "decode": cfg.decode}
    pinned = catalog.meta("library")
    if pinned is None:
        with catalog.transaction():
            catalog.set_meta("library", {**wanted, "created_by": "watcherd", "thumbs": cfg.thumbs})
            if reconciles:
                catalog.set_meta(REBUILDING, {"since": time.time()})
        return Opened(catalog, fresh=True)
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
        with catalog.transaction():
            catalog.set_meta("library", {**pinned, "decode": "reference"})
    if catalog.meta(REBUILDING) is not None:
        log.warning("the catalog was being made from the tree and the export when its writer stopped; going on")
        return Opened(catalog, fresh=True)
    return Opened(catalog, fresh=False)


def describe_naming(settings: Json) -> str:
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


def open_for_reading(cfg: Config) -> CatalogReader:
    """Open the catalog read-only (an absent catalog reads as empty and is not created)."""
    check_root(cfg)
    return CatalogReader(cfg.database_path)
