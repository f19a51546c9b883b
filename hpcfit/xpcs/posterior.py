"""The XPCS shard posterior: a :class:`ShardTarget` over the NLSQ free quantities (cmc spec §3).

θ is laid out exactly as the NLSQ warm start reports it (``Problem.free_names()``): the varying
physics parameters in canonical order, then the free contrast_a, then the free offset_a
(cmc spec §0). Bounds are the effective bounds and the priors TruncatedNormal(mean, sd) on them
(model spec §5): physics from ``space.prior_mean``/``space.prior_sd``, scaling from the
``space.contrast`` / ``space.offset`` :class:`ParamInfo`. Fixed physics parameters are held at
``space.start``; a fixed contrast or offset at its configured value (``ParamInfo.default``), the
same values the NLSQ problem uses.

Likelihood of one shard (σ_a fixed, cmc spec §3.3; sampling σ_a is not supported here)::

    ℓ_s(θ) = Σ_{m∈s} [ −½((y_m − g_m(θ))/σ_{a_m})² − log σ_{a_m} − ½ log 2π ]

with g from the pooled evaluator ``c2_pooled`` (model §6.2). The −log σ and −½ log 2π terms are
*kept*: they are constant while σ is fixed, but make ℓ_s the true Normal log-density. The shard
data is the pytree :class:`ShardData` (a, i, j, y, σ per point); no padding.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hpcfit.cmc.precondition import Preconditioner, from_warm_start
from hpcfit.cmc.target import ShardTarget
from hpcfit.records import NLSQResult
from hpcfit.xpcs.dataset import XpcsData
from hpcfit.xpcs.model import c2_pooled
from hpcfit.xpcs.params import ParamSpace
from hpcfit.xpcs.problem import Problem

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class ShardData(NamedTuple):
    """The data of one shard, a JAX pytree (points in the order given, canonical for a plan).

    a, i, j : Int32[Array, "M_s"]  slot and 0-based frame positions (i < j)
    y : Float64[Array, "M_s"]  observed c2
    sigma_points : Float64[Array, "M_s"]  σ_{a_m} of each point
    """

    a: jax.Array
    i: jax.Array
    j: jax.Array
    y: jax.Array
    sigma_points: jax.Array


def _layout_problem(data: XpcsData, space: ParamSpace) -> Problem:
    """A Problem with the dataset's grid and slots but no points: only its layout is used."""
    empty_i = np.zeros(0, dtype=np.int32)
    return Problem(space, data.t, data.dt, data.q, data.phi, empty_i, empty_i, empty_i, np.zeros(0))


def _check_sigma(sigma: np.ndarray, n_phi: int) -> np.ndarray:
    s = np.array(sigma, dtype=np.float64, ndmin=1)
    if s.shape != (n_phi,) or not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError(f"sigma must hold {n_phi} finite values > 0 (one per slot), got {s}")
    return s


def shard_target(data: XpcsData, space: ParamSpace, sigma: np.ndarray) -> ShardTarget:
    """The shard target of ``data`` under ``space`` with fixed per-slot noise ``sigma``.

    Parameters
    ----------
    data : XpcsData  supplies the time grid t, dt, q and φ of the slots (not the values)
    space : ParamSpace  start values, effective bounds, priors and the vary flags
    sigma : Float64[Array, "n_phi"]  the fixed σ_a (σ̂_a or the known σ_a; §3.3), validated here;
        the likelihood reads the per-point copy carried by :class:`ShardData`

    Returns
    -------
    ShardTarget  names ``Problem.free_names()``; ``loglik(theta, shard: ShardData)`` as above
    """
    _check_sigma(sigma, data.n_phi)
    problem = _layout_problem(data, space)
    names = problem.free_names()
    lo, hi = problem.unknown_bounds(fit_mode=True)
    prior_sd = problem.unknown_prior_sd(fit_mode=True)
    n_phys, n_phi = problem.n_phys, data.n_phi
    n_c = n_phi if space.vary_contrast else 0
    n_b = n_phi if space.vary_offset else 0
    prior_mean = np.concatenate(
        [
            space.prior_mean[space.free_index],
            np.full(n_c, space.contrast.prior_mean),
            np.full(n_b, space.offset.prior_mean),
        ]
    )

    start = jnp.asarray(space.start, dtype=jnp.float64)
    free = jnp.asarray(space.free_index)
    t, q = jnp.asarray(data.t), jnp.asarray(data.q, dtype=jnp.float64)
    dt, phi = float(data.dt), jnp.asarray(data.phi, dtype=jnp.float64)
    c_fixed = jnp.full(n_phi, space.contrast.default, dtype=jnp.float64)
    b_fixed = jnp.full(n_phi, space.offset.default, dtype=jnp.float64)

    def loglik(theta: jax.Array, shard: ShardData) -> jax.Array:
        """Σ_m log N(y_m | g_m(θ), σ_{a_m}²) over the shard's points (constants included)."""
        theta = jnp.asarray(theta, dtype=jnp.float64)
        params = start.at[free].set(theta[:n_phys])
        c = theta[n_phys : n_phys + n_c] if n_c else c_fixed
        b = theta[n_phys + n_c : n_phys + n_c + n_b] if n_b else b_fixed
        g = c2_pooled(params, t, q, dt, phi, c, b, shard.a, shard.i, shard.j)
        r = (shard.y - g) / shard.sigma_points
        return (
            -0.5 * jnp.sum(r * r)
            - jnp.sum(jnp.log(shard.sigma_points))
            - (_HALF_LOG_2PI * shard.y.size)
        )

    return ShardTarget(names, lo, hi, prior_mean, prior_sd, loglik)


def shard_data(pooled, indices: np.ndarray | None, sigma: np.ndarray) -> ShardData:
    """The :class:`ShardData` of the points ``indices`` of a pooled point set.

    Parameters
    ----------
    pooled : ``Pooled`` or ``Problem``  anything with pooled arrays a, i, j, y (canonical order)
    indices : Int[Array, "M_s"] | None  positions of the shard's points (e.g.
        ``ShardPlan.indices(s)``); None takes every point (K = 1)
    sigma : Float64[Array, "n_phi"]  per-slot σ_a, gathered by a_m

    Returns
    -------
    ShardData  int32 a, i, j and float64 y, σ per point, as JAX arrays
    """
    a = np.asarray(pooled.a)
    idx = np.arange(a.size) if indices is None else np.asarray(indices)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"indices must be a 1-d integer array, got {idx.dtype} {idx.shape}")
    n_phi = int(a.max()) + 1 if a.size else 0
    s = np.array(sigma, dtype=np.float64, ndmin=1)
    if s.size < n_phi:
        raise ValueError(f"sigma has {s.size} values, the points use {n_phi} slots")
    s = _check_sigma(s, s.size)
    a_s = a[idx].astype(np.int32)
    return ShardData(
        a=jnp.asarray(a_s),
        i=jnp.asarray(np.asarray(pooled.i)[idx].astype(np.int32)),
        j=jnp.asarray(np.asarray(pooled.j)[idx].astype(np.int32)),
        y=jnp.asarray(np.asarray(pooled.y, dtype=np.float64)[idx]),
        sigma_points=jnp.asarray(s[a_s]),
    )


def warm_start_preconditioner(
    result: NLSQResult, target: ShardTarget, n_shards: int, *, whiten_scale: float = 1.0
) -> Preconditioner:
    """û and L for ``target`` from the NLSQ warm start (cmc spec §3.2).

    ``result.theta``/``cov`` must be laid out like ``target`` (same names, same order), which
    :func:`shard_target` guarantees for the same ``space``. Unidentified quantities of the
    warm start get the prior fallback width; pinned ones are found by ``from_warm_start``.
    """
    if tuple(result.theta_names) != target.names:
        raise ValueError(
            f"warm-start quantities {tuple(result.theta_names)} != target names {target.names}"
        )
    return from_warm_start(
        target.names,
        np.asarray(result.theta, dtype=np.float64),
        np.asarray(result.cov, dtype=np.float64),
        target.lo,
        target.hi,
        target.prior_sd,
        n_shards,
        whiten_scale=whiten_scale,
        unidentified=result.unidentified,
    )
