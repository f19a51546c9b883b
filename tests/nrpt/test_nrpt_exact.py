"""Exact enumeration and the Gaussian-path closed forms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hpcfit.nrpt import IsingModel, grid_model
from hpcfit.nrpt.exact import (
    enumerate_ising,
    gaussian_barrier,
    gaussian_barrier_constant,
    gaussian_log_z_ratio,
)


def test_published_4x4_values():
    """The published example's numbers: open 4×4 grid, J = 1, h = 0, β = 1."""
    ex = enumerate_ising(grid_model(4))
    assert abs(ex.log_Z - 24.81764441) < 1e-8
    assert abs(ex.mean_energy - (-23.37283199)) < 1e-8
    assert abs(ex.mean_abs_magnetisation - 0.97797944) < 1e-8
    assert abs(ex.mean_sq_magnetisation - 0.96222877) < 1e-8
    assert abs(ex.mean_magnetisation) < 1e-12
    np.testing.assert_allclose(ex.marginals, 0.0, atol=1e-12)


def _brute(model: IsingModel):
    states = np.array(list(itertools.product((-1, 1), repeat=model.n)), dtype=np.float64)
    H = model.energy(states)
    logw = -model.beta_t * H
    w = np.exp(logw - logw.max())
    z = w.sum()
    p = w / z
    M = states.mean(axis=1)
    mean_h = p @ H
    return {
        "log_Z": float(logw.max() + math.log(z)),
        "mean_energy": mean_h,
        "var_energy": p @ (H - mean_h) ** 2,
        "mean_magnetisation": p @ M,
        "mean_abs_magnetisation": p @ np.abs(M),
        "mean_sq_magnetisation": p @ M**2,
        "marginals": p @ states,
    }


def test_enumeration_matches_brute_force_with_fields():
    rng = np.random.default_rng(5)
    edges = np.array([(i, j) for i in range(7) for j in range(i + 1, 7) if rng.random() < 0.5])
    model = IsingModel(
        n=7, edges=edges, J=rng.normal(size=len(edges)), h=rng.uniform(-1, 1, 7), beta_t=0.7
    )
    ex = enumerate_ising(model)
    ref = _brute(model)
    for key, value in ref.items():
        np.testing.assert_allclose(getattr(ex, key), value, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("beta", [0.3, 1.0])
def test_enumeration_matches_one_dimensional_closed_forms(beta):
    """Closed forms at n = 12, t = tanh βJ: open chain and ring, h = 0."""
    n, J = 12, 0.8
    t = math.tanh(beta * J)
    chain = IsingModel(
        n=n,
        edges=np.array([(i, i + 1) for i in range(n - 1)]),
        J=np.full(n - 1, J),
        h=np.zeros(n),
        beta_t=beta,
    )
    ex = enumerate_ising(chain)
    assert ex.log_Z == pytest.approx(math.log(2) + (n - 1) * math.log(2 * math.cosh(beta * J)))
    assert ex.mean_energy == pytest.approx(-(n - 1) * J * t)
    ring = IsingModel(
        n=n,
        edges=np.array([(i, (i + 1) % n) for i in range(n)]),
        J=np.full(n, J),
        h=np.zeros(n),
        beta_t=beta,
    )
    ex = enumerate_ising(ring)
    z = (2 * math.cosh(beta * J)) ** n + (2 * math.sinh(beta * J)) ** n
    assert ex.log_Z == pytest.approx(math.log(z))
    assert ex.mean_energy == pytest.approx(-n * J * (t + t ** (n - 1)) / (1 + t**n))


def test_enumeration_refuses_large_models():
    with pytest.raises(ValueError, match="n <= 20"):
        enumerate_ising(grid_model(5))


@pytest.mark.parametrize(
    ("d", "value"), [(1, 0.73294), (2, 1.15129), (10, 2.83326), (100, 9.16305)]
)
def test_gaussian_barrier_published_values(d, value):
    assert gaussian_barrier(1.0, d) == pytest.approx(value, abs=5e-6)
    assert gaussian_barrier(0.0, d) == 0.0


def test_gaussian_barrier_constant_is_half_mean_abs_chi2_difference():
    """c_d = ½ E|χ²_d − χ'²_d|, checked by quadrature-free Monte Carlo at d = 3."""
    rng = np.random.default_rng(0)
    a = rng.chisquare(3, 400_000)
    b = rng.chisquare(3, 400_000)
    mc = 0.5 * np.mean(np.abs(a - b))
    se = 0.5 * np.std(np.abs(a - b)) / math.sqrt(a.size)
    assert abs(mc - gaussian_barrier_constant(3)) < 5 * se
    assert gaussian_log_z_ratio(2) == pytest.approx(-math.log(10))
