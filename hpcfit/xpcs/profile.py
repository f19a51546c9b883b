"""Variable projection of the per-slot scaling: c2 = offset_a + contrast_a · G.

Given the bracket G of a parameter vector, each slot's (contrast, offset) minimising the sum of
squared residuals on the box [c_lo, c_hi] × [b_lo, b_hi] has a closed form (Golub and Pereyra's
variable projection): the unconstrained solution if it is feasible, else the best of four edge
candidates — exact for a convex quadratic on a box. Written branch-free (``where``/``argmin``) so
that autodiff through it gives the exact variable-projection Jacobian. Pure JAX.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

DEGENERATE_RTOL = 1e-12  # S_GG ≤ 1e-12·ΣG²: the slot shows no dynamics


class ScalingBox(NamedTuple):
    """Per-slot bounds and configured values of contrast (c) and offset (b), shape (n_phi,).

    ``vary_c``/``vary_b`` are booleans: a fixed quantity stays at ``c0``/``b0``; ``c0`` is also the
    contrast used for a degenerate slot.
    """

    # float64 arrays, NumPy where built on the host and JAX where traced
    c_lo: Any
    c_hi: Any
    b_lo: Any
    b_hi: Any
    c0: Any
    b0: Any
    vary_c: bool
    vary_b: bool


class SlotMoments(NamedTuple):
    """Centred sums of one slot's points (n, Ḡ, ȳ, S_GG, S_Gy, S_yy), each shape (n_phi,)."""

    n: jax.Array
    g_mean: jax.Array
    y_mean: jax.Array
    s_gg: jax.Array
    s_gy: jax.Array
    s_yy: jax.Array


def slot_moments(g: jax.Array, y: jax.Array, a: jax.Array, n_phi: int) -> SlotMoments:
    """Centred moments per slot (two passes, so no cancellation of large raw sums)."""
    n = jax.ops.segment_sum(jnp.ones_like(g), a, num_segments=n_phi)
    g_mean = jax.ops.segment_sum(g, a, num_segments=n_phi) / n
    y_mean = jax.ops.segment_sum(y, a, num_segments=n_phi) / n
    dg = g - g_mean[a]
    dy = y - y_mean[a]
    return SlotMoments(
        n=n,
        g_mean=g_mean,
        y_mean=y_mean,
        s_gg=jax.ops.segment_sum(dg * dg, a, num_segments=n_phi),
        s_gy=jax.ops.segment_sum(dg * dy, a, num_segments=n_phi),
        s_yy=jax.ops.segment_sum(dy * dy, a, num_segments=n_phi),
    )


def ssr(m: SlotMoments, c: jax.Array, b: jax.Array) -> jax.Array:
    """Σ(y − b − cG)² per slot from the centred moments (exact identity)."""
    resid_mean = m.y_mean - b - c * m.g_mean
    return m.s_yy - 2.0 * c * m.s_gy + c * c * m.s_gg + m.n * resid_mean * resid_mean


def solve_scaling(m: SlotMoments, box: ScalingBox) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Least-squares (contrast, offset) per slot on the box; returns (c, b, degenerate flag)."""
    sum_g2 = m.s_gg + m.n * m.g_mean**2
    degenerate = m.s_gg <= DEGENERATE_RTOL * sum_g2

    def offset_for(c: jax.Array) -> jax.Array:
        return jnp.clip(m.y_mean - c * m.g_mean, box.b_lo, box.b_hi)

    def contrast_for(b: jax.Array) -> jax.Array:
        sum_gy_minus_b = m.s_gy + m.n * m.g_mean * (m.y_mean - b)  # Σ G (y − b)
        safe = jnp.where(sum_g2 > 0.0, sum_g2, 1.0)
        return jnp.clip(sum_gy_minus_b / safe, box.c_lo, box.c_hi)

    if not box.vary_c and not box.vary_b:
        return box.c0, box.b0, degenerate
    if not box.vary_c:
        return box.c0, offset_for(box.c0), degenerate
    if not box.vary_b:
        return jnp.where(degenerate, box.c0, contrast_for(box.b0)), box.b0, degenerate

    safe_gg = jnp.where(degenerate, 1.0, m.s_gg)
    c_free = m.s_gy / safe_gg
    b_free = m.y_mean - c_free * m.g_mean
    feasible = (c_free >= box.c_lo) & (c_free <= box.c_hi) & (b_free >= box.b_lo)
    feasible = feasible & (b_free <= box.b_hi)
    cands_c = jnp.stack([box.c_lo, box.c_hi, contrast_for(box.b_lo), contrast_for(box.b_hi)])
    cands_b = jnp.stack([offset_for(box.c_lo), offset_for(box.c_hi), box.b_lo, box.b_hi])
    cost = ssr(SlotMoments(*(x[None, :] for x in m)), cands_c, cands_b)  # (4, n_phi)
    best = jnp.argmin(cost, axis=0)
    edge_c = jnp.take_along_axis(cands_c, best[None, :], axis=0)[0]
    edge_b = jnp.take_along_axis(cands_b, best[None, :], axis=0)[0]
    c = jnp.where(feasible, c_free, edge_c)
    b = jnp.where(feasible, b_free, edge_b)
    c = jnp.where(degenerate, box.c0, c)
    b = jnp.where(degenerate, offset_for(box.c0), b)
    return c, b, degenerate
