"""The benchmark command runs (tiny sizes); its figures are not judged here."""

from tests.benchmarks import bench


def test_benchmarks_run_at_smoke_size() -> None:
    rows = bench.near_query(5_000, 5) + bench.reconcile_startup(200) + bench.cli_latency(200)
    rows += bench.folder_rename(100) + bench.ingest(2, (600, 400))
    assert len(rows) >= 10
    assert all(len(row) == 5 for row in rows)
