"""Error types; the CLI maps each to one line on stderr and a fixed exit code."""

from __future__ import annotations

from typing import Any


class WatcherdError(Exception):
    """Base of every error watcherd raises on purpose.

    ``details``: facts beside the message for a program (the JSON API puts them in its
    error document; the request-file answer carries them as ``result``).
    """

    exit_code = 1
    details: dict[str, Any] | None = None


class ConfigError(WatcherdError):
    """The configuration file or a command-line setting is not acceptable."""

    exit_code = 2


class UsageError(WatcherdError):
    """The command line itself is wrong."""

    exit_code = 2


# How the reason of a file that looks cut short begins (it travels as text from the decoders).
TRUNCATED = "truncated image"


class ImageError(WatcherdError):
    """A file cannot become a thumbnail; ``reason`` is a short phrase for logs and status.

    ``transient`` marks failures worth retrying later (I/O, permissions, a file still
    being written) as opposed to ones that will not change until the file does.
    """

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient

    @property
    def truncated(self) -> bool:
        """Does the file look cut short? Transient while it may still be written, final once it is quiet."""
        return self.reason.startswith(TRUNCATED)


class CatalogError(WatcherdError):
    """The catalog cannot be opened, read or written."""

    exit_code = 3


class LockedError(WatcherdError):
    """Another watcherd process holds the library's writer lease."""

    exit_code = 4


class NoAnswerError(WatcherdError):
    """The daemon holding the lease did not take or finish a change in time."""

    exit_code = 5


class ClusterError(WatcherdError):
    """The cluster cannot be used: the extra is missing, the scheduler unreachable, no workers."""

    exit_code = 2


class IndexFileError(WatcherdError):
    """A persisted near-duplicate index file is not one, or is cut short: readers answer without
    it and the writer builds it again."""

    exit_code = 3


class ChannelClosed(WatcherdError):
    """A decoder process's channel ended: the process exited, or sent something that is no frame."""


class Refused(WatcherdError):
    """The writer refused a change handed to it; carries the exit code it gave (and its error's ``details``)."""

    def __init__(self, message: str, exit_code: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.details = details


class StopError(WatcherdError):
    """The work cannot go on (the cluster's scheduler was lost); everything done so far is kept."""

    exit_code = 6


class ConflictError(WatcherdError):
    """A change names a state the library is no longer in (an undo of a decision that is
    not the last one, or no longer in effect); nothing was changed."""

    exit_code = 7

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details
