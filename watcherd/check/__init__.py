"""``watcherd check``, the library's fsck: the facts gathered from the catalog, the tree and the
stores beside it; the verdicts (pure: facts in, problems out); and ``--repair``, which carries
out what the verdicts call repairable through the same decisions and transactions as the rest.
"""

__all__ = ["facts", "problems", "repair", "stores", "verdicts"]
