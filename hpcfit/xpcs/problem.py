"""The pooled least-squares problem of a dataset: unknowns, bounds and residual functions.

Two parameterisations of the same problem (cmc spec §1.1):

* **profile** — unknowns are the free physics parameters; each slot's contrast and offset are
  solved in closed form inside the residual (``profile.solve_scaling``);
* **fit** — unknowns are the free physics parameters, then the free contrast_a, then the free
  offset_a (the "free quantities" θ of the spec, used for the covariance in both modes).

Residuals are r_m = (offset_a + contrast_a·G_m − y_m)·w_a with w_a = 1/σ_a.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from hpcfit.xpcs.dataset import XpcsData
from hpcfit.xpcs.model import c2_pooled_bracket
from hpcfit.xpcs.params import NAMES, ParamSpace
from hpcfit.xpcs.profile import ScalingBox, slot_moments, solve_scaling


@dataclass(frozen=True)
class Problem:
    """Pooled data (float64/int32 NumPy arrays) plus the parameter space of one fit."""

    space: ParamSpace
    t: np.ndarray
    dt: float
    q: np.ndarray
    phi: np.ndarray
    a: np.ndarray
    i: np.ndarray
    j: np.ndarray
    y: np.ndarray

    @classmethod
    def from_data(cls, data: XpcsData, space: ParamSpace) -> Problem:
        pooled = data.pooled()
        return cls(space, data.t, data.dt, data.q, data.phi, pooled.a, pooled.i, pooled.j, pooled.y)

    @property
    def n_phi(self) -> int:
        return int(self.q.size)

    @property
    def size(self) -> int:
        return int(self.y.size)

    @cached_property
    def slot_counts(self) -> np.ndarray:
        return np.bincount(self.a, minlength=self.n_phi).astype(np.float64)

    @cached_property
    def box(self) -> ScalingBox:
        c, b, n = self.space.contrast, self.space.offset, self.n_phi
        full = lambda v: np.full(n, v, dtype=np.float64)  # noqa: E731
        return ScalingBox(
            full(c.lo),
            full(c.hi),
            full(b.lo),
            full(b.hi),
            full(c.default),
            full(b.default),
            self.space.vary_contrast,
            self.space.vary_offset,
        )

    # -- layout of the unknowns ------------------------------------------------------------
    @property
    def n_phys(self) -> int:
        return int(self.space.free_index.size)

    def _n_c(self) -> int:
        return self.n_phi if self.space.vary_contrast else 0

    def _n_b(self) -> int:
        return self.n_phi if self.space.vary_offset else 0

    def scaling_names(self) -> tuple[str, ...]:
        c = [f"contrast_{k}" for k in range(self._n_c())]
        b = [f"offset_{k}" for k in range(self._n_b())]
        return tuple(c + b)

    def free_names(self) -> tuple[str, ...]:
        return self.space.free_names + self.scaling_names()

    def unknown_bounds(self, fit_mode: bool) -> tuple[np.ndarray, np.ndarray]:
        free = self.space.free_index
        lo, hi = [self.space.lo[free]], [self.space.hi[free]]
        if fit_mode:
            c, b = self.space.contrast, self.space.offset
            lo += [np.full(self._n_c(), c.lo), np.full(self._n_b(), b.lo)]
            hi += [np.full(self._n_c(), c.hi), np.full(self._n_b(), b.hi)]
        return np.concatenate(lo), np.concatenate(hi)

    def unknown_prior_sd(self, fit_mode: bool) -> np.ndarray:
        parts = [self.space.prior_sd[self.space.free_index]]
        if fit_mode:
            c, b = self.space.contrast, self.space.offset
            parts += [np.full(self._n_c(), c.prior_sd), np.full(self._n_b(), b.prior_sd)]
        return np.concatenate(parts)

    # -- residuals ---------------------------------------------------------------------------
    def _physics(self, x_phys: jax.Array) -> jax.Array:
        start = jnp.asarray(self.space.start, dtype=jnp.float64)
        return start.at[jnp.asarray(self.space.free_index)].set(x_phys)

    def _bracket(self, x_phys: jax.Array, a, i, j) -> jax.Array:
        return c2_pooled_bracket(self._physics(x_phys), self.t, self.q, self.dt, self.phi, a, i, j)

    def _scaling_from_free(self, x_scale: jax.Array) -> tuple[jax.Array, jax.Array]:
        nc = self._n_c()
        c = x_scale[:nc] if nc else self.box.c0
        b = x_scale[nc:] if self._n_b() else self.box.b0
        return c, b

    def _profiled_impl(self, x_phys: jax.Array):
        g = self._bracket(x_phys, self.a, self.i, self.j)
        y = jnp.asarray(self.y)
        c, b, degenerate = solve_scaling(
            slot_moments(g, y, jnp.asarray(self.a), self.n_phi), self.box
        )
        return g, c, b, degenerate

    @cached_property
    def _profiled(self):
        """Jitted (G, contrast, offset, degenerate) at the free physics ``x_phys``."""
        return jax.jit(self._profiled_impl)

    @cached_property
    def _fit_residual_all(self):
        return jax.jit(
            lambda theta, w: self._fit_residual(theta, w, self.a, self.i, self.j, self.y)
        )

    @cached_property
    def _jacobian(self):
        def jac(theta, w, a, i, j, y):
            return jax.jacfwd(lambda th: self._fit_residual(th, w, a, i, j, y))(theta)

        return jax.jit(jac)

    def residual_function(self, weights: np.ndarray, fit_mode: bool):
        """A jit-compatible map from the unknowns to the weighted residual vector (length M)."""
        w = jnp.asarray(weights, dtype=jnp.float64)
        a, y = jnp.asarray(self.a), jnp.asarray(self.y)
        n_phys = self.n_phys
        if fit_mode:
            return lambda x: self._fit_residual(x, w, self.a, self.i, self.j, self.y)

        def profiled(x):
            g, c, b, _ = self._profiled_impl(x[:n_phys])
            return (b[a] + c[a] * g - y) * w[a]

        return profiled

    def _fit_residual(self, theta, w, a, i, j, y) -> jax.Array:
        """Weighted residuals of the free quantities θ at the points (a, i, j, y)."""
        n_phys = self.n_phys
        g = self._bracket(theta[:n_phys], a, i, j)
        c, b = self._scaling_from_free(theta[n_phys:])
        return (b[a] + c[a] * g - y) * w[a]

    def weighted_residuals(self, theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
        w = jnp.asarray(weights, dtype=jnp.float64)
        return np.asarray(self._fit_residual_all(jnp.asarray(theta), w))

    def jacobian_chunk(self, theta: np.ndarray, weights: np.ndarray, sl: slice) -> np.ndarray:
        """Forward-mode Jacobian of the weighted residuals of points ``sl`` (rows) w.r.t. θ."""
        w = jnp.asarray(weights, dtype=jnp.float64)
        return np.asarray(
            self._jacobian(jnp.asarray(theta), w, self.a[sl], self.i[sl], self.j[sl], self.y[sl])
        )

    # -- conversions between parameterisations -------------------------------------------------
    def initial_unknowns(self, start_phys: np.ndarray, weights: np.ndarray, fit_mode: bool):
        """The solver's start: physics, plus (fit mode) the profiled scaling at that physics."""
        del weights  # a constant weight per slot does not change the profiled scaling
        if not fit_mode:
            return np.asarray(start_phys, dtype=np.float64)
        _, c, b, _ = self._profiled(jnp.asarray(start_phys))
        parts = [start_phys]
        if self._n_c():
            parts.append(np.asarray(c))
        if self._n_b():
            parts.append(np.asarray(b))
        return np.concatenate(parts).astype(np.float64)

    def reweighted_unknowns(self, x: np.ndarray, weights: np.ndarray, fit_mode: bool):
        del weights, fit_mode  # the optimum's parameterisation does not depend on the weights
        return np.asarray(x, dtype=np.float64)

    def physics_of(self, x: np.ndarray, fit_mode: bool) -> np.ndarray:
        del fit_mode
        return np.asarray(x[: self.n_phys])

    def free_quantities(self, x: np.ndarray, fit_mode: bool):
        """(names, θ, lo, hi) of all free quantities for the solver's unknowns ``x``."""
        if fit_mode:
            theta = np.asarray(x, dtype=np.float64)
        else:
            _, c, b, _ = self._profiled(jnp.asarray(x[: self.n_phys]))
            parts = [np.asarray(x[: self.n_phys])]
            if self._n_c():
                parts.append(np.asarray(c))
            if self._n_b():
                parts.append(np.asarray(b))
            theta = np.concatenate(parts).astype(np.float64)
        lo, hi = self.unknown_bounds(fit_mode=True)
        return self.free_names(), theta, lo, hi

    def split_free(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """θ → (14 physics parameters, contrast per slot, offset per slot)."""
        params = self.space.full(theta[: self.n_phys])
        c, b = self._scaling_from_free(jnp.asarray(theta[self.n_phys :]))
        return params, np.asarray(c, dtype=np.float64), np.asarray(b, dtype=np.float64)

    def ssr_per_slot(self, theta: np.ndarray) -> np.ndarray:
        """Unweighted Σ r² per slot at θ."""
        r = self.weighted_residuals(theta, np.ones(self.n_phi))
        return np.bincount(self.a, weights=r * r, minlength=self.n_phi)

    def sigma_hat(self, x: np.ndarray, fit_mode: bool) -> np.ndarray:
        """σ̂_a² = SSR_a / (M_a − n_a − P_phys·M_a/M) (cmc spec §1.2)."""
        _, theta, _, _ = self.free_quantities(x, fit_mode)
        ssr = self.ssr_per_slot(theta)
        n_a = int(self.space.vary_contrast) + int(self.space.vary_offset)
        m_a = self.slot_counts
        return np.sqrt(ssr / (m_a - n_a - self.n_phys * m_a / self.size))

    def degenerate_slots(self, x: np.ndarray, fit_mode: bool) -> np.ndarray:
        del fit_mode
        _, _, _, degenerate = self._profiled(jnp.asarray(x[: self.n_phys]))
        return np.asarray(degenerate)


__all__ = ["Problem", "NAMES"]
