"""û and L from the warm start and the cold-start fallback.

Truths: the delta-method formulas written out by hand (G from its closed form, not from
the transform module), the guards (pinned, unidentified, NaN and wider-than-prior rows get
uncorrelated prior widths), the sd clip that keeps correlations, the Cholesky jitter ladder and
its diagonal fallback, K/(2M_a) for a sampled σ_a, and the cold-start diagonal.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import logit

from hpcfit.cmc.precondition import from_cold_start, from_warm_start

NAMES = ("a", "b", "c")
LO = np.array([0.0, -2.0, 100.0])
HI = np.array([10.0, 2.0, 1e4])
SD = np.array([0.1, 0.5, 50.0])
K = 4


def spec_g(theta, lo=LO, hi=HI):
    return (hi - lo) / ((theta - lo) * (hi - theta))


def cov_from(sd, corr):
    return np.asarray(corr) * np.outer(sd, sd)


CORR = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.5], [-0.2, 0.5, 1.0]])
THETA = np.array([5.0, 0.5, 2000.0])
COV = cov_from(np.array([0.01, 0.02, 3.0]), CORR)


def test_warm_start_delta_method():
    pc = from_warm_start(NAMES, THETA, COV, LO, HI, SD, K, whiten_scale=1.5)
    g = spec_g(THETA)
    expected = 1.5**2 * K * (g[:, None] * COV * g[None, :])
    np.testing.assert_allclose(pc.cov_w, expected, rtol=1e-13)
    np.testing.assert_allclose(pc.u_hat, logit((THETA - LO) / (HI - LO)), rtol=1e-12)
    np.testing.assert_allclose(pc.chol @ pc.chol.T, expected, rtol=1e-12)
    assert np.all(np.triu(pc.chol, 1) == 0.0)
    assert (pc.source, pc.n_shards, pc.whiten_scale) == ("warm", K, 1.5)
    assert pc.fallback == () and pc.sd_clipped == () and pc.jitter == 0.0
    assert not pc.diagonal_only


def test_theta_is_clipped_into_the_box():
    theta = np.array([10.0 - 5e-5, 0.5, 2000.0])  # 5e-6 relative from hi: not pinned
    cov = cov_from(np.array([1e-4, 0.02, 3.0]), CORR)
    pc = from_warm_start(NAMES, theta, cov, LO, HI, SD, K)
    clipped = 10.0 - 1e-4 * 10.0
    assert pc.u_hat[0] == pytest.approx(logit(clipped / 10.0), rel=1e-12)
    g0 = spec_g(np.array([clipped, 0.5, 2000.0]))[0]
    assert pc.cov_w[0, 0] == pytest.approx(K * (g0 * 1e-4) ** 2, rel=1e-10)
    assert pc.fallback == () and pc.sd_clipped == ()


@pytest.mark.parametrize("how", ["unidentified", "nan", "zero_variance", "wider_than_prior"])
def test_guarded_row_gets_prior_width(how):
    cov = COV.copy()
    unidentified: tuple[str, ...] = ()
    if how == "unidentified":
        unidentified = ("b",)
    elif how == "nan":
        cov[1, :] = cov[:, 1] = np.nan
    elif how == "zero_variance":
        cov[1, 1] = 0.0
    else:  # σ̂_b = 0.6 > prior sd 0.5 (a 30-fold larger variance, correlations kept)
        cov = cov_from(np.array([0.01, 0.6, 3.0]), CORR)
    pc = from_warm_start(NAMES, THETA, cov, LO, HI, SD, K, unidentified=unidentified)
    g = spec_g(THETA)
    assert pc.fallback == ("b",)
    assert pc.cov_w[1, 1] == pytest.approx(K * (SD[1] * g[1]) ** 2, rel=1e-13)
    assert pc.cov_w[0, 1] == pc.cov_w[1, 2] == pc.cov_w[1, 0] == pc.cov_w[2, 1] == 0.0
    assert pc.cov_w[0, 2] == pytest.approx(K * g[0] * g[2] * COV[0, 2], rel=1e-13)


def test_pinned_row_gets_prior_width_then_sd_clip():
    theta = np.array([0.0, 0.5, 2000.0])  # a at its lower bound: pinned
    pc = from_warm_start(NAMES, theta, COV, LO, HI, SD, K)
    assert pc.fallback == ("a",)
    # prior sd 0.1 at θ̃ = 1e-3: √K·0.1·G ≈ 200 in u, clipped to the maximum 2
    assert pc.sd_clipped == ("a",)
    assert pc.cov_w[0, 0] == pytest.approx(4.0, rel=1e-12)
    assert pc.cov_w[0, 1] == pc.cov_w[0, 2] == 0.0


def test_row_as_wide_as_its_prior_is_kept():
    cov = cov_from(np.array([0.01, 0.5, 3.0]), CORR)  # σ̂_b equal to the prior sd: kept
    assert from_warm_start(NAMES, THETA, cov, LO, HI, SD, K).fallback == ()


def test_sd_clip_keeps_correlations():
    cov = cov_from(np.array([1e-14, 0.02, 3000.0]), CORR)  # sd in u: a ≈ 8e-15, c ≈ 3.9
    wide = np.array([0.1, 0.5, 5000.0])  # c's prior wider than σ̂_c: not a fallback row
    pc = from_warm_start(NAMES, THETA, cov, LO, HI, wide, K)
    sd = np.sqrt(np.diag(pc.cov_w))
    assert sd[0] == pytest.approx(1e-8, rel=1e-12) and sd[2] == pytest.approx(2.0, rel=1e-12)
    assert set(pc.sd_clipped) == {"a", "c"}
    np.testing.assert_allclose(pc.cov_w / np.outer(sd, sd), CORR, rtol=1e-10)


def test_jitter_for_a_singular_covariance():
    cov = cov_from(np.array([0.01, 0.02, 3.0]), np.ones((3, 3)))  # rank 1
    pc = from_warm_start(NAMES, THETA, cov, LO, HI, SD, K)
    assert pc.jitter > 0.0 and not pc.diagonal_only
    assert pc.jitter <= 1e-6 * np.mean(np.diag(pc.cov_w)) * (1 + 1e-12)
    np.testing.assert_allclose(pc.chol @ pc.chol.T, pc.cov_w + pc.jitter * np.eye(3), atol=1e-12)


def test_diagonal_only_for_an_indefinite_covariance():
    corr = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    assert np.linalg.eigvalsh(corr).min() < -0.5
    pc = from_warm_start(NAMES, THETA, cov_from(np.array([0.01, 0.02, 3.0]), corr), LO, HI, SD, K)
    assert pc.diagonal_only and pc.jitter == 0.0
    np.testing.assert_allclose(pc.chol, np.diag(np.sqrt(np.diag(pc.cov_w))), rtol=1e-15)


def test_sampled_sigma_gets_k_over_2m():
    """σ_a on (0, ∞): θ̂ = σ̂, Var = σ̂²/(2M_a) gives û = log σ̂ and K/(2M_a)."""
    sigma_hat, m_a = 0.003, 5000
    pc = from_warm_start(
        ("s",), [sigma_hat], [[sigma_hat**2 / (2 * m_a)]], [0.0], [np.inf], [0.006], K
    )
    assert pc.u_hat[0] == pytest.approx(np.log(sigma_hat), rel=1e-14)
    assert pc.cov_w[0, 0] == pytest.approx(K / (2 * m_a), rel=1e-13)


def test_cold_start():
    start = np.array([5.0, 0.5, 2000.0])
    lo = np.array([0.0, -2.0, -np.inf])
    hi = np.array([10.0, 2.0, np.inf])
    sd = np.array([0.1, 10.0, 3.0])
    k = 2  # with K = 4 a width (hi − lo)/4 at mid-box is exactly the cap 2 in u
    pc = from_cold_start(NAMES, start, lo, hi, sd, k)
    g = np.array([10.0 / 25.0, 4.0 / (2.5 * 1.5), 1.0])
    width = np.array([0.1, 1.0, 3.0])  # min(prior sd, (hi − lo)/4); ∞ width drops out
    expected = np.minimum(np.sqrt(k) * width * g, 2.0)
    np.testing.assert_allclose(np.sqrt(np.diag(pc.cov_w)), expected, rtol=1e-13)
    assert pc.sd_clipped == ("c",)  # √2·3 ≈ 4.2 > 2
    assert np.all(pc.cov_w == np.diag(np.diag(pc.cov_w)))
    np.testing.assert_allclose(pc.u_hat[:2], logit((start[:2] - lo[:2]) / (hi[:2] - lo[:2])))
    assert pc.u_hat[2] == 2000.0 and pc.source == "cold"


def test_record_is_frozen_and_json_ready():
    pc = from_warm_start(NAMES, THETA, COV, LO, HI, SD, K)
    with pytest.raises(ValueError):
        pc.u_hat[0] = 1.0
    back = json.loads(json.dumps(pc.to_json()))
    assert back["u_hat"] == pc.u_hat.tolist() and back["names"] == list(NAMES)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"theta_hat": np.array([np.nan, 0.5, 2000.0])}, "finite"),
        ({"cov": np.eye(2)}, "shape"),
        ({"n_shards": 0}, "n_shards"),
        ({"unidentified": ("zz",)}, "unidentified"),
        ({"prior_sd": np.array([0.1, 0.0, 1.0])}, "prior sds"),
        ({"whiten_scale": 0.0}, "whiten_scale"),
    ],
)
def test_rejects_bad_input(kwargs, match):
    args = dict(theta_hat=THETA, cov=COV, lo=LO, hi=HI, prior_sd=SD, n_shards=K)
    extra = {k: kwargs.pop(k) for k in ("unidentified", "whiten_scale") if k in kwargs}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        from_warm_start(NAMES, **args, **extra)
