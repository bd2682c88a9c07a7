"""The catalog: one SQLite file of JSON records, readable with sqlitedict.

- ``schema``: the key/value tables and the derived tables with their triggers;
- ``reads``: ``CatalogReader``, typed reads and the commands' SQL (never writes);
- ``store``: ``Catalog``, the one writer, with transactions that roll back;
- ``opening``: vetting, moving a damaged catalog aside, pinning the naming settings.

This package is the only part of watcherd that speaks SQL.
"""

from watcherd.catalog.opening import Opened, move_aside, open_for_reading, open_for_writing
from watcherd.catalog.reads import CatalogReader
from watcherd.catalog.store import Catalog

__all__ = ["Catalog", "CatalogReader", "Opened", "move_aside", "open_for_reading", "open_for_writing"]
