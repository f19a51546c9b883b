"""Combination in u.

Truths: the conjugate-Gaussian identities of parametric/consensus on shards with exact sample
moments, the precision-weighted product of iid Gaussian shards, parity with a hand-written
NumPy consensus, the K = 1 identity, and the robust rule on planted outliers.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from hpcfit.cmc.combine import combine, mad_outliers

NAMES = ("a", "b", "c")
P, K = 3, 4


def random_spd(rng: np.random.Generator, p: int) -> np.ndarray:
    a = rng.normal(size=(p, p))
    return a @ a.T + p * np.eye(p)


def exact_moments(rng, n: int, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """n draws whose sample mean is ``mean`` and sample covariance (ddof = 1) is ``cov``."""
    z = rng.normal(size=(n, mean.size))
    z = z - z.mean(axis=0)
    white = np.linalg.solve(np.linalg.cholesky(np.cov(z, rowvar=False)), z.T).T
    return mean + white @ np.linalg.cholesky(cov).T


def rel_fro(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture
def conjugate():
    """K = 4 shards (4 chains × 500), exact means μ_k and exact covariance K·Σ."""
    rng = np.random.default_rng(20240611)
    sigma = random_spd(rng, P)
    mus = rng.normal(scale=3.0, size=(K, P))
    shards = [exact_moments(rng, 2000, mus[k], K * sigma).reshape(4, 500, P) for k in range(K)]
    return sigma, mus, shards


def test_parametric_recovers_sigma_and_mean(conjugate):
    sigma, mus, shards = conjugate
    out = combine(shards, NAMES, "parametric", rng_key=jax.random.PRNGKey(7))
    assert rel_fro(out.sigma, sigma) < 1e-10
    assert rel_fro(out.mu, mus.mean(axis=0)) < 1e-10
    assert out.draws.shape == (4, 500, P)
    assert out.used == (0, 1, 2, 3) and out.excluded == ()
    again = combine(shards, NAMES, "parametric", rng_key=jax.random.PRNGKey(7))
    other = combine(shards, NAMES, "parametric", rng_key=jax.random.PRNGKey(8))
    assert np.array_equal(again.draws, out.draws)
    assert not np.array_equal(other.draws, out.draws)
    # the draws come from N(μ, Σ): 2000 draws put the mean within 4 standard errors
    se = np.sqrt(np.diag(sigma) / 2000)
    assert np.all(np.abs(out.draws.reshape(-1, P).mean(axis=0) - out.mu) < 4 * se)


def test_consensus_on_exact_moments(conjugate):
    sigma, mus, shards = conjugate
    out = combine(shards, NAMES, "consensus")
    flat = out.draws.reshape(-1, P)
    # consensus is linear in the draws, so its mean is exactly the precision-weighted mean
    assert rel_fro(flat.mean(axis=0), mus.mean(axis=0)) < 1e-10
    assert rel_fro(np.cov(flat, rowvar=False), sigma) < 0.05


def test_consensus_iid_shards_match_product_of_gaussians():
    """Heterogeneous iid Gaussian shards, S = 20 000: the product N(m*, Σ*)."""
    rng = np.random.default_rng(5)
    covs = [K * random_spd(rng, P) for _ in range(K)]
    mus = rng.normal(scale=4.0, size=(K, P))
    shards = [rng.multivariate_normal(mus[k], covs[k], size=20000) for k in range(K)]
    shards = [s.reshape(4, 5000, P) for s in shards]
    prec = [np.linalg.inv(c) for c in covs]
    sigma_star = np.linalg.inv(sum(prec))
    m_star = sigma_star @ sum(w @ m for w, m in zip(prec, mus, strict=True))
    sd = np.sqrt(np.diag(sigma_star))

    flat = combine(shards, NAMES, "consensus").draws.reshape(-1, P)
    assert rel_fro(np.cov(flat, rowvar=False), sigma_star) < 0.05
    assert np.all(np.abs(flat.mean(axis=0) - m_star) < 0.05 * sd)
    # calibration: an unweighted average of the shard draws would fail the mean criterion
    assert np.any(np.abs(mus.mean(axis=0) - m_star) > 0.05 * sd)


def test_consensus_parity_with_numpy():
    rng = np.random.default_rng(11)
    shards = [
        rng.multivariate_normal(rng.normal(size=P), random_spd(rng, P), size=600).reshape(3, 200, P)
        for _ in range(K)
    ]
    flat = [s.reshape(-1, P) for s in shards]
    weights = [np.linalg.inv(np.cov(f, rowvar=False)) for f in flat]
    total = np.linalg.inv(sum(weights))
    expected = sum(f @ (total @ w).T for f, w in zip(flat, weights, strict=True))
    out = combine(shards, NAMES, "consensus")
    assert out.draws.shape == (3, 200, P)
    np.testing.assert_allclose(out.draws, expected.reshape(3, 200, P), rtol=1e-10, atol=1e-12)


def test_consensus_single_parameter_parity():
    rng = np.random.default_rng(12)
    shards = [rng.normal(loc=k, scale=1 + k, size=(2, 300, 1)) for k in range(3)]
    w = np.array([1 / np.var(s, ddof=1) for s in shards])
    expected = sum(wk * s for wk, s in zip(w, shards, strict=True)) / w.sum()
    out = combine(shards, ("a",), "consensus")
    np.testing.assert_allclose(out.draws, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["consensus", "parametric", "robust"])
def test_single_shard_is_returned_bitwise(method):
    x = np.random.default_rng(3).normal(size=(4, 100, P))
    snapshot = x.tobytes()
    out = combine([x], NAMES, method, shard_ids=[0])
    assert out.draws is x
    assert out.draws.tobytes() == snapshot
    assert out.used == (0,) and out.excluded == ()


def _five_shards(rng):
    ids = [0, 1, 3, 4, 6]
    shards = [exact_moments(rng, 800, np.zeros(P), np.eye(P)).reshape(2, 400, P) for _ in ids]
    means = rng.normal(scale=0.02, size=(len(ids), P))  # θ-space shard means
    return ids, shards, means


def test_robust_drops_planted_outlier():
    ids, shards, means = _five_shards(np.random.default_rng(21))
    means[2, 1] += 50.0  # shard id 3, parameter "b", 50 sd (sd = 1) away
    out = combine(shards, NAMES, "robust", shard_ids=ids, theta_means=means)
    assert out.used == (0, 1, 4, 6)
    assert len(out.excluded) == 1
    sid, reason = out.excluded[0]
    assert sid == 3 and "b z=" in reason and "a z=" not in reason and "c z=" not in reason
    rest = combine([shards[k] for k in (0, 1, 3, 4)], NAMES, "consensus")
    assert np.array_equal(out.draws, rest.draws)


@pytest.mark.parametrize("n_shards", [2, 3])
def test_robust_needs_three_remaining(n_shards):
    ids, shards, means = _five_shards(np.random.default_rng(22))
    means[0, 0] += 50.0
    out = combine(shards[:n_shards], NAMES, "robust", theta_means=means[:n_shards])
    assert out.excluded == () and out.used == tuple(range(n_shards))
    assert mad_outliers(means[:n_shards], NAMES, 3.5) == []


def test_robust_mad_zero_flags_nothing():
    means = np.zeros((5, P))
    means[4] = [9.0, 9.0, 9.0]  # four equal shards: MAD = 0 on every parameter
    assert mad_outliers(means, NAMES, 3.5) == []
    means[:4, 0] = [0.0, 0.1, -0.1, 0.05]  # now parameter "a" has MAD > 0 and flags shard 4
    flagged = mad_outliers(means, NAMES, 3.5)
    assert (
        [k for k, _ in flagged] == [4] and "a z=" in flagged[0][1] and "b z=" not in flagged[0][1]
    )


def _ill_conditioned(rng):
    shards = [rng.normal(size=(2, 300, P)) for _ in range(K)]
    bad = shards[2].copy()
    bad[..., 2] = bad[..., 0] + 1e-9 * rng.normal(size=bad.shape[:2])  # cond ≈ 1e18
    shards[2] = bad
    return shards


@pytest.mark.parametrize("method", ["consensus", "parametric"])
def test_condition_precheck_names_the_shard(method):
    shards = _ill_conditioned(np.random.default_rng(31))
    with pytest.raises(ValueError, match=r"shard 12: covariance condition number"):
        combine(shards, NAMES, method, shard_ids=[10, 11, 12, 13], rng_key=jax.random.PRNGKey(0))


def test_robust_drops_ill_conditioned_shard():
    shards = _ill_conditioned(np.random.default_rng(32))
    means = np.zeros((K, P))  # MAD = 0: the outlier rule stays out of the way
    out = combine(shards, NAMES, "robust", theta_means=means)
    assert out.used == (0, 1, 3)
    assert out.excluded[0][0] == 2 and "condition number" in out.excluded[0][1]
    assert out.condition_numbers[2] > 1e12 > max(out.condition_numbers[k] for k in (0, 1, 3))


def test_argument_errors():
    rng = np.random.default_rng(41)
    a, b = rng.normal(size=(2, 100, P)), rng.normal(size=(2, 99, P))
    with pytest.raises(ValueError, match="chains·samples"):
        combine([a, b], NAMES)
    with pytest.raises(ValueError, match="rng_key"):
        combine([a, a + 1.0], NAMES, "parametric")
    with pytest.raises(ValueError, match="theta_means"):
        combine([a, a + 1.0], NAMES, "robust")
    with pytest.raises(ValueError, match="theta_means"):
        combine([a, a + 1.0], NAMES, "robust", theta_means=np.zeros((3, P)))
    with pytest.raises(ValueError, match="unknown method"):
        combine([a], NAMES, "mean")
    with pytest.raises(ValueError, match="increasing"):
        combine([a, a + 1.0], NAMES, shard_ids=[1, 0])
