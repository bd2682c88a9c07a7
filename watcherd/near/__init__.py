"""The persisted near-duplicate index: the multi-index search, its memory-mapped file, the
reader ``similar`` uses without numpy, and the builder the writer runs in the background.
"""

__all__ = ["builder", "index", "persisted", "reader"]
