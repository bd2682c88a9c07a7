"""The search side of the read commands: a query (a file, a hash or a catalogued name) and ``similar``.

A query has the name's hash and, when it is a picture (or a catalogued image that has them),
its window hashes (``core.crops``): ``similar`` finds the images whose names' hashes are
within the distance asked and their whole-picture windows agree (``match: whole``), and those
one of whose stored windows is near one of the query's windows (``match: crop``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from watcherd.catalog import CatalogReader
from watcherd.core import crops
from watcherd.core.config import Config
from watcherd.core.documents import SimilarHit
from watcherd.core.errors import ImageError, UsageError
from watcherd.core.naming import HASH_RE, parse_canonical
from watcherd.core.nearpairs import MAX_RADIUS
from watcherd.core.records import ImageRecord, Json

if TYPE_CHECKING:
    from watcherd.decode.rendered import Rendered, RenderSpec

__all__ = [
    "hash_of_file",
    "lookup",
    "query_spec",
    "render_file",
    "resolve_hash",
    "resolve_query",
    "similar",
]


def lookup(catalog: CatalogReader, name: str) -> ImageRecord:
    """The record for a canonical name, a path ending in one, or a hash."""
    base = Path(name).name
    if parse_canonical(base) is not None:
        rec = catalog.image(base)
        if rec is None:
            raise UsageError(f"no image named {base} in the catalog")
        return rec
    if HASH_RE.match(name):
        matches = catalog.images_with_hash(name)
        if not matches:
            raise UsageError(f"no image with hash {name} in the catalog")
        if len(matches) > 1:
            names = ", ".join(r.name for r in matches)
            raise UsageError(f"hash {name} names {len(matches)} images ({names}); give the full name")
        return matches[0]
    raise UsageError(f"{name!r} is neither a canonical name (WxH_HASH_.png) nor a hash")


def query_spec(cfg: Config, pinned: Json | None = None) -> RenderSpec:
    """The decoding settings a query image is hashed with, so it matches the library's names
    (``newimage.library_spec``, imported here: Pillow loads only for the commands that need it)."""
    from watcherd.decode.newimage import library_spec

    return library_spec(cfg, pinned)


def render_file(cfg: Config, path: Path, pinned: Json | None = None) -> Rendered:
    """Render an image file exactly as ingest would in this library (name's hash, window hashes),
    decoded in the decoder sandbox (the same time and memory limits): the file may be anything."""
    from watcherd.decode.sandbox import Sandbox

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        with Sandbox(cfg.decode_timeout, cfg.decode_memory) as box:
            return box(data, query_spec(cfg, pinned), Path(path).name, "", 0.0)
    except ImageError as exc:
        raise UsageError(f"{path}: {exc.reason}") from None


def hash_of_file(cfg: Config, path: Path, pinned: Json | None = None) -> str:
    """Hash an image file exactly as ingest would name it in this library (``render_file``)."""
    return render_file(cfg, path, pinned).hash


def resolve_hash(cfg: Config, catalog: CatalogReader, target: str) -> str:
    """A hash from a hex string, an image file, or a catalogued name."""
    return resolve_query(cfg, catalog, target)[0]


def resolve_query(cfg: Config, catalog: CatalogReader, target: str) -> tuple[str, list[int]]:
    """(hash, window hashes) of a hex string, an image file, or a catalogued name. A hex string
    has the window hashes of the catalogued image with that hash, if there is one (the first
    by name that has them), else none."""
    if HASH_RE.match(target) and len(target) == 16:
        named = sorted(catalog.images_with_hash(target.lower()), key=lambda r: r.name)
        return target, next((w for w in (crops.split(r.crops) for r in named) if w), [])
    if Path(target).is_file():
        rendered = render_file(cfg, Path(target), catalog.meta("library"))
        return rendered.hash, crops.split(rendered.crops)
    rec = lookup(catalog, target)
    return rec.hash, crops.split(rec.crops)


def _crop_hits(cfg: Config, windows: list[int]) -> dict[str, tuple[str, int]]:
    """Name -> (path, distance) of every present image one of whose stored windows is within
    ``crops.CROP_DISTANCE`` of one of ``windows``: the nearest window pair for each image."""
    from watcherd.catalog.hashes import CROPS, NearLogReader
    from watcherd.near import reader

    path = reader.index_path(cfg.state_dir, CROPS)
    log = NearLogReader(cfg.database_path, CROPS)
    try:
        if log.state()[0] is None:
            return {}  # a catalog no writer has opened since window hashes came: none kept yet
        found = reader.similar_many(path, log, windows, crops.CROP_DISTANCE)
    finally:
        log.close()
    if found is None:
        from watcherd.near.persisted import NearStore

        with NearStore.open(path, cfg.database_path, source=CROPS) as store:
            many = store.query_many(windows, crops.CROP_DISTANCE)
            where = store.where([row for row, _, _ in many])
        found = [(*where[row], d, i) for row, d, i in many if row in where]
    best: dict[str, tuple[str, int]] = {}
    for name, at, d, _ in found:
        if name not in best or d < best[name][1]:
            best[name] = (at, d)
    return best


def similar(cfg: Config, hash_hex: str, distance: int, windows: list[int] | None = None) -> list[SimilarHit]:
    """Present images within ``distance`` bits of ``hash_hex`` (``match: whole``), nearest first;
    with the query's ``windows``, also those it finds by crop (``match: crop``, after them).

    A whole-picture hit is confirmed by the whole-picture window hashes when both sides
    have them (``crops.VERIFY_DISTANCE``); see ``crops.match``."""
    if not 0 <= distance <= MAX_RADIUS:
        raise UsageError(f"--distance must be from 0 to {MAX_RADIUS}")
    if len(hash_hex) != 16:
        raise UsageError("near-duplicate search needs 64-bit hashes (hash size 8)")
    if not Path(cfg.database_path).exists():
        return []
    from watcherd.catalog.hashes import NearLogReader
    from watcherd.near import reader

    # The persisted index (mapped, pages touched only) plus the catalog's log since it was
    # built: exact at once, whoever keeps it current. Read without numpy when it can
    # answer alone; else NearStore builds (or waits for) one.
    path, query = reader.index_path(cfg.state_dir), int(hash_hex, 16)
    log = NearLogReader(cfg.database_path)
    try:
        found = reader.similar(path, log, query, distance)
    finally:
        log.close()
    if found is None:
        from watcherd.near.persisted import NearStore

        with NearStore.open(path, cfg.database_path) as store:
            hits = store.query(query, distance)
            where = store.where([h.row for h in hits])
        found = [(*where[h.row], h.distance) for h in hits if h.row in where]
    if not windows:
        return [{"name": name, "distance": d, "path": at, "match": "whole"} for name, at, d in found]
    first = whole_windows(cfg.database_path, [name for name, _, _ in found])
    out: list[SimilarHit] = []
    for name, at, d in found:
        own = first.get(name)
        if own is None or (own ^ windows[0]).bit_count() <= crops.VERIFY_DISTANCE:
            out.append({"name": name, "distance": d, "path": at, "match": "whole"})
    whole = {h["name"] for h in out}
    by_crop = sorted((d, name, at) for name, (at, d) in _crop_hits(cfg, windows).items() if name not in whole)
    out += [{"name": name, "distance": d, "path": at, "match": "crop"} for d, name, at in by_crop]
    return out


def whole_windows(db: Path, names: list[str]) -> dict[str, int]:
    """Name -> whole-picture window hash of the named images that have window hashes (one read)."""
    from watcherd.catalog import pairs
    from watcherd.catalog.hashes import NearLogReader

    if not names:
        return {}
    log = NearLogReader(db)
    try:
        return log.read(lambda conn: pairs.wholes(conn, names) if pairs.has_links(conn) else {})
    finally:
        log.close()
