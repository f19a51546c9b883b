"""Centre û and whitening factor L of the per-shard sampler, from the warm start.

Warm start (θ̂, Σ̂ from NLSQ)::

    θ̃  = clip(θ̂, lo + 1e-4·(hi − lo), hi − 1e-4·(hi − lo))
    û  = T⁻¹(θ̃)
    Σ_u = G Σ̂ G,   G = diag(dT⁻¹/dθ at θ̃) = diag((hi − lo)/((θ̃ − lo)(hi − θ̃)))   (delta method)
    Σ_w = whiten_scale²·K·Σ_u       (a shard holds 1/K of the data: K times the covariance)

Guards: a *pinned* row (θ̂ within 1e-6·(hi − lo) of a bound, the NLSQ rule), an *unidentified*
row (named by the caller, e.g. ``NLSQResult.unidentified``), a *loose* row (σ̂_k = √Σ̂_kk wider
than the prior sd: the data constrain it less than its prior, although JᵀJ, scaled column by
column, has no null direction) or a *NaN* row (a non-finite entry in its row or column, or a
diagonal ≤ 0) loses its correlations and gets the fallback variance
K·(prior_sd·G_pp)². Then every sd √Σ_w,pp is clipped to [1e-8, 2] (correlations kept), and
L = chol(Σ_w), retried with jitter 1e-10·mean(diag)·10^k, k = 0…4, else the diagonal only.

Cold start: û = T⁻¹(θ̃) from the configured start values, Σ_w diagonal with entries
K·(min(prior_sd, (hi − lo)/4)·G_pp)², sds clipped to [1e-8, 2].

Choices made here: a coordinate with one infinite bound (lo + exp(u), e.g. a
sampled σ_a) is clipped 1e-4·prior_sd away from its finite bound, and an infinite width drops
out of min(prior_sd, (hi − lo)/4); ``whiten_scale`` scales warm starts only (it enters
Σ_w of the warm start alone). A sampled σ_a enters as an extra coordinate with bounds
(0, inf), θ̂ = σ̂_a and variance σ̂_a²/(2M_a): the delta method then gives K/(2M_a).
From an ``NLSQResult`` r: ``from_warm_start(r.theta_names, r.theta, r.cov, lo, hi, prior_sd, K,
unidentified=r.unidentified)``; pinned rows are found here with NLSQ's own 1e-6 rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcfit.cmc.transform import BoxTransform

CLIP_REL = 1e-4  # θ̃ keeps this fraction of the width away from each bound
PIN_RTOL = 1e-6  # NLSQ's pinned rule
SD_MIN, SD_MAX = 1e-8, 2.0  # allowed whitened sds in u
JITTER_BASE, JITTER_TRIES = 1e-10, 5


@dataclass(frozen=True, eq=False)
class Preconditioner:
    """û and L of one run, shared by every shard (read-only float64 arrays).

    Attributes
    ----------
    names : tuple of str  the P coordinates, in the shard target's order
    u_hat : Float64[Array, "P"]  centre in u
    chol : Float64[Array, "P P"]  lower-triangular L, L Lᵀ = Σ_w (+ jitter), u = û + L z
    cov_w : Float64[Array, "P P"]  Σ_w after guards and clipping (before jitter)
    source : "warm" | "cold"
    n_shards : int  K used for the K·Σ_u scaling
    whiten_scale : float
    fallback : tuple of str  coordinates given the fallback (prior) width
    sd_clipped : tuple of str  coordinates whose sd was clipped to [1e-8, 2]
    jitter : float  jitter added to the diagonal before the Cholesky factor (0.0: none)
    diagonal_only : bool  every jitter failed and L is diag(√diag Σ_w)
    """

    names: tuple[str, ...]
    u_hat: np.ndarray
    chol: np.ndarray
    cov_w: np.ndarray
    source: str
    n_shards: int
    whiten_scale: float
    fallback: tuple[str, ...] = ()
    sd_clipped: tuple[str, ...] = ()
    jitter: float = 0.0
    diagonal_only: bool = False

    def __post_init__(self) -> None:
        for name in ("u_hat", "chol", "cov_w"):
            a = np.array(getattr(self, name), dtype=np.float64)
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        p = len(self.names)
        if self.u_hat.shape != (p,) or self.chol.shape != (p, p) or self.cov_w.shape != (p, p):
            raise ValueError(f"Preconditioner shapes do not match {p} names")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (full-precision floats)."""
        return {
            "names": list(self.names),
            "u_hat": self.u_hat.tolist(),
            "chol": self.chol.tolist(),
            "cov_w": self.cov_w.tolist(),
            "source": self.source,
            "n_shards": self.n_shards,
            "whiten_scale": self.whiten_scale,
            "fallback": list(self.fallback),
            "sd_clipped": list(self.sd_clipped),
            "jitter": self.jitter,
            "diagonal_only": self.diagonal_only,
        }


def clip_into(theta: np.ndarray, lo: np.ndarray, hi: np.ndarray, prior_sd: np.ndarray):
    """θ̃: θ clipped 1e-4·width inside finite bounds (1e-4·prior_sd where the width is ∞)."""
    width = np.where(np.isfinite(hi - lo), hi - lo, prior_sd)
    return np.clip(theta, lo + CLIP_REL * width, hi - CLIP_REL * width)


def from_warm_start(
    names: Sequence[str],
    theta_hat: np.ndarray,
    cov: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    prior_sd: np.ndarray,
    n_shards: int,
    *,
    whiten_scale: float = 1.0,
    unidentified: Sequence[str] = (),
) -> Preconditioner:
    """û and L from a warm start θ̂ ± Σ̂ by the delta method.

    Parameters
    ----------
    names : sequence of str  the P coordinates (shard-target order)
    theta_hat : Float64[Array, "P"]  warm-start estimate, θ units, finite
    cov : Float64[Array, "P P"]  its covariance Σ̂ (θ units²); NaN rows allowed (fallback)
    lo, hi : Float64[Array, "P"]  bounds (±inf: no bound)
    prior_sd : Float64[Array, "P"]  prior sds (θ units), > 0: the fallback widths, and the
        widest σ̂_k a row may have before it counts as not identified
    n_shards : int  K ≥ 1
    whiten_scale : float  ``cmc.whiten_scale`` (> 0)
    unidentified : sequence of str  coordinates to give the fallback width

    Returns
    -------
    Preconditioner  with source "warm"
    """
    t, th, lo, hi, sd, k = _common(names, theta_hat, lo, hi, prior_sd, n_shards)
    c = np.array(cov, dtype=np.float64)
    if c.shape != (t.size, t.size):
        raise ValueError(f"cov has shape {c.shape}, expected {(t.size, t.size)}")
    if not whiten_scale > 0:
        raise ValueError(f"whiten_scale must be > 0, got {whiten_scale!r}")
    unknown = set(unidentified) - set(names)
    if unknown:
        raise ValueError(f"unidentified names not among the parameters: {sorted(unknown)}")
    raw, tol = np.asarray(theta_hat, dtype=np.float64), PIN_RTOL * (hi - lo)
    pinned = np.isfinite(tol) & ((raw - lo <= tol) | (hi - raw <= tol))
    bad = ~(np.isfinite(np.diag(c)) & (np.diag(c) > 0))  # then rows non-finite among the rest
    bad[~bad] = ~np.all(np.isfinite(c[np.ix_(~bad, ~bad)]), axis=1)
    loose = np.zeros_like(bad)
    loose[~bad] = np.sqrt(np.diag(c)[~bad]) > sd[~bad]
    guard = pinned | bad | loose | np.isin(np.asarray(names), list(unidentified))
    g = t.inverse_derivative(th)
    with np.errstate(invalid="ignore"):
        cov_w = whiten_scale**2 * k * (g[:, None] * c * g[None, :])
    cov_w[guard, :] = 0.0
    cov_w[:, guard] = 0.0
    cov_w[guard, guard] = k * (sd[guard] * g[guard]) ** 2
    fallback = tuple(n for n, f in zip(names, guard, strict=True) if f)
    return _finish(names, t.inverse(th), cov_w, "warm", k, float(whiten_scale), fallback)


def from_cold_start(
    names: Sequence[str],
    start: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    prior_sd: np.ndarray,
    n_shards: int,
) -> Preconditioner:
    """û and diagonal L without a warm start (cold start).

    Parameters
    ----------
    names : sequence of str  the P coordinates
    start : Float64[Array, "P"]  configured start values (θ units)
    lo, hi, prior_sd : Float64[Array, "P"]  bounds and prior sds
    n_shards : int  K ≥ 1

    Returns
    -------
    Preconditioner  with source "cold"; Σ_w = diag(K·(min(prior_sd, (hi − lo)/4)·G)²)
    """
    t, th, lo, hi, sd, k = _common(names, start, lo, hi, prior_sd, n_shards)
    width = np.where(np.isfinite(hi - lo), hi - lo, np.inf)
    sd_u = np.minimum(sd, width / 4.0) * t.inverse_derivative(th)
    return _finish(names, t.inverse(th), np.diag(k * sd_u**2), "cold", k, 1.0, tuple(names))


def _common(names, theta, lo, hi, prior_sd, n_shards):
    names = tuple(names)
    t = BoxTransform(lo, hi)
    th = np.array(theta, dtype=np.float64)
    sd = np.array(prior_sd, dtype=np.float64)
    if th.shape != (t.size,) or sd.shape != (t.size,) or len(names) != t.size:
        raise ValueError(f"names, θ, bounds and prior sds must all have length {len(names)}")
    if not np.all(np.isfinite(th)):
        raise ValueError(f"start / warm-start values must be finite, got {th}")
    if not np.all(sd > 0) or not np.all(np.isfinite(sd)):
        raise ValueError(f"prior sds must be finite and > 0, got {sd}")
    if isinstance(n_shards, bool) or not isinstance(n_shards, int | np.integer) or n_shards < 1:
        raise ValueError(f"n_shards must be an integer >= 1, got {n_shards!r}")
    return t, clip_into(th, t.lo, t.hi, sd), t.lo, t.hi, sd, int(n_shards)


def _finish(names, u_hat, cov_w, source, k, whiten_scale, fallback) -> Preconditioner:
    """Clip the sds to [1e-8, 2] keeping correlations, then the guarded Cholesky factor."""
    sd = np.sqrt(np.diag(cov_w))
    sd_c = np.clip(sd, SD_MIN, SD_MAX)
    ratio = sd_c / sd
    cov_w = cov_w * ratio[:, None] * ratio[None, :]
    cov_w = 0.5 * (cov_w + cov_w.T)
    clipped = tuple(n for n, a, b in zip(names, sd, sd_c, strict=True) if a != b)
    jitter, diagonal_only, chol = 0.0, False, None
    scale = JITTER_BASE * float(np.mean(np.diag(cov_w)))
    for attempt in range(JITTER_TRIES + 1):
        jitter = 0.0 if attempt == 0 else scale * 10.0 ** (attempt - 1)
        try:
            chol = np.linalg.cholesky(cov_w + jitter * np.eye(len(names)))
            break
        except np.linalg.LinAlgError:
            continue
    if chol is None:
        jitter, diagonal_only, chol = 0.0, True, np.diag(np.sqrt(np.diag(cov_w)))
    return Preconditioner(
        names=tuple(names),
        u_hat=np.asarray(u_hat, dtype=np.float64),
        chol=chol,
        cov_w=cov_w,
        source=source,
        n_shards=k,
        whiten_scale=whiten_scale,
        fallback=fallback,
        sd_clipped=clipped,
        jitter=jitter,
        diagonal_only=diagonal_only,
    )
