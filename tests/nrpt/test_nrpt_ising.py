"""NRPT on Ising models against exact answers."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from nrpt_helpers import assert_ising_matches, assert_z, random_graph

from hpcfit.nrpt import IsingModel, IsingTarget, grid_model, run
from hpcfit.nrpt.exact import enumerate_ising


def test_published_4x4_grid_example():
    """Open 4×4 grid, J = 1, h = 0, β = 1; N = 8, R = 12, n_expl = 2."""
    model = grid_model(4)
    res = run(IsingTarget(model), n_chains=8, n_rounds=12, n_expl=2, seed=0)
    exact = enumerate_ising(model)
    assert_ising_matches(res, exact)
    assert abs(exact.mean_energy - (-23.37283199)) < 1e-8
    # after tuning the observed round-trip rate is within a factor 4 of τ̄
    assert 0.25 <= res.tau_observed / res.tau_predicted <= 4.0
    assert res.efficiency == res.tau_observed / res.tau_predicted
    assert res.scans == 2**13 - 2 and len(res.history) == 12
    assert res.records["chain"].shape == (8, 4096)
    # H series is the target chain's: its mean and variance are the reported ones
    assert res.energy_series.shape == (4096,) and res.energy_series.mean() == res.mean_energy
    assert res.var_energy == pytest.approx(exact.var_energy, rel=0.15)
    assert res.n_chains_recommended == math.ceil(2 * res.Lambda) + 1
    assert res.ess_energy > 100


def _chain_model(b, beta):
    n = len(b)
    edges = np.array([(i, i + 1) for i in range(n - 1)])
    return IsingModel(n=n, edges=edges, J=np.full(n - 1, 0.8), h=np.asarray(b), beta_t=beta)


@pytest.mark.parametrize("beta", [0.2, 0.5, 1.0])
def test_open_chain_with_random_fields(beta):
    """8-spin open chain, J = 0.8, b ~ U(−1, 1), at β_t ∈ {0.2, 0.5, 1}."""
    b = np.random.default_rng(8).uniform(-1, 1, 8)
    model = _chain_model(b, beta)
    res = run(IsingTarget(model), n_chains=6, n_rounds=11, n_expl=1, seed=int(10 * beta))
    assert_ising_matches(res, enumerate_ising(model))


def test_antiferromagnetic_triangle():
    """Frustrated triangle, J = −1 on every edge."""
    model = IsingModel(n=3, edges=np.array([[0, 1], [1, 2], [0, 2]]), J=-np.ones(3), h=np.zeros(3))
    res = run(IsingTarget(model), n_chains=4, n_rounds=11, n_expl=1, seed=1)
    exact = enumerate_ising(model)
    assert_ising_matches(res, exact)


def test_random_plus_minus_j_graph():
    """12 spins on an Erdős–Rényi graph with J = ±1 (greedy colouring)."""
    edges = random_graph(12, 0.35, seed=3)
    signs = np.where(np.random.default_rng(4).random(len(edges)) < 0.5, -1.0, 1.0)
    model = IsingModel(n=12, edges=edges, J=signs, h=np.zeros(12))
    res = run(IsingTarget(model), n_chains=10, n_rounds=11, n_expl=1, seed=2)
    assert_ising_matches(res, enumerate_ising(model))


def test_single_chain_is_stuck_but_nrpt_mixes():
    """6×6 ferromagnet. One heat-bath chain from all +1 never flips M in 2·10⁴ sweeps; NRPT
    visits both signs (|⟨M⟩| < 4 SE) with ⟨|M|⟩ > 0.95."""
    model = grid_model(6)
    target = IsingTarget(model)

    @jax.jit
    def sweep_signs(key):
        def body(x, w):
            x = target.explore(jax.random.fold_in(key, w), x, 1.0, 1)
            return x, jnp.sum(x.astype(jnp.int32))

        x0 = jnp.ones(36, dtype=jnp.int8)
        return jax.lax.scan(body, x0, jnp.arange(20_000))[1]

    m = np.asarray(sweep_signs(jax.random.PRNGKey(0)))
    assert np.all(m > 0)
    res = run(target, n_chains=10, n_rounds=12, n_expl=1, seed=0)
    assert abs(res.mean_magnetisation) < 4 * res.mean_magnetisation_se
    assert res.mean_abs_magnetisation > 0.95
    assert res.round_trips > 0


def _open_chain(n, J, beta=1.0):
    edges = np.array([(i, i + 1) for i in range(n - 1)])
    return IsingModel(n=n, edges=edges, J=np.full(n - 1, J), h=np.zeros(n), beta_t=beta)


def _ring(n, J, beta=1.0):
    edges = np.array([(i, (i + 1) % n) for i in range(n)])
    return IsingModel(n=n, edges=edges, J=np.full(n, J), h=np.zeros(n), beta_t=beta)


def test_open_chain_closed_form():
    """Open chain n = 256, J = 0.8, N = 16: log Z = log 2 + (n−1) log(2 cosh βJ)."""
    n, J = 256, 0.8
    t = math.tanh(J)
    res = run(IsingTarget(_open_chain(n, J)), n_chains=16, n_rounds=12, n_expl=1, seed=0)
    assert_z("<H>", res.mean_energy, res.mean_energy_se, -(n - 1) * J * t)
    log_z = math.log(2) + (n - 1) * math.log(2 * math.cosh(J))
    assert abs(res.log_Z - log_z) < 0.2


def test_ring_closed_form():
    """Ring n = 64, J = 0.8, N = 10: Z = (2 cosh βJ)ⁿ + (2 sinh βJ)ⁿ."""
    n, J = 64, 0.8
    t = math.tanh(J)
    res = run(IsingTarget(_ring(n, J)), n_chains=10, n_rounds=12, n_expl=1, seed=0)
    mean_h = -n * J * (t + t ** (n - 1)) / (1 + t**n)
    assert_z("<H>", res.mean_energy, res.mean_energy_se, mean_h)
    log_z = n * math.log(2 * math.cosh(J)) + math.log1p(math.tanh(J) ** n)
    assert abs(res.log_Z - log_z) < 0.2
