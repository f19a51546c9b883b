"""Synchronisation of the all-to-all network, integrated with hpcfit's RK4.

K_jk = K/N with deterministic frequency samples of a Lorentzian (γ = 0.5, K_c = 2γ) or a Gaussian
(σ = 1, K_c = σ√(8/π)); θ0 ~ U(0, 2π) from ``default_rng(0)``; N = 1000, dt = 0.1, t = 50;
r̄ = mean of r(t) over t ∈ [40, 50]. Theory: Lorentzian r∞ = √(1 − K_c/K) (Ott–Antonsen);
Gaussian r∞ from the self-consistency equation; below K_c, r = O(N^{−1/2}).
"""

from __future__ import annotations

import numpy as np
import pytest
from kuramoto_reference import r_inf_gaussian, r_inf_lorentzian

from hpcfit.kuramoto import ensemble
from hpcfit.kuramoto.network import (
    all_to_all,
    critical_coupling_gaussian,
    critical_coupling_lorentzian,
    gaussian_frequencies,
    lorentzian_frequencies,
)

N, DT, T = 1000, 0.1, 50.0


def test_theory_values() -> None:
    assert r_inf_lorentzian(2 * critical_coupling_lorentzian(0.5), 0.5) == pytest.approx(
        np.sqrt(0.5), abs=1e-15
    )
    k_c = critical_coupling_gaussian(1.0)
    for ratio, value in ((1.5, 0.8497), (2.0, 0.93699), (4.0, 0.9872)):
        assert r_inf_gaussian(ratio * k_c, 1.0) == pytest.approx(value, abs=6e-5)


def test_synchronisation_transition() -> None:
    theta0 = np.random.default_rng(0).uniform(0.0, 2 * np.pi, N)
    lor, gau = lorentzian_frequencies(N, 0.5), gaussian_frequencies(N, 1.0)
    k_lor, k_gau = critical_coupling_lorentzian(0.5), critical_coupling_gaussian(1.0)
    cases = [  # (frequencies, coupling K, expected r̄, tolerance) or an upper bound
        (lor, 2 * k_lor, r_inf_lorentzian(2 * k_lor, 0.5), 0.02),
        (lor, 0.5 * k_lor, None, 0.1),
        (gau, 2 * k_gau, r_inf_gaussian(2 * k_gau, 1.0), 0.01),
        (gau, 0.5 * k_gau, None, 0.1),
    ]
    omega = np.stack([c[0] for c in cases])
    K = np.stack([all_to_all(N, c[1]) for c in cases])
    n_steps = round(T / DT)
    r = np.asarray(
        ensemble(np.tile(theta0, (4, 1)), omega, K, dt=DT, n_steps=n_steps)["order_parameter"]
    )
    t = DT * np.arange(n_steps + 1)
    r_bar = r[:, t >= 40.0 - 1e-9].mean(axis=1)
    for (_, _, expected, tol), got in zip(cases, r_bar, strict=True):
        if expected is None:
            assert got < tol  # incoherent: O(N^{-1/2})
        else:
            assert abs(got - expected) <= tol
    # Synchronised cases sit far above the incoherent ones (the check can fail).
    assert min(r_bar[0], r_bar[2]) > 5 * max(r_bar[1], r_bar[3])
