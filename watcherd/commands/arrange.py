"""``arrange``: sort thumbnails into ``by_size/WxH/`` or ``by_ham/N/`` folders, as one batch of moves.

The plan is read from the catalog (``plan``); the writer carries it out (``execute``):
each thumbnail is moved without ever replacing a file and its record follows in the
same transaction, so the observer's events about these moves find the records already
saying where the files are and change nothing. Tags accumulate as with any move.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from watcherd.catalog import Catalog, CatalogReader
from watcherd.core.config import Config
from watcherd.core.documents import Arrangement, PlannedMove
from watcherd.core.errors import UsageError
from watcherd.core.naming import merge_tags, number, parse_canonical
from watcherd.core.nearpairs import DEFAULT_DISTANCE
from watcherd.core.places import Places
from watcherd.fs import fsops

MODES = ("by-size", "by-similarity")
BY_SIZE = "by_size"
BY_HAM = "by_ham"


@dataclass(frozen=True)
class Move:
    """One thumbnail to move; paths relative to ROOT."""

    name: str
    source: str
    target: str


@dataclass(frozen=True)
class Plan:
    """What ``arrange`` will do: ``under`` is relative to the thumbs tree ("" for all of it)."""

    mode: str
    under: str
    moves: list[Move]


def resolve_under(cfg: Config, text: str | None, cwd: Path) -> str:
    """``--under FOLDER`` as a path relative to the thumbs tree: a folder of the tree given
    relative to it (``cats/orange``) or as a path (absolute, or relative to ``cwd``)."""
    if text is None:
        return ""
    thumbs = cfg.thumbs_dir.resolve()
    given = Path(text).expanduser()
    if given.is_absolute():
        folder = given
    elif (cwd / given).is_dir():
        folder = cwd / given
    else:
        folder = thumbs / given
    folder = folder.resolve()
    if not folder.is_dir() or not folder.is_relative_to(thumbs):
        raise UsageError(f"--under {text}: not a folder of the thumbs tree {cfg.thumbs_dir}")
    rel = folder.relative_to(thumbs).as_posix()
    rel = "" if rel == "." else rel
    if rel.split("/")[0] == cfg.collisions:
        raise UsageError(f"--under {text}: the collisions folder is not arranged")
    return rel


def plan(cfg: Config, catalog: CatalogReader, mode: str, under: str) -> Plan:
    """The moves that sort the present thumbnails under ``under`` by ``mode``."""
    if mode not in MODES:
        raise UsageError(f"arrange by {mode!r}? choose {' or '.join(MODES)}")
    places = Places(cfg)
    top = places.rel(cfg.thumbs_dir)
    prefix = f"{top}/{under}/" if under else f"{top}/"
    first: dict[str, str] = {}  # name -> its first place under the folder; further copies stay put
    for rel in sorted(catalog.present_under(prefix)):
        name = rel[rel.rfind("/") + 1 :]
        if name not in first and places.place(places.absolute(rel)) is not None:
            first[name] = rel
    if mode == "by-size":
        targets = {}
        for name in first:
            canon = parse_canonical(name)
            if canon is not None:
                targets[name] = f"{top}/{BY_SIZE}/{canon.size_tag}/"
    else:
        targets = _similarity_targets(cfg, catalog, first, top)
    moves = [
        Move(name, first[name], folder + name)
        for name, folder in sorted(targets.items())
        if not first[name].startswith(folder) or "/" in first[name][len(folder) :]
    ]
    return Plan(mode, under, moves)


def _similarity_targets(cfg: Config, catalog: CatalogReader, first: dict[str, str], top: str) -> dict[str, str]:
    """``by_ham/N/`` for each image in a group of look-alikes; a group keeps a number it already has."""
    from watcherd.near.groups import read_groups
    from watcherd.near.reader import index_path

    within = set(first)
    found = sorted(
        g.names for g in read_groups(cfg.database_path, index_path(cfg.state_dir), DEFAULT_DISTANCE, within=within)
    )
    ham = f"{top}/{BY_HAM}/"

    def numbered_at(rel: str) -> int | None:
        if not rel.startswith(ham):
            return None
        part = rel[len(ham) :].split("/")[0]
        return number(part) if rel.count("/") == ham.count("/") + 1 else None

    taken: set[int] = set()
    with contextlib.suppress(OSError):
        taken = {n for e in os.scandir(cfg.thumbs_dir / BY_HAM) if (n := number(e.name)) is not None and e.is_dir()}
    used: set[int] = set()
    out: dict[str, str] = {}
    for names in found:
        have = sorted({n for n in (numbered_at(first[name]) for name in names) if n is not None} - used)
        n = have[0] if have else max(taken | used, default=0) + 1
        used.add(n)
        for name in names:
            out[name] = f"{ham}{n}/"
    return out


def document(p: Plan, *, dry_run: bool, skipped: dict[str, str] | None = None) -> Arrangement:
    """The ``arrange --json`` document for a plan (and what could not be done)."""
    skipped = skipped or {}
    moves: list[PlannedMove] = [
        {"name": m.name, "source": m.source, "target": m.target, "skipped": skipped.get(m.name)} for m in p.moves
    ]
    moved = 0 if dry_run else sum(1 for m in moves if m["skipped"] is None)
    return {"mode": p.mode, "under": p.under, "dry_run": dry_run, "moved": moved, "moves": moves}


_NOT_MOVED: dict[type[OSError], str] = {
    FileExistsError: "a file of that name is already there",
    FileNotFoundError: "gone meanwhile",
    NotADirectoryError: "a file is where a folder on its way should be",
}


def execute(cfg: Config, catalog: Catalog, p: Plan) -> Arrangement:
    """Carry the plan out: each file moved (never replacing one), its record updated, one transaction.

    If the transaction fails or is interrupted (Ctrl-C), every file moved is moved back,
    the one being moved then too, however far its move got; a crash half-way leaves files
    where the records do not say, which the next scan follows (the tree is the truth), so
    nothing is lost either way.
    """
    places = Places(cfg)
    skipped: dict[str, str] = {}
    done: list[tuple[Path, Path, os.stat_result]] = []
    made: list[Path] = []  # folders made for the moves, outermost first
    try:
        with catalog.transaction():
            for m in p.moves:
                rec = catalog.image(m.name)
                if rec is None or m.source not in rec.paths:
                    skipped[m.name] = "moved meanwhile"
                    continue
                src, dst = places.absolute(m.source), places.absolute(m.target)
                try:
                    made += fsops.make_folders(dst.parent)
                    done.append((src, dst, os.lstat(src)))  # before the move: taken back however far it got
                    fsops.rename_no_replace(src, dst)
                except (FileExistsError, FileNotFoundError, NotADirectoryError) as exc:
                    if done and done[-1][0] == src:
                        done.pop()  # not moved: nothing of it to take back
                    skipped[m.name] = _NOT_MOVED[type(exc)]
                    continue
                if rec.path == m.source:
                    rec.path = m.target
                else:
                    rec.copies = [m.target if c == m.source else c for c in rec.copies]
                folder = PurePosixPath(m.target).parent.relative_to(places.rel(cfg.thumbs_dir))
                rec.tags = merge_tags(rec.tags, folder, rec.size_tag)
                catalog.put_image(rec)
    except BaseException:
        for src, dst, st in reversed(done):
            with contextlib.suppress(OSError):
                fsops.move_back(dst, src, st)
        for made_here in reversed(made):
            with contextlib.suppress(OSError):
                made_here.rmdir()  # only if still empty: a file put there meanwhile keeps it
        raise
    return document(p, dry_run=False, skipped=skipped)
