"""Bytes to a new image: the only place that knows Pillow and ImageHash. Decoding runs in a
sandboxed child process (or on a dask cluster); the writer receives a ``NewImage``. The
facts that decide which copy to keep, and the review page's previews, are read here too.
"""

__all__ = [
    "child",
    "chunkpool",
    "chunks",
    "cluster",
    "decoded",
    "facts",
    "imaging",
    "newimage",
    "previews",
    "remote",
    "sandbox",
    "windows",
]
