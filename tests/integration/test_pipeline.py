"""The pipeline with its decoder pool: worker processes decoding ahead of the single writer."""

import os

from tests.helpers import encode, scene, write
from watcherd import imaging
from watcherd.catalog import Catalog
from watcherd.config import Config
from watcherd.naming import canonical_name
from watcherd.pipeline import Outcome, Pipeline
from watcherd.sandbox import DecoderPool


def test_process_all_decodes_ahead_in_a_pool_and_records_in_order(cfg: Config, catalog: Catalog) -> None:

    paths = [write(cfg.thumbs_dir / f"{i}.jpg", encode(scene(seed=200 + i))) for i in range(6)]
    with DecoderPool(2, 60, 2 << 30) as pool:
        pipeline = Pipeline(cfg, catalog, render=pool)
        results = pipeline.process_all(paths)
        first_path, first = next(results)
        # Read ahead, then changed before its turn: the early decode must not be used.
        changed = encode(scene(seed=999))
        os.unlink(paths[3])
        write(paths[3], changed)
        rest = list(results)
    assert [p for p, _ in [(first_path, first), *rest]] == paths
    assert all(r.outcome is Outcome.INGESTED for _, r in [(first_path, first), *rest])
    named = {r.name for _, r in rest}
    expected = imaging.render(changed, pipeline.spec, "3.jpg", "", 0.0)
    assert canonical_name(expected.width, expected.height, expected.hash) in named
    assert not pipeline._ahead
    assert len(list(catalog.images())) == 6
