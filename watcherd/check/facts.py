"""``watcherd check``'s facts: the catalog (one read transaction), the tree, the export and the near index.

``gather`` only looks: it reads the catalog through a ``CatalogReader`` (the writer's
``Catalog`` when the writer repairs), walks the thumbs tree as a scan does, reads the
PNG chunks of the files no record accounts for, and stats the originals records name.
``check.verdicts`` then says what is wrong. ``inspect`` is the read-only command: with
a live writer, a problem is reported only when a second look sees it too, since the
writer may have been half-way through a change at the first.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import time
from pathlib import Path

from watcherd.catalog import CatalogReader, audit
from watcherd.catalog.opening import REBUILDING
from watcherd.catalog.schema import EXPORTED_META
from watcherd.check.problems import Image
from watcherd.check.stores import ExportFacts, IndexFacts, NearFacts
from watcherd.check.verdicts import Facts, Ident, Verdict, verdicts
from watcherd.core.collisionrecords import CollisionRecord
from watcherd.core.config import Config
from watcherd.core.documents import CheckReport, Repaired
from watcherd.core.errors import CatalogError, IndexFileError, UsageError
from watcherd.core.filters import TEMP_PREFIX, ignore_pattern
from watcherd.core.naming import CANONICAL_RE
from watcherd.core.nearpairs import NearRecord
from watcherd.core.places import Places
from watcherd.core.records import ImageRecord
from watcherd.filing.adopt import MAX_THUMBNAIL_BYTES, examine
from watcherd.filing.journal import STEPS
from watcherd.flow import restore
from watcherd.fs import fsops
from watcherd.fs.layout import request_in_flight, requests_dir
from watcherd.fs.lease import writer_live
from watcherd.near.reader import index_path

CHUNK = 1 << 20  # bytes read at a time with --read-data


def inspect(cfg: Config, *, read_data: bool = False) -> Verdict:
    """Check a library read-only (``watcherd check``); UsageError when it has no catalog yet."""
    db = cfg.database_path
    if not db.is_file():
        root = shlex.quote(str(cfg.root))
        raise UsageError(f"no catalog at {db} yet: nothing to check until 'watcherd scan {root}' has made it")
    live = writer_live(cfg)
    with CatalogReader(db) as reader:
        verdict = verdicts(gather(cfg, reader, live=live, read_data=read_data, temporaries=not live))
        if live and verdict.problems:
            # The writer may have been in the middle of a change: keep what a second look sees too.
            seen = {(p.code, p.path) for p in verdict.problems}
            again = verdicts(gather(cfg, reader, live=live, read_data=read_data, temporaries=False))
            verdict = Verdict([p for p in again.problems if (p.code, p.path) in seen], again.notes, again.checked)
    return verdict


def report(cfg: Config, verdict: Verdict, repaired: list[Repaired]) -> CheckReport:
    """The ``check --json`` document."""
    return {
        "root": str(cfg.root),
        "sound": verdict.sound,
        "checked": verdict.checked,
        "problems": [p.document() for p in verdict.problems],
        "notes": [p.document() for p in verdict.notes],
        "repaired": repaired,
    }


def gather(cfg: Config, catalog: CatalogReader, *, live: bool, read_data: bool, temporaries: bool) -> Facts:
    """Everything ``check.verdicts`` needs; ``temporaries``: look for leftover temporaries too."""
    places = Places(cfg)
    facts = Facts(root=str(cfg.root), live=live)
    with audit.consistent(catalog):
        facts.integrity = audit.integrity(catalog)
        _records(catalog, facts)
        facts.export = _expected_export(cfg, catalog, facts)
        facts.near_index = _near(cfg, catalog)
    _tree(cfg, places, facts)
    _collision_files(cfg, places, facts)
    wanted = _originals_named(facts)
    root = os.fspath(places.root)
    facts.existing = frozenset(p for p in wanted if os.path.lexists(os.path.join(root, p)))
    if temporaries:
        facts.temporaries = tuple(_temporaries(cfg, places))
    if read_data:
        facts.data = {p: _sha256(places.absolute(p)) for p in sorted(_originals_with_bytes(facts) & facts.existing)}
    _read_export(cfg, places, facts.export)
    return facts


def _records(catalog: CatalogReader, facts: Facts) -> None:
    """Every record, parsed one by one: an unreadable one is reported, the rest checked."""
    for key, text in audit.raw_values(catalog, "images"):
        try:
            rec = ImageRecord.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            facts.unreadable.append(("images", key, f"{type(exc).__name__}: {exc}"))
            continue
        if rec.name != key:
            facts.unreadable.append(("images", key, f"it names itself {rec.name!r}"))
            continue
        facts.images[key] = Image.of(rec)
    for table, parse, into in (
        ("collisions", CollisionRecord.from_json, facts.collisions),
        ("near_decisions", NearRecord.from_json, facts.near),
    ):
        for key, text in audit.raw_values(catalog, table):
            try:
                into.append(parse(json.loads(text)))  # type: ignore[arg-type]
            except (ValueError, KeyError, TypeError) as exc:
                facts.unreadable.append((table, key, f"{type(exc).__name__}: {exc}"))
    for key, text in audit.raw_values(catalog, "meta"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            facts.unreadable.append(("meta", key, f"{type(exc).__name__}: {exc}"))
            continue
        facts.rebuilding = facts.rebuilding or (key == REBUILDING and value is not None)
        if key == STEPS and isinstance(value, list):
            facts.steps = len(value)
            touched = [(step.get("path"), step.get("to")) for step in value if isinstance(step, dict)]
            facts.in_flight = frozenset(p for pair in touched for p in pair if isinstance(p, str))


def _expected_export(cfg: Config, catalog: CatalogReader, facts: Facts) -> ExportFacts | None:
    """What the catalog would export now (the file itself is read after the transaction);
    None when an unreadable record keeps the catalog from being exported at all."""
    try:
        images = json.loads("{" + ",".join(catalog.export_entries()) + "}")
        meta = {key: catalog.meta(key) for key in EXPORTED_META}
    except (CatalogError, ValueError):
        return None
    return ExportFacts(
        path=_shown_path(cfg, restore.export_path(cfg)),
        document=None,
        images=images,
        collisions={c.id: _plain(c.to_json()) for c in facts.collisions},
        near={n.id: _plain(n.to_json()) for n in facts.near},
        meta=_plain({k: v for k, v in meta.items() if v is not None}),
    )


def _plain(value: dict[str, object]) -> dict[str, object]:
    """``value`` as it reads back from JSON (tuples become lists)."""
    plain: dict[str, object] = json.loads(json.dumps(value))
    return plain


def _read_export(cfg: Config, places: Places, export: ExportFacts | None) -> None:
    if export is None:
        return
    try:
        data = json.loads(restore.export_path(cfg).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        export.error = str(exc)
        return
    if not isinstance(data, dict) or data.get("version") != restore.EXPORT_VERSION:
        export.error = "not a version 1 export"
        return
    export.document = data


def _near(cfg: Config, catalog: CatalogReader) -> NearFacts:
    """The present ``hashes`` rows, the log's position, and the index file with the log after it."""
    epoch, trimmed, head = audit.near_position(catalog)
    facts = NearFacts(table=audit.hash_rows(catalog), epoch=epoch, trimmed=trimmed, head=head)
    path = index_path(cfg.state_dir)
    if path.exists():
        facts.index = _index(path, _shown_path(cfg, path))
        if facts.index.error is None:
            facts.log = audit.near_changes(catalog, facts.index.seq)
    return facts


def _index(path: Path, shown: str) -> IndexFacts:
    """An index file's position and entries, after checking that its tables are consistent."""
    import numpy as np

    from watcherd.near.persisted import Tables
    from watcherd.near.reader import CHUNK_BITS, CHUNKS

    try:
        tables = Tables.load(path)
    except (OSError, IndexFileError, KeyError, TypeError) as exc:
        return IndexFacts(shown, error=f"the index cannot be read: {exc}")
    n, values = len(tables), 1 << CHUNK_BITS
    facts = IndexFacts(shown, epoch=tables.epoch, seq=tables.seq)
    sizes = (tables.rows.size, tables.low.size, tables.order.size, tables.sorted.size, tables.starts.size)
    if sizes != (n, n, CHUNKS * n, CHUNKS * n, CHUNKS * values + 1):
        facts.error = "the index's tables have the wrong sizes"
        return facts
    if n and (int(tables.order.max()) >= n or not np.array_equal(tables.sorted, tables.hashes[tables.order])):
        facts.error = "the index's sorted tables do not match its hashes"
        return facts
    for c in range(CHUNKS):
        chunk = (tables.sorted[c * n : (c + 1) * n] >> np.uint64(c * CHUNK_BITS)) & np.uint64(0xFFFF)
        expected = c * n + np.searchsorted(chunk, np.arange(values, dtype=np.uint64), side="left")
        if np.any(np.diff(chunk.astype(np.int64)) < 0) or not np.array_equal(
            tables.starts[c * values : (c + 1) * values], expected
        ):
            facts.error = f"the index's run table of chunk {c} is not sound"
            return facts
    entries = zip(tables.hashes.tolist(), (tables.low != 0).tolist(), strict=True)
    facts.entries = dict(zip(tables.rows.tolist(), entries, strict=True))
    return facts


def _tree(cfg: Config, places: Places, facts: Facts) -> None:
    """Canonical files in the thumbs tree (walked as a scan walks it); chunks of the unaccounted ones."""
    from watcherd.fs.walk import scan_folders

    ignored = ignore_pattern(cfg.ignore).match
    found: set[str] = set()
    for folder, names in scan_folders(places.thumbs, cfg):
        rel_folder = places.rel(Path(folder))
        found.update(f"{rel_folder}/{n}" for n in names if CANONICAL_RE.match(n) and not ignored(n.lower()))
    placed = {p for i in facts.images.values() if i.present for p in i.places}
    # A place the walk did not find is looked up on its own, as a scan does before it marks
    # one gone: there after all (a folder a scan does not enter), or out of reach (EIO).
    unreachable = {}
    for rel in sorted(placed - found):
        try:
            os.lstat(places.absolute(rel))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            unreachable[rel] = exc.strerror or str(exc)
            continue
        found.add(rel)
    facts.thumbnails, facts.unreachable = frozenset(found), unreachable
    idents = dict(facts.idents)
    for rel in facts.thumbnails - placed:
        idents[rel] = _ident(cfg, places.absolute(rel))
    facts.idents = idents


def _ident(cfg: Config, path: Path) -> Ident | None:
    """What a file's PNG chunks say, as ``adopt`` reads them; None if it is no thumbnail."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if st.st_size > min(MAX_THUMBNAIL_BYTES, cfg.max_file_size):
        return None
    thumb = examine(path, st)
    return Ident(thumb.maker, thumb.name, thumb.sha256) if thumb is not None else None


def _collision_files(cfg: Config, places: Places, facts: Facts) -> None:
    """Every file under thumbs/_collisions/ (chunks of those directly in it), and the collision originals."""
    ignored = ignore_pattern(cfg.ignore).match
    files: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(places.collisions):
        dirnames[:] = sorted(d for d in dirnames if not ignored(d.lower()))
        files.update(places.rel(Path(dirpath, f)) for f in filenames if not ignored(f.lower()))
    facts.collision_files = frozenset(files)
    idents = dict(facts.idents)
    top = places.rel(places.collisions)
    for rel in files:
        if rel.rpartition("/")[0] == top:
            idents[rel] = _ident(cfg, places.absolute(rel))
    facts.idents = idents
    try:
        with os.scandir(places.original_collisions) as entries:
            facts.collision_originals = frozenset(e.name.rpartition(".")[0] or e.name for e in entries)
    except OSError:
        facts.collision_originals = frozenset()


def _originals_named(facts: Facts) -> set[str]:
    """Every original a record names: images', undecided newcomers', and those decisions set aside."""
    out = {i.original for i in facts.images.values() if i.original}
    for col in facts.collisions:
        if col.decision is None:
            out.add(col.newcomer.original or "")
        else:
            out.update([col.decision.archived or "", *col.decision.again])
    for near in facts.near:
        out.update([*(m.archived or "" for m in near.merged), *near.decision.again])
    out.discard("")
    return out


def _originals_with_bytes(facts: Facts) -> set[str]:
    """Originals whose sha256 a record knows (what --read-data reads)."""
    out = {i.original for i in facts.images.values() if i.original and i.sha256 and not i.moving_from}
    out.update(
        c.newcomer.original
        for c in facts.collisions
        if c.decision is None and c.newcomer.original and c.newcomer.sha256 and not c.newcomer.moving_from
    )
    return {p for p in out if p}


def _sha256(path: Path) -> str:
    try:
        return fsops.file_sha256(path, CHUNK)[0]
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def _temporaries(cfg: Config, places: Places) -> list[str]:
    """Every ``.watcherd-tmp-*`` file under the root (and beside a catalog kept elsewhere), but
    a command's request being written (``layout.request_in_flight``)."""
    assert cfg.root is not None
    tops = [cfg.root]
    if not cfg.database_path.parent.resolve().is_relative_to(cfg.root.resolve()):
        tops.append(cfg.database_path.parent)
    requests, now = os.fspath(requests_dir(cfg)), time.time()
    found = []
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in filenames:
                if not name.startswith(TEMP_PREFIX):
                    continue
                path = Path(dirpath, name)
                with contextlib.suppress(FileNotFoundError):  # gone meanwhile: not left behind
                    if dirpath == requests and request_in_flight(name, os.lstat(path).st_mtime, now):
                        continue
                    found.append(_shown_path(cfg, path))
    return sorted(found)


def _shown_path(cfg: Config, path: Path) -> str:
    """A path relative to ROOT when it is under it, else absolute."""
    assert cfg.root is not None
    return Path(os.path.relpath(path, cfg.root)).as_posix() if path.is_relative_to(cfg.root) else str(path)
