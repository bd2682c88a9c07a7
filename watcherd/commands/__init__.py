"""What the CLI and the page ask of a library: the ``Library`` facade, read-side queries,
arrange, the edits (each one transaction), and the one writer with its request-file mailbox.
"""

__all__ = ["arrange", "duplicates", "edits", "library", "mailbox", "queries", "search", "writer"]
