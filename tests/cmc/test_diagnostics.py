"""Per-shard diagnostics and gates.

Truths: E-BFMI by hand on a fixed energy array; rates counted on constructed arrays; R-hat and
ESS of iid chains; parity of R-hat with an independent composition (rank normalisation by hand
+ NumPyro's split_gelman_rubin) and of ESS with ArviZ's per-parameter array calls.
"""

from __future__ import annotations

import dataclasses
import json

import arviz_stats
import numpy as np
import pytest
from numpyro.diagnostics import split_gelman_rubin
from scipy.stats import norm, rankdata

from hpcfit.cmc.diagnostics import Gates, apply_gates, ebfmi_per_chain, shard_diagnostics


def good_extra(rng: np.random.Generator, chains: int, samples: int) -> dict[str, np.ndarray]:
    return {
        "diverging": np.zeros((chains, samples), dtype=bool),
        "accept_prob": np.full((chains, samples), 0.9),
        "num_steps": np.full((chains, samples), 7, dtype=np.int64),
        "energy": rng.normal(size=(chains, samples)),  # iid energy: E-BFMI ≈ 2
    }


def ar1(rng, shape, rho):
    """AR(1) chains with unit stationary variance."""
    x = np.empty(shape)
    x[:, 0] = rng.normal(size=shape[:1] + shape[2:])
    for t in range(1, shape[1]):
        x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * rng.normal(size=x[:, t].shape)
    return x


def test_ebfmi_hand_computation():
    energy = np.array([[1.0, 3.0, 2.0, 5.0], [2.0, 2.0, 4.0, 0.0]])
    # chain 0: Σ diff² = 4 + 1 + 9 = 14, Σ (E − 2.75)² = 8.75; chain 1: 0 + 4 + 16 = 20 over 8
    assert ebfmi_per_chain(energy).tolist() == [14 / 8.75, 20 / 8.0]
    extra = good_extra(np.random.default_rng(0), 2, 4) | {"energy": energy}
    draws = np.random.default_rng(1).normal(size=(2, 4, 1))
    assert shard_diagnostics(draws, extra, 10).ebfmi == [14 / 8.75, 20 / 8.0]
    # ArviZ's array bfmi (mean of squared diffs over the ddof = 1 variance) is the same ratio
    np.testing.assert_allclose(arviz_stats.bfmi(energy), [1.6, 2.5], rtol=1e-14)


def test_iid_chains_converge_and_pass():
    rng = np.random.default_rng(2024)
    draws = {"D0": rng.normal(size=(4, 1000)), "alpha": rng.normal(size=(4, 1000))}
    diag = shard_diagnostics(draws, good_extra(rng, 4, 1000), 10)
    assert diag.names == ("D0", "alpha")
    for r, eb, et in zip(diag.rhat, diag.ess_bulk, diag.ess_tail, strict=True):
        assert 0.99 <= r <= 1.01
        assert eb > 0.7 * 4000 and et > 0.5 * 4000
    result = apply_gates(diag, Gates(), 4)
    assert result.passed and result.failures == [] and result.warnings == []


def test_shifted_chain_fails_rhat_naming_parameter():
    rng = np.random.default_rng(7)
    d0 = rng.normal(size=(4, 1000)) + np.array([[0.0], [0.0], [0.0], [3.0]])
    draws = {"D0": d0, "alpha": rng.normal(size=(4, 1000))}
    diag = shard_diagnostics(draws, good_extra(rng, 4, 1000), 10)
    assert diag.rhat[0] > 1.1 and diag.rhat[1] < 1.01
    result = apply_gates(diag, Gates(), 4)
    assert not result.passed
    rhat_msgs = [m for m in result.failures if m.startswith("max_rhat")]
    assert len(rhat_msgs) == 1 and "D0" in rhat_msgs[0] and repr(diag.rhat[0]) in rhat_msgs[0]


def test_rates_are_exact_and_gated():
    rng = np.random.default_rng(3)
    draws = rng.normal(size=(2, 5, 2))
    draws[1, 2, 0] = np.nan  # one of 10 draws non-finite
    draws[0, 4, 1] = np.inf  # a second one
    extra = {
        "diverging": np.array([[1, 0, 0, 1, 0], [0, 0, 1, 0, 0]], dtype=bool),
        "accept_prob": np.array([[0.5, 0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.4, 0.5]]),
        # max_tree_depth = 3: a hit is num_steps ≥ 7
        "num_steps": np.array([[7, 6, 8, 1, 3], [15, 2, 1, 1, 6]]),
        "energy": np.array([[1.0, 3.0, 2.0, 5.0, 1.0], [2.0, 2.0, 4.0, 0.0, 1.0]]),
    }
    diag = shard_diagnostics(draws, extra, 3, names=["x", "y"])
    assert diag.n_divergent == 3 and diag.divergence_rate == 3 / 10
    assert diag.tree_depth_hit_rate == 3 / 10
    assert diag.mean_steps == 50 / 10 and diag.median_steps == 4.5  # sorted: …, 3, 6, …
    assert diag.nonfinite_fraction == 2 / 10
    assert diag.accept_prob == [
        np.mean([0.5, 0.6, 0.7, 0.8, 0.9]),
        np.mean([0.1, 0.2, 0.3, 0.4, 0.5]),
    ]
    result = apply_gates(diag, Gates(), 2)
    assert not result.passed
    assert any(m.startswith("max_divergence_rate") and "0.3" in m for m in result.failures)
    assert any(m.startswith("max_nonfinite_fraction") and "0.2" in m for m in result.failures)
    assert any(m.startswith("max_tree_depth_rate") and "0.3" in m for m in result.warnings)
    accept = [m for m in result.warnings if m.startswith("min_accept_prob")]
    assert len(accept) == 1 and "chain 1" in accept[0]


def test_sticky_chains_fail_ess_and_bfmi():
    rng = np.random.default_rng(4)
    draws = ar1(rng, (4, 1000, 1), 0.99)
    extra = good_extra(rng, 4, 1000) | {"energy": np.cumsum(rng.normal(size=(4, 1000)), axis=1)}
    diag = shard_diagnostics(draws, extra, 10, names=["v0"])
    result = apply_gates(diag, Gates(), 4)
    assert any(m.startswith("min_ess_bulk_per_chain: v0") for m in result.failures)
    assert any(m.startswith("min_ess_tail_per_chain: v0") for m in result.failures)
    bfmi = [m for m in result.failures if m.startswith("min_bfmi")]
    assert len(bfmi) == 4 and all(f"chain {c}" in bfmi[c] for c in range(4))


def test_record_is_plain_floats_and_json():
    rng = np.random.default_rng(5)
    diag = shard_diagnostics(rng.normal(size=(3, 50, 2)), good_extra(rng, 3, 50), 10)
    d = dataclasses.asdict(diag)
    for key in ("rhat", "ess_bulk", "ess_tail", "ebfmi", "accept_prob"):
        assert all(type(v) is float for v in d[key])
    for key in ("divergence_rate", "tree_depth_hit_rate", "nonfinite_fraction"):
        assert type(d[key]) is float
    assert json.loads(json.dumps(d))["rhat"] == diag.rhat  # repr round-trips: never rounded
    const = np.ones((2, 10, 1))  # a stuck parameter: R-hat is NaN (and no warning escapes)
    stuck = shard_diagnostics(const, good_extra(rng, 2, 10), 10)
    assert np.isnan(stuck.rhat[0])
    assert json.loads(json.dumps(stuck.to_json(), allow_nan=False))["rhat"] == [None]
    assert any(m.startswith("max_rhat") for m in apply_gates(stuck, Gates(), 2).failures)


def _rank_rhat_by_hand(x: np.ndarray) -> float:
    """Vehtari et al. 2021: max of split R-hat on rank-normalised and on folded draws."""

    def z(a):
        r = rankdata(a, axis=None).reshape(a.shape)
        return norm.ppf((r - 3 / 8) / (a.size + 1 / 4))

    folded = np.abs(x - np.median(x))
    return max(float(split_gelman_rubin(z(x))), float(split_gelman_rubin(z(folded))))


def test_parity_with_independent_rhat_and_arviz_ess():
    rng = np.random.default_rng(6)
    x = ar1(rng, (3, 200, 3), 0.6) + np.array([0.0, 0.2, 0.0])
    x[..., 2] *= np.array(
        [[1.0], [1.0], [3.0]]
    )  # same centre, one wide chain: only folding sees it
    names = ["a", "b", "c"]
    diag = shard_diagnostics(x, good_extra(rng, 3, 200), 10, names=names)
    by_dict = shard_diagnostics(
        dict(zip(names, np.moveaxis(x, 2, 0), strict=True)), good_extra(rng, 3, 200), 10
    )
    assert by_dict.rhat == diag.rhat and by_dict.ess_bulk == diag.ess_bulk
    for p in range(3):
        xp = x[..., p]
        assert diag.rhat[p] == pytest.approx(_rank_rhat_by_hand(xp), rel=1e-10)
        bulk = float(arviz_stats.ess(xp, method="bulk"))
        tail = float(arviz_stats.ess(xp, method="tail", prob=(0.05, 0.95)))
        assert diag.ess_bulk[p] == pytest.approx(bulk, rel=1e-10)
        assert diag.ess_tail[p] == pytest.approx(tail, rel=1e-10)
    assert len(set(diag.rhat)) == 3  # the parameters are not mixed up
    bulk_only = float(arviz_stats.rhat(x[..., 2], method="z_scale"))
    assert diag.rhat[2] > 1.05 > bulk_only  # the folded half of the rank R-hat is in use


def test_input_errors():
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match="at least 2 chains"):
        shard_diagnostics(rng.normal(size=(1, 100, 2)), good_extra(rng, 1, 100), 10)
    with pytest.raises(ValueError, match="energy"):
        extra = good_extra(rng, 2, 100)
        del extra["energy"]
        shard_diagnostics(rng.normal(size=(2, 100, 2)), extra, 10)
    with pytest.raises(ValueError, match="accept_prob"):
        bad = good_extra(rng, 2, 100) | {"accept_prob": np.ones((2, 99))}
        shard_diagnostics(rng.normal(size=(2, 100, 2)), bad, 10)
    with pytest.raises(ValueError, match="names"):
        shard_diagnostics(rng.normal(size=(2, 100, 2)), good_extra(rng, 2, 100), 10, names=["a"])


def test_gate_defaults_follow_spec():
    g = Gates()
    assert (g.max_rhat, g.min_ess_bulk_per_chain, g.min_ess_tail_per_chain) == (1.05, 100, 100)
    assert (g.max_divergence_rate, g.min_bfmi, g.max_nonfinite_fraction) == (0.01, 0.3, 0.0)
    assert (g.max_tree_depth_rate, g.min_accept_prob) == (0.05, 0.6)
