"""Command line: argparse subcommands, ``main(argv) -> int``, logging set up only here.

Every error a user can cause becomes one line on stderr and a non-zero exit:
2 usage or config (a library folder that cannot be written included), 3 catalog,
4 library locked, 5 the daemon did not take a change in time, 6 a scan lost its
cluster, 7 an undo that names a decision which is not the last one (nothing changed),
130 Ctrl-C, 70 an internal error (a bug). The grammar (every subcommand, its
arguments and help) is in ``cliargs``.
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
from typing import Any

from watcherd.catalog.finding import TagQuery
from watcherd.cliargs import build_parser
from watcherd.commands.library import Library
from watcherd.core import config
from watcherd.core.config import Config
from watcherd.core.errors import UsageError, WatcherdError
from watcherd.fs.layout import check_library, check_root, check_writable, find_root
from watcherd.process import keep_interrupts, setup_logging

log = logging.getLogger("watcherd")


def _load_config(args: argparse.Namespace, root: str | None, *, library: bool = False) -> Config:
    """The config, rooted at ROOT, else the config's root, else the nearest library at or
    above the current directory, else the current directory. With ``library`` the root
    must already be a library (every command but ``run``, ``scan`` and ``rebuild``,
    which make one, so without it the root must be writable)."""
    cfg = config.load(args.config)
    named = True
    if root is not None:
        cfg = cfg.with_root(Path(root))
    elif cfg.root is None:
        cwd = Path.cwd()
        found = find_root(cwd)
        named = found is not None
        cfg = cfg.with_root(found or cwd)
    if library:
        check_library(cfg, named=named)
    else:
        check_root(cfg)
        check_writable(cfg)
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
        text = json.dumps(data, indent=2, ensure_ascii=False)
    _write(text + ("\n" if text and not text.endswith("\n") else ""))


def _cmd_run(args: argparse.Namespace) -> int:
    cfg = _load_config(args, args.root)
    setup_logging(args.verbose, cfg)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from watcherd.run.daemon import Daemon  # the daemon's imports are only paid by run and scan

    return Daemon(cfg, stop).run()


def _cmd_scan(args: argparse.Namespace) -> int:
    cfg = _load_config(args, args.root)
    setup_logging(args.verbose, cfg)
    from watcherd.core.documents import ScanSummary
    from watcherd.run.scan import scan_once  # the writer's imports are only paid by run and scan

    rebuild = args.command == "rebuild"
    verb = "rebuilt" if rebuild else "scanned"
    with _progress(args, "rebuilding" if rebuild else "scanning") as progress:
        report = scan_once(cfg, progress=progress, rebuild=rebuild, cluster=getattr(args, "cluster", None))
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
    cfg = _load_config(args, root, library=True)
    setup_logging(args.verbose, cfg)
    return Library(cfg)


def _cmd_status(args: argparse.Namespace) -> int:
    data = _library(args, args.root).status()
    d, daemon = data["daemon"], "not running"
    if d:
        daemon = f"{'running' if d['running'] else 'stale'}: pid {d['pid']} on {d['host']} since {d['since']}"
        daemon += f" (heartbeat {d['heartbeat_age']}s ago)"
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
    query = TagQuery(tuple(args.tag), tuple(args.any), tuple(args.none), args.untagged, args.filename)
    if query.empty:
        raise UsageError("find needs at least one of --tag, --any, --not, --untagged, --filename")
    with _library(args, args.root).finding(query, limit=args.limit, offset=args.offset) as hits:
        if args.json:
            _stream_json(hits)
        else:
            for hit in hits:
                _write(hit["path"] + "\n")
    return 0


def _write(text: str) -> None:
    """Names may hold bytes that are not UTF-8 (as surrogates): printed as escapes, not a failure."""
    sys.stdout.write(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _stream_json(items: Iterator[Any]) -> None:
    """A JSON list printed item by item as they come, the very text ``_emit`` prints for the whole list."""
    first = True
    for item in items:
        body = json.dumps(item, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        _write(("[\n  " if first else ",\n  ") + body)
        first = False
    _write("[]\n" if first else "\n]\n")


def _root_and_rest(values: list[str], least: int) -> tuple[str | None, list[str]]:
    """A leading ROOT when there are more values than ``least`` and the first is a folder."""
    if len(values) > least and Path(values[0]).is_dir():
        return values[0], values[1:]
    return None, values


def _cmd_untag(args: argparse.Namespace) -> int:
    values = args.args
    if args.everywhere is not None:
        if len(values) > 1:
            raise UsageError("untag --everywhere TAG takes only [ROOT]")
        change = _library(args, values[0] if values else None).untag_everywhere(args.everywhere)
        _emit(args, change, f"removed tag {change['old']!r} from {change['images']} images")
        return 0
    if len(values) not in (2, 3):
        raise UsageError("untag takes [ROOT] NAME TAG, or [ROOT] --everywhere TAG")
    root = values[0] if len(values) == 3 else None
    result = _library(args, root).untag(values[-2], values[-1])
    _emit(args, result, f"{result['name']}  tags: {', '.join(result['tags'])}")
    return 0


def _cmd_retag(args: argparse.Namespace) -> int:
    values = args.args
    if len(values) not in (2, 3):
        raise UsageError("retag takes [ROOT] OLD NEW")
    root = values[0] if len(values) == 3 else None
    change = _library(args, root).retag(values[-2], values[-1])
    _emit(args, change, f"renamed tag {change['old']!r} to {change['new']!r} on {change['images']} images")
    return 0


def _cmd_errors(args: argparse.Namespace) -> int:
    library = _library(args, args.root)
    if args.retry:
        done = library.retry_errors()
        n = len(done["retried"])
        _emit(args, done, f"forgot {n} error record{'' if n == 1 else 's'}: those files are read again")
        return 0
    items = library.errors()
    lines = [f"{e['attempts']:3d}x  {e['path']}: {e['reason']} (since {e['first_seen']})" for e in items]
    _emit(args, items, "\n".join(lines))
    return 0


def _cmd_missing(args: argparse.Namespace) -> int:
    items = _library(args, args.root).missing()
    lines = [f"{m['name']}  last at {m['path']} ({m['last_seen']})  tags: {', '.join(m['tags'])}" for m in items]
    _emit(args, items, "\n".join(lines))
    return 0


EXPORT_COLUMNS = ("name", "state", "path", "places", "original", "source", "tags", "sources")


def _cmd_export(args: argparse.Namespace) -> int:
    fmt = args.format or ("json" if args.json else "csv")
    if args.json and fmt != "json":
        raise UsageError("export --json writes JSON; leave out --format csv, or --json")
    items = _library(args, args.root).export()
    out = _Out()
    if fmt == "json":
        out.write("[")
        for i, item in enumerate(items):
            out.write(("\n" if i == 0 else ",\n") + json.dumps(item, ensure_ascii=False))
        out.write("\n]\n")
        return 0
    import csv  # only here: no other command writes CSV

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for item in items:
        cells = [item[c] for c in EXPORT_COLUMNS]  # type: ignore[literal-required]
        writer.writerow(
            [v if isinstance(v, str) else "" if v is None else json.dumps(v, ensure_ascii=False) for v in cells]
        )
    return 0


class _Out:
    """stdout for streamed output, with names holding bytes that are not UTF-8 written as escapes (as ``_emit``)."""

    def write(self, text: str) -> int:
        sys.stdout.write(text.encode("utf-8", "backslashreplace").decode("utf-8"))
        return len(text)


def _cmd_forget(args: argparse.Namespace) -> int:
    root, names = _root_and_rest(args.args, 1)
    if not names:
        raise UsageError("forget takes [ROOT] NAME...")
    result = _library(args, root).forget(names)
    _emit(args, result, f"forgot {len(result['forgotten'])}: {', '.join(result['forgotten'])}")
    return 0


def _cmd_arrange(args: argparse.Namespace) -> int:
    from watcherd.commands import arrange

    values = args.args
    if len(values) not in (1, 2):
        raise UsageError("arrange takes [ROOT] by-size|by-similarity")
    if values[-1] not in arrange.MODES:
        raise UsageError(f"arrange by {values[-1]!r}? choose {' or '.join(arrange.MODES)}")
    library = _library(args, values[0] if len(values) == 2 else None)
    under = arrange.resolve_under(library.cfg, args.under, Path.cwd())
    done = library.arrange(values[-1], under, dry_run=args.dry_run)
    lines = [
        f"{m['source']} -> {m['target']}" + (f"  (skipped: {m['skipped']})" if m["skipped"] else "")
        for m in done["moves"]
    ]
    if done["dry_run"]:
        lines.append(f"would move {len(done['moves'])} thumbnails (dry run: nothing changed)")
    else:
        lines.append(f"moved {done['moved']} thumbnails")
    _emit(args, done, "\n".join(lines))
    return 0


def _cmd_dupes(args: argparse.Namespace) -> int:
    items = _library(args, args.root).dupes(args.near, decided=args.all, limit=args.limit, offset=args.offset)
    lines = []
    for d in items:
        extra = f" (max distance {d['max_distance']})" if d["kind"] in ("near", "burst") else ""
        decided = f"  [{d['decision']}" + (f" {d['decided']}]" if d["decided"] else "]") if d["decision"] else ""
        lines.append(f"{d['kind']:10s} {d['id']}{extra}{decided}")
        lines.extend(f"           {p}" for p in d["paths"])
    _emit(args, items, "\n".join(lines))
    return 0


def _cmd_resolve(args: argparse.Namespace) -> int:
    values = args.args
    if args.undo is not None:
        root, named = _root_and_rest(values, 0)
        named += [args.undo] if args.undo else []
        if root is None and len(named) == 1 and Path(named[0]).is_dir():
            root = named.pop()  # 'resolve --undo ROOT'
        if len(named) > 1:
            raise UsageError("resolve --undo takes [ROOT] and at most one ID")
        from watcherd.decide.decided import said

        done = _library(args, root).undo(named[0] if named else None)
        _emit(args, done, f"undid {said(done['undid'])}: undecided again")
        return 0
    if len(values) > 3:
        raise UsageError(
            "resolve takes [ROOT] ID DECISION (distinct, keep-existing, keep-newcomer), or [ROOT] --undo [ID]"
        )
    from watcherd.core.collisionrecords import Verdict  # only resolve needs the words

    words = [v.value for v in Verdict]
    if len(values) < 2 or values[-1] not in words:
        # Checked before ROOT is looked for: 'resolve ROOT ID' must not take ROOT for the ID.
        missing = len(values) < 2 or (len(values) == 2 and Path(values[0]).is_dir())
        given = "" if missing else f"; {values[-1]!r} is none of them"
        raise UsageError(f"resolve needs ID and a decision: {', '.join(words[:-1])} or {words[-1]}{given}")
    root = values[0] if len(values) == 3 else None
    made = _library(args, root).resolve(values[-2], values[-1])
    _emit(args, made, f"{made['id']}: {made['decision']} ({made['image']})")
    return 0


def _cmd_similar(args: argparse.Namespace) -> int:
    values = args.args
    if len(values) > 2:
        raise UsageError("similar takes [ROOT] IMAGE|HASH|NAME")
    root, target = (values[0], values[1]) if len(values) == 2 else (None, values[0])
    hits = _library(args, root).similar(target, args.distance)
    crop = {"crop": "  (crop)"}
    _emit(args, hits, "\n".join(f"{h['distance']:3d}  {h['path']}{crop.get(h['match'], '')}" for h in hits))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    doc = _library(args, args.root).check(read_data=args.read_data, repair=args.repair)
    lines = [f"repaired {r['code']} {r['path'] or '-'}: {r['done']}" for r in doc["repaired"]]
    lines += [f"{p['code']} {p['path'] or '-'}: {p['detail']}" for p in doc["problems"]]
    if doc["sound"]:
        c = doc["checked"]
        read = f", {c['read']} originals read" if c["read"] else ""
        lines.append(
            f"library {doc['root']} is sound: {c['images']} images ({c['missing']} missing), {c['places']} places, "
            f"{c['originals']} originals, {c['collisions']} collisions, {c['collision_files']} collision files{read}"
            " checked"
        )
    lines += [f"note: {p['code']} {p['path'] or '-'}: {p['detail']}" for p in doc["notes"]]
    _emit(args, doc, "\n".join(lines))
    return 0 if doc["sound"] else 1


def _cmd_serve(args: argparse.Namespace) -> int:
    from watcherd.web.serve import serve

    cfg = _load_config(args, args.root, library=True)
    setup_logging(args.verbose, cfg)
    return serve(cfg, args.host, args.port, args.token)


COMMANDS = {
    "run": _cmd_run,
    "scan": _cmd_scan,
    "rebuild": _cmd_scan,
    "status": _cmd_status,
    "tags": _cmd_tags,
    "find": _cmd_find,
    "untag": _cmd_untag,
    "retag": _cmd_retag,
    "errors": _cmd_errors,
    "missing": _cmd_missing,
    "export": _cmd_export,
    "forget": _cmd_forget,
    "arrange": _cmd_arrange,
    "dupes": _cmd_dupes,
    "resolve": _cmd_resolve,
    "similar": _cmd_similar,
    "check": _cmd_check,
    "serve": _cmd_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    keep_interrupts()
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
