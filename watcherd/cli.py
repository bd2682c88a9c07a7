"""Command line: argparse subcommands, ``main(argv) -> int``, logging set up only here.

Every error a user can cause becomes one line on stderr and a non-zero exit:
2 usage or config (a library folder that cannot be written included), 3 catalog,
4 library locked, 130 Ctrl-C, 70 an internal error (a bug).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from watcherd import __version__, config, queries
from watcherd.config import Config
from watcherd.documents import ScanSummary
from watcherd.errors import UsageError, WatcherdError
from watcherd.layout import check_root, check_writable
from watcherd.library import Library

log = logging.getLogger("watcherd")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not usage plus message."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _common(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    p.add_argument("-c", "--config", type=Path, help="YAML config file (default: built-in defaults)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug detail and tracebacks")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def build_parser() -> argparse.ArgumentParser:
    """The full command-line grammar (also used by the tests to check help texts)."""
    parser = _Parser(prog="watcherd", description="Watch a folder of images; thumbnail, name and tag them.")
    parser.add_argument("--version", action="version", version=f"watcherd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, help_text: str, *, json_flag: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p, json_flag=json_flag)
        return p

    p = add("run", "Reconcile, then watch the library until SIGINT/SIGTERM.", json_flag=False)
    p.add_argument("root", nargs="?", metavar="ROOT", help="library root (default: config, else .)")

    p = add("scan", "Reconcile and ingest once, then exit.")
    p.add_argument("root", nargs="?", metavar="ROOT", help="library root (default: config, else .)")

    p = add("rebuild", "Move the catalog aside and rebuild it from the tree and its last export.")
    p.add_argument("root", nargs="?", metavar="ROOT", help="library root (default: config, else .)")

    p = add("status", "Counts, catalog path and the daemon's state.")
    p.add_argument("root", nargs="?", metavar="ROOT", help="library root (default: config, else .)")

    p = add("tags", "Every tag with its image count, or one image's tags.")
    p.add_argument("args", nargs="*", metavar="[ROOT] [NAME]", help="library root and/or a name or hash")

    p = add("find", "Images carrying all the given tags.")
    p.add_argument("root", nargs="?", metavar="ROOT", help="library root (default: config, else .)")
    p.add_argument("--tag", "-t", action="append", required=True, metavar="TAG", help="tag to require")

    p = add("untag", "Remove a tag from one image.")
    p.add_argument("args", nargs="+", metavar="[ROOT] NAME TAG", help="library root, image name or hash, tag")

    p = add("dupes", "Recorded collisions (same name, different or identical bytes), and near groups.")
    p.add_argument("root", nargs="?", metavar="ROOT", help="library root (default: config, else .)")
    p.add_argument("--near", type=int, metavar="N", help="also list groups of images within N bits of each other")

    p = add("similar", "Images within a Hamming distance of an image file, a hash or a catalogued name.")
    p.add_argument("args", nargs="+", metavar="[ROOT] IMAGE|HASH|NAME", help="library root and what to look for")
    p.add_argument(
        "--distance",
        "-d",
        type=int,
        default=queries.DEFAULT_DISTANCE,
        metavar="N",
        help=f"largest Hamming distance (default {queries.DEFAULT_DISTANCE})",
    )
    return parser


def _load_config(args: argparse.Namespace, root: str | None) -> Config:
    cfg = config.load(args.config)
    if root is not None:
        cfg = cfg.with_root(Path(root))
    elif cfg.root is None:
        cfg = cfg.with_root(Path.cwd())
    check_root(cfg)
    return cfg


def _split_tags_args(values: list[str]) -> tuple[str | None, str | None]:
    if len(values) > 2:
        raise UsageError("tags takes at most ROOT and NAME")
    if len(values) == 2:
        return values[0], values[1]
    if len(values) == 1:
        return (values[0], None) if Path(values[0]).is_dir() else (None, values[0])
    return None, None


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        out = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        out = text + ("\n" if text and not text.endswith("\n") else "")
    # Names may hold bytes that are not UTF-8 (kept as surrogates): print them as
    # escapes (valid JSON, readable text) rather than fail.
    sys.stdout.write(out.encode("utf-8", "backslashreplace").decode("utf-8"))


def _setup_logging(args: argparse.Namespace, cfg: Config | None = None) -> None:
    """Log to stderr: watcherd at the configured level, watchdog's warnings too.

    Handlers go on our loggers, not the root, so an embedding program (or pytest's
    log capture) keeps its own; a second call replaces ours instead of adding more.
    """
    level = logging.DEBUG if args.verbose else getattr(logging, cfg.log_level if cfg else "INFO")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.set_name("watcherd-cli")
    for name, lvl in (("watcherd", level), ("watchdog", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [h for h in logger.handlers if h.get_name() != "watcherd-cli"]
        logger.addHandler(handler)
        logger.setLevel(lvl)


def _cmd_run(args: argparse.Namespace) -> int:
    cfg = _load_config(args, args.root)
    check_writable(cfg)
    _setup_logging(args, cfg)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from watcherd.daemon import Daemon  # the daemon's imports are only paid by run and scan

    return Daemon(cfg, stop).run()


def _cmd_scan(args: argparse.Namespace) -> int:
    cfg = _load_config(args, args.root)
    check_writable(cfg)
    _setup_logging(args, cfg)
    from watcherd.scan import scan_once  # the writer's imports are only paid by run and scan

    rebuild = args.command == "rebuild"
    verb = "rebuilt" if rebuild else "scanned"
    with _progress(args, "rebuilding" if rebuild else "scanning") as progress:
        report = scan_once(cfg, progress=progress, rebuild=rebuild)
    data: ScanSummary = {"counts": report.counts, "seconds": round(report.seconds, 3)}
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(report.counts.items())) or "nothing to do"
    _emit(args, data, f"{verb} {cfg.root} in {report.seconds:.2f}s ({summary})")
    return 0


@contextlib.contextmanager
def _progress(args: argparse.Namespace, what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on a terminal (counts, rate, ETA); nothing when stderr is not one."""
    if not sys.stderr.isatty() or args.verbose:
        yield None
        return
    from tqdm import tqdm

    log.setLevel(logging.WARNING)  # the bar replaces the per-file lines
    with tqdm(desc=what, unit="file", file=sys.stderr, dynamic_ncols=True) as bar:

        def update(done: int, total: int) -> None:
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        yield update


def _library(args: argparse.Namespace, root: str | None) -> Library:
    cfg = _load_config(args, root)
    _setup_logging(args, cfg)
    return Library(cfg)


def _cmd_status(args: argparse.Namespace) -> int:
    data = _library(args, args.root).status()
    d = data["daemon"]
    daemon = (
        "not running"
        if not d
        else f"{'running' if d['running'] else 'stale'}: pid {d['pid']} on {d['host']} since {d['since']}"
        f" (heartbeat {d['heartbeat_age']}s ago)"
    )
    scan = data["last_scan"]
    lines = [
        f"root:       {data['root']}",
        f"images:     {data['images']}",
        f"missing:    {data['missing']}",
        f"tags:       {data['tags']}",
        f"collisions: {data['collisions']}",
        f"errors:     {data['errors']}",
        f"database:   {data['database']}",
        f"daemon:     {daemon}",
        f"last scan:  {scan['finished'] + ' (' + scan['reason'] + ')' if scan else 'never'}",
    ]
    _emit(args, data, "\n".join(lines))
    return 0


def _cmd_tags(args: argparse.Namespace) -> int:
    root, name = _split_tags_args(args.args)
    library = _library(args, root)
    if name is None:
        counts = library.tags()
        _emit(args, counts, "\n".join(f"{n:6d}  {t}" for t, n in counts.items()))
    else:
        one = library.image(name)
        _emit(args, one, f"{one['name']}  {one['path']}\n  tags: {', '.join(one['tags'])}")
    return 0


def _cmd_find(args: argparse.Namespace) -> int:
    hits = _library(args, args.root).find(args.tag)
    _emit(args, hits, "\n".join(h["path"] for h in hits))
    return 0


def _cmd_untag(args: argparse.Namespace) -> int:
    values = args.args
    if len(values) not in (2, 3):
        raise UsageError("untag takes [ROOT] NAME TAG")
    root = values[0] if len(values) == 3 else None
    result = _library(args, root).untag(values[-2], values[-1])
    _emit(args, result, f"{result['name']}  tags: {', '.join(result['tags'])}")
    return 0


def _cmd_dupes(args: argparse.Namespace) -> int:
    items = _library(args, args.root).dupes(args.near)
    lines = []
    for d in items:
        extra = f" (max distance {d['max_distance']})" if d["kind"] == "near" else ""
        lines.append(f"{d['kind']:10s} {d['name']}{extra}")
        lines.extend(f"           {p}" for p in d["paths"])
    _emit(args, items, "\n".join(lines))
    return 0


def _cmd_similar(args: argparse.Namespace) -> int:
    values = args.args
    if len(values) > 2:
        raise UsageError("similar takes [ROOT] IMAGE|HASH|NAME")
    root, target = (values[0], values[1]) if len(values) == 2 else (None, values[0])
    hits = _library(args, root).similar(target, args.distance)
    _emit(args, hits, "\n".join(f"{h['distance']:3d}  {h['path']}" for h in hits))
    return 0


COMMANDS = {
    "run": _cmd_run,
    "scan": _cmd_scan,
    "rebuild": _cmd_scan,
    "status": _cmd_status,
    "tags": _cmd_tags,
    "find": _cmd_find,
    "untag": _cmd_untag,
    "dupes": _cmd_dupes,
    "similar": _cmd_similar,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    verbose = False
    try:
        args = build_parser().parse_args(argv)
        verbose = args.verbose
        return COMMANDS[args.command](args)
    except WatcherdError as exc:
        print(f"watcherd: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if verbose:
            raise
        print(f"watcherd: internal error: {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr)
        return 70
