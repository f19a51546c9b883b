"""The shard plan: exact partition, per-slot balance, (seed, K) only."""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json

import numpy as np
import pytest

from hpcfit.cmc.plan import (
    ShardPlan,
    idle_rank_note,
    padded_size,
    plan_shards,
    resolve_n_shards,
)
from hpcfit.xpcs.dataset import Pooled


def _slots(sizes: tuple[int, ...], dtype: type = np.int32) -> np.ndarray:
    """Slot labels in canonical order for M_a = sizes[a] points per slot."""
    return np.repeat(np.arange(len(sizes), dtype=dtype), sizes)


def _pooled(n_frames: int, n_phi: int) -> Pooled:
    """Pooled points as XpcsData.pooled() lays them out: slot-major, triu(k=1) order inside."""
    iu, ju = np.triu_indices(n_frames, k=1)
    a = np.repeat(np.arange(n_phi, dtype=np.int32), iu.size)
    i = np.tile(iu.astype(np.int32), n_phi)
    j = np.tile(ju.astype(np.int32), n_phi)
    return Pooled(a=a, i=i, j=j, y=np.zeros(a.size))


def _reference(a: np.ndarray, n_phi: int, seed: int, k: int) -> list[list[int]]:
    """The assignment rule of ``plan_shards``, point by point, as sorted member lists per shard."""
    shard = [-1] * a.size
    g = 0
    for slot in range(n_phi):
        points = [m for m in range(a.size) if a[m] == slot]
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, slot])))
        for p in rng.permutation(points):
            shard[int(p)] = g % k
            g += 1
    return [sorted(m for m in range(a.size) if shard[m] == s) for s in range(k)]


def _check_partition(plan: ShardPlan, sizes: tuple[int, ...]) -> None:
    k, m = plan.n_shards, sum(sizes)
    a = _slots(sizes)
    members = [plan.indices(s) for s in range(k)]
    # every point in exactly one shard, each shard in increasing (canonical) position order
    np.testing.assert_array_equal(np.sort(np.concatenate(members)), np.arange(m))
    assert all(np.all(np.diff(idx) > 0) for idx in members)
    # per-slot counts are floor or ceil of M_a / K, and they are what the plan reports
    by_hand = np.array([np.bincount(a[idx], minlength=len(sizes)) for idx in members])
    np.testing.assert_array_equal(plan.slot_counts, by_hand)
    for slot, m_a in enumerate(sizes):
        assert set(by_hand[:, slot].tolist()) <= {m_a // k, -(-m_a // k)}
    counts = np.array([idx.size for idx in members])
    np.testing.assert_array_equal(plan.counts, counts)
    assert counts.max() - counts.min() <= 1 and counts.max() == padded_size(m, k)


def test_partition_and_balance_for_every_small_case() -> None:
    n_cases = 0
    for n_phi in (1, 2, 3):
        for sizes in itertools.product(range(13), repeat=n_phi):
            for k in range(1, 7):
                _check_partition(plan_shards(_slots(sizes), n_phi, 7, k), sizes)
                n_cases += 1
    assert n_cases == 6 * (13 + 13**2 + 13**3)  # M_a = 0…12 in 1–3 slots, K = 1…6


@pytest.mark.parametrize("seed", [0, 1, 2**40])
@pytest.mark.parametrize(("sizes", "k"), [((5,), 2), ((3, 7), 3), ((4, 0, 9), 4), ((12, 11, 1), 5)])
def test_assignment_is_the_spec_pseudocode(sizes: tuple[int, ...], k: int, seed: int) -> None:
    plan = plan_shards(_slots(sizes), len(sizes), seed, k)
    expected = _reference(_slots(sizes), len(sizes), seed, k)
    assert [plan.indices(s).tolist() for s in range(k)] == expected


def test_plan_depends_only_on_seed_and_k() -> None:
    sizes = (150, 90, 61)
    first = plan_shards(_slots(sizes), 3, 42, 4)
    # same inputs built differently (int64, a Python list): bitwise the same plan
    again = plan_shards(_slots(sizes, np.int64), 3, 42, 4)
    listed = plan_shards(_slots(sizes).tolist(), 3, np.int64(42), 4)
    for other in (again, listed):
        np.testing.assert_array_equal(other.shard_of_point, first.shard_of_point)
        assert other.shard_of_point.dtype == np.int32
    # another seed moves points (2^-300-ish chance of a coincidence)
    assert not np.array_equal(
        plan_shards(_slots(sizes), 3, 43, 4).shard_of_point, first.shard_of_point
    )
    # the plan has no way to learn the rank count
    assert not {"rank", "n_ranks", "comm"} & set(inspect.signature(plan_shards).parameters)


def test_one_shard_is_the_identity() -> None:
    pooled = _pooled(9, 3)
    plan = plan_shards(pooled.a, 3, 5, 1)
    np.testing.assert_array_equal(plan.indices(0), np.arange(pooled.size))
    np.testing.assert_array_equal(plan.slot_counts, [[36, 36, 36]])


def test_shard_points_are_in_a_i_j_order_on_real_pooled_arrays() -> None:
    pooled = _pooled(12, 2)
    plan = plan_shards(pooled.a, 2, 3, 5)
    for s in range(5):
        idx = plan.indices(s)
        rows = list(
            zip(pooled.a[idx].tolist(), pooled.i[idx].tolist(), pooled.j[idx].tolist(), strict=True)
        )
        assert rows == sorted(rows) and all(i < j for _, i, j in rows)


def test_to_json_records_counts_hashes_and_warnings() -> None:
    pooled = _pooled(50, 2)  # 1225 points per slot
    plan = plan_shards(pooled.a, 2, 0, 3)
    record = json.loads(json.dumps(plan.to_json(pooled)))
    assert (record["seed"], record["n_shards"], record["n_points"]) == (0, 3, 2450)
    assert record["counts"] == [817, 817, 816] and record["padded_size"] == 817
    assert record["slot_counts"] == [[409, 408], [408, 409], [408, 408]]
    for s, digest in enumerate(record["sha256"]):
        idx = plan.indices(s)
        h = hashlib.sha256()
        for arr in (pooled.a, pooled.i, pooled.j):
            h.update(arr[idx].astype("<i4").tobytes())
        assert digest == h.hexdigest()
    assert len(set(record["sha256"])) == 3 and record["warnings"] == []
    # 6 shards of 1225 points leave 204 or 205 of each slot; 15 shards leave 81 or 82: warn
    small = plan_shards(pooled.a, 2, 0, 15).to_json(pooled)
    assert len(small["warnings"]) == 30 and "shard 14" in small["warnings"][-1]
    assert plan_shards(pooled.a, 2, 0, 6).to_json(pooled)["warnings"] == []
    with pytest.raises(ValueError, match="points"):
        plan.to_json(_pooled(10, 2))


def test_invalid_plans_raise() -> None:
    with pytest.raises(ValueError, match="canonical"):
        plan_shards(np.array([0, 1, 0]), 2, 0, 2)
    with pytest.raises(ValueError, match="slot"):
        plan_shards(np.array([0, 2]), 2, 0, 2)
    with pytest.raises(ValueError, match="seed"):
        plan_shards(np.array([0, 1]), 2, -1, 2)
    with pytest.raises(ValueError, match="shards"):
        plan_shards(np.array([0, 1]), 2, 0, 0)
    with pytest.raises(ValueError, match="integer"):
        plan_shards(np.array([0.0, 1.0]), 2, 0, 1)
    with pytest.raises(ValueError, match="shard id"):
        plan_shards(np.array([0, 1]), 2, 0, 2).indices(2)


@pytest.mark.parametrize(
    ("m", "r", "k"),
    [
        (14850, 1, 1),  # the default dataset
        (14850, 4, 4),
        (14850, 8, 7),  # 8 shards would hold < 2000 points: K0 = 8, capped at floor(M/2000) = 7
        (499500, 8, 32),  # one slot, N = 1000
        (100000, 3, 6),  # K0 = 5 rounds up to 2·3
        (5000, 4, 2),  # rounding refused (5000 < 4·2000), then capped at 2
        (1999, 4, 1),  # fewer points than one minimal shard
    ],
)
def test_auto_shard_count_worked_examples(m: int, r: int, k: int) -> None:
    assert resolve_n_shards("auto", m, r) == k


def test_auto_shard_count_options_and_pinned_values() -> None:
    # min_shards_per_rank = 2 on 4 ranks: K0 = 8 (M = 100 000 allows up to 50)
    assert resolve_n_shards("auto", 100000, 4, min_shards_per_rank=2) == 8
    # max_points_per_shard = 10 000: K0 = ceil(14850 / 10000) = 2 on one rank
    assert resolve_n_shards("auto", 14850, 1, max_points_per_shard=10000) == 2
    # rounding refused while the cap does not bind: K0 = ceil(12000 / 2500) = 5 would round to 8
    # shards of 1500 < 2000 points, so K stays 5 (cap floor(12000 / 2000) = 6)
    assert resolve_n_shards("auto", 12000, 4, max_points_per_shard=2500) == 5
    assert resolve_n_shards(3, 14850, 8) == 3  # a pinned K ignores R
    for bad in (0, -2, 14851, "four", True):
        with pytest.raises(ValueError):
            resolve_n_shards(bad, 14850, 1)
    with pytest.raises(ValueError, match="ranks"):
        resolve_n_shards("auto", 14850, 0)


def test_auto_shard_count_bounds_for_many_inputs() -> None:
    for m, r in itertools.product((1, 999, 2000, 3999, 4000, 14850, 60001, 10**6), range(1, 9)):
        k = resolve_n_shards("auto", m, r)
        assert 1 <= k <= max(1, m // 2000)  # never below the minimal shard size unless K = 1
        # with the defaults (max/min = 10) rounding is refused only when the cap binds anyway,
        # so K fills whole rounds of R or is the cap floor(M / 2000)
        assert k % r == 0 or k == max(1, m // 2000)


def test_padding_and_idle_note() -> None:
    for m, k in itertools.product(range(31), range(1, 7)):
        p = padded_size(m, k)
        assert p * k >= m and (p - 1) * k < m or (m == 0 and p == 0)
    assert idle_rank_note(8, 4) is None and "7 shards on 8 ranks" in idle_rank_note(7, 8)
