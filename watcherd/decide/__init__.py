"""Decisions about duplicates: a newcomer whose name is taken (collisions), ``distinct``,
``keep-existing``, ``keep-newcomer`` for collisions and near groups, the file-manager
gestures that make them, the order of decisions and undo's scope, and undo itself.
"""

__all__ = ["collisions", "decided", "deciding", "decisions", "gestures", "near", "undo"]
