import os
from pathlib import Path

import pytest

from watcherd.core import config
from watcherd.core.config import Config
from watcherd.core.errors import ConfigError

ETC = Path(__file__).resolve().parents[3] / "etc"


def test_no_file_gives_defaults() -> None:
    assert config.load(None) == Config()


def test_example_config_equals_defaults() -> None:
    cfg = config.load(ETC / "watcherd.yaml")
    assert cfg == Config()


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("# nothing\n")
    assert config.load(p) == Config()


def test_values_are_read(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        "root: lib\nthumbnail_size: 128\nhash: {algorithm: phash, size: 8}\nsettle: 2\n"
        "sources: []\nformats: [jpeg, png]\nobserver: polling\nworkers: 3\ndecode: fast\n"
    )
    cfg = config.load(p)
    assert cfg.root == tmp_path / "lib"
    assert cfg.thumbnail_size == 128
    assert cfg.hash.algorithm == "phash"
    assert cfg.settle == 2.0
    assert cfg.sources == ()
    assert cfg.formats == ("JPEG", "PNG")
    assert cfg.observer == "polling"
    assert cfg.worker_count == 3
    assert cfg.decode == "fast"


def test_auto_workers_are_the_usable_cores() -> None:
    assert config.Config().workers == 0
    assert config.Config().worker_count == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("thumbnail_sise: 64", "thumbnail_sise: unknown key"),
        ("hash: {algo: whash}", "hash.algo: unknown key"),
        ("hash: {algorithm: md5}", "hash.algorithm: must be one of"),
        ("hash: {size: 6}", "hash.size: whash needs a power of 2"),
        ("thumbnail_size: big", "thumbnail_size: expected a whole number"),
        ("thumbnail_size: 2", "thumbnail_size: must be from 8 to 1024"),
        ("settle: -1", "settle: must be at least 0"),
        ("observer: magic", "observer: must be one of auto, native, polling"),
        ("formats: [EPS]", "formats: EPS is never decoded"),
        ("formats: [HEIC]", "formats: HEIC is not supported"),
        ("collisions: a/b", "collisions: must be a single folder name"),
        ("background: white", "background: expected a colour"),
        ("- a list", "expected a mapping"),
        ("key: [unclosed", "not valid YAML at line"),
        ("workers: 0", "workers: expected 'auto' or a whole number from 1 to 64"),
        ("workers: many", "workers: expected 'auto'"),
        ("decode: draft", "decode: must be one of reference, fast"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        config.load(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "absent.yaml")


def test_paths_resolve_against_root(tmp_path: Path) -> None:
    cfg = Config().with_root(tmp_path)
    assert cfg.thumbs_dir == tmp_path / "thumbs"
    assert cfg.database_path == tmp_path / ".watcherd" / "catalog.sqlite"
    assert cfg.source_dirs == (tmp_path / "source",)


def test_share_example_loads() -> None:
    cfg = config.load(ETC / "watcherd-share.yaml")
    assert cfg.observer == "polling"
    assert cfg.snapshot_path == Path("/mnt/images/.watcherd/catalog.sqlite")


def test_cluster_section_is_validated_and_names_the_key() -> None:
    cfg = config.from_mapping({"cluster": {"address": "tcp://10.0.0.5:8786", "root": "/mnt/images", "batch_files": 8}})
    assert (cfg.cluster.address, cfg.cluster.root, cfg.cluster.batch_files) == ("tcp://10.0.0.5:8786", "/mnt/images", 8)
    with pytest.raises(ConfigError, match=r"cluster\.adress: unknown key"):
        config.from_mapping({"cluster": {"adress": "local"}})
    with pytest.raises(ConfigError, match=r"cluster\.batch_files: must be from 1"):
        config.from_mapping({"cluster": {"batch_files": 0}})
