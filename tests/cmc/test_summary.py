"""Posterior summary and the NLSQ-vs-CMC table.

Truths: every statistic equals the NumPy call on all draws of the parameter, exactly, after a
JSON round trip of the written file; the truncated-normal variance matches SciPy's
``truncnorm(a, b, loc, scale).var()`` (and the draws' variance for a Monte Carlo check);
contraction is 0 when the posterior has the prior's variance and near 1 when it is tight.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import truncnorm

from hpcfit.cmc.summary import (
    QUANTILES,
    nlsq_vs_cmc_table,
    summarise,
    truncnorm_variance,
    write_summary_json,
)

NAMES = ["D0", "alpha", "v0"]


def draws(seed=0, shape=(4, 1000)):
    rng = np.random.default_rng(seed)
    scale, loc = np.array([1e4, 0.1, 3e-7]), np.array([2e4, -1.3, 1e-6])
    return rng.normal(size=(*shape, 3)) * scale + loc  # mixed magnitudes: ulps matter


def test_summary_is_exact_after_json_round_trip(tmp_path):
    x = draws()
    fixed = {"D_offset": 0.0, "phi0": 12.5}
    s = summarise(x, NAMES, fixed)
    path = write_summary_json(tmp_path / "cmc" / "summary.json", s)
    back = json.loads(path.read_text())
    assert back == s
    assert back["fixed"] == fixed and back["names"] == NAMES
    assert (back["n_draws"], back["n_chains"], back["n_samples"]) == (4000, 4, 1000)
    for p, name in enumerate(NAMES):
        got, col = back["parameters"][name], x[..., p]
        assert got["mean"] == np.mean(col)  # exact: shortest repr round-trips
        assert got["mean"] == np.mean(x.reshape(-1, 3)[:, p])
        assert got["sd"] == np.std(col, ddof=1)
        for key, q in QUANTILES:
            assert got[key] == np.quantile(col, q, method="linear")
        assert all(type(v) is float for v in got.values())


def test_summary_of_flat_draws_is_chain_major():
    x = draws(1, (3, 7))
    s3, s2 = summarise(x, NAMES, {}), summarise(x.reshape(21, 3), NAMES, {})
    assert s3["parameters"] == s2["parameters"]
    assert s2["n_chains"] is None and s2["n_draws"] == 21
    # chain-major flattening: the median of a known small case
    y = np.arange(6.0).reshape(2, 3, 1)
    assert summarise(y, ["a"], {})["parameters"]["a"]["q50"] == 2.5


def test_summary_rejects_bad_input():
    x = draws(2, (2, 5))
    with pytest.raises(ValueError):
        summarise(x, NAMES[:2], {})
    with pytest.raises(ValueError, match="both sampled and fixed"):
        summarise(x, NAMES, {"D0": 1.0})
    with pytest.raises(ValueError):
        summarise(x[0, 0], NAMES, {})
    with pytest.raises(ValueError, match="non-finite"):
        summarise(x, NAMES, {"phi0": math.nan})


def test_nonfinite_statistic_is_null_and_json_stays_strict(tmp_path):
    x = draws(3, (2, 5))
    x[0, 0, 1] = np.inf
    s = summarise(x, NAMES, {})
    assert s["parameters"]["alpha"]["mean"] is None
    json.loads(write_summary_json(tmp_path / "s.json", s).read_text())


BOXES = [
    (0.0, 1.0, -1.0, 1.0),
    (0.3, 2.0, -1.0, 5.0),
    (1e-3, 1e-4, 0.0, 1.0),  # wide box: nearly untruncated
    (0.0, 1.0, -np.inf, np.inf),
    (0.0, 1.0, 0.0, np.inf),  # one-sided
    (2.0, 0.5, -np.inf, 1.9),  # one-sided, mean outside
    (0.0, 1.0, 6.0, np.inf),  # far right tail
    (0.0, 1.0, -np.inf, -8.0),  # far left tail
    (0.0, 1.0, 10.0, np.inf),
    (5.0, 2.0, -3.0, -2.5),  # narrow box in the far left tail
    (0.0, 1.0, -12.0, -11.9),
]


@pytest.mark.parametrize("box", BOXES)
def test_truncnorm_variance_matches_scipy(box):
    m, s, lo, hi = box
    ref = truncnorm((lo - m) / s, (hi - m) / s, loc=m, scale=s).var()
    assert truncnorm_variance(m, s, lo, hi) == pytest.approx(ref, rel=1e-12, abs=0.0)


def test_truncnorm_variance_known_values():
    assert truncnorm_variance(1.0, 3.0, -np.inf, np.inf) == 9.0
    assert truncnorm_variance(0.0, 1.0, 0.0, np.inf) == pytest.approx(1 - 2 / np.pi, rel=1e-14)
    # narrow box: nearly uniform, variance → width²/12
    assert truncnorm_variance(0.0, 1.0, 0.1, 0.1 + 1e-4) == pytest.approx(1e-8 / 12, rel=1e-6)
    rng = np.random.default_rng(4)
    d = truncnorm.rvs(-0.5, 2.0, loc=1.0, scale=2.0, size=400_000, random_state=rng)
    assert truncnorm_variance(1.0, 2.0, 0.0, 5.0) == pytest.approx(np.var(d), rel=0.01)


@pytest.mark.parametrize("bad", [(0.0, 0.0, -1.0, 1.0), (0.0, 1.0, 1.0, 1.0), (0, 1, 2, -2)])
def test_truncnorm_variance_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        truncnorm_variance(*bad)


def test_nlsq_vs_cmc_table():
    lo, hi = np.array([0.0, -2.0]), np.array([np.inf, 2.0])
    pm, ps = np.array([1.0, 0.0]), np.array([2.0, 1.0])
    var_prior = [truncnorm_variance(pm[p], ps[p], lo[p], hi[p]) for p in range(2)]
    rng = np.random.default_rng(5)
    n = 20_000
    # "x" has exactly the prior variance; "y" is tight
    x = rng.normal(size=n)
    x = (x - x.mean()) / x.std(ddof=1) * math.sqrt(var_prior[0]) + 1.5
    y = rng.normal(0.2, 0.01, size=n)
    summ = summarise(np.stack([x, y], axis=-1), ["x", "y"], {})
    theta_hat, sigma_k = np.array([1.4, 0.21]), np.array([0.5, 0.02])
    rows = nlsq_vs_cmc_table(["x", "y"], theta_hat, sigma_k, summ, pm, ps, lo, hi)
    assert [r["name"] for r in rows] == ["x", "y"]
    rx, ry = rows
    assert rx["contraction"] == pytest.approx(0.0, abs=1e-12)
    assert ry["contraction"] > 0.999
    assert ry["contraction"] == 1 - summ["parameters"]["y"]["sd"] ** 2 / var_prior[1]
    for r, p, name in ((rx, 0, "x"), (ry, 1, "y")):
        st = summ["parameters"][name]
        assert r["prior_var"] == var_prior[p]
        assert (r["mean"], r["sd"]) == (st["mean"], st["sd"])
        assert (r["theta_hat"], r["sigma_k"]) == (theta_hat[p], sigma_k[p])
        assert r["delta_over_sd"] == (st["mean"] - theta_hat[p]) / st["sd"]
        assert r["sd_over_sigma_k"] == st["sd"] / sigma_k[p]
    json.dumps(rows, allow_nan=False)
    zero = nlsq_vs_cmc_table(["y"], [0.2], [0.0], summ, [0.0], [1.0], [-2.0], [2.0])
    assert zero[0]["sd_over_sigma_k"] is None
    with pytest.raises(ValueError):
        nlsq_vs_cmc_table(["x", "y"], theta_hat[:1], sigma_k, summ, pm, ps, lo, hi)
