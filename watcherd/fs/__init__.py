"""The library on disk: safe file primitives (temporary, fsync, publish without replacing),
the library's folders and leftovers, the writer lease, walking the tree, folders found by
identity, and the stillness a file must reach before it is read (``settle``).
"""

__all__ = ["folders", "fsops", "layout", "lease", "publish", "settle", "sidecars", "walk"]
