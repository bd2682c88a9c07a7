"""The persisted near-duplicate index: the multi-index search, its memory-mapped file, the
reader ``similar`` uses without numpy, and the builder the writer runs in the background;
the near pairs found in bulk (``join``, a multi-index self-join) and the near groups read
from the pairs the writer keeps (``groups``).
"""

__all__ = ["builder", "croplinks", "groups", "index", "join", "persisted", "reader"]
