"""The XPCS shard posterior: a :class:`ShardTarget` over the NLSQ free quantities.

θ is laid out exactly as the NLSQ warm start reports it (``Problem.free_names()``): the varying
physics parameters in canonical order, then the free contrast_a, then the free offset_a. Bounds
are the effective bounds and the priors TruncatedNormal(mean, sd) on them: physics from
``space.prior_mean``/``space.prior_sd``, scaling from the ``space.contrast`` /
``space.offset`` :class:`ParamInfo`. Fixed physics parameters are held at
``space.start``; a fixed contrast or offset at its configured value (``ParamInfo.default``), the
same values the NLSQ problem uses.

Likelihood of one shard::

    ℓ_s(θ) = Σ_{m∈s} [ −½((y_m − g_m(θ))/σ_{a_m})² − log σ_{a_m} − ½ log 2π ]

By default σ_a is fixed (σ̂_a of the warm start, or the known σ_a). With ``sample_sigma`` the
quantities ``sigma_<a>`` are appended to θ with prior HalfNormal(2·σ̂_a) — a Normal(0, 2σ̂_a)
truncated to [0, ∞), i.e. the target's TruncatedNormal with lo = 0, hi = ∞, whose log transform
gives u = log σ_a.

with g from the pooled evaluator ``c2_pooled``. The −log σ and −½ log 2π terms are
*kept*: they are constant while σ is fixed, but make ℓ_s the true Normal log-density. The shard
data is the pytree :class:`ShardData` (a, i, j, y, σ and a weight per point). Shards of one job
are padded to one length with weight-0 points, so one compiled sampler serves them all; a
weight-0 point adds exactly nothing to ℓ_s.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hpcfit.cmc.precondition import Preconditioner, from_cold_start, from_warm_start
from hpcfit.cmc.target import Completion, ShardTarget
from hpcfit.records import NLSQResult
from hpcfit.xpcs import marginal
from hpcfit.xpcs.dataset import SlotGrid
from hpcfit.xpcs.model import c2_pooled, c2_pooled_bracket, c2_slots
from hpcfit.xpcs.params import ParamSpace
from hpcfit.xpcs.problem import Problem

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
SCALINGS = ("sample", "marginal")


class ShardData(NamedTuple):
    """The data of one shard, a JAX pytree (points in the order given, canonical for a plan).

    a, i, j : Int32[Array, "M_s"]  slot and 0-based frame positions (i < j)
    y : Float64[Array, "M_s"]  observed c2
    sigma_points : Float64[Array, "M_s"]  σ_{a_m} of each point
    weight : Float64[Array, "M_s"]  1 for a data point, 0 for padding
    """

    a: jax.Array
    i: jax.Array
    j: jax.Array
    y: jax.Array
    sigma_points: jax.Array
    weight: jax.Array


def _layout_problem(data: SlotGrid, space: ParamSpace) -> Problem:
    """A Problem with the dataset's grid and slots but no points: only its layout is used."""
    empty_i = np.zeros(0, dtype=np.int32)
    return Problem(
        space, data.t, data.step, data.q, data.phi, empty_i, empty_i, empty_i, np.zeros(0)
    )


def _check_sigma(sigma: np.ndarray, n_phi: int) -> np.ndarray:
    s = np.array(sigma, dtype=np.float64, ndmin=1)
    if s.shape != (n_phi,) or not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError(f"sigma must hold {n_phi} finite values > 0 (one per slot), got {s}")
    return s


def shard_target(
    data: SlotGrid,
    space: ParamSpace,
    sigma: np.ndarray,
    *,
    sample_sigma: bool = False,
    scaling: str = "sample",
    n_shards: int = 1,
) -> ShardTarget:
    """The shard target of a dataset's grid under ``space``.

    Parameters
    ----------
    data : SlotGrid (or XpcsData)  the time grid t, dt, q and φ of the slots (not the values)
    space : ParamSpace  start values, effective bounds, priors and the vary flags
    sigma : Float64[Array, "n_phi"]  σ̂_a or the known σ_a: the fixed noise, or the
        scale of the HalfNormal(2σ̂_a) prior when ``sample_sigma``
    sample_sigma : bool  append ``sigma_<a>`` to θ and sample them
    scaling : "sample" | "marginal"  sample the free contrast_a and offset_a with the rest, or
        integrate them out of the likelihood and draw them back per draw
        (:func:`marginal_target`)
    n_shards : int  K, needed by ``marginal`` (the integrated prior is tempered by 1/K)

    Returns
    -------
    ShardTarget  reporting ``Problem.free_names()`` (+ ``sigma_<a>``);
    ``loglik(theta, shard: ShardData)`` as in the module docstring
    """
    full = _sampled_scaling_target(data, space, sigma, sample_sigma=sample_sigma)
    return as_sampled(full, data, space, sigma, sample_sigma, scaling, n_shards)


def as_sampled(
    full: ShardTarget,
    data: SlotGrid,
    space: ParamSpace,
    sigma: np.ndarray,
    sample_sigma: bool,
    scaling: str,
    n_shards: int,
) -> ShardTarget:
    """The target NUTS samples for the reporting target ``full`` under ``cmc.scaling``:
    ``full`` itself for ``sample`` (or when no scaling varies), else :func:`marginal_target`."""
    if scaling not in SCALINGS:
        raise ValueError(f"cmc.scaling must be one of {SCALINGS}, got {scaling!r}")
    if scaling == "sample" or not (space.vary_contrast or space.vary_offset):
        return full
    return marginal_target(full, data, space, sigma, sample_sigma, n_shards)


def _sampled_scaling_target(
    data: SlotGrid, space: ParamSpace, sigma: np.ndarray, *, sample_sigma: bool
) -> ShardTarget:
    """Every free quantity sampled: physics, contrast_a, offset_a (and σ_a)."""
    sigma = _check_sigma(sigma, data.n_phi)
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
    n_free = len(names)
    if sample_sigma:
        names = (*names, *(f"sigma_{a}" for a in range(n_phi)))
        lo = np.concatenate([lo, np.zeros(n_phi)])
        hi = np.concatenate([hi, np.full(n_phi, np.inf)])
        prior_mean = np.concatenate([prior_mean, np.zeros(n_phi)])
        prior_sd = np.concatenate([prior_sd, 2.0 * sigma])

    start = jnp.asarray(space.start, dtype=jnp.float64)
    free = jnp.asarray(space.free_index)
    t, q = jnp.asarray(data.t), jnp.asarray(data.q, dtype=jnp.float64)
    dt, phi = float(data.step), jnp.asarray(data.phi, dtype=jnp.float64)
    c_fixed = jnp.full(n_phi, space.contrast.default, dtype=jnp.float64)
    b_fixed = jnp.full(n_phi, space.offset.default, dtype=jnp.float64)

    def loglik(theta: jax.Array, shard: ShardData) -> jax.Array:
        """Σ_m log N(y_m | g_m(θ), σ_{a_m}²) over the shard's points (constants included)."""
        theta = jnp.asarray(theta, dtype=jnp.float64)
        params = start.at[free].set(theta[:n_phys])
        c = theta[n_phys : n_phys + n_c] if n_c else c_fixed
        b = theta[n_phys + n_c : n_phys + n_c + n_b] if n_b else b_fixed
        g = c2_pooled(params, t, q, dt, phi, c, b, shard.a, shard.i, shard.j)
        s = theta[n_free:][shard.a] if sample_sigma else shard.sigma_points
        r = (shard.y - g) / s
        w = shard.weight
        return -0.5 * jnp.sum(w * r * r) - jnp.sum(w * jnp.log(s)) - _HALF_LOG_2PI * jnp.sum(w)

    return ShardTarget(names, lo, hi, prior_mean, prior_sd, loglik)


def marginal_target(
    full: ShardTarget,
    data: SlotGrid,
    space: ParamSpace,
    sigma: np.ndarray,
    sample_sigma: bool,
    n_shards: int,
) -> ShardTarget:
    """``full`` with each slot's free contrast and offset integrated out (``cmc.scaling=marginal``).

    NUTS samples the free physics (and σ_a); ``loglik`` is the closed-form marginal of
    :mod:`hpcfit.xpcs.marginal` under the scaling priors as untruncated Normals with variance
    K·sd² (the shard's 1/K tempering), and the completion draws contrast_a and offset_a from
    their conditional Normal at every draw, reporting exactly ``full``'s quantities.
    """
    if isinstance(n_shards, bool) or not isinstance(n_shards, int | np.integer) or n_shards < 1:
        raise ValueError(f"n_shards must be an integer >= 1, got {n_shards!r}")
    sigma = _check_sigma(sigma, data.n_phi)
    n_phi, n_phys = data.n_phi, int(np.size(space.free_index))
    vary_b, vary_c = space.vary_offset, space.vary_contrast
    n_c, n_b = n_phi * vary_c, n_phi * vary_b
    n_free = n_phys + n_c + n_b
    keep = np.r_[np.arange(n_phys), np.arange(n_free, full.size)]
    # design columns (1 → offset, G → contrast), the varying ones in that order; every slot
    # shares its priors and bounds, so the first slot's entries of ``full`` stand for all
    first = [k for k, v in ((n_phys + n_c, vary_b), (n_phys, vary_c)) if v]
    prior_mean = jnp.asarray(full.prior_mean[first])
    prior_var = jnp.asarray(n_shards * full.prior_sd[first] ** 2)
    box_lo, box_hi = jnp.asarray(full.lo[first]), jnp.asarray(full.hi[first])
    c0, b0 = space.contrast.default, space.offset.default
    start = jnp.asarray(space.start, dtype=jnp.float64)
    free = jnp.asarray(space.free_index)
    t, q = jnp.asarray(data.t), jnp.asarray(data.q, dtype=jnp.float64)
    dt, phi = float(data.step), jnp.asarray(data.phi, dtype=jnp.float64)
    sigma_fixed = jnp.asarray(sigma)

    def scaling_posterior(theta: jax.Array, shard: ShardData) -> marginal.Conditional:
        params = start.at[free].set(theta[:n_phys])
        g = c2_pooled_bracket(params, t, q, dt, phi, shard.a, shard.i, shard.j)
        cols = [x for x, v in ((jnp.ones_like(g), vary_b), (g, vary_c)) if v]
        z = shard.y - (0.0 if vary_b else b0) - (0.0 if vary_c else c0 * g)
        s = theta[n_phys:] if sample_sigma else sigma_fixed
        return marginal.conditional(
            jnp.stack(cols, axis=1), z, shard.a, s, prior_mean, prior_var, shard.weight
        )

    def loglik(theta: jax.Array, shard: ShardData) -> jax.Array:
        """log ∫ L_s(θ, c, b) p(c, b)^{1/K} d(c, b) (constants of θ included)."""
        return scaling_posterior(jnp.asarray(theta, dtype=jnp.float64), shard).log_marginal

    def one(args: tuple[jax.Array, jax.Array], shard: ShardData):
        theta, key = args
        cond = scaling_posterior(theta, shard)
        beta = marginal.draw(cond, key)  # (n_phi, q): offset column first where it varies
        c = beta[:, -1] if vary_c else jnp.zeros(0)
        b = beta[:, 0] if vary_b else jnp.zeros(0)
        out = jnp.concatenate([theta[:n_phys], c, b, theta[n_phys:]])
        return out, marginal.margin_sd(cond, box_lo, box_hi)

    @jax.jit
    def draw(theta: jax.Array, shard: ShardData, key: jax.Array):
        keys = jax.random.split(key, theta.shape[0])
        out, margins = jax.lax.map(lambda x: one(x, shard), (theta, keys), batch_size=16)
        return out, jnp.min(margins)

    return ShardTarget(
        tuple(full.names[k] for k in keep),
        full.lo[keep],
        full.hi[keep],
        full.prior_mean[keep],
        full.prior_sd[keep],
        loglik,
        Completion(full.names, full.lo, full.hi, draw),
    )


def shard_data(
    pooled, indices: np.ndarray | None, sigma: np.ndarray, size: int | None = None
) -> ShardData:
    """The :class:`ShardData` of the points ``indices`` of a pooled point set.

    Parameters
    ----------
    pooled : ``Pooled`` or ``Problem``  anything with pooled arrays a, i, j, y (canonical order)
    indices : Int[Array, "M_s"] | None  positions of the shard's points (e.g.
        ``ShardPlan.indices(s)``); None takes every point (K = 1)
    sigma : Float64[Array, "n_phi"]  per-slot σ_a, gathered by a_m
    size : int | None  pad to this many points with weight-0 copies of the first point (the
        largest shard of the job, so every shard has one shape); None: no padding

    Returns
    -------
    ShardData  int32 a, i, j and float64 y, σ, weight per point, as JAX arrays
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
    n_pad = 0 if size is None else int(size) - idx.size
    if n_pad < 0 or (n_pad and not idx.size):
        raise ValueError(f"cannot pad a shard of {idx.size} points to {size}")
    weight = np.concatenate([np.ones(idx.size), np.zeros(n_pad)])
    idx = np.concatenate([idx, np.full(n_pad, idx[0] if n_pad else 0, dtype=idx.dtype)])
    a_s = a[idx].astype(np.int32)
    return ShardData(
        a=jnp.asarray(a_s),
        i=jnp.asarray(np.asarray(pooled.i)[idx].astype(np.int32)),
        j=jnp.asarray(np.asarray(pooled.j)[idx].astype(np.int32)),
        y=jnp.asarray(np.asarray(pooled.y, dtype=np.float64)[idx]),
        sigma_points=jnp.asarray(s[a_s]),
        weight=jnp.asarray(weight),
    )


def warm_start_preconditioner(
    result: NLSQResult,
    target: ShardTarget,
    n_shards: int,
    *,
    whiten_scale: float = 1.0,
    sigma: np.ndarray | None = None,
    slot_counts: np.ndarray | None = None,
) -> Preconditioner:
    """û and L for ``target`` from the NLSQ warm start.

    ``result.theta``/``cov`` must be laid out like ``target`` (same names, same order), which
    :func:`shard_target` guarantees for the same ``space``. Unidentified quantities of the
    warm start get the prior fallback width; pinned ones are found by ``from_warm_start``.
    When the target samples σ_a, ``sigma`` (σ̂_a) and ``slot_counts`` (M_a) give the extra
    coordinates: û = log σ̂_a and variance σ̂_a²/(2M_a) in θ, i.e. K/(2M_a) in u after scaling.
    """
    names, theta, cov = tuple(result.theta_names), np.asarray(result.theta), result.cov
    n_sigma = sum(n.startswith("sigma_") for n in target.output_names)
    if n_sigma:
        if sigma is None or slot_counts is None or np.size(sigma) != n_sigma:
            raise ValueError(f"a target sampling σ needs {n_sigma} σ̂_a and slot counts")
        s, m = np.asarray(sigma, dtype=np.float64), np.asarray(slot_counts, dtype=np.float64)
        names = (*names, *(f"sigma_{a}" for a in range(n_sigma)))
        theta = np.concatenate([theta, s])
        full = np.zeros((len(names), len(names)))
        full[: cov.shape[0], : cov.shape[0]] = cov
        full[cov.shape[0] :, cov.shape[0] :] = np.diag(s * s / (2.0 * m))
        cov = full
    if names != target.output_names:
        raise ValueError(f"warm-start quantities {names} != target names {target.output_names}")
    keep = [names.index(n) for n in target.names]  # a Gaussian's marginal: the sub-block
    return from_warm_start(
        target.names,
        np.asarray(theta, dtype=np.float64)[keep],
        np.asarray(cov, dtype=np.float64)[np.ix_(keep, keep)],
        target.lo,
        target.hi,
        target.prior_sd,
        n_shards,
        whiten_scale=whiten_scale,
        unidentified=[n for n in result.unidentified if n in target.names],
    )


def cold_start_preconditioner(
    target: ShardTarget, space: ParamSpace, sigma: np.ndarray, n_shards: int
) -> Preconditioner:
    """û and diagonal L without a warm start: physics at the configured start, contrast
    and offset at their configured start values, σ_a (if sampled) at ``sigma``."""
    n_phi = np.size(sigma)
    n_phys = int(np.size(space.free_index))
    n_c = n_phi if space.vary_contrast else 0
    n_b = n_phi if space.vary_offset else 0
    parts = [
        np.asarray(space.start, dtype=np.float64)[space.free_index],
        np.full(n_c, space.contrast.default),
        np.full(n_b, space.offset.default),
    ]
    if len(target.output_names) > n_phys + n_c + n_b:
        parts.append(np.asarray(sigma, dtype=np.float64))
    start = np.concatenate(parts)
    start = start[[target.output_names.index(n) for n in target.names]]
    return from_cold_start(target.names, start, target.lo, target.hi, target.prior_sd, n_shards)


def mad_sigma(c2: np.ndarray, frame_mask: np.ndarray | None = None) -> np.ndarray:
    """Model-free σ̂_a = 1.4826·MAD(c2[a,i,j+1] − c2[a,i,j])/√2 over i < j < N−1.

    Neighbouring lags differ by noise (and a small smooth drift), so the robust spread of
    their difference is √2·σ. With ``frame_mask`` (n_phi, N), pairs touching a frame without
    photons are left out.
    """
    c2 = np.asarray(c2, dtype=np.float64)
    n = c2.shape[-1]
    iu, ju = np.triu_indices(n - 1, k=1)  # i < j ≤ N − 2, so j + 1 ≤ N − 1
    out = np.empty(c2.shape[0])
    for a in range(c2.shape[0]):
        d = c2[a, iu, ju + 1] - c2[a, iu, ju]
        if frame_mask is not None:
            ok = frame_mask[a]
            d = d[ok[iu] & ok[ju] & ok[ju + 1]]
        out[a] = 1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0)
    return out


def predictive_maps(grid: SlotGrid, space: ParamSpace, theta_draws: np.ndarray) -> np.ndarray:
    """Model c2 maps (D, n_phi, N, N) for D draws of θ (shard-target order; σ columns ignored).

    Used for posterior-predictive checks; evaluates the meshgrid model of every draw.
    """
    problem = _layout_problem(grid, space)
    n_free = len(problem.free_names())
    maps = []
    for theta in np.asarray(theta_draws, dtype=np.float64):
        params, c, b = problem.split_free(theta[:n_free])
        maps.append(np.asarray(c2_slots(params, grid.t, grid.q, grid.step, grid.phi, c, b)))
    return np.stack(maps)
