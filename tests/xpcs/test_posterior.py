"""The XPCS shard posterior (``hpcfit.xpcs.posterior``) and CMC against full-data NUTS.

(a) the pooled log-likelihood equals a NumPy computation from the meshgrid maps; (b) names,
bounds and priors follow the NLSQ free-quantity layout and the ``ParamSpace``; (c) its gradient
is finite at the NLSQ warm start; (d) CMC with K = 4 reproduces one full-data NUTS run
(K = 1) — every free quantity's mean within 0.2 full-data sd and sd within 20 %.

Dataset of (c) and (d): N = 40 frames, slots 0° and 60°, σ = 0.002, the embedded truth, contrast
(0.30, 0.28), offset 1. The frame interval is dt = 0.05 s (t = 0.05 … 2 s): with the default
dt = 0.01 s the 0.4 s window barely resolves the reference decay (NLSQ pins alpha_ref at its
bound, D0_ref has sd ≈ 5e4), the posterior is prior-dominated and far from Gaussian, and NUTS
needs ≈ 200 leapfrog steps per draw; consensus Monte Carlo presumes near-Gaussian shard
posteriors and is then off by up to 1.9 sd. With dt = 0.05 s every free quantity is identified
(NLSQ sds match the K = 1 posterior sds within 3 %).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hpcfit.cmc.combine import combine
from hpcfit.cmc.diagnostics import shard_diagnostics
from hpcfit.cmc.nuts import NutsSettings, run_attempt
from hpcfit.cmc.plan import plan_shards
from hpcfit.config import NlsqConfig
from hpcfit.xpcs.model import c2_meshgrid
from hpcfit.xpcs.nlsq import fit
from hpcfit.xpcs.params import NAMES, OFFSET, ParamInfo, make_space
from hpcfit.xpcs.posterior import shard_data, shard_target, warm_start_preconditioner
from hpcfit.xpcs.problem import Problem
from hpcfit.xpcs.synthetic import EMBEDDED, EMBEDDED_FIXED, SyntheticSpec, generate

TRUTH = dict(zip(NAMES, EMBEDDED.truth, strict=True))


# -- (a), (b): a small three-slot dataset ---------------------------------------------------------
SMALL = SyntheticSpec(
    truth=EMBEDDED.truth,
    phi=(0.0, 45.0, 90.0),
    contrast=(0.30, 0.28, 0.26),
    offset=(1.0, 1.0, 1.0),
    sigma=(0.002, 0.003, 0.004),
    n_frames=20,
    seed=7,
)


def spaces():
    """All four scaling layouts, with a custom contrast prior and narrowed physics bounds."""
    contrast = ParamInfo("contrast", "1", 0.31, 0.05, 0.9, 0.4, 0.2)
    common = {
        "start": TRUTH,
        "fixed": EMBEDDED_FIXED,
        "bounds": {"D0_ref": (500.0, 5e4)},
        "priors": {"D0_ref": (4000.0, 2000.0)},
        "contrast": contrast,
        "offset": OFFSET,
    }
    return [
        make_space(**common, vary_contrast=vc, vary_offset=vo)
        for vc in (True, False)
        for vo in (True, False)
    ]


def numpy_loglik(data, space, theta, idx, sigma):
    """Σ log N(y | c2, σ²) with c2 from ``c2_meshgrid`` maps, gathered at the shard's points."""
    problem = Problem.from_data(data, space)
    params, c, b = problem.split_free(theta)
    maps = np.stack(
        [
            np.asarray(c2_meshgrid(params, data.t, data.q[a], data.dt, data.phi[a], c[a], b[a]))
            for a in range(data.n_phi)
        ]
    )
    a, i, j, y = (np.asarray(x)[idx] for x in (problem.a, problem.i, problem.j, problem.y))
    s = sigma[a]
    r = (y - maps[a, i, j]) / s
    return float(np.sum(-0.5 * r * r - np.log(s) - 0.5 * np.log(2.0 * np.pi)))


@pytest.mark.parametrize("k", range(4))
def test_loglik_matches_meshgrid_numpy(k):
    space = spaces()[k]
    data = generate(SMALL)
    sigma = np.asarray(SMALL.sigma)
    target = shard_target(data, space, sigma)
    pooled = data.pooled()
    rng = np.random.default_rng(100 + k)
    idx = np.sort(rng.choice(pooled.size, size=pooled.size // 3, replace=False))
    shard = shard_data(pooled, idx, sigma)
    loglik = jax.jit(target.loglik)
    for _ in range(5):  # random θ well inside the box (a 10 % band around its middle)
        mid, width = 0.5 * (target.lo + target.hi), target.hi - target.lo
        theta = mid + 0.1 * width * rng.uniform(-1.0, 1.0, size=target.size)
        got = float(loglik(jnp.asarray(theta), shard))
        want = numpy_loglik(data, space, theta, idx, sigma)
        assert abs(got - want) <= 1e-10 * abs(want), (got, want)


def test_shard_data_fields():
    data = generate(SMALL)
    pooled = data.pooled()
    sigma = np.asarray(SMALL.sigma)
    idx = np.array([0, 5, 200, 400, 569])
    shard = shard_data(pooled, idx, sigma)
    np.testing.assert_array_equal(shard.a, pooled.a[idx])
    np.testing.assert_array_equal(shard.i, pooled.i[idx])
    np.testing.assert_array_equal(shard.j, pooled.j[idx])
    np.testing.assert_array_equal(shard.y, pooled.y[idx])
    np.testing.assert_array_equal(shard.sigma_points, sigma[pooled.a[idx]])
    np.testing.assert_array_equal(shard.weight, 1.0)
    assert shard.a.dtype == jnp.int32 and shard.y.dtype == jnp.float64
    full = shard_data(Problem.from_data(data, make_space()), None, sigma)  # a Problem works too
    assert full.y.size == pooled.size
    with pytest.raises(ValueError, match="sigma"):
        shard_data(pooled, idx, np.array([0.002, -1.0, 0.003]))


@pytest.mark.parametrize("scaling", ["sample", "marginal"])
@pytest.mark.parametrize("sample_sigma", [False, True])
def test_padding_points_add_nothing(scaling, sample_sigma):
    """A shard padded with weight-0 points has the log-likelihood of the shard itself (both
    scalings, σ fixed or sampled), so every shard of a job can share one padded shape."""
    data = generate(SMALL)
    space = spaces()[0]
    sigma = np.asarray(SMALL.sigma)
    target = shard_target(
        data, space, sigma, sample_sigma=sample_sigma, scaling=scaling, n_shards=2
    )
    pooled = data.pooled()
    idx = np.sort(np.random.default_rng(5).choice(pooled.size, size=150, replace=False))
    plain, padded = shard_data(pooled, idx, sigma), shard_data(pooled, idx, sigma, size=197)
    assert padded.y.size == 197 and float(jnp.sum(padded.weight)) == 150.0
    np.testing.assert_array_equal(np.asarray(padded.weight[150:]), 0.0)
    assert float(jnp.sum(plain.weight)) == 150.0
    rng = np.random.default_rng(6)
    boxed = np.isfinite(target.hi)  # σ_a (lo 0, hi ∞) is drawn near σ itself
    mid = np.where(boxed, 0.5 * (target.lo + target.hi), np.resize(sigma, target.size))
    width = np.where(boxed, target.hi - target.lo, mid)
    for _ in range(3):
        theta = jnp.asarray(mid + 0.1 * width * rng.uniform(-1.0, 1.0, size=target.size))
        want = float(target.loglik(theta, plain))
        assert float(target.loglik(theta, padded)) == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="pad"):
        shard_data(pooled, idx, sigma, size=100)


@pytest.mark.parametrize("k", range(4))
def test_layout_bounds_and_priors_follow_nlsq(k):
    space = spaces()[k]
    data = generate(SMALL)
    target = shard_target(data, space, np.asarray(SMALL.sigma))
    problem = Problem.from_data(data, space)
    assert target.names == problem.free_names()
    lo, hi = problem.unknown_bounds(fit_mode=True)
    np.testing.assert_array_equal(target.lo, lo)
    np.testing.assert_array_equal(target.hi, hi)
    np.testing.assert_array_equal(target.prior_sd, problem.unknown_prior_sd(True))
    free = space.free_index
    n_phys = free.size
    np.testing.assert_array_equal(target.prior_mean[:n_phys], space.prior_mean[free])
    np.testing.assert_array_equal(target.lo[:n_phys], space.lo[free])
    assert target.lo[0] == 500.0 and target.prior_mean[0] == 4000.0  # overrides reach the prior
    for p, name in enumerate(target.names[n_phys:], start=n_phys):
        info = space.contrast if name.startswith("contrast_") else space.offset
        assert (target.lo[p], target.hi[p]) == (info.lo, info.hi)
        assert (target.prior_mean[p], target.prior_sd[p]) == (info.prior_mean, info.prior_sd)
    n_scale = data.n_phi * (int(space.vary_contrast) + int(space.vary_offset))
    assert target.size == n_phys + n_scale


def test_fixed_scaling_is_held_at_configured_value():
    """With contrast fixed, changing ParamInfo.default changes the likelihood as c2 predicts."""
    data = generate(SMALL)
    sigma = np.asarray(SMALL.sigma)
    space = spaces()[2]  # contrast fixed at 0.31, offset free
    target = shard_target(data, space, sigma)
    theta = np.concatenate([np.asarray(EMBEDDED.truth)[space.free_index], [1.0, 1.0, 1.0]])
    idx = np.arange(data.pooled().size)
    got = float(target.loglik(jnp.asarray(theta), shard_data(data.pooled(), idx, sigma)))
    assert got == pytest.approx(numpy_loglik(data, space, theta, idx, sigma), rel=1e-10)


# -- (c), (d): CMC with K = 4 against full-data NUTS -----------------------------------------------
ITEM3_FREE = ("D0_ref", "alpha_ref", "D0_sample", "alpha_sample", "v0", "f0")
ITEM3 = SyntheticSpec(
    truth=EMBEDDED.truth,
    phi=(0.0, 60.0),
    contrast=(0.30, 0.28),
    offset=(1.0, 1.0),
    sigma=(0.002, 0.002),
    n_frames=40,
    dt=0.05,
    seed=2024,
)
ITEM3_SETTINGS = NutsSettings(num_warmup=500, num_samples=1000, num_chains=4)
CMC_SEED = 0


@pytest.fixture(scope="module")
def item3():
    data = generate(ITEM3)
    space = make_space(start=TRUTH, fixed=tuple(n for n in NAMES if n not in ITEM3_FREE))
    result = fit(data, space, NlsqConfig())
    sigma = np.asarray(ITEM3.sigma)
    return data, space, result, shard_target(data, space, sigma), sigma


def test_warm_start_layout_and_gradient(item3):
    data, _, result, target, sigma = item3
    assert result.usable and not result.unidentified, result.flags
    assert result.theta_names == target.names
    shard = shard_data(data.pooled(), None, sigma)
    value, grad = jax.value_and_grad(target.loglik)(jnp.asarray(result.theta), shard)
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(np.asarray(grad))) and np.any(np.asarray(grad) != 0.0)
    pc = warm_start_preconditioner(result, target, 4)
    assert pc.names == target.names and pc.fallback == () and not pc.diagonal_only


def test_warm_start_preconditioner_rejects_other_layout(item3):
    data, _, result, _, sigma = item3
    other = shard_target(data, make_space(start=TRUTH, fixed=EMBEDDED_FIXED), sigma)
    with pytest.raises(ValueError, match="target names"):
        warm_start_preconditioner(result, other, 1)


def cmc(item3, k: int) -> tuple[np.ndarray, list]:
    """plan → one attempt per shard (prior^(1/K)) → consensus → θ = T(u); draws (S, P)."""
    data, _, result, target, sigma = item3
    pooled = data.pooled()
    plan = plan_shards(pooled.a, data.n_phi, CMC_SEED, k)
    pc = warm_start_preconditioner(result, target, k)
    shards, diags = [], []
    for s in range(k):
        res = run_attempt(
            target,
            shard_data(pooled, plan.indices(s), sigma),
            pc,
            n_shards=k,
            seed=CMC_SEED,
            shard_id=s,
            attempt=0,
            settings=ITEM3_SETTINGS,
        )
        assert res.status == "ok", res.message
        diags.append(
            shard_diagnostics(res.draws_theta, res.extra, ITEM3_SETTINGS.max_tree_depth, pc.names)
        )
        shards.append(res.draws_u)
    combined = combine(shards, target.names, "consensus")
    theta = np.asarray(target.transform.forward(jnp.asarray(combined.draws)))
    return theta.reshape(-1, target.size), diags


@pytest.mark.slow
def test_cmc_k4_matches_full_data_nuts(item3):
    """CMC with K = 4 reproduces one full-data NUTS run (measured: worst |Δmean| 0.178 sd,
    worst |sd ratio − 1| 0.110)."""
    full, diag1 = cmc(item3, 1)
    consensus, diag4 = cmc(item3, 4)
    for d in diag1 + diag4:  # a healthy sampler, so the comparison is about CMC itself
        assert d.n_divergent == 0 and max(d.rhat) < 1.01 and min(d.ess_bulk) > 1000, d
    m1, s1 = full.mean(axis=0), full.std(axis=0, ddof=1)
    m4, s4 = consensus.mean(axis=0), consensus.std(axis=0, ddof=1)
    mean_z = np.abs(m4 - m1) / s1
    sd_err = np.abs(s4 / s1 - 1.0)
    report = {
        n: (round(float(z), 3), round(float(e), 3))
        for n, z, e in zip(item3[3].names, mean_z, sd_err, strict=True)
    }
    assert np.all(mean_z <= 0.2) and np.all(sd_err <= 0.2), report


def test_sampled_sigma_target_matches_fixed_sigma_at_equal_values(item3):
    data, space, result, target, sigma = item3
    sampled = shard_target(data, space, sigma, sample_sigma=True)
    assert sampled.names == (*target.names, "sigma_0", "sigma_1")
    assert np.all(sampled.lo[-2:] == 0.0) and np.all(np.isinf(sampled.hi[-2:]))
    assert np.array_equal(sampled.prior_sd[-2:], 2.0 * sigma)  # HalfNormal(2σ̂)
    shard = shard_data(data.pooled(), None, sigma)
    theta = jnp.asarray(result.theta)
    fixed = float(target.loglik(theta, shard))
    same = float(sampled.loglik(jnp.concatenate([theta, jnp.asarray(sigma)]), shard))
    assert same == pytest.approx(fixed, rel=1e-13)
    wider = float(sampled.loglik(jnp.concatenate([theta, jnp.asarray(2 * sigma)]), shard))
    assert wider != pytest.approx(fixed, rel=1e-6)
    counts = np.bincount(data.pooled().a)
    pc = warm_start_preconditioner(result, sampled, 4, sigma=sigma, slot_counts=counts)
    assert pc.names == sampled.names
    assert np.allclose(pc.u_hat[-2:], np.log(sigma))
    assert np.allclose(np.diag(pc.cov_w)[-2:], 4.0 / (2.0 * counts))  # K/(2 M_a) in u = log σ
