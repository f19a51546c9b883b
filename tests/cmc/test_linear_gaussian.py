"""Consensus Monte Carlo end to end on conjugate problems.

Bayesian linear regression with a Normal prior has the closed-form posterior
S_n⁻¹ = S₀⁻¹ + XᵀX/σ², m_n = S_n(S₀⁻¹m₀ + Xᵀy/σ²). The real pipeline — plan_shards →
run_attempt per shard with the prior tempered by 1/K → combine(..., "consensus") → θ = T(u) —
must match it (means within 0.1 sd, sds within 10 %, correlations within 0.05), and the two
known bugs must fail the same criteria: an untempered prior (prior precision counted K times,
sds ≈ 24 % too small here) and the heterodyne σ/√K likelihood (sds ≈ 2× too small).
With K = 1 the combined draws are shard 0's, bitwise, and equal a hand-built NumPyro
run keyed by fold_in(PRNGKey(seed), 0). Whiten and mass potentials differ by a
constant, and with a posterior piled against a bound the combined draws stay in the box.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer import MCMC, NUTS, init_to_value
from numpyro.infer.util import potential_energy

from hpcfit.cmc.combine import combine
from hpcfit.cmc.nuts import EXTRA_FIELDS, NutsSettings, run_attempt
from hpcfit.cmc.plan import plan_shards
from hpcfit.cmc.precondition import from_warm_start
from hpcfit.cmc.target import ShardTarget, numpyro_model

N, P, SIGMA, K, SEED = 2000, 3, 0.5, 4, 0
BETA = np.array([1.0, -0.5, 0.25])
PRIOR_SD = 0.02  # prior precision 2500 vs data precision ≈ n/σ² = 8000 per coefficient
NAMES = ("b0", "b1", "b2")
SETTINGS = NutsSettings(num_warmup=300, num_samples=2000, num_chains=4)

rng = np.random.default_rng(20240611)
X = rng.normal(size=(N, P))
Y = X @ BETA + SIGMA * rng.normal(size=N)


def loglik(theta, data):
    """Normal log-likelihood of the shard's rows (σ from the data, so it can be σ/√K)."""
    r = (data["y"] - data["x"] @ theta) / data["sigma"]
    return -0.5 * jnp.sum(r**2) - data["y"].size * jnp.log(data["sigma"])


# The prior is N(0, 0.02²·I): infinite bounds give the identity transform and NumPyro's plain
# Normal (TruncatedNormal with no bound), so the posterior is exactly the conjugate one.
TARGET = ShardTarget(NAMES, [-np.inf] * P, [np.inf] * P, np.zeros(P), [PRIOR_SD] * P, loglik)


def analytic():
    prec = np.eye(P) / PRIOR_SD**2 + X.T @ X / SIGMA**2
    cov = np.linalg.inv(prec)
    return cov @ (X.T @ Y / SIGMA**2), cov


def criteria(draws: np.ndarray) -> tuple[bool, dict[str, float]]:
    """The pass criteria against the analytic posterior; also returns the three worst errors."""
    mean, cov = analytic()
    sd = np.sqrt(np.diag(cov))
    flat = draws.reshape(-1, P)
    c_hat = np.cov(flat, rowvar=False)
    sd_hat = np.sqrt(np.diag(c_hat))
    err = {
        "mean_z": float(np.max(np.abs(flat.mean(axis=0) - mean) / sd)),
        "sd_ratio_err": float(np.max(np.abs(sd_hat / sd - 1.0))),
        "corr_err": float(
            np.max(np.abs(c_hat / np.outer(sd_hat, sd_hat) - cov / np.outer(sd, sd)))
        ),
    }
    ok = err["mean_z"] <= 0.1 and err["sd_ratio_err"] <= 0.1 and err["corr_err"] <= 0.05
    return ok, err


def warm_start(k: int):
    """The NLSQ analogue: OLS estimate and covariance σ²(XᵀX)⁻¹ on all the data."""
    ols = np.linalg.solve(X.T @ X, X.T @ Y)
    return from_warm_start(
        NAMES, ols, SIGMA**2 * np.linalg.inv(X.T @ X), TARGET.lo, TARGET.hi, TARGET.prior_sd, k
    )


def run_shards(target, pc, y, sigma: float, k: int, prior_k: int, settings: NutsSettings):
    """plan → one NUTS attempt per shard with prior exponent 1/prior_k; every attempt ok."""
    plan = plan_shards(np.zeros(N, dtype=np.int32), 1, SEED, k)
    results = []
    for s in range(k):
        idx = plan.indices(s)
        data = {"x": jnp.asarray(X[idx]), "y": jnp.asarray(y[idx]), "sigma": jnp.asarray(sigma)}
        res = run_attempt(
            target, data, pc, n_shards=prior_k, seed=SEED, shard_id=s, attempt=0, settings=settings
        )
        assert res.status == "ok", res.message
        results.append(res)
    return results


def pipeline(prior_k: int, sigma: float, k: int = K, settings: NutsSettings = SETTINGS):
    """plan → one attempt per shard (prior exponent 1/prior_k) → consensus → θ = T(u)."""
    shards = [r.draws_u for r in run_shards(TARGET, warm_start(k), Y, sigma, k, prior_k, settings)]
    combined = combine(shards, NAMES, "consensus")
    return np.asarray(TARGET.transform.forward(combined.draws)), shards, combined


def test_consensus_matches_analytic_posterior():
    theta, _, _ = pipeline(prior_k=K, sigma=SIGMA)
    assert theta.shape == (4, 2000, P)
    ok, err = criteria(theta)
    assert ok, err


def test_untempered_prior_fails():
    theta, _, _ = pipeline(prior_k=1, sigma=SIGMA)
    ok, err = criteria(theta)
    assert not ok, err
    assert err["sd_ratio_err"] > 0.15, err  # expected ≈ 1 − √(10500/18000) ≈ 0.24


def test_sigma_over_sqrt_k_fails():
    theta, _, _ = pipeline(prior_k=1, sigma=SIGMA / np.sqrt(K))
    ok, err = criteria(theta)
    assert not ok, err
    assert err["sd_ratio_err"] > 0.35, (
        err
    )  # expected 1 − √(10500/42000) = 0.5: prior and data both K×


def test_one_shard_is_shard0_and_a_direct_run():
    small = NutsSettings(num_warmup=100, num_samples=300)
    theta, shards, combined = pipeline(prior_k=1, sigma=SIGMA, k=1, settings=small)
    assert combined.draws is shards[0]
    np.testing.assert_array_equal(combined.draws, shards[0])
    # The same shard run by hand with NumPyro, keyed from fold_in(PRNGKey(seed), 0).
    k_init, k_mcmc = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(SEED), 0))
    model = numpyro_model(TARGET, warm_start(1), 1, "whiten")
    z0 = 0.5 * jax.random.normal(k_init, (4, P), dtype=jnp.float64)
    kernel = NUTS(
        model,
        target_accept_prob=0.9,
        max_tree_depth=10,
        init_strategy=init_to_value(values={"z": jnp.zeros(P)}),
    )
    mcmc = MCMC(
        kernel,
        num_warmup=100,
        num_samples=300,
        num_chains=4,
        chain_method="parallel",
        progress_bar=False,
    )
    data = {"x": jnp.asarray(X), "y": jnp.asarray(Y), "sigma": jnp.asarray(SIGMA)}
    mcmc.run(k_mcmc, data, init_params={"z": z0}, extra_fields=EXTRA_FIELDS)
    direct = np.asarray(mcmc.get_samples(group_by_chain=True)["u"])
    np.testing.assert_array_equal(combined.draws, direct)
    np.testing.assert_array_equal(theta, direct)  # identity transform


BOX_LO, BOX_HI = np.array([-2.0, -2.0, 0.0]), np.array([2.0, 2.0, 1.0])


def box_target() -> ShardTarget:
    return ShardTarget(NAMES, BOX_LO, BOX_HI, [0.5, 0.0, 0.5], [1.0, 1.0, 0.5], loglik)


def test_whiten_and_mass_potentials_differ_by_a_constant():
    target = box_target()
    theta_hat = np.array([0.9, -0.4, 0.3])
    pc = from_warm_start(
        NAMES, theta_hat, np.diag([4e-4, 4e-4, 1e-3]), BOX_LO, BOX_HI, target.prior_sd, K
    )
    data = {"x": jnp.asarray(X[:500]), "y": jnp.asarray(Y[:500]), "sigma": jnp.asarray(SIGMA)}
    models = {m: numpyro_model(target, pc, K, m) for m in ("whiten", "mass", "none")}
    diffs = []
    for z in np.random.default_rng(5).normal(scale=2.0, size=(8, P)):
        u = pc.u_hat + pc.chol @ z  # the same point in both coordinate systems
        e_w = float(potential_energy(models["whiten"], (data,), {}, {"z": jnp.asarray(z)}))
        sites = {n: jnp.asarray(u[p]) for p, n in enumerate(NAMES)}
        e_m = float(potential_energy(models["mass"], (data,), {}, sites))
        assert e_m == float(potential_energy(models["none"], (data,), {}, sites))
        diffs.append(e_w - e_m)
    spread = np.ptp(diffs)
    assert spread <= 1e-9 * max(1.0, abs(e_m)), diffs  # constant (0 here: log|det L| dropped)


@pytest.mark.parametrize("mode", ["whiten", "mass"])
def test_posterior_at_a_bound_stays_inside(mode):
    """b2 ∈ [0, 1] with data pulling it to −0.05: its posterior piles up against 0."""
    target = box_target()
    y = X @ np.array([1.0, -0.5, -0.05]) + SIGMA * np.random.default_rng(9).normal(size=N)
    n_shards = 2
    pc = from_warm_start(
        NAMES, [1.0, -0.5, 0.0], np.diag([1.25e-4] * 3), BOX_LO, BOX_HI, target.prior_sd, n_shards
    )
    assert pc.fallback == ("b2",)  # pinned at its bound
    settings = NutsSettings(num_warmup=200, num_samples=500, precondition=mode)
    shards = []
    for res in run_shards(target, pc, y, SIGMA, n_shards, n_shards, settings):
        assert np.all((res.draws_theta >= BOX_LO) & (res.draws_theta <= BOX_HI))
        shards.append(res.draws_u)
    theta = np.asarray(target.transform.forward(combine(shards, NAMES, "consensus").draws))
    assert np.all(np.isfinite(theta))
    assert np.all((theta >= BOX_LO) & (theta <= BOX_HI))
    assert np.median(theta[..., 2]) < 0.02  # the posterior really sits at the bound
