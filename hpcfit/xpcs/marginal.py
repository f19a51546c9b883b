"""Each slot's contrast and offset integrated out of the shard likelihood in closed form.

c2 is linear in a slot's scaling β_a = (offset_a, contrast_a)::

    y_m = b_a + c_a·G_m(θ) + ε_m,    ε_m ~ N(0, σ_a²),    G the normalised bracket,

so with Normal priors β_a ~ N(μ, diag(v)) the scaling integrates out exactly (Bayesian linear
regression; Bishop, *Pattern Recognition and Machine Learning*, 2006, §3.3; Gelman et al.,
*Bayesian Data Analysis*, 3rd ed., §14.2). Per slot, with X_m the varying columns of (1, G_m)
and z_m = y_m minus the fixed part of the scaling::

    A_a  = X_aᵀX_a / σ_a² + P₀,            P₀ = diag(1/v)
    β*_a = A_a⁻¹ (X_aᵀ z_a / σ_a² + P₀ μ)
    log ∫ N(z_a | X_a β, σ_a²) N(β | μ, P₀⁻¹) dβ
         = −½ [Σ_m r_m²/σ_a² + (β*_a − μ)ᵀ P₀ (β*_a − μ)] − ½ log det A_a + ½ log det P₀
           − n_a log σ_a − (n_a/2) log 2π,          r = z_a − X_a β*_a,

and β_a | θ, y ~ N(β*_a, A_a⁻¹). The residual r is formed point by point (completing the
square), not from raw sums, so no large sums cancel. On a shard of a K-shard job the prior is
raised to 1/K, which for a Normal is a Normal of variance K·v (up to a constant in θ).

The priors hpcfit gives the scaling are Normals truncated to a box; this closed form drops the
truncation, which changes the result by the conditional mass outside the box. The caller
measures that margin (:func:`margin_sd`) and says so when it is small. Pure JAX.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class Conditional(NamedTuple):
    """β_a | θ, y for every slot: mean (n_phi, q), lower Cholesky factor of the precision
    A_a (n_phi, q, q), and the shard's log marginal likelihood (a scalar)."""

    mean: jax.Array
    chol_precision: jax.Array
    log_marginal: jax.Array


def conditional(
    cols: jax.Array,
    z: jax.Array,
    a: jax.Array,
    sigma_slot: jax.Array,
    prior_mean: jax.Array,
    prior_var: jax.Array,
    weight: jax.Array | None = None,
) -> Conditional:
    """The scaling's conditional posterior and the log marginal likelihood of a shard.

    Parameters
    ----------
    cols : Float64[Array, "M q"]  the varying design columns per point, e.g. (1, G_m)
    z : Float64[Array, "M"]  observed c2 minus the fixed part of the scaling
    a : Int[Array, "M"]  slot of each point
    sigma_slot : Float64[Array, "n_phi"]  σ_a
    prior_mean, prior_var : Float64[Array, "q"]  μ and v of the (tempered) Normal prior, the same
        for every slot
    weight : Float64[Array, "M"] | None  1 for a data point, 0 for padding (None: all 1)

    Returns
    -------
    Conditional
    """
    n_phi = sigma_slot.shape[0]
    w = jnp.ones_like(z) if weight is None else weight
    inv_var = 1.0 / (sigma_slot * sigma_slot)
    xtx = jax.ops.segment_sum(w[:, None, None] * cols[:, :, None] * cols[:, None, :], a, n_phi)
    xtz = jax.ops.segment_sum((w * z)[:, None] * cols, a, n_phi)
    p0 = 1.0 / prior_var
    precision = xtx * inv_var[:, None, None] + jnp.diag(p0)[None]
    rhs = xtz * inv_var[:, None] + (p0 * prior_mean)[None]
    chol = jnp.linalg.cholesky(precision)
    half = jax.vmap(lambda lower, r: solve_triangular(lower, r, lower=True))(chol, rhs)
    mean = jax.vmap(lambda lower, h: solve_triangular(lower, h, lower=True, trans="T"))(chol, half)
    r = z - jnp.sum(cols * mean[a], axis=1)
    dev = mean - prior_mean[None]
    quad = jnp.sum(w * r * r * inv_var[a]) + jnp.sum(dev * dev * p0[None])
    log_det_a = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=1, axis2=2)))
    n_points = jax.ops.segment_sum(w, a, n_phi)
    log_ml = (
        -0.5 * quad
        - 0.5 * log_det_a
        + 0.5 * n_phi * jnp.sum(jnp.log(p0))
        - jnp.sum(n_points * jnp.log(sigma_slot))
        - _HALF_LOG_2PI * jnp.sum(n_points)
    )
    return Conditional(mean, chol, log_ml)


def draw(cond: Conditional, key: jax.Array) -> jax.Array:
    """One draw β_a ~ N(β*_a, A_a⁻¹) per slot, shape (n_phi, q)."""
    eps = jax.random.normal(key, cond.mean.shape, dtype=cond.mean.dtype)
    step = jax.vmap(lambda lower, e: solve_triangular(lower, e, lower=True, trans="T"))
    return cond.mean + step(cond.chol_precision, eps)


def conditional_sd(cond: Conditional) -> jax.Array:
    """√diag(A_a⁻¹) per slot, shape (n_phi, q)."""
    eye = jnp.eye(cond.mean.shape[1], dtype=cond.mean.dtype)
    inv_l = jax.vmap(lambda lower: solve_triangular(lower, eye, lower=True))(cond.chol_precision)
    return jnp.sqrt(jnp.sum(inv_l * inv_l, axis=1))


def margin_sd(cond: Conditional, lo: jax.Array, hi: jax.Array) -> jax.Array:
    """The smallest distance from β*_a to the box [lo, hi], in conditional sds (a scalar).

    ``lo``/``hi`` are (q,). Above about 5 the truncation the closed form drops is below 1e-6 of
    the conditional mass.
    """
    sd = conditional_sd(cond)
    return jnp.min(jnp.minimum(cond.mean - lo[None], hi[None] - cond.mean) / sd)
