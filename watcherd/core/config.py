"""Settings: YAML in, frozen dataclasses out, every key with a default.

Unknown keys and bad values are errors that name the dotted key and say what is
allowed, because a typo in a daemon's config should stop it at start-up rather than
be silently ignored for months.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcherd.core.errors import ConfigError

# reference: ImageHash on the full picture; fast: JPEG draft decoding and a fixed
# wavelet scale (imaging.FAST_SIDE). A library keeps the mode that named it.
DECODE_MODES = ("reference", "fast")
HASH_ALGORITHMS = ("whash", "phash", "dhash", "average_hash")
OBSERVERS = ("auto", "native", "polling")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# xmp: an XMP sidecar beside each original (``originals/{name}.{ext}.xmp``); none: no sidecars.
SIDECAR_MODES = ("xmp", "none")
# Formats Pillow may decode. EPS, PSD and PDF are never allowed: a renamed file could
# otherwise reach Ghostscript or a parser we do not want facing hostile input.
# DIB is a BMP without its file header (the same parser); HEIF comes from pillow-heif,
# AVIF from Pillow itself.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "DIB", "TIFF", "HEIF", "AVIF")
FORBIDDEN_FORMATS = ("EPS", "PSD", "PDF")

DEFAULT_DATABASE = ".watcherd/catalog.sqlite"

DEFAULT_IGNORE = (
    "*.part",
    "*.crdownload",
    "*.tmp",
    "~$*",
    ".goutputstream-*",
    "Thumbs.db",
    "desktop.ini",
    ".DS_Store",
    "._*",
    ".*",
    # NAS and operating-system folders: thumbnails, recycle bins, snapshots, fsck's finds.
    "@eaDir",
    "#recycle",
    "#snapshot",
    "@Recycle",
    "$RECYCLE.BIN",
    "System Volume Information",
    ".Trash-*",
    "lost+found",
    ".snapshot",
)


@dataclass(frozen=True)
class HashConfig:
    """Which ImageHash function names a file, and at what size."""

    algorithm: str = "whash"
    size: int = 8


@dataclass(frozen=True)
class ClusterConfig:
    """Decoding on a dask.distributed cluster (``scan --cluster``)."""

    address: str | None = None  # tcp://host:8786, or local; None: decode on this machine
    root: str | None = None  # where the workers see the library root (None: the same path)
    batch_files: int = 32
    in_flight: int = 0  # batches sent ahead of the writer; 0: two per worker thread
    backlog: int = 1000  # ``run`` decodes its start-up scan there when more new files wait


@dataclass(frozen=True)
class Config:
    """Every setting watcherd reads; paths are relative to ``root`` unless absolute."""

    root: Path | None = None
    thumbs: str = "thumbs"
    originals: str = "originals"
    sources: tuple[str, ...] = ("source",)
    database: str = DEFAULT_DATABASE
    collisions: str = "_collisions"
    thumbnail_size: int = 64
    hash: HashConfig = field(default_factory=HashConfig)
    background: str = "#ffffff"
    settle: float = 0.5
    rescan_interval: float = 600.0
    export_interval: float = 60.0
    publish_interval: float = 60.0
    observer: str = "auto"
    heartbeat: float = 5.0
    stale_after: int = 6
    max_image_pixels: int = 89_478_485
    max_file_size: int = 1 << 30
    decode_timeout: float = 60.0
    decode_memory: int = 8 << 30
    decode: str = "reference"
    workers: int = 0
    formats: tuple[str, ...] = ALLOWED_FORMATS
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    log_level: str = "INFO"
    sidecars: str = "xmp"  # an XMP sidecar beside each original, kept current with its tags
    xattr_tags: bool = True  # tags in the user.xdg.tags extended attribute of thumbnails and originals
    import_keywords: bool = True  # keywords already in a photo (XMP, IPTC, a sidecar beside it) become tags
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def with_root(self, root: Path) -> Config:
        """Return a copy whose root is ``root`` (made absolute)."""
        return dataclasses.replace(self, root=Path(os.path.abspath(root)))

    def path(self, value: str) -> Path:
        """Resolve a configured path against the root."""
        if self.root is None:
            raise ConfigError("no library root: give ROOT on the command line or 'root' in the config")
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def worker_count(self) -> int:
        """Decoder processes to run: ``workers``, or one per usable core when it is 0 (auto)."""
        if self.workers:
            return self.workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on this platform
            return max(1, os.cpu_count() or 1)

    @property
    def thumbs_dir(self) -> Path:
        """The watched tree the user organizes."""
        return self.path(self.thumbs)

    @property
    def originals_dir(self) -> Path:
        """Where full-size originals are kept."""
        return self.path(self.originals)

    @property
    def source_dirs(self) -> tuple[Path, ...]:
        """Inboxes thumbnailed in place."""
        return tuple(self.path(s) for s in self.sources)

    @property
    def database_path(self) -> Path:
        """The catalog file."""
        return self.path(self.database)

    @property
    def snapshot_path(self) -> Path | None:
        """Where a read-only copy of the catalog is published, when the live one is elsewhere."""
        default = self.path(DEFAULT_DATABASE)
        return None if os.path.abspath(self.database_path) == os.path.abspath(default) else default

    @property
    def state_dir(self) -> Path:
        """``ROOT/.watcherd``: lock, exports and the default catalog live here."""
        return self.path(".watcherd")


def _fail(key: str, message: str) -> ConfigError:
    return ConfigError(f"config: {key}: {message}")


def _as_int(key: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, f"expected a whole number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise _fail(key, f"must be {bound}, got {value}")
    return value


def _as_float(key: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, f"expected a number of seconds, got {value!r}")
    if value < minimum:
        raise _fail(key, f"must be at least {minimum}, got {value}")
    return float(value)


def _as_str(key: str, value: Any, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(key, f"expected a non-empty string, got {value!r}")
    if choices is not None and value not in choices:
        raise _fail(key, f"must be one of {', '.join(choices)}; got {value!r}")
    return value


def _as_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, f"expected true or false, got {value!r}")
    return value


def _as_str_list(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(key, f"expected a list of non-empty strings, got {value!r}")
    return tuple(value)


def _as_folder(key: str, value: Any) -> str:
    text = _as_str(key, value)
    if "/" in text or "\\" in text or text in (".", ".."):
        raise _fail(key, f"must be a single folder name, got {value!r}")
    return text


def _check_keys(prefix: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            where = f"{prefix}{key}"
            raise _fail(where, f"unknown key; allowed keys here are {', '.join(sorted(allowed))}")


def _hash_from(data: Any) -> HashConfig:
    if not isinstance(data, Mapping):
        raise _fail("hash", "expected a mapping with 'algorithm' and 'size'")
    _check_keys("hash.", data, {"algorithm", "size"})
    default = HashConfig()
    algorithm = _as_str("hash.algorithm", data.get("algorithm", default.algorithm), HASH_ALGORITHMS)
    size = _as_int("hash.size", data.get("size", default.size), 2, 32)
    if algorithm == "whash" and size & (size - 1):
        raise _fail("hash.size", f"whash needs a power of 2 (4, 8, 16 or 32), got {size}")
    return HashConfig(algorithm=algorithm, size=size)


def _cluster_from(data: Any) -> ClusterConfig:
    if not isinstance(data, Mapping):
        raise _fail("cluster", "expected a mapping (address, root, batch_files, in_flight, backlog)")
    _check_keys("cluster.", data, {f.name for f in dataclasses.fields(ClusterConfig)})
    d = ClusterConfig()
    address, root = data.get("address"), data.get("root")
    return ClusterConfig(
        address=None if address is None else _as_str("cluster.address", address),
        root=None if root is None else _as_str("cluster.root", root),
        batch_files=_as_int("cluster.batch_files", data.get("batch_files", d.batch_files), 1, 10000),
        in_flight=_as_int("cluster.in_flight", data.get("in_flight", d.in_flight), 0, 10000),
        backlog=_as_int("cluster.backlog", data.get("backlog", d.backlog), 0, 1 << 62),
    )


def _formats_from(value: Any) -> tuple[str, ...]:
    names = tuple(v.upper() for v in _as_str_list("formats", value))
    for name in names:
        if name in FORBIDDEN_FORMATS:
            raise _fail("formats", f"{name} is never decoded (it can run external interpreters)")
        if name not in ALLOWED_FORMATS:
            raise _fail("formats", f"{name} is not supported; choose from {', '.join(ALLOWED_FORMATS)}")
    if not names:
        raise _fail("formats", "needs at least one format")
    return names


def _workers_from(value: Any) -> int:
    if value == "auto":
        return 0
    try:
        return _as_int("workers", value, 1, 64)
    except ConfigError:
        raise _fail("workers", f"expected 'auto' or a whole number from 1 to 64, got {value!r}") from None


def from_mapping(data: Mapping[str, Any], base_dir: Path | None = None) -> Config:
    """Build a Config from parsed YAML; ``base_dir`` anchors a relative ``root``."""
    allowed = {f.name for f in dataclasses.fields(Config)}
    _check_keys("", data, allowed)
    d = Config()
    root: Path | None = None
    if data.get("root") is not None:
        root_text = _as_str("root", data["root"])
        root = Path(root_text).expanduser()
        if not root.is_absolute() and base_dir is not None:
            root = base_dir / root
        root = Path(os.path.abspath(root))
    background = _as_str("background", data.get("background", d.background))
    if not (len(background) == 7 and background.startswith("#")):
        raise _fail("background", f"expected a colour like '#ffffff', got {background!r}")
    try:
        int(background[1:], 16)
    except ValueError:
        raise _fail("background", f"expected a colour like '#ffffff', got {background!r}") from None
    sources = data.get("sources", list(d.sources))
    if sources is None:
        sources = []
    return Config(
        root=root,
        thumbs=_as_str("thumbs", data.get("thumbs", d.thumbs)),
        originals=_as_str("originals", data.get("originals", d.originals)),
        sources=_as_str_list("sources", sources),
        database=_as_str("database", data.get("database", d.database)),
        collisions=_as_folder("collisions", data.get("collisions", d.collisions)),
        thumbnail_size=_as_int("thumbnail_size", data.get("thumbnail_size", d.thumbnail_size), 8, 1024),
        hash=_hash_from(data.get("hash", {})),
        background=background.lower(),
        settle=_as_float("settle", data.get("settle", d.settle), 0.0),
        rescan_interval=_as_float("rescan_interval", data.get("rescan_interval", d.rescan_interval), 0.0),
        export_interval=_as_float("export_interval", data.get("export_interval", d.export_interval), 1.0),
        publish_interval=_as_float("publish_interval", data.get("publish_interval", d.publish_interval), 1.0),
        observer=_as_str("observer", data.get("observer", d.observer), OBSERVERS),
        heartbeat=_as_float("heartbeat", data.get("heartbeat", d.heartbeat), 0.1),
        stale_after=_as_int("stale_after", data.get("stale_after", d.stale_after), 2),
        max_image_pixels=_as_int("max_image_pixels", data.get("max_image_pixels", d.max_image_pixels), 1),
        max_file_size=_as_int("max_file_size", data.get("max_file_size", d.max_file_size), 1),
        decode_timeout=_as_float("decode_timeout", data.get("decode_timeout", d.decode_timeout), 0.1),
        decode_memory=_as_int("decode_memory", data.get("decode_memory", d.decode_memory), 64 << 20),
        decode=_as_str("decode", data.get("decode", d.decode), DECODE_MODES),
        workers=_workers_from(data.get("workers", "auto")),
        formats=_formats_from(data.get("formats", list(d.formats))),
        ignore=_as_str_list("ignore", data.get("ignore", list(d.ignore))),
        log_level=_as_str("log_level", str(data.get("log_level", d.log_level)).upper(), LOG_LEVELS),
        sidecars=_as_str("sidecars", data.get("sidecars", d.sidecars), SIDECAR_MODES),
        xattr_tags=_as_bool("xattr_tags", data.get("xattr_tags", d.xattr_tags)),
        import_keywords=_as_bool("import_keywords", data.get("import_keywords", d.import_keywords)),
        cluster=_cluster_from(data.get("cluster", {})),
    )


def load(path: Path | None) -> Config:
    """Read a config file, or return the defaults when ``path`` is None."""
    if path is None:
        return Config()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config: {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: {path}: cannot read: {exc}") from None
    import yaml  # only when there is a file to read: commands without -c never pay for it

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config: {path}: not valid YAML{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config: {path}: expected a mapping of settings at the top level")
    return from_mapping(data, base_dir=Path(path).resolve().parent)
