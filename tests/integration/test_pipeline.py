"""The pipeline with a real decoder pool: decoding ahead, recording in order."""

import os
from pathlib import Path

from tests.helpers import encode, scene, write
from watcherd.catalog import Catalog
from watcherd.core.config import Config
from watcherd.core.filters import TEMP_PREFIX
from watcherd.core.naming import canonical_name
from watcherd.core.outcomes import Outcome
from watcherd.decode import imaging
from watcherd.decode.sandbox import DecoderPool
from watcherd.flow.pipeline import Pipeline


def test_process_all_decodes_ahead_in_a_pool_and_records_in_order(cfg: Config, catalog: Catalog) -> None:
    paths = [write(cfg.thumbs_dir / f"{i}.jpg", encode(scene(seed=200 + i))) for i in range(6)]
    with DecoderPool(2, 60, 2 << 30) as pool:
        pipeline = Pipeline(cfg, catalog, render=pool, batch_files=1)  # a result per file
        results = pipeline.process_all(paths)
        first = next(results)
        # Read ahead, then changed before its turn: the early decode must not be used.
        changed = encode(scene(seed=999))
        os.unlink(paths[3])
        write(paths[3], changed)
        rest = list(results)
    assert [r.path for r in [first, *rest]] == paths
    assert all(r.outcome is Outcome.INGESTED for r in [first, *rest])
    named = {r.name for r in rest}
    expected = imaging.render(changed, pipeline.decoder.spec, "3.jpg", "", 0.0)
    assert canonical_name(expected.width, expected.height, expected.hash) in named
    assert pipeline.decoder.lookahead == 4
    assert len(list(catalog.images())) == 6


def _ours(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_thumbnails_staged_ahead_are_published_by_a_link_or_removed(cfg: Config, catalog: Catalog) -> None:
    """A thumbnail staged ahead (written and fsynced by the staging thread) is the file
    published; one not published (a collision, a file changed before its turn, a batch
    stopped early) leaves no temporary behind."""
    assert cfg.root is not None
    data = [encode(scene(seed=300 + i)) for i in range(5)]
    paths = [write(cfg.thumbs_dir / "burst" / f"{i}.jpg", d) for i, d in enumerate(data)]
    paths.append(write(cfg.thumbs_dir / "burst" / "again.jpg", data[0]))  # the same bytes again: a collision
    with DecoderPool(2, 60, 2 << 30) as pool:
        pipeline = Pipeline(cfg, catalog, render=pool, batch_files=2)
        results = pipeline.process_all(paths)
        first = next(results)
        os.unlink(paths[4])  # read ahead and staged, then changed before its turn
        write(paths[4], encode(scene(seed=999)))
        rest = list(results)
        staged_inodes = {(cfg.thumbs_dir / "burst" / r.name).stat().st_ino for r in [first, *rest] if r.name}
        outcomes = [r.outcome for r in [first, *rest]]
        assert outcomes == [Outcome.INGESTED] * 5 + [Outcome.COLLISION]
        assert _ours(cfg.root) == []
        assert len(staged_inodes) == 5
        # A batch given up half-way (its caller stops reading): the early ones are dropped too.
        more = [write(cfg.thumbs_dir / "later" / f"{i}.jpg", encode(scene(seed=400 + i))) for i in range(6)]
        stopped = pipeline.process_all(more)
        next(stopped)
        stopped.close()
        pool.close()  # the decodes under way end; their staging finds them dropped
        assert _ours(cfg.root) == []
