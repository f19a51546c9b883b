"""Network builders: draw order, normalisation, frequency quantiles, K_c."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hpcfit.kuramoto.network import (
    BENCH_SEED,
    all_to_all,
    bench_network,
    critical_coupling_gaussian,
    critical_coupling_lorentzian,
    gaussian_frequencies,
    lorentzian_frequencies,
)


def test_bench_network_draws_omega_first_then_theta0() -> None:
    net = bench_network(256)
    rng = np.random.default_rng(20260703)
    assert BENCH_SEED == 20260703
    assert np.array_equal(net.omega, rng.normal(0.0, 0.7, 256))
    assert np.array_equal(net.theta0, rng.uniform(0.0, 2 * np.pi, 256))
    assert np.array_equal(net.coupling, all_to_all(256, 1.8))
    omega, theta0, K = bench_network(16, coupling=3.0, seed=5)
    assert np.array_equal(omega, np.random.default_rng(5).normal(0.0, 0.7, 16))
    assert np.allclose(K[~np.eye(16, dtype=bool)], 3.0 / 16, rtol=0, atol=0)


def test_all_to_all_coupling() -> None:
    K = all_to_all(5, 2.0)
    assert K.shape == (5, 5) and np.all(np.diag(K) == 0.0)
    assert np.all(K[~np.eye(5, dtype=bool)] == 0.4)
    assert np.array_equal(all_to_all(1, 1.0), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="n_oscillators"):
        all_to_all(0, 1.0)


def test_frequency_quantiles() -> None:
    n = 1000
    q = (np.arange(1, n + 1) - 0.5) / n
    lor = lorentzian_frequencies(n, 0.5)
    assert np.allclose(lor, stats.cauchy(scale=0.5).ppf(q), rtol=1e-12, atol=1e-12)
    gau = gaussian_frequencies(n, 1.3)
    assert np.allclose(gau, stats.norm(scale=1.3).ppf(q), rtol=1e-13, atol=1e-14)
    for w in (lor, gau):  # symmetric about 0, sorted
        assert np.all(np.diff(w) > 0)
        assert np.all(np.abs(w + w[::-1]) <= 1e-13 * np.maximum(1.0, np.abs(w)))


def test_critical_couplings_are_two_over_pi_g0() -> None:
    assert critical_coupling_lorentzian(0.5) == pytest.approx(
        2 / (np.pi * stats.cauchy(scale=0.5).pdf(0.0)), rel=1e-14
    )
    assert critical_coupling_gaussian(1.0) == pytest.approx(
        2 / (np.pi * stats.norm.pdf(0.0)), rel=1e-14
    )
    assert critical_coupling_gaussian(2.0) == pytest.approx(2 * 1.5957691216, rel=1e-9)
