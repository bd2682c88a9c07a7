"""The near-duplicate index gives exactly the brute-force answer."""

import os

import numpy as np
import pytest

from watcherd.core.errors import UsageError
from watcherd.near.index import MAX_RADIUS, NearIndex, brute_force, groups


def _data(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    # plant near neighbours: flip a few bits of some hashes
    near = base[: n // 10].copy()
    for k in range(near.size):
        for b in rng.choice(64, size=rng.integers(0, 9), replace=False):
            near[k] ^= np.uint64(1) << np.uint64(int(b))
    return np.concatenate([base, near])


@pytest.mark.parametrize("radius", [0, 1, 3, 4, 5, 8, 12, MAX_RADIUS])
def test_index_equals_brute_force(radius: int) -> None:
    hashes = _data(3000, seed=radius)
    index = NearIndex(hashes)
    rng = np.random.default_rng(100 + radius)
    queries = [int(hashes[i]) for i in rng.integers(0, hashes.size, 40)]
    queries += [int(q) for q in rng.integers(0, 2**64, size=10, dtype=np.uint64)]
    for q in queries:
        assert index.query(q, radius) == brute_force(hashes, q, radius)


def test_radius_zero_finds_equal_hashes_only() -> None:
    index = NearIndex([5, 5, 7, 2**64 - 1])
    assert [h.index for h in index.query(5, 0)] == [0, 1]
    assert [h.index for h in index.query(2**64 - 1, 0)] == [3]


def test_radius_out_of_range() -> None:
    with pytest.raises(UsageError, match="distance"):
        NearIndex([1]).query(1, MAX_RADIUS + 1)


def test_empty_index() -> None:
    assert NearIndex([]).query(1, 4) == []


def test_groups_are_connected_components() -> None:
    a = 0
    b = a ^ 0b111  # 3 from a
    c = b ^ 0b111000  # 3 from b, 6 from a: joined through b
    far = 2**64 - 1
    found = groups(NearIndex([a, far, b, c]), 3)
    assert [sorted(m) for m, _ in found] == [[0, 2, 3]]
    assert found[0][1] == 6  # a and c, the widest pair


@pytest.mark.parametrize("radius", [0, 4, 9, MAX_RADIUS])
def test_index_equals_brute_force_on_crowded_chunks(radius: int) -> None:
    # Few distinct chunk values: long runs per probe, and most hashes near in several chunks.
    rng = np.random.default_rng(radius)
    hashes = rng.integers(0, 2**64, size=2000, dtype=np.uint64) & np.uint64(0x00FF_0F0F_00F0_0FF0)
    index = NearIndex(hashes)
    for q in [int(hashes[i]) for i in rng.integers(0, hashes.size, 25)]:
        assert index.query(q, radius) == brute_force(hashes, q, radius)


@pytest.mark.parametrize("radius", [0, 4, 6, 10])
def test_many_queries_spread_over_threads_get_the_answer_of_one_thread(
    radius: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from watcherd.near import persisted
    from watcherd.near.persisted import Tables

    hashes = _data(5000, seed=radius)
    table = Tables.build(None, 0, np.arange(hashes.size, dtype=np.int64), hashes, np.zeros(hashes.size, bool))
    queries = np.concatenate([hashes[::3], np.random.default_rng(radius).integers(0, 2**64, 500, dtype=np.uint64)])
    monkeypatch.setattr(persisted, "THREADED_MIN", 10**9)
    alone = table.search_many(queries, radius, block=64)
    monkeypatch.setattr(persisted, "THREADED_MIN", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)  # three threads, whatever this machine has
    spread = table.search_many(queries, radius, block=64)
    assert alone[0].size > queries.size // 3  # every hash finds itself at least
    for a, b in zip(alone, spread, strict=True):
        assert np.array_equal(a, b)
    expected = {(int(q), int(p)) for q, p in zip(alone[0], alone[1], strict=True)}
    brute = {
        (i, j)
        for i, q in enumerate(queries.tolist())
        for j in np.flatnonzero(np.bitwise_count(hashes ^ np.uint64(q)) <= radius).tolist()
    }
    assert expected == brute
