"""Schedule adaptation and barrier."""

from __future__ import annotations

import numpy as np
import pytest

from hpcfit.nrpt import GaussianPathTarget
from hpcfit.nrpt.engine import get_engine, replica_keys, run_round_scan
from hpcfit.nrpt.schedule import (
    barrier_curve,
    local_barrier,
    optimal_schedule,
    uniform_ladder,
)
from hpcfit.nrpt.stats import round_summary


def test_uniform_ladder_endpoints_are_exact():
    b = uniform_ladder(7)
    assert b[0] == 0.0 and b[-1] == 1.0 and np.all(np.diff(b) > 0)
    with pytest.raises(ValueError):
        uniform_ladder(1)


@pytest.mark.parametrize("seed", range(6))
def test_adapted_ladder_endpoints_and_ordering(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 30))
    betas = np.sort(np.concatenate(([0.0, 1.0], rng.uniform(size=n - 2))))
    r = rng.uniform(0.0, 1.0, size=n - 1) ** 3
    new = optimal_schedule(betas, r)
    assert new[0] == 0.0 and new[-1] == 1.0
    assert np.all(np.diff(new) > 0)


def test_equal_rejections_leave_the_ladder_unchanged():
    betas = np.array([0.0, 0.05, 0.2, 0.45, 0.7, 1.0])
    new = optimal_schedule(betas, np.full(5, 0.3))
    assert np.max(np.abs(new - betas)) <= 1e-12


def test_all_zero_rejections_are_guarded_and_leave_the_ladder_unchanged():
    betas = np.array([0.0, 0.1, 0.5, 1.0])
    new = optimal_schedule(betas, np.zeros(3))
    assert np.max(np.abs(new - betas)) <= 1e-12
    partly = optimal_schedule(betas, np.array([0.0, 0.4, 0.0]))  # x not strictly increasing
    assert np.all(np.diff(partly) > 0) and partly[0] == 0.0 and partly[-1] == 1.0


def test_rejections_out_of_range_are_refused():
    with pytest.raises(ValueError, match="rejection rates"):
        optimal_schedule(uniform_ladder(3), np.array([0.2, 1.5]))
    with pytest.raises(ValueError, match="need 2 rejection"):
        optimal_schedule(uniform_ladder(3), np.array([0.2]))


def test_schedule_equalises_a_known_barrier():
    """Rejections from the increments of Λ(β) = β² move the knots to √(k/(N−1))."""
    n = 41
    betas = uniform_ladder(n)
    r = np.diff(betas**2)
    new = optimal_schedule(betas, r)
    np.testing.assert_allclose(new, np.sqrt(betas), atol=2e-3)


def test_local_barrier_is_the_derivative_of_the_cumulative_curve():
    betas = uniform_ladder(21)
    r = np.diff(betas**2)  # Λ(β) = β², λ(β) = 2β
    mid = 0.5 * (betas[:-1] + betas[1:])
    np.testing.assert_allclose(local_barrier(betas, r, mid), 2 * mid, atol=1e-2)  # PCHIP: O(h)
    assert barrier_curve(betas, r)(1.0) == pytest.approx(1.0)


def test_a_bad_initial_ladder_is_repaired():
    """From a ladder crowded at β = 1 (the barrier of this path sits near β = 0), two
    adaptations even out the rejection rates."""
    target = GaussianPathTarget(10)
    n, n_scans = 10, 512
    engine = get_engine(target, n, 1, n_scans)
    keys = replica_keys(4, np.arange(n))
    states = engine.init_fn(keys)
    chains = np.arange(n, dtype=np.int32)
    betas = 1.0 - (1.0 - uniform_ladder(n)) ** 4
    spreads, t0 = [], 0
    for _ in range(3):
        states, chains, records = run_round_scan(engine, states, keys, chains, betas, t0, n_scans)
        summary = round_summary(records, betas, t0)
        spreads.append((np.std(summary["rejection"]), 1 - np.max(summary["rejection"])))
        betas = optimal_schedule(betas, summary["rejection"])
        t0 += n_scans
    assert spreads[0][1] < 0.05  # the bad ladder has a pair that almost never swaps
    assert spreads[-1][0] < 0.5 * spreads[0][0]
    assert spreads[-1][1] > 0.05
