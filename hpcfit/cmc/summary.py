"""Posterior summary and the NLSQ-vs-CMC table.

Statistics come from all S = chains·samples combined θ draws (flattened chain-major) in float64
with plain NumPy: mean, sd (ddof = 1), quantiles 2.5/16/50/84/97.5 (``method="linear"``). They
are Python floats, never rounded, so ``json`` writes their shortest round-trip repr and a
reader gets back exactly ``np.mean(draws[..., p])`` (a 1-D pairwise sum over the parameter's
draws; ``np.mean(flat, axis=0)`` sums in another order and may differ in the last bit).
Non-finite statistics become ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import log_ndtr, ndtr

from hpcfit.io.atomic import write_json

QUANTILES = (("q2.5", 0.025), ("q16", 0.16), ("q50", 0.5), ("q84", 0.84), ("q97.5", 0.975))
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def summarise(
    draws_theta: np.ndarray, names: Sequence[str], fixed: Mapping[str, float]
) -> dict[str, Any]:
    """Summary statistics of the combined θ draws.

    Parameters
    ----------
    draws_theta : Float[(chains, samples, P)] or Float[(S, P)]
    names : P parameter names
    fixed : name -> value of the fixed (not sampled) parameters

    Returns
    -------
    dict  n_draws, n_chains / n_samples (None for 2-D input), quantile_method, names,
    parameters {name: {mean, sd, q2.5, q16, q50, q84, q97.5}}, fixed {name: value}
    """
    x = np.asarray(draws_theta, dtype=np.float64)
    if x.ndim not in (2, 3):
        raise ValueError(f"draws have shape {x.shape}, expected (chains, samples, P) or (S, P)")
    names = [str(n) for n in names]
    if len(names) != x.shape[-1] or len(set(names)) != len(names):
        raise ValueError(f"need {x.shape[-1]} unique names, got {names}")
    clash = sorted(set(names) & set(fixed))
    if clash:
        raise ValueError(f"parameters {clash} are both sampled and fixed")
    flat = x.reshape(-1, x.shape[-1])  # chain-major: row c·samples + n
    if flat.shape[0] < 2:
        raise ValueError(f"need at least 2 draws, got {flat.shape[0]}")
    params = {}
    for p, name in enumerate(names):
        col = flat[:, p]
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite draws give None
            qs = np.quantile(col, [q for _, q in QUANTILES], method="linear")
            stats = {"mean": np.mean(col), "sd": np.std(col, ddof=1)}
        stats.update({k: qs[i] for i, (k, _) in enumerate(QUANTILES)})
        params[name] = {k: _finite_or_none(v) for k, v in stats.items()}
    fixed_out = {}
    for k, v in fixed.items():
        if not math.isfinite(float(v)):
            raise ValueError(f"fixed parameter {k!r} has non-finite value {v!r}")
        fixed_out[str(k)] = float(v)
    return {
        "n_draws": int(flat.shape[0]),
        "n_chains": int(x.shape[0]) if x.ndim == 3 else None,
        "n_samples": int(x.shape[1]) if x.ndim == 3 else None,
        "quantile_method": "linear",
        "names": names,
        "parameters": params,
        "fixed": fixed_out,
    }


def truncnorm_variance(mean: float, sd: float, lo: float, hi: float) -> float:
    """Closed-form variance of Normal(mean, sd²) truncated to [lo, hi] (bounds may be ±inf).

    With α = (lo − μ)/σ, β = (hi − μ)/σ, Z = Φ(β) − Φ(α), p_a = φ(α)/Z, p_b = φ(β)/Z and
    m = p_a − p_b: Var = σ²·[1 + (α − m)·p_a − (β − m)·p_b] (the form SciPy's ``truncnorm``
    uses). log Z is evaluated in the lower tail by symmetry, as in SciPy, so one-sided and
    far-tail boxes keep their precision.
    """
    mean, sd, lo, hi = float(mean), float(sd), float(lo), float(hi)
    if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
        raise ValueError(f"need a finite mean and sd > 0, got mean={mean!r}, sd={sd!r}")
    if not lo < hi:
        raise ValueError(f"need lo < hi, got [{lo!r}, {hi!r}]")
    a, b = (lo - mean) / sd, (hi - mean) / sd
    log_z = _log_gauss_mass(a, b)
    pa = math.exp(-0.5 * a * a - _LOG_SQRT_2PI - log_z) if math.isfinite(a) else 0.0
    pb = math.exp(-0.5 * b * b - _LOG_SQRT_2PI - log_z) if math.isfinite(b) else 0.0
    m = pa - pb
    ta = (a - m) * pa if pa != 0.0 else 0.0
    tb = (b - m) * pb if pb != 0.0 else 0.0
    return sd * sd * (1.0 + ta - tb)


def _log_gauss_mass(a: float, b: float) -> float:
    """log(Φ(b) − Φ(a)), a < b."""
    if b <= 0.0:
        la, lb = float(log_ndtr(a)), float(log_ndtr(b))
        return lb + math.log1p(-math.exp(la - lb))
    if a > 0.0:
        return _log_gauss_mass(-b, -a)
    return math.log1p(-float(ndtr(a)) - float(ndtr(-b)))


def nlsq_vs_cmc_table(
    names: Sequence[str],
    theta_hat: Sequence[float],
    sigma_k: Sequence[float],
    summary: Mapping[str, Any],
    prior_mean: Sequence[float],
    prior_sd: Sequence[float],
    lo: Sequence[float],
    hi: Sequence[float],
) -> list[dict[str, Any]]:
    """One row per free quantity: NLSQ θ̂ ± σ_k against the CMC mean ± sd.

    Row keys: name, theta_hat, sigma_k, mean, sd, delta_over_sd = (mean − θ̂)/sd,
    sd_over_sigma_k = sd/σ_k, prior_var (untempered truncated prior, closed form) and
    contraction = 1 − sd²/prior_var. A ratio that is not finite (σ_k = 0, a missing statistic)
    is ``None``.
    """
    cols = [theta_hat, sigma_k, prior_mean, prior_sd, lo, hi]
    arrays = [np.asarray(c, dtype=np.float64).reshape(-1) for c in cols]
    for a in arrays:
        if a.shape != (len(names),):
            raise ValueError(f"expected {len(names)} values per column, got shape {a.shape}")
    th, sk, pm, ps, lo_, hi_ = arrays
    rows = []
    for p, name in enumerate(names):
        stats = summary["parameters"][name]
        mean, sd = stats["mean"], stats["sd"]
        prior_var = truncnorm_variance(pm[p], ps[p], lo_[p], hi_[p])
        rows.append(
            {
                "name": str(name),
                "theta_hat": _finite_or_none(th[p]),
                "sigma_k": _finite_or_none(sk[p]),
                "mean": mean,
                "sd": sd,
                "delta_over_sd": _ratio(None if mean is None else mean - th[p], sd),
                "sd_over_sigma_k": _ratio(sd, sk[p]),
                "prior_var": prior_var,
                "contraction": _finite_or_none(1.0 - sd * sd / prior_var)
                if sd is not None
                else None,
            }
        )
    return rows


def write_summary_json(path: str | Path, summary: Mapping[str, Any]) -> Path:
    """Write ``summary`` atomically as strict JSON with shortest round-trip floats."""
    return write_json(path, summary)


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or float(den) == 0.0:
        return None
    return _finite_or_none(float(num) / float(den))


def _finite_or_none(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def summary_table(summary: Mapping[str, Any]) -> str:
    """Plain-text table of the posterior summary (mean, sd, 95 % interval) for the log."""
    lines = [f"{'parameter':<18}{'mean':>16}{'sd':>14}{'2.5%':>14}{'97.5%':>14}"]
    for name, s in summary["parameters"].items():
        lines.append(
            f"{name:<18}{s['mean']:>16.8g}{s['sd']:>14.4g}{s['q2.5']:>14.6g}{s['q97.5']:>14.6g}"
        )
    return "CMC posterior:\n" + "\n".join(lines)
