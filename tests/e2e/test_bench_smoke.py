"""The benchmark command runs (tiny sizes) and its figures are sane; how fast they are is not judged here.

Sane means: every figure parses with the unit its row promises, every time and rate is
positive and finite, every ratio is the one its own two figures give (so a swapped
numerator or a unit slip shows) and lies in a range no real machine leaves. No figure
is compared with a wall-clock limit: machines are shared and noisy.
"""

from __future__ import annotations

import math
import re

import pytest

from tests.benchmarks import bench

NUM = r"(\d[\d,]*(?:\.\d+)?)"
# (label pattern, watcherd cell, baseline cell, ratio cell, ratio = f(watcherd, baseline))
SHAPES: list[tuple[str, str, str, str, str]] = [
    (r"near query r<=4, [\d,]+ hashes \(p50\)", rf"{NUM} ms", rf"numpy scan {NUM} ms", rf"{NUM}x faster", "b/a"),
    (
        r"near query r<=4, [\d,]+ hashes \(p50\)",
        rf"{NUM} ms",
        rf"pybktree {NUM} ms \(built in {NUM} s\)",
        rf"{NUM}x faster",
        "b/a",
    ),
    (r"near index build, [\d,]+ hashes", rf"{NUM} s", "—", "—", ""),
    (
        r"`similar NAME` end to end, [\d,]+ indexed hashes",
        rf"{NUM} ms, peak RSS {NUM} MB",
        rf"python -c pass {NUM} ms, peak RSS {NUM} MB",
        rf"{NUM}x",
        "a/c",
    ),
    (
        r"review-page query r<=4 \+ names, [\d,]+ indexed hashes, in process \(p50\)",
        rf"{NUM} ms",
        rf"numpy scan {NUM} ms",
        rf"{NUM}x faster",
        "b/a",
    ),
    (
        r"persisted near index build \+ write, [\d,]+ hashes \(crop index: [\d,]+\)",
        rf"{NUM} s \({NUM} MB file\); crops {NUM} s",
        "—",
        "—",
        "",
    ),
    (
        r"`similar NAME`, crops searched too \(\d+ windows\), [\d,]+ images",
        rf"{NUM} ms, peak RSS {NUM} MB",
        rf"names' index only {NUM} ms",
        rf"{NUM}x",
        "a/c",
    ),
    (
        r"persisted indexes, [\d,]+ images",
        rf"{NUM} MB \(names {NUM} MB \+ crops {NUM} MB\)",
        rf"names' index only {NUM} MB",
        rf"{NUM}x",
        "a/b",
    ),
    (
        r"start-up reconcile, [\d,]+ catalogued thumbnails",
        rf"{NUM} s",
        rf"scandir walk {NUM} s",
        rf"{NUM}x the walk",
        "a/b",
    ),
    (r"`[^`]+` with [\d,]+ images", rf"{NUM} ms", rf"python -c pass {NUM} ms", rf"{NUM}x", "a/b"),
    (r"folder of [\d,]+ thumbnails renamed", rf"{NUM} s until every record follows", "—", "—", ""),
    (r"ingest [\d.]+ MP JPEG q90, .+", rf"{NUM} img/s", rf"plain loop, 1 core: {NUM} img/s", rf"{NUM}x", "a/b"),
    (
        r"burst of [\d,]+ small PNGs copied in at once \(64x48\), until all filed",
        rf"{NUM} files/s",
        rf"plain loop, 1 core: {NUM} files/s",
        rf"{NUM}x",
        "a/b",
    ),
    (
        r"adopt [\d,]+ thumbnails without a catalog \(watcherd scan\)",
        rf"{NUM} s",
        rf"stat walk {NUM} s",
        rf"{NUM}x the walk",
        "a/b",
    ),
]


def numbers(pattern: str, cell: str) -> list[float]:
    match = re.fullmatch(pattern, cell)
    assert match is not None, f"{cell!r} does not read as {pattern!r}"
    return [float(g.replace(",", "")) for g in match.groups()]


def check(row: bench.Row) -> None:
    label, ours, base, ratio, _target = row
    shapes = [s for s in SHAPES if re.fullmatch(s[0], label) and re.fullmatch(s[2], base)]
    assert len(shapes) == 1, f"no known shape for {row}"
    _, ours_pattern, base_pattern, ratio_pattern, relation = shapes[0]
    got = numbers(ours_pattern, ours) + numbers(base_pattern, base)
    assert all(math.isfinite(x) and x > 0 for x in got), row
    if not relation:
        return
    (r,) = numbers(ratio_pattern, ratio)
    a, b = got[0], got[1]
    if relation == "a/c":  # two figures per cell (time, memory): the ratio is of the times
        b = got[len(numbers(ours_pattern, ours))]
    expected = b / a if relation == "b/a" else a / b
    # Each figure is printed to 3 significant digits: allow for that rounding, nothing more.
    assert r == pytest.approx(expected, rel=0.02), row
    assert 1e-3 < r < 1e5, row


def check_fast_vs_reference(row: bench.Row) -> None:
    mean, most = numbers(rf"mean {NUM} bits, max {NUM} bits differ", row[1])
    assert 0 <= mean <= most <= 64, row
    assert most == int(most), row


@pytest.mark.timeout(300)  # it starts a daemon and many CLI processes
def test_benchmarks_run_at_smoke_size() -> None:
    rows = bench.near_query(5_000, 5) + bench.reconcile_startup(200) + bench.cli_latency(200)
    rows += bench.similar_at_scale(20_000, 200, 10)
    rows += bench.folder_rename(100) + bench.ingest(2, (600, 400)) + bench.burst(150) + bench.adoption(200)
    assert len(rows) >= 12
    labels = [row[0] for row in rows]
    assert sum(label.startswith("ingest ") for label in labels) >= 2  # one core and fast decode at least
    assert sum(label.startswith("`") and " with " in label for label in labels) == 4  # status, tags, find, similar
    for row in rows:
        assert len(row) == 5 and all(isinstance(cell, str) and cell for cell in row), row
        if row[0].startswith("decode: fast vs reference names"):
            check_fast_vs_reference(row)
        elif row[0] == "near query vs pybktree":  # the bench extra is not installed (as in CI)
            assert row[1] == "—" and "pybktree not installed" in row[2], row
        else:
            check(row)


def test_the_scale_benchmark_runs_and_its_kept_groups_equal_the_computed_ones() -> None:
    """``tests.benchmarks.scale`` at a tiny size: every question answers (the groups read from
    the kept pairs equal the ones computed, which the benchmark asserts) and every row is filled."""
    from tests.benchmarks import scale

    rows, figures = scale.library_rows(3_000, repeat=1)
    assert len(rows) == 16 and all(all(cell for cell in row) for row in rows)
    assert all(v > 0 and math.isfinite(v) for v in figures.values())
    projected = scale.projection(1_000, 3_000, {k: v / 2 for k, v in figures.items()}, figures, 30_000_000)
    assert len(projected) == len(figures)
