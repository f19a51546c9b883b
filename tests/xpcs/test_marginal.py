"""Contrast and offset integrated out of the shard likelihood (``cmc.scaling=marginal``).

(a) the closed form of ``hpcfit.xpcs.marginal`` equals the Gaussian integral computed another
way (SciPy's multivariate Normal of z = Xβ + ε, and conditioning by the Schur complement);
(b) the XPCS marginal target equals the exact (Laplace, exact for a quadratic) integral of the
sampled-scaling likelihood times the tempered Normal priors, for every scaling layout;
(c) drawn-back contrast/offset follow their conditional Normal; (d) NUTS on the marginal target
and on the sampled target give the same posterior of every reported quantity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from hpcfit.cmc.nuts import NutsSettings, run_attempt
from hpcfit.config import NlsqConfig
from hpcfit.xpcs import marginal
from hpcfit.xpcs.nlsq import fit
from hpcfit.xpcs.params import NAMES, make_space
from hpcfit.xpcs.posterior import shard_data, shard_target, warm_start_preconditioner
from hpcfit.xpcs.synthetic import EMBEDDED, generate
from tests.xpcs.test_posterior import ITEM3, ITEM3_FREE, SMALL, TRUTH, spaces


def _linear_problem(q_cols: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    m, n_phi = 30, 3
    a = np.repeat(np.arange(n_phi), m // n_phi)
    g = rng.uniform(0.0, 1.0, m)
    cols = np.stack([np.ones(m), g], axis=1)[:, 2 - q_cols :]
    sigma = np.array([0.05, 0.1, 0.2])
    mu, var = np.array([1.0, 0.5])[2 - q_cols :], np.array([0.3, 0.2])[2 - q_cols :] ** 2
    z = cols @ np.array([1.1, 0.4])[2 - q_cols :] + sigma[a] * rng.normal(size=m)
    return cols, z, a, sigma, mu, var


@pytest.mark.parametrize("q_cols", [1, 2])
def test_closed_form_is_the_gaussian_integral_and_conditional(q_cols):
    cols, z, a, sigma, mu, var = _linear_problem(q_cols)
    got = marginal.conditional(*(jnp.asarray(x) for x in (cols, z, a, sigma, mu, var)))
    want = 0.0
    for k in range(sigma.size):
        x, zk, v = cols[a == k], z[a == k], np.diag(var)
        s = x @ v @ x.T + sigma[k] ** 2 * np.eye(len(x))  # z_a ~ N(Xμ, XVXᵀ + σ²I)
        want += multivariate_normal(x @ mu, s).logpdf(zk)
        mean = mu + v @ x.T @ np.linalg.solve(s, zk - x @ mu)  # Schur complement
        cov = v - v @ x.T @ np.linalg.solve(s, x @ v)
        lower = np.asarray(got.chol_precision[k])
        np.testing.assert_allclose(np.asarray(got.mean[k]), mean, rtol=1e-12)
        np.testing.assert_allclose(np.linalg.inv(lower @ lower.T), cov, rtol=1e-10, atol=1e-18)
    assert float(got.log_marginal) == pytest.approx(want, rel=1e-12)


def test_padding_points_of_weight_zero_change_nothing():
    cols, z, a, sigma, mu, var = _linear_problem(2)
    base = marginal.conditional(*(jnp.asarray(x) for x in (cols, z, a, sigma, mu, var)))
    pad = 7
    padded = marginal.conditional(
        jnp.asarray(np.vstack([cols, np.full((pad, 2), 0.3)])),
        jnp.asarray(np.r_[z, np.full(pad, 5.0)]),
        jnp.asarray(np.r_[a, np.zeros(pad, int)]),
        *(jnp.asarray(x) for x in (sigma, mu, var)),
        weight=jnp.asarray(np.r_[np.ones(z.size), np.zeros(pad)]),
    )
    assert float(padded.log_marginal) == pytest.approx(float(base.log_marginal), rel=1e-13)
    np.testing.assert_allclose(np.asarray(padded.mean), np.asarray(base.mean), rtol=1e-13)


@pytest.mark.parametrize("k", [0, 1, 2])  # both free; contrast free only; offset free only
@pytest.mark.parametrize("n_shards", [1, 3])
def test_marginal_target_is_the_integral_of_the_sampled_likelihood(k, n_shards):
    """log ∫ L(θ, β) Π N(β | μ, K·sd²) dβ by a Newton step and the autodiff Hessian in β
    (exact: the integrand is Gaussian in β), against the marginal target's loglik."""
    space, data, sigma = spaces()[k], generate(SMALL), np.asarray(SMALL.sigma)
    full = shard_target(data, space, sigma)
    marg = shard_target(data, space, sigma, scaling="marginal", n_shards=n_shards)
    n_phys = marg.size
    assert marg.names == full.names[:n_phys] and marg.output_names == full.names
    shard = shard_data(data.pooled(), None, sigma)
    mean, var = full.prior_mean[n_phys:], n_shards * full.prior_sd[n_phys:] ** 2
    rng = np.random.default_rng(k)
    for _ in range(3):
        phys = np.asarray(EMBEDDED.truth)[space.free_index] * rng.uniform(0.9, 1.1, n_phys)

        def f(beta, phys=phys):
            log_prior = -0.5 * jnp.sum((beta - mean) ** 2 / var + jnp.log(2 * jnp.pi * var))
            return full.loglik(jnp.concatenate([jnp.asarray(phys), beta]), shard) + log_prior

        hess = jax.hessian(f)(jnp.asarray(mean))
        beta = mean - np.linalg.solve(hess, np.asarray(jax.grad(f)(jnp.asarray(mean))))
        _, logdet = np.linalg.slogdet(-np.asarray(hess))
        want = float(f(jnp.asarray(beta))) + 0.5 * beta.size * np.log(2 * np.pi) - 0.5 * logdet
        got = float(marg.loglik(jnp.asarray(phys), shard))
        assert got == pytest.approx(want, rel=1e-11, abs=1e-7)


def test_drawn_back_scaling_follows_its_conditional_normal():
    space, data, sigma = spaces()[0], generate(SMALL), np.asarray(SMALL.sigma)
    marg = shard_target(data, space, sigma, scaling="marginal", n_shards=2)
    shard = shard_data(data.pooled(), None, sigma)
    phys = np.asarray(EMBEDDED.truth)[space.free_index]
    draws = 4000
    theta = np.broadcast_to(phys, (2, draws // 2, phys.size)).copy()
    full, u, margin = marg.completion.complete(theta, shard, jax.random.PRNGKey(3))
    assert full.shape == (2, draws // 2, len(marg.output_names)) and np.all(np.isfinite(u))
    np.testing.assert_array_equal(full[..., : phys.size], theta)
    beta = full.reshape(draws, -1)[:, phys.size :]
    n_phi = data.n_phi
    for a in range(n_phi):  # columns: contrast_0..n, offset_0..n; the conditional is per slot
        f = jax.hessian(
            lambda b, a=a: marg_full_logpost(space, data, sigma, shard, phys, b, a, n_shards=2)
        )(jnp.asarray([np.mean(beta[:, a]), np.mean(beta[:, n_phi + a])]))
        cov = np.linalg.inv(-np.asarray(f))
        got = np.cov(np.stack([beta[:, a], beta[:, n_phi + a]]))
        sd = np.sqrt(np.diag(cov))
        np.testing.assert_allclose(np.sqrt(np.diag(got)), sd, rtol=0.06)  # 4000 draws: ≈ 2.2 %
        assert abs(got[0, 1] / np.sqrt(got[0, 0] * got[1, 1]) - cov[0, 1] / np.prod(sd)) < 0.05
    assert margin > 5.0


def marg_full_logpost(space, data, sigma, shard, phys, beta2, a, n_shards):
    """log L + tempered Normal log prior as a function of slot a's (contrast, offset) only."""
    full = shard_target(data, space, sigma)
    n_phys, n_phi = phys.size, data.n_phi
    rest = full.prior_mean[n_phys:]  # the other slots at their prior mean (they separate)
    beta = jnp.asarray(rest).at[a].set(beta2[0]).at[n_phi + a].set(beta2[1])
    mean, var = full.prior_mean[n_phys:], n_shards * full.prior_sd[n_phys:] ** 2
    log_prior = -0.5 * jnp.sum((beta - mean) ** 2 / var)
    return full.loglik(jnp.concatenate([jnp.asarray(phys), beta]), shard) + log_prior


@pytest.fixture(scope="module")
def item3():
    data = generate(ITEM3)
    space = make_space(start=TRUTH, fixed=tuple(n for n in NAMES if n not in ITEM3_FREE))
    result = fit(data, space, NlsqConfig())
    return data, space, result, np.asarray(ITEM3.sigma)


@pytest.mark.slow
def test_nuts_on_marginal_and_sampled_targets_agree(item3):
    """Same data and priors, K = 2 shard 0 in both: every reported quantity's mean within 0.2
    posterior sd and sd within 15 %; the marginal target needs fewer leapfrog steps."""
    from hpcfit.cmc.plan import plan_shards

    data, space, result, sigma = item3
    pooled = data.pooled()
    shard = shard_data(pooled, plan_shards(pooled.a, data.n_phi, 0, 2).indices(0), sigma)
    settings = NutsSettings(num_warmup=400, num_samples=1000, num_chains=2, dense_mass=True)
    out = {}
    for scaling in ("sample", "marginal"):
        target = shard_target(data, space, sigma, scaling=scaling, n_shards=2)
        pc = warm_start_preconditioner(result, target, 2)
        res = run_attempt(
            target, shard, pc, n_shards=2, seed=0, shard_id=0, attempt=0, settings=settings
        )
        assert res.status == "ok", res.message
        assert res.names == result.theta_names
        out[scaling] = (res.draws_theta.reshape(-1, len(res.names)), np.mean(res.num_steps))
    (ds, steps_s), (dm, steps_m) = out["sample"], out["marginal"]
    names = result.theta_names
    sd = ds.std(axis=0, ddof=1)
    mean_z = np.abs(dm.mean(axis=0) - ds.mean(axis=0)) / sd
    sd_err = np.abs(dm.std(axis=0, ddof=1) / sd - 1.0)
    report = {n: (round(z, 3), round(e, 3)) for n, z, e in zip(names, mean_z, sd_err, strict=True)}
    assert np.all(mean_z <= 0.2) and np.all(sd_err <= 0.15), report
    assert steps_m < steps_s, (steps_m, steps_s)
