"""The catalog: one SQLite file of JSON records, readable with sqlitedict.

- ``schema``: the key/value tables and the derived tables with their triggers;
- ``batch``: a set of image records written at once, the derived tables following in one statement each;
- ``cropschema``: the window hashes' derived tables (``crop_hashes``, its log) and the kept crop links;
- ``reads``: ``CatalogReader``, typed reads and the commands' SQL (never writes);
- ``store``: ``Catalog``, the one writer, with transactions that roll back;
- ``opening``: vetting, moving a damaged catalog aside, pinning the naming settings;
- ``finding``: ``find``'s plan (one index walked, the other criteria probed);
- ``pairs``: the near pairs and crop links the writer keeps, and the images waiting for theirs;
- ``hashes``: the derived hash tables as the near index reads them (logs, snapshots, window rows).

This package is the only part of watcherd that speaks SQL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watcherd.catalog.opening import Opened, move_aside, open_for_reading, open_for_writing
    from watcherd.catalog.reads import CatalogReader
    from watcherd.catalog.store import Catalog

__all__ = ["Catalog", "CatalogReader", "Opened", "move_aside", "open_for_reading", "open_for_writing"]

# Each name is imported from its module on first use: a read command that needs only
# ``reads`` does not load the writer (``store`` and the file operations it needs).
_HOME = {
    "Catalog": "store",
    "CatalogReader": "reads",
    "Opened": "opening",
    "move_aside": "opening",
    "open_for_reading": "opening",
    "open_for_writing": "opening",
}


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"watcherd.catalog.{_HOME[name]}"), name)
