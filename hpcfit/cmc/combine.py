"""Combination of shard posteriors in the unconstrained coordinates u.

Built from NumPyro's own pieces: ``numpyro.infer.hmc_util.consensus`` and
``parametric`` / ``parametric_draws`` take a list of per-shard dicts of flattened draws. This
module only validates, flattens chain-major, applies the robust exclusion rule and reshapes
back; mapping u → θ = T(u) belongs to another module.

References
----------
Scott, Blocker, Bonassi, Chipman, George, McCulloch, "Bayes and big data: the consensus Monte
Carlo algorithm", Int. J. Management Science and Engineering Management 11(2), 2016.
Neiswanger, Wang, Xing, "Asymptotically exact, embarrassingly parallel MCMC", UAI 2014.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import jax
import numpy as np
from numpyro.infer import hmc_util

Method = Literal["consensus", "parametric", "robust"]
MAD_TO_SD = 0.6745  # Φ⁻¹(0.75): z = 0.6745·|m − median| / MAD (Iglewicz and Hoaglin)
MIN_ROBUST_KEEP = 3


@dataclass(frozen=True)
class Combined:
    """Combined draws in u.

    ``draws`` is Float[(chains, samples, P)], chain structure of shard 0 (index pairing keeps
    it); ``used`` are the shard ids that entered the combination, ``excluded`` (id, reason)
    pairs; ``mu`` Float[(P,)] and ``sigma`` Float[(P, P)] are set for ``parametric`` only.
    ``condition_numbers`` holds the 2-norm condition number of every input shard's sample
    covariance (input order; empty when K = 1).
    """

    draws: np.ndarray
    names: tuple[str, ...]
    method: str
    used: tuple[int, ...]
    excluded: tuple[tuple[int, str], ...] = ()
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    condition_numbers: tuple[float, ...] = field(default=())


def combine(
    shards: Sequence[np.ndarray],
    names: Sequence[str],
    method: Method = "consensus",
    *,
    shard_ids: Sequence[int] | None = None,
    rng_key: jax.Array | None = None,
    theta_means: np.ndarray | None = None,
    robust_z: float = 3.5,
    max_condition: float = 1e12,
) -> Combined:
    """Combine K shard posteriors drawn in u.

    Parameters
    ----------
    shards : list of Float[(chains, samples, P)]
        u draws per shard, sorted by shard id; every shard has the same S = chains·samples.
    names : sequence of str  the P parameter names
    method : "consensus" | "parametric" | "robust"
        consensus: draw s is (Σ_k W_k)⁻¹ Σ_k W_k u_k⁽ˢ⁾, W_k the inverse sample covariance.
        parametric: N(μ, Σ) with Σ⁻¹ = Σ_k Σ̂_k⁻¹, μ = Σ Σ_k Σ̂_k⁻¹ ū_k, S draws from ``rng_key``.
        robust: drop MAD outliers of ``theta_means`` and ill-conditioned shards, then consensus.
    shard_ids : sequence of int, optional  ids of ``shards`` (default 0…K−1)
    rng_key : jax PRNG key  the combination key; required by ``parametric``
    theta_means : Float[(K, P)]  θ-space shard means; required by ``robust``
    robust_z : float  outlier threshold on the MAD z-score
    max_condition : float  largest allowed condition number of a shard covariance

    Returns
    -------
    Combined  with K = 1 the draws are shard 0's array itself (bitwise).

    Raises
    ------
    ValueError  bad shapes or arguments; for consensus/parametric, a shard whose covariance
        condition number exceeds ``max_condition`` (named by id); robust with no shard left.
    """
    names = tuple(names)
    ids = tuple(range(len(shards))) if shard_ids is None else tuple(int(s) for s in shard_ids)
    _check(shards, names, ids)
    if method not in ("consensus", "parametric", "robust"):
        raise ValueError(f"unknown method {method!r}; use consensus, parametric or robust")
    if len(shards) == 1:
        return Combined(np.asarray(shards[0]), names, method, ids)
    if not jax.config.jax_enable_x64:
        raise RuntimeError("combine needs float64 JAX (jax_enable_x64); see process setup")
    flat = [np.asarray(s, dtype=np.float64).reshape(-1, len(names)) for s in shards]
    conds = tuple(_condition_number(f) for f in flat)
    shape = np.shape(shards[0])

    if method in ("consensus", "parametric"):
        for sid, c in zip(ids, conds, strict=True):
            if not c <= max_condition:
                raise ValueError(
                    f"shard {sid}: covariance condition number {c!r} > {max_condition!r}"
                )
        if method == "consensus":
            return Combined(_consensus(flat, shape), names, method, ids, condition_numbers=conds)
        if rng_key is None:
            raise ValueError("parametric combination needs rng_key (the combination key)")
        mu, sigma, draws = _parametric(flat, shape, rng_key)
        return Combined(draws, names, method, ids, (), mu, sigma, conds)
    if theta_means is None or np.shape(theta_means)[0] != len(shards):
        raise ValueError(f"robust combination needs theta_means of shape ({len(shards)}, P)")
    excluded = dict(mad_outliers(np.asarray(theta_means, dtype=np.float64), names, robust_z))
    for k, c in enumerate(conds):
        if k not in excluded and not c <= max_condition:
            excluded[k] = f"covariance condition number {c!r} > {max_condition!r}"
    keep = [k for k in range(len(shards)) if k not in excluded]
    if not keep:
        raise ValueError("robust combination: every shard was excluded")
    used = tuple(ids[k] for k in keep)
    out = tuple((ids[k], excluded[k]) for k in sorted(excluded))
    draws = (
        np.asarray(shards[keep[0]])
        if len(keep) == 1
        else _consensus([flat[k] for k in keep], shape)
    )
    return Combined(draws, names, method, used, out, condition_numbers=conds)


def mad_outliers(means: np.ndarray, names: Sequence[str], robust_z: float) -> list[tuple[int, str]]:
    """Shards whose mean is a MAD outlier on any parameter (robust step 2).

    Parameters
    ----------
    means : Float[(K, P)]  θ-space shard means
    names : sequence of str  the P parameter names
    robust_z : float  a shard is an outlier if z = 0.6745·|m − median|/MAD > robust_z

    Returns
    -------
    list of (shard index, reason)  empty if fewer than 3 shards would remain; a parameter with
        MAD = 0 flags nothing.
    """
    if means.ndim != 2 or means.shape[1] != len(names):
        raise ValueError(f"theta_means has shape {means.shape}, expected (K, {len(names)})")
    med = np.median(means, axis=0)
    dev = np.abs(means - med)
    mad = np.median(dev, axis=0)
    safe = np.where(mad > 0, mad, 1.0)
    z = np.where(mad > 0, MAD_TO_SD * dev / safe, 0.0)
    out = []
    for k in range(means.shape[0]):
        hits = [f"{names[p]} z={z[k, p]!r}" for p in range(len(names)) if z[k, p] > robust_z]
        if hits:
            out.append((k, f"outlier mean (robust_z {robust_z!r}): " + ", ".join(hits)))
    if means.shape[0] - len(out) < MIN_ROBUST_KEEP:
        return []
    return out


def _check(shards: Sequence[np.ndarray], names: tuple[str, ...], ids: tuple[int, ...]) -> None:
    if not shards:
        raise ValueError("no shards to combine")
    if len(ids) != len(shards) or list(ids) != sorted(set(ids)):
        raise ValueError(f"shard_ids {ids} must be {len(shards)} distinct ids in increasing order")
    if len(set(names)) != len(names):
        raise ValueError(f"parameter names are not unique: {names}")
    sizes = set()
    for sid, s in zip(ids, shards, strict=True):
        shp = np.shape(s)
        if len(shp) != 3 or shp[2] != len(names):
            raise ValueError(f"shard {sid}: shape {shp}, expected (chains, samples, {len(names)})")
        sizes.add(shp[0] * shp[1])
    if len(sizes) != 1:
        raise ValueError(f"shards differ in chains·samples: {sorted(sizes)}")


def _condition_number(flat: np.ndarray) -> float:
    """2-norm condition number of the sample covariance (ddof = 1); NaN if not finite."""
    cov = np.atleast_2d(np.cov(flat, rowvar=False))
    if not np.all(np.isfinite(cov)):
        return float("nan")
    return float(np.linalg.cond(cov))


def _as_dicts(flat: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    # positional keys: ravel_pytree sorts dict keys, so names could reorder the columns
    return [{f"p{p:06d}": f[:, p] for p in range(f.shape[1])} for f in flat]


def _from_dict(d: dict[str, jax.Array], shape: tuple[int, ...]) -> np.ndarray:
    cols = [np.asarray(d[f"p{p:06d}"], dtype=np.float64) for p in range(shape[2])]
    return np.stack(cols, axis=-1).reshape(shape)


def _third_party_broadcasting():
    """NumPyro broadcasts by implicit rank promotion (MultivariateNormal.sample adds loc (P,) to
    (S, P); the diagonal weights divide (K, P) by (P,)); the strict "raise" setting of the tests
    is for our code, so allow it inside these calls only."""
    return jax.numpy_rank_promotion("allow")


def _consensus(flat: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """hmc_util.consensus without resampling; P = 1 uses the (identical) diagonal weights."""
    with _third_party_broadcasting():
        out = hmc_util.consensus(_as_dicts(flat), num_draws=None, diagonal=shape[2] == 1)
    return _from_dict(out, shape)


def _parametric(
    flat: list[np.ndarray], shape: tuple[int, ...], rng_key: jax.Array
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    subs = _as_dicts(flat)
    diagonal = shape[2] == 1
    with _third_party_broadcasting():
        mu, sigma = hmc_util.parametric(subs, diagonal=diagonal)
        out = hmc_util.parametric_draws(subs, shape[0] * shape[1], diagonal, rng_key)
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    return np.asarray(mu, dtype=np.float64), sigma, _from_dict(out, shape)
