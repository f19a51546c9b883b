"""A generic shard target and its NumPyro model.

The target knows nothing about XPCS: P named parameters θ with box bounds, TruncatedNormal
priors on the bounds, and a pure JAX log-likelihood of θ and the shard's data pytree. The
NumPyro model implements the tempered shard posterior

    π_s(θ) ∝ p(θ)^{1/K} · L_s(θ)

with the prior sites under ``numpyro.handlers.scale(scale=1/K)`` (NumPyro's consensus
pattern) and the likelihood outside it. In every mode the density of the unconstrained
coordinates u = T⁻¹(θ) is the same, exp[(1/K)·Σ_p(log p_p(θ_p) + log|T_p′(u_p)|) + ℓ_s(θ)]:

* ``whiten``: z ∈ ℝ^P with a flat base, u = û + L z, θ = T(u); one prior factor
  Σ_p[log p_p(θ_p) + log|T_p′(u_p)|] under the scale (the constant log|det L| is dropped);
* ``mass`` / ``none``: one TruncatedNormal sample site per parameter under the scale; NumPyro
  adds the log-Jacobian of its unconstraining bijection inside the same scale. ``mass`` starts
  NUTS from Σ_w as the inverse mass matrix (see ``nuts.py``), ``none`` from the identity.

Deterministic sites ``u`` and ``theta`` (each (P,)) are recorded in every mode.

A target may sample only some of the reported quantities: the rest (e.g. quantities that
enter the likelihood linearly) are integrated out of ``loglik`` and drawn back afterwards,
per draw, from their conditional posterior by its :class:`Completion`.

References
----------
Scott et al., "Bayes and big data: the consensus Monte Carlo algorithm", 2016.
NumPyro, "Bayesian Hierarchical Stacking / Consensus Monte Carlo" examples (``handlers.scale``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.distributions import constraints

from hpcfit.cmc.precondition import Preconditioner
from hpcfit.cmc.transform import BoxTransform

Mode = Literal["whiten", "mass", "none"]
MODES: tuple[str, ...] = ("whiten", "mass", "none")
RESERVED = ("z", "u", "theta", "prior", "loglik")
"""Site names the model uses itself; parameter names must differ from them."""


@dataclass(frozen=True, eq=False)
class Completion:
    """How the quantities integrated out of a target are drawn back after sampling.

    Attributes
    ----------
    names : tuple of str  every reported quantity, sampled and drawn back, in output order
    lo, hi : Float64[Array, "Q"]  their bounds (θ units)
    draw : callable (theta: Float64[Array, "D P"], data: pytree, key) ->
        (Float64[Array, "D Q"], Float64[Array, ""])
        the completed draws and the smallest distance (in conditional sds) of a conditional
        mean from its bounds, over the D draws
    """

    names: tuple[str, ...]
    lo: np.ndarray
    hi: np.ndarray
    draw: Callable[[jax.Array, Any, jax.Array], tuple[jax.Array, jax.Array]]

    def complete(
        self, theta: np.ndarray, data: Any, key: jax.Array
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """(θ, u, margin) of every draw: θ (chains, samples, Q) kept strictly inside the box
        (a conditional draw beyond a bound is moved to 1e-12 of the width inside it), u = T⁻¹(θ),
        and the margin in conditional sds."""
        lead = theta.shape[:-1]
        drawn, margin = self.draw(jnp.asarray(theta).reshape(-1, theta.shape[-1]), data, key)
        full = np.asarray(drawn, dtype=np.float64).reshape(*lead, len(self.names))
        width = np.where(np.isfinite(self.hi - self.lo), self.hi - self.lo, 1.0)
        full = np.clip(full, self.lo + 1e-12 * width, self.hi - 1e-12 * width)
        u = np.asarray(BoxTransform(self.lo, self.hi).inverse(full), dtype=np.float64)
        return full, u, float(margin)


@dataclass(frozen=True, eq=False)
class ShardTarget:
    """P named parameters with TruncatedNormal(mean, sd) priors on [lo, hi] and a likelihood.

    Attributes
    ----------
    names : tuple of str  unique parameter names (NumPyro site names in mass / none mode)
    lo, hi : Float64[Array, "P"]  bounds, θ units; −inf / +inf for a missing bound
    prior_mean, prior_sd : Float64[Array, "P"]  of the Normal before truncation (sd > 0)
    loglik : callable (theta: Float64[Array, "P"], data: pytree) -> Float64[Array, ""]
        pure JAX log-likelihood of the shard's data (untempered)
    completion : Completion | None  the quantities integrated out of ``loglik``, if any
    """

    names: tuple[str, ...]
    lo: np.ndarray
    hi: np.ndarray
    prior_mean: np.ndarray
    prior_sd: np.ndarray
    loglik: Callable[[jax.Array, Any], jax.Array]
    completion: Completion | None = None

    def __post_init__(self) -> None:
        names = tuple(self.names)
        object.__setattr__(self, "names", names)
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"parameter names must be unique and non-empty, got {names}")
        clash = sorted(set(names) & set(RESERVED))
        if clash:
            raise ValueError(f"parameter names {clash} are reserved for the model's own sites")
        for field in ("lo", "hi", "prior_mean", "prior_sd"):
            a = np.array(getattr(self, field), dtype=np.float64, ndmin=1)
            if a.shape != (len(names),):
                raise ValueError(f"{field} has shape {a.shape}, expected ({len(names)},)")
            a.setflags(write=False)
            object.__setattr__(self, field, a)
        BoxTransform(self.lo, self.hi)  # validates lo < hi
        if not np.all(np.isfinite(self.prior_mean)):
            raise ValueError(f"prior means must be finite, got {self.prior_mean}")
        if not (np.all(self.prior_sd > 0) and np.all(np.isfinite(self.prior_sd))):
            raise ValueError(f"prior sds must be finite and > 0, got {self.prior_sd}")
        if not callable(self.loglik):
            raise ValueError("loglik must be callable as loglik(theta, data)")

    @property
    def size(self) -> int:
        """P."""
        return len(self.names)

    @property
    def output_names(self) -> tuple[str, ...]:
        """The quantities a draw reports: ``names``, or the completion's when it has one."""
        return self.names if self.completion is None else self.completion.names

    @property
    def transform(self) -> BoxTransform:
        """T: u ↦ θ for these bounds."""
        return BoxTransform(self.lo, self.hi)

    def prior(self, p: int) -> dist.Distribution:
        """The prior of parameter p: ``TruncatedNormal(mean, sd, low, high)`` (no infinite bound
        is passed, so a missing bound gives NumPyro's one-sided or plain Normal)."""
        lo, hi = self.lo[p], self.hi[p]
        return dist.TruncatedNormal(
            float(self.prior_mean[p]),
            float(self.prior_sd[p]),
            low=float(lo) if np.isfinite(lo) else None,
            high=float(hi) if np.isfinite(hi) else None,
        )

    def log_prior(self, theta: jax.Array) -> jax.Array:
        """log p_p(θ_p) per parameter (untempered).

        Parameters
        ----------
        theta : Float64[Array, "P"]

        Returns
        -------
        Float64[Array, "P"]
        """
        return jnp.stack([self.prior(p).log_prob(theta[p]) for p in range(self.size)])


def numpyro_model(
    target: ShardTarget, precond: Preconditioner, n_shards: int, mode: Mode = "whiten"
) -> Callable[[Any], None]:
    """The NumPyro model ``model(data)`` of one shard.

    Parameters
    ----------
    target : ShardTarget
    precond : Preconditioner  û and L (used by ``whiten``; ``mass``/``none`` ignore it here)
    n_shards : int  the prior exponent is 1/n_shards (K); 1 gives the untempered prior
    mode : "whiten" | "mass" | "none"

    Returns
    -------
    callable  ``model(data)``; sample site ``z`` (P,) in whiten mode, one scalar site per
        name otherwise; deterministic sites ``u`` and ``theta`` (P,)
    """
    if mode not in MODES:
        raise ValueError(f"unknown precondition mode {mode!r}; use one of {MODES}")
    if tuple(precond.names) != target.names:
        raise ValueError(f"preconditioner names {precond.names} != target names {target.names}")
    if isinstance(n_shards, bool) or not isinstance(n_shards, int | np.integer) or n_shards < 1:
        raise ValueError(f"n_shards must be an integer >= 1, got {n_shards!r}")
    scale = 1.0 / int(n_shards)
    t = target.transform
    p_dim = target.size

    if mode == "whiten":
        u_hat = jnp.asarray(precond.u_hat)
        chol = jnp.asarray(precond.chol)

        def whitened_model(data: Any) -> None:
            z = numpyro.sample("z", dist.ImproperUniform(constraints.real_vector, (), (p_dim,)))
            u = u_hat + chol @ z
            theta = t.forward(u)
            numpyro.deterministic("u", u)
            numpyro.deterministic("theta", theta)
            with handlers.scale(scale=scale):
                numpyro.factor(
                    "prior", jnp.sum(target.log_prior(theta) + t.log_abs_det_jacobian(u))
                )
            numpyro.factor("loglik", target.loglik(theta, data))

        return whitened_model

    def model(data: Any) -> None:
        with handlers.scale(scale=scale):
            parts = [numpyro.sample(n, target.prior(p)) for p, n in enumerate(target.names)]
        theta = jnp.stack(parts)
        numpyro.deterministic("u", t.inverse(theta))
        numpyro.deterministic("theta", theta)
        numpyro.factor("loglik", target.loglik(theta, data))

    return model
