"""The pipeline with a real decoder pool: decoding ahead, recording in order."""

import os

from tests.helpers import encode, scene, write
from watcherd.catalog import Catalog
from watcherd.core.config import Config
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
