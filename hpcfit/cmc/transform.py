"""The bijection T from unconstrained coordinates u ∈ ℝ^P to the parameter box.

Per coordinate, T is NumPyro's own bijection ``biject_to(support)`` for the support of that
coordinate's prior, so the whiten mode (which applies T by hand) and the mass / none modes
(where NumPyro unconstrains each TruncatedNormal site itself) use the same map:

==========================  =====================================  ===============================
bounds                      NumPyro support / bijection            θ = T(u)
==========================  =====================================  ===============================
lo, hi finite               ``interval(lo, hi)``                   lo + (hi − lo)·sigmoid(u)
lo finite, hi = +∞          ``greater_than(lo)``                   lo + exp(u)  (a sampled σ_a)
lo = −∞, hi finite          ``less_than(hi)``                      hi − exp(u)
lo = −∞, hi = +∞            ``real``                               u
==========================  =====================================  ===============================

The kind of each coordinate is fixed by the (concrete, NumPy) bounds, so the coordinates are
grouped by kind once and each group goes through one vectorised NumPyro transform. Everything
is pure JAX and safe under ``jit``, ``vmap`` and ``grad``; leading batch axes are allowed.
NumPyro's sigmoid is clipped to [tiny, 1 − eps], so T(u) never leaves [lo, hi].
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to

KINDS = ("interval", "greater_than", "less_than", "real")


def _kind(lo: float, hi: float) -> str:
    return KINDS[(not np.isfinite(lo)) * 2 + (not np.isfinite(hi))]


def _support(kind: str, lo: jax.Array, hi: jax.Array) -> constraints.Constraint:
    if kind == "interval":
        return constraints.interval(lo, hi)
    if kind == "greater_than":
        return constraints.greater_than(lo)
    if kind == "less_than":
        return constraints.less_than(hi)
    return constraints.real


@dataclass(frozen=True, eq=False)
class BoxTransform:
    """T: ℝ^P → (lo, hi), one NumPyro bijection per group of coordinates of the same kind.

    Attributes
    ----------
    lo, hi : Float64[Array, "P"]  bounds in θ units (−inf / +inf for a missing bound),
        read-only, lo < hi
    """

    lo: np.ndarray
    hi: np.ndarray

    def __post_init__(self) -> None:
        lo = np.array(self.lo, dtype=np.float64, ndmin=1)
        hi = np.array(self.hi, dtype=np.float64, ndmin=1)
        if lo.ndim != 1 or lo.shape != hi.shape:
            raise ValueError(f"lo and hi must be 1-d of equal length, got {lo.shape}, {hi.shape}")
        if np.any(np.isnan(lo) | np.isnan(hi)) or not np.all(lo < hi):
            raise ValueError(f"bounds need lo < hi (no NaN), got lo={lo}, hi={hi}")
        if np.any(lo == np.inf) or np.any(hi == -np.inf):
            raise ValueError("lo = +inf or hi = -inf leaves no support")
        lo.setflags(write=False)
        hi.setflags(write=False)
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def size(self) -> int:
        """P, the number of coordinates."""
        return int(self.lo.size)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kind of each coordinate: interval, greater_than, less_than or real."""
        return tuple(_kind(a, b) for a, b in zip(self.lo, self.hi, strict=True))

    def _map(self, x: ArrayLike, fn) -> jax.Array:
        """Apply ``fn(bijection, x[..., idx])`` per kind; parameters are broadcast to the input
        shape first, so leading batch axes need no implicit rank promotion."""
        x = jnp.asarray(x, dtype=jnp.float64)
        if x.shape[-1:] != (self.size,):
            raise ValueError(f"expected a trailing axis of length {self.size}, got {x.shape}")
        kinds = np.array(self.kinds)
        out = jnp.zeros_like(x)
        for kind in KINDS:
            idx = np.flatnonzero(kinds == kind)
            if idx.size:
                v = x[..., idx]
                lo = jnp.broadcast_to(jnp.asarray(self.lo[idx]), v.shape)
                hi = jnp.broadcast_to(jnp.asarray(self.hi[idx]), v.shape)
                out = out.at[..., idx].set(fn(biject_to(_support(kind, lo, hi)), v))
        return out

    def forward(self, u: jax.Array) -> jax.Array:
        """θ = T(u).

        Parameters
        ----------
        u : Float64[Array, "... P"]  unconstrained coordinates

        Returns
        -------
        Float64[Array, "... P"]  θ in [lo, hi] (θ units)
        """
        return self._map(u, lambda t, v: t(v))

    def inverse(self, theta: ArrayLike) -> jax.Array:
        """u = T⁻¹(θ) (logit, log or identity); ±inf at a bound.

        Parameters
        ----------
        theta : Float64[Array, "... P"]  θ inside the box

        Returns
        -------
        Float64[Array, "... P"]
        """
        return self._map(theta, lambda t, v: t.inv(v))

    def log_abs_det_jacobian(self, u: jax.Array) -> jax.Array:
        """log|T_p′(u_p)| per coordinate (NumPyro's own log-Jacobian of each bijection).

        For an interval coordinate this is log(hi − lo) − softplus(u) − softplus(−u).

        Parameters
        ----------
        u : Float64[Array, "... P"]

        Returns
        -------
        Float64[Array, "... P"]  (not summed over P)
        """
        return self._map(u, lambda t, v: t.log_abs_det_jacobian(v, t(v)))

    def inverse_derivative(self, theta: np.ndarray) -> np.ndarray:
        """G_pp = dT_p⁻¹/dθ_p = 1/T_p′(u_p), the delta-method factor (NumPy, float64).

        (hi − lo)/((θ − lo)(hi − θ)) for an interval, 1/(θ − lo) or 1/(hi − θ) for one bound,
        1 for none.

        Parameters
        ----------
        theta : Float64[Array, "... P"]  θ strictly inside the box

        Returns
        -------
        Float64[Array, "... P"]  in 1/(θ units)
        """
        th = np.asarray(theta, dtype=np.float64)
        kinds = np.array(self.kinds)
        lo, hi = self.lo, self.hi
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.select(
                [kinds == "interval", kinds == "greater_than", kinds == "less_than"],
                [(hi - lo) / ((th - lo) * (hi - th)), 1.0 / (th - lo), 1.0 / (hi - th)],
                default=1.0,
            )
        return np.broadcast_to(g, th.shape).astype(np.float64)
