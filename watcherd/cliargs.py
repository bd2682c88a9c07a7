"""The command line's grammar: every subcommand, its arguments and their help.

``cli`` runs what this parses; a test checks that the manual (docs/commands.md) lists every subcommand
this knows.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from watcherd import __version__
from watcherd.core.errors import UsageError
from watcherd.core.nearpairs import DEFAULT_DISTANCE


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not usage plus message."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


ROOT_HELP = "library root (default: the config's root, else the nearest folder at or above . holding .watcherd/)"


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
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)

    p = add("scan", "Reconcile and ingest once, then exit.")
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    p.add_argument("--cluster", metavar="ADDRESS", help="decode on a dask cluster: tcp://host:8786, or local")

    p = add("rebuild", "Move the catalog aside and rebuild it from the tree and its last export.")
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)

    p = add("status", "Counts, catalog path and the daemon's state.")
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)

    p = add("tags", "Every tag with its image count, or one image's tags.")
    p.add_argument("args", nargs="*", metavar="[ROOT] [NAME]", help="library root and/or a name or hash")

    p = add("find", "Present images by tags and original file name (criteria combine; at least one).")
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    p.add_argument("--tag", "-t", action="append", default=[], metavar="TAG", help="carrying this tag (all of them)")
    p.add_argument("--any", action="append", default=[], metavar="TAG", help="carrying at least one of these tags")
    p.add_argument("--not", action="append", default=[], metavar="TAG", dest="none", help="carrying none of these")
    p.add_argument("--untagged", action="store_true", help="no folder tag: only the WxH size tag")
    p.add_argument("--filename", metavar="GLOB", help="original file name matches GLOB (case-insensitive)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N images (the first N by path, after --offset)")
    p.add_argument("--offset", type=int, default=0, metavar="N", help="skip the first N images (by path)")

    p = add("untag", "Remove a tag from one image, or with --everywhere from every image.")
    p.add_argument("args", nargs="*", metavar="[ROOT] NAME TAG", help="library root, image name or hash, tag")
    p.add_argument("--everywhere", metavar="TAG", help="remove TAG from every image that has it")

    p = add("retag", "Rename a tag on every image (merged where an image has both).")
    p.add_argument("args", nargs="+", metavar="[ROOT] OLD NEW", help="library root, the tag and its new name")

    p = add("errors", "Files that could not be ingested, with why, when and how often.")
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    p.add_argument(
        "--retry",
        action="store_true",
        help="forget every error record, so the next scan (or the running daemon, at once) reads those files again",
    )

    p = add("missing", "Images whose thumbnail is in no folder any more (their record is kept).")
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)

    p = add("export", "Every image's name, places, original, tags and their sources, as CSV or JSON on stdout.")
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    p.add_argument(
        "--format",
        choices=("csv", "json"),
        default=None,
        help="csv (the default: one row per image, list cells as JSON) or json (an array); --json means json",
    )

    p = add("forget", "Drop the records of missing images (refuses present ones).")
    p.add_argument("args", nargs="+", metavar="[ROOT] NAME", help="library root and one or more names or hashes")

    p = add("arrange", "Move thumbnails into by_size/WxH/ or by_ham/N/ folders, in one batch.")
    p.add_argument("args", nargs="+", metavar="[ROOT] by-size|by-similarity", help="library root and how to sort")
    p.add_argument("--under", metavar="FOLDER", help="only thumbnails under this folder of the tree (default: all)")
    p.add_argument("--dry-run", action="store_true", help="print the moves and change nothing")

    p = add("dupes", "Undecided collisions (same name, different or identical bytes), and near groups.")
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    p.add_argument("--near", type=int, metavar="N", help="also list groups of images within N bits of each other")
    p.add_argument("--all", action="store_true", help="also list decided ones, with their decision and when")
    p.add_argument(
        "--limit", type=int, metavar="N", help="at most N items (the first N in the listing's order, after --offset)"
    )
    p.add_argument("--offset", type=int, default=0, metavar="N", help="skip the first N items of the listing")

    p = add("resolve", "Decide a collision (distinct, keep-existing, keep-newcomer), or undo the last decision.")
    p.add_argument(
        "args",
        nargs="*",
        metavar="[ROOT] ID DECISION",
        help="library root, an id from 'dupes', and the decision (with --undo: [ROOT] [ID])",
    )
    p.add_argument(
        "--undo",
        nargs="?",
        const="",
        metavar="ID",
        help="revert the last decision made anywhere (command, page or gesture) and name it; with ID, only "
        "if the last decision is ID's (else exit 7, nothing changed)",
    )

    p = add("similar", "Images within a Hamming distance of an image file, a hash or a catalogued name.")
    p.add_argument("args", nargs="+", metavar="[ROOT] IMAGE|HASH|NAME", help="library root and what to look for")
    p.add_argument(
        "--distance",
        "-d",
        type=int,
        default=DEFAULT_DISTANCE,
        metavar="N",
        help=f"largest Hamming distance (default {DEFAULT_DISTANCE})",
    )

    p = add("check", "Verify the library (catalog, tree, originals, collisions, export, index); exit 1 on problems.")
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    p.add_argument("--repair", action="store_true", help="mend what is safe to mend, through the one writer")
    p.add_argument("--read-data", action="store_true", help="also read every original and check its sha256")

    p = add("serve", "Serve the review page (collisions side by side, search, tags) and its JSON API.", json_flag=False)
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs a token)")
    p.add_argument("--port", type=int, default=8377, help="port (default 8377)")
    p.add_argument("--token", metavar="T", help="required token (default: none on loopback, else one is generated)")
    return parser
