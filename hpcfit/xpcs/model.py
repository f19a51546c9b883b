"""Heterodyne two-time correlation c2 (pure JAX, float64; safe under jit, vmap and grad).

Two evaluators share one rate stage:

* :func:`c2_meshgrid` builds the full (N, N) map of one angle slot, for plots and residual maps;
* :func:`c2_pooled` evaluates only the requested points (slot a, frame i, frame j) in O(N + M),
  never forming an N×N array; it is the fitting path (NLSQ residuals, NumPyro likelihood).

The equations are those of the heterodyne package (version 2.0.0): a reference and a sample
field whose positional variances grow at rates J_ref(t), J_smp(t), a relative drift velocity v(t),
and a time-dependent sample amplitude fraction f_s(t); cf. the one-time form of the PNAS
heterodyne derivation (eq. S-98). Units: q in 1/Å, t and dt in s, φ and φ0 in degrees.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

_T_FLOOR = 1e-10  # s; the safe-power floor (select, not max)
_SMOOTH_ABS_EPS = 1e-12  # Å⁴; smooth |x| = sqrt(x² + eps)
_LOG_CLIP = 700.0  # clip of the transport exponent in log space
_RATE_CLIP = 100.0  # clip of the fraction exponent
_NORM_FLOOR = 1e-10


class GridStage(NamedTuple):
    """The slot-independent O(N) stage: cumulative integrals and field fractions on the grid.

    ``c_ref``, ``c_smp`` (Å²) and ``c_v`` (Å) are trapezoid cumulative integrals of J_ref, J_smp
    and v; ``f_s``, ``f_r`` the sample and reference amplitude fractions. All have shape (N,).
    """

    c_ref: jax.Array
    c_smp: jax.Array
    c_v: jax.Array
    f_s: jax.Array
    f_r: jax.Array


def safe_power(t: jax.Array, a: jax.Array) -> jax.Array:
    """t**a for t > 0 (t floored at 1e-10 by a select), 0 for t ≤ 0, with finite gradients."""
    tau = jnp.where(t < _T_FLOOR, _T_FLOOR, t)
    return jnp.where(t > 0.0, tau**a, 0.0)


def cumulative_trapezoid(g: jax.Array, dt: jax.Array) -> jax.Array:
    """C_0 = 0, C_k = C_{k-1} + dt (g_{k-1} + g_k) / 2 along the last axis."""
    increments = dt * (g[..., :-1] + g[..., 1:]) / 2.0
    zero = jnp.zeros(g.shape[:-1] + (1,), dtype=g.dtype)
    return jnp.concatenate([zero, jnp.cumsum(increments, axis=-1)], axis=-1)


def grid_stage(params: ArrayLike, t: ArrayLike, dt: ArrayLike) -> GridStage:
    """Rates, their cumulative integrals and the fractions on the time grid.

    Parameters
    ----------
    params : Float64[Array, "14"]  physics parameters in canonical order
    t : Float64[Array, "N"]  evaluation times (s); the integrals use ``dt`` as the step
    dt : float  trapezoid step (s)
    """
    p = jnp.asarray(params, dtype=jnp.float64)
    t = jnp.asarray(t, dtype=jnp.float64)
    dt = jnp.asarray(dt, dtype=jnp.float64)
    d0_ref, a_ref, doff_ref, d0_smp, a_smp, doff_smp = p[0], p[1], p[2], p[3], p[4], p[5]
    v0, beta, v_off, f0, f1, f2, f3 = p[6], p[7], p[8], p[9], p[10], p[11], p[12]
    j_ref = jnp.maximum(d0_ref * safe_power(t, a_ref) + doff_ref, 0.0)
    j_smp = jnp.maximum(d0_smp * safe_power(t, a_smp) + doff_smp, 0.0)
    v = v0 * safe_power(t, beta) + v_off
    f_s = jnp.clip(f0 * jnp.exp(jnp.clip(f1 * (t - f2), -_RATE_CLIP, _RATE_CLIP)) + f3, 0.0, 1.0)
    return GridStage(
        c_ref=cumulative_trapezoid(j_ref, dt),
        c_smp=cumulative_trapezoid(j_smp, dt),
        c_v=cumulative_trapezoid(v, dt),
        f_s=f_s,
        f_r=1.0 - f_s,
    )


def pair_values(
    d_ref: jax.Array,
    d_smp: jax.Array,
    d_v: jax.Array,
    fs_i: jax.Array,
    fr_i: jax.Array,
    fs_j: jax.Array,
    fr_j: jax.Array,
    q: jax.Array,
    cos_angle: jax.Array,
    contrast: jax.Array,
    offset: jax.Array,
) -> jax.Array:
    """Element-wise c2 from pair differences C_j − C_i and the fractions at i and j.

    Every argument broadcasts; ``cos_angle`` is cos(deg2rad(φ + φ0)).
    """
    a_ref = jnp.sqrt(d_ref * d_ref + _SMOOTH_ABS_EPS)
    a_smp = jnp.sqrt(d_smp * d_smp + _SMOOTH_ABS_EPS)
    half_q2 = -0.5 * q * q
    h_ref = jnp.exp(jnp.clip(half_q2 * a_ref, -_LOG_CLIP, 0.0))
    h_smp = jnp.exp(jnp.clip(half_q2 * a_smp, -_LOG_CLIP, 0.0))
    phase = q * cos_angle * d_v
    ref = (fr_i * fr_j) ** 2 * h_ref**2
    smp = (fs_i * fs_j) ** 2 * h_smp**2
    crs = 2.0 * (fr_i * fs_i) * (fr_j * fs_j) * h_ref * h_smp * jnp.cos(phase)
    n = (fs_i**2 + fr_i**2) * (fs_j**2 + fr_j**2)
    norm = jnp.where(n < _NORM_FLOOR, _NORM_FLOOR, n)
    return offset + contrast * (ref + smp + crs) / norm


def _cos_angle(phi: ArrayLike, phi0: ArrayLike) -> jax.Array:
    return jnp.cos(jnp.deg2rad(jnp.asarray(phi, dtype=jnp.float64) + phi0))


def c2_meshgrid(
    params: ArrayLike,
    t: ArrayLike,
    q: ArrayLike,
    dt: ArrayLike,
    phi: ArrayLike,
    contrast: ArrayLike = 1.0,
    offset: ArrayLike = 1.0,
) -> jax.Array:
    """Full two-time correlation map of one angle slot.

    Parameters
    ----------
    params : Float64[Array, "14"]  physics parameters in canonical order (see ``params.NAMES``)
    t : Float64[Array, "N"]  time grid (s)
    q : float  scattering wave-vector magnitude (1/Å)
    dt : float  frame interval, the trapezoid step (s)
    phi : float  detector azimuth (degrees)
    contrast, offset : float  per-slot scaling (dimensionless)

    Returns
    -------
    Float64[Array, "N N"]  c2[i, j], symmetric, memory ~10 N² float64 intermediates
    """
    g = grid_stage(params, t, dt)
    q = jnp.asarray(q, dtype=jnp.float64)
    cos_angle = _cos_angle(phi, jnp.asarray(params, dtype=jnp.float64)[13])
    row, col = (slice(None), None), (None, slice(None))
    return pair_values(
        g.c_ref[col] - g.c_ref[row],
        g.c_smp[col] - g.c_smp[row],
        g.c_v[col] - g.c_v[row],
        g.f_s[row],
        g.f_r[row],
        g.f_s[col],
        g.f_r[col],
        q,
        cos_angle,
        jnp.asarray(contrast, dtype=jnp.float64),
        jnp.asarray(offset, dtype=jnp.float64),
    )


def c2_pooled(
    params: ArrayLike,
    t: ArrayLike,
    q: ArrayLike,
    dt: ArrayLike,
    phis: ArrayLike,
    contrasts: ArrayLike,
    offsets: ArrayLike,
    a: ArrayLike,
    i: ArrayLike,
    j: ArrayLike,
) -> jax.Array:
    """c2 at pooled points (slot a, frame i, frame j) without building any N×N array.

    Parameters
    ----------
    params : Float64[Array, "14"]  physics parameters in canonical order
    t : Float64[Array, "N"]  time grid (s)
    q : float | Float64[Array, "n_phi"]  wave vector, shared or per slot (1/Å)
    dt : float  trapezoid step (s)
    phis, contrasts, offsets : Float64[Array, "n_phi"]  per-slot azimuth (deg) and scaling
    a, i, j : Int[Array, "m"]  slot index and 0-based frame positions of each point

    Returns
    -------
    Float64[Array, "m"]  c2 at each point; cost O(N + m)
    """
    p = jnp.asarray(params, dtype=jnp.float64)
    g = grid_stage(p, t, dt)
    phis = jnp.atleast_1d(jnp.asarray(phis, dtype=jnp.float64))
    q_slot = jnp.broadcast_to(jnp.asarray(q, dtype=jnp.float64), phis.shape)
    cos_slot = _cos_angle(phis, p[13])
    contrasts = jnp.broadcast_to(jnp.asarray(contrasts, dtype=jnp.float64), phis.shape)
    offsets = jnp.broadcast_to(jnp.asarray(offsets, dtype=jnp.float64), phis.shape)
    # The barrier keeps XLA from fusing the gathers (and, under autodiff, their scatter-add
    # transposes) into the element-wise loop; values are unchanged, gradients ~1.5x faster.
    gathered = jax.lax.optimization_barrier(
        (
            g.c_ref[j] - g.c_ref[i],
            g.c_smp[j] - g.c_smp[i],
            g.c_v[j] - g.c_v[i],
            g.f_s[i],
            g.f_r[i],
            g.f_s[j],
            g.f_r[j],
            q_slot[a],
            cos_slot[a],
            contrasts[a],
            offsets[a],
        )
    )
    return pair_values(*gathered)


def c2_pooled_bracket(
    params: ArrayLike,
    t: ArrayLike,
    q: ArrayLike,
    dt: ArrayLike,
    phis: ArrayLike,
    a: ArrayLike,
    i: ArrayLike,
    j: ArrayLike,
) -> jax.Array:
    """The normalised bracket G = (ref + smp + crs) / norm at pooled points.

    ``c2 = offset_a + contrast_a · G``; the NLSQ variable projection solves the scaling from G.
    """
    ones = jnp.ones_like(jnp.atleast_1d(jnp.asarray(phis, dtype=jnp.float64)))
    return c2_pooled(params, t, q, dt, phis, ones, 0.0 * ones, a, i, j)


def c2_slots(
    params: ArrayLike,
    t: ArrayLike,
    q: ArrayLike,
    dt: ArrayLike,
    phis: ArrayLike,
    contrasts: ArrayLike,
    offsets: ArrayLike,
) -> jax.Array:
    """Meshgrid maps of all slots, shape (n_phi, N, N) (a vmap of :func:`c2_meshgrid`)."""
    phis = jnp.atleast_1d(jnp.asarray(phis, dtype=jnp.float64))
    q = jnp.broadcast_to(jnp.asarray(q, dtype=jnp.float64), phis.shape)
    return jax.vmap(c2_meshgrid, in_axes=(None, None, 0, None, 0, 0, 0))(
        params, t, q, dt, phis, jnp.asarray(contrasts), jnp.asarray(offsets)
    )
