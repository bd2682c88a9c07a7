"""What every watcherd command sets up for its own process: where its log goes (stderr, on
watcherd's and watchdog's loggers only) and that a Ctrl-C always stops it."""

from __future__ import annotations

import _thread
import logging
import sys
import threading
from typing import Any

from watcherd.core.config import Config

__all__ = ["keep_interrupts", "setup_logging"]


def setup_logging(verbose: bool, cfg: Config | None = None) -> None:
    """Log to stderr: watcherd at the configured level, watchdog's warnings too.

    Handlers go on our loggers, not the root, so an embedding program (or pytest's
    log capture) keeps its own; a second call replaces ours instead of adding more.
    """
    level = logging.DEBUG if verbose else getattr(logging, cfg.log_level if cfg else "INFO")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.set_name("watcherd-cli")
    for name, lvl in (("watcherd", level), ("watchdog", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [h for h in logger.handlers if h.get_name() != "watcherd-cli"]
        logger.addHandler(handler)
        logger.setLevel(lvl)


def keep_interrupts() -> None:
    """Make sure a Ctrl-C stops the command even where Python cannot raise it.

    A KeyboardInterrupt that lands in a callback (the import system's lock cleanup, a
    ``__del__``) is printed as "Exception ignored in ..." with a traceback, then dropped, and
    the command goes on as if never stopped: a scan interrupted so ended 0. Such an interrupt
    is delivered again, silently, to the main thread a moment later (again if it is dropped
    again), where it stops the command as any Ctrl-C does (exit 130). Other unraisable
    errors are reported as Python reports them. Installed once per process."""
    if getattr(sys.unraisablehook, "keeps_interrupts", False):
        return
    report = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            # Not from here: a signal raised in this hook would be dropped again. A moment
            # later, from another thread, it reaches the main thread's own code.
            again = threading.Timer(0.01, _thread.interrupt_main)
            again.daemon = True
            again.start()
        else:
            report(unraisable)

    hook.keeps_interrupts = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook
