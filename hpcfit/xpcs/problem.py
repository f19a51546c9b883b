"""The pooled least-squares problem of a dataset: unknowns, bounds and residual functions.

Two parameterisations of the same problem:

* **profile** — unknowns are the free physics parameters; each slot's contrast and offset are
  solved in closed form inside the residual (``profile.solve_scaling``);
* **fit** — unknowns are the free physics parameters, then the free contrast_a, then the free
  offset_a (the "free quantities" θ, used for the covariance in both modes).

Residuals are r_m = (offset_a + contrast_a·G_m − y_m)·w_a with w_a = 1/σ_a.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hpcfit.xpcs.dataset import XpcsData
from hpcfit.xpcs.model import c2_pooled_bracket
from hpcfit.xpcs.params import ParamSpace
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
        return cls(
            space, data.t, data.step, data.q, data.phi, pooled.a, pooled.i, pooled.j, pooled.y
        )

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

    def _profiled_impl(self, x_phys: jax.Array, y: jax.Array):
        g = self._bracket(x_phys, self.a, self.i, self.j)
        c, b, degenerate = solve_scaling(
            slot_moments(g, y, jnp.asarray(self.a), self.n_phi), self.box
        )
        return g, c, b, degenerate

    def _residual_points(self, x, y, w_points, fit_mode: bool) -> jax.Array:
        """Weighted residuals of all points for the solver's unknowns ``x``."""
        a = jnp.asarray(self.a)
        if fit_mode:
            g = self._bracket(x[: self.n_phys], self.a, self.i, self.j)
            c, b = self._scaling_from_free(x[self.n_phys :])
        else:
            g, c, b, _ = self._profiled_impl(x[: self.n_phys], y)
        return (b[a] + c[a] * g - y) * w_points

    def _fit_residual(self, theta, w_points, a, i, j, y) -> jax.Array:
        """Weighted residuals of the free quantities θ at the points (a, i, j, y)."""
        g = self._bracket(theta[: self.n_phys], a, i, j)
        c, b = self._scaling_from_free(theta[self.n_phys :])
        return (b[a] + c[a] * g - y) * w_points

    def structure_key(self) -> str:
        """sha256 of everything but the data values y: problems with equal keys share kernels."""
        h = hashlib.sha256()
        s = self.space
        arrays = (self.t, self.q, self.phi, self.a, self.i, self.j, s.start, s.lo, s.hi, s.vary)
        for arr in arrays:
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(repr((self.dt, s.contrast, s.offset, s.vary_contrast, s.vary_offset)).encode())
        return h.hexdigest()

    @cached_property
    def kernels(self) -> Kernels:
        """The compiled functions of this problem's structure (shared with equal structures)."""
        key = self.structure_key()
        if key not in _KERNELS:
            if len(_KERNELS) >= _KERNEL_CACHE_SIZE:
                _KERNELS.pop(next(iter(_KERNELS)))
            _KERNELS[key] = Kernels.build(self)
        return _KERNELS[key]

    def xdata(self, weights: np.ndarray) -> np.ndarray:
        """The solver's xdata: per-point weights and values, shape (2, M)."""
        return np.stack([self.point_weights(weights), self.y])

    def point_weights(self, weights: np.ndarray) -> np.ndarray:
        """Per-slot weights 1/σ_a spread to the pooled points."""
        return np.asarray(weights, dtype=np.float64)[self.a]

    def residual_function(self, weights: np.ndarray, fit_mode: bool):
        """A jit-compatible map from the unknowns to the weighted residual vector (length M)."""
        w_points, y = jnp.asarray(self.point_weights(weights)), jnp.asarray(self.y)
        return lambda x: self._residual_points(x, y, w_points, fit_mode)

    def cost(self, x: np.ndarray, weights: np.ndarray, fit_mode: bool) -> float:
        """½ Σ r² of the weighted residuals at the solver's unknowns ``x`` (no Jacobian)."""
        w_points, y = jnp.asarray(self.point_weights(weights)), jnp.asarray(self.y)
        r = np.asarray(self.kernels.residuals(jnp.asarray(x, jnp.float64), y, w_points, fit_mode))
        return 0.5 * float(np.sum(r * r))

    def profile_scaling(self, x_phys: np.ndarray):
        """(G, contrast, offset, degenerate) with the profiled scaling at the free physics."""
        return self.kernels.profile_scaling(jnp.asarray(x_phys), jnp.asarray(self.y))

    def evaluate(self, theta: np.ndarray, weights: np.ndarray, chunk_bytes: int):
        """Unweighted residuals (M,) and JᵀJ of the weighted residuals at the free quantities θ."""
        _, _, jtj, r = self._accumulate(theta, weights, chunk_bytes, keep_residuals=True)
        return r, jtj

    def normal_equations(self, theta: np.ndarray, weights: np.ndarray, chunk_bytes: int):
        """(½Σr², Jᵀr, JᵀJ) of the weighted residuals r at the free quantities θ."""
        cost, jtr, jtj, _ = self._accumulate(theta, weights, chunk_bytes, keep_residuals=False)
        return cost, jtr, jtj

    def normal_equations_and_residuals(self, theta, weights, chunk_bytes: int):
        """(½Σr², Jᵀr, JᵀJ, unweighted residuals (M,)) in one chunked pass."""
        return self._accumulate(theta, weights, chunk_bytes, keep_residuals=True)

    def _accumulate(self, theta, weights, chunk_bytes: int, keep_residuals: bool):
        """Sums over chunks of points, each padded to one shape with zero-weight points, so no
        Jacobian block exceeds ``chunk_bytes`` and one compiled program serves every chunk."""
        theta = jnp.asarray(theta, dtype=jnp.float64)
        w_points = self.point_weights(weights)
        rows = min(self.size, max(1, int(chunk_bytes) // (8 * max(int(theta.size), 1))))
        columns = (self.a, self.i, self.j, self.y, w_points)
        parts, cost = [], 0.0
        jtr, jtj = np.zeros(theta.size), np.zeros((theta.size, theta.size))
        for start in range(0, self.size, rows):
            sl = slice(start, start + rows)
            n = min(rows, self.size - start)
            block = [v[sl] if n == rows else np.pad(v[sl], (0, rows - n)) for v in columns]
            r, ssr, g, h = self.kernels.evaluate_chunk(theta, *block)
            if keep_residuals:
                parts.append(np.asarray(r)[:n])
            cost += 0.5 * float(ssr)
            jtr += np.asarray(g)
            jtj += np.asarray(h)
        return cost, jtr, jtj, (np.concatenate(parts) if keep_residuals else None)

    # -- conversions between parameterisations -------------------------------------------------
    def initial_unknowns(self, start_phys: np.ndarray, fit_mode: bool) -> np.ndarray:
        """The solver's start: physics, plus (fit mode) the profiled scaling at that physics.

        A constant weight per slot does not change the profiled scaling, so no weights enter.
        """
        if not fit_mode:
            return np.asarray(start_phys, dtype=np.float64)
        _, c, b, _ = self.profile_scaling(start_phys)
        parts = [start_phys]
        if self._n_c():
            parts.append(np.asarray(c))
        if self._n_b():
            parts.append(np.asarray(b))
        return np.concatenate(parts).astype(np.float64)

    def free_quantities(self, x: np.ndarray, fit_mode: bool) -> np.ndarray:
        """θ, all free quantities in ``free_names()`` order, for the solver's unknowns ``x``."""
        if fit_mode:
            return np.asarray(x, dtype=np.float64)
        _, c, b, _ = self.profile_scaling(x[: self.n_phys])
        parts = [np.asarray(x[: self.n_phys])]
        if self._n_c():
            parts.append(np.asarray(c))
        if self._n_b():
            parts.append(np.asarray(b))
        return np.concatenate(parts).astype(np.float64)

    def split_free(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """θ → (14 physics parameters, contrast per slot, offset per slot)."""
        params = self.space.full(theta[: self.n_phys])
        c, b = self._scaling_from_free(jnp.asarray(theta[self.n_phys :]))
        return params, np.asarray(c, dtype=np.float64), np.asarray(b, dtype=np.float64)

    def ssr_per_slot(self, residuals: np.ndarray) -> np.ndarray:
        """Σ r² per slot of unweighted residuals (M,)."""
        return np.bincount(self.a, weights=residuals * residuals, minlength=self.n_phi)

    def sigma_hat(self, ssr: np.ndarray) -> np.ndarray:
        """σ̂_a² = SSR_a / (M_a − n_a − P_phys·M_a/M) from unweighted SSR_a."""
        n_a = int(self.space.vary_contrast) + int(self.space.vary_offset)
        m_a = self.slot_counts
        return np.sqrt(ssr / (m_a - n_a - self.n_phys * m_a / self.size))

    def degenerate_slots(self, x: np.ndarray) -> np.ndarray:
        """Slots without dynamics (S_GG ≤ 1e-12·ΣG²) at the physics part of ``x``."""
        _, _, _, degenerate = self.profile_scaling(x[: self.n_phys])
        return np.asarray(degenerate)


_KERNEL_CACHE_SIZE = 8
_KERNELS: dict[str, Kernels] = {}


@dataclass(frozen=True)
class Kernels:
    """Jitted functions and solvers of one problem structure; the data y is always an argument.

    ``model[fit_mode]`` is the ``f(xdata, *x)`` given to ``nlsq.curve_fit`` with xdata =
    (w_points, y), and ``curve_fit[fit_mode]`` the ``nlsq.CurveFit`` that keeps its compiled
    code: repeated fits of equally shaped data (passes, starts, sweeps, noise seeds) compile once.
    """

    profile_scaling: Callable[..., Any]
    evaluate_chunk: Callable[..., Any]
    residuals: Callable[..., Any]
    model: dict[bool, Callable[..., Any]]
    curve_fit: dict[bool, Any]

    @classmethod
    def build(cls, problem: Problem) -> Kernels:
        from hpcfit.runtime.process import import_nlsq

        def evaluate(theta, a, i, j, y, w_points):
            """Unweighted r, Σr_w², J_wᵀr_w and J_wᵀJ_w of one chunk (w = 0: padding)."""

            def resid(th):
                return problem._fit_residual(th, w_points, a, i, j, y)

            r, jac = resid(theta), jax.jacfwd(resid)(theta)
            raw = jnp.where(w_points > 0, r / jnp.where(w_points > 0, w_points, 1.0), 0.0)
            return raw, r @ r, jac.T @ r, jac.T @ jac

        def model(fit_mode: bool):
            return lambda xdata, *x: problem._residual_points(
                jnp.stack(x), xdata[1], xdata[0], fit_mode
            )

        nlsq = import_nlsq()
        return cls(
            profile_scaling=jax.jit(problem._profiled_impl),
            evaluate_chunk=jax.jit(evaluate),
            residuals=jax.jit(problem._residual_points, static_argnums=3),
            model={mode: model(mode) for mode in (False, True)},
            curve_fit={mode: nlsq.CurveFit() for mode in (False, True)},
        )
