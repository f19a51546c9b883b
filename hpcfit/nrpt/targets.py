"""NRPT targets: the Ising heat bath and the Gaussian test path.

The engine sees a target only through this interface (Pigeons.jl's ``log_potential`` +
``explorer`` split): the family is γ_β(x) ∝ exp(−β·E_1(x)) on a fixed reference, β ∈ [0, 1].

* ``energy(x)`` → E_1(x), float64 scalar (the target's β_t absorbed);
* ``explore(key, x, beta, n_expl)`` → a new state, invariant for γ_β (``n_expl`` sweeps,
  sweep w keyed by ``fold_in(key, w)``; 0 sweeps return ``x``);
* ``sample_reference(key)`` → an exact draw from the β = 0 reference;
* ``site_values(x)`` (``n_sites`` values of ``site_dtype``) and ``site_sum(x)`` for observables;
* ``n_free`` (free variables: the device work score and M = Σ/n_free), ``log_Z0`` (the
  reference's log normaliser), ``beta_scale`` (β_t: H = E_1/β_t), ``fingerprint_doc()``.

All array methods are pure JAX functions of one state; the engine vmaps them over replicas.

**Bitwise reproducibility.** Path A (a fused loop) and path B (a per-scan kernel) must produce the
same bits. Two things could break that: the association of a reduction, and XLA CPU's licence to
contract a multiply feeding an add into one FMA (LLVM ``AllowFPOpFusion = Fast``), which happens
or not depending on how ops land in fusions. Hence: sums use :func:`fixed_sum`, a pairwise tree
of explicit adds fixed by the length alone; and every inexact product that feeds an add or a
transcendental is materialised with :func:`materialise` (``lax.optimization_barrier``) so it is
rounded on its own in every compilation. Products of a coupling with spins ±1 are exact and need
no barrier.

References: Syed, Bouchard-Côté, Deligiannidis, Doucet, JRSS-B 84 (2022) 321–350; Predescu,
Predescu, Ciobanu, J. Phys. Chem. B 108 (2004) (Gaussian path barrier).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hpcfit.nrpt.graph import colour_layout, neighbour_table
from hpcfit.nrpt.model import IsingModel


def fixed_sum(x: jax.Array) -> jax.Array:
    """Sum over the last axis by a fixed pairwise tree of explicit adds (zero-padded to 2^k).

    Elementwise IEEE adds in an order fixed by the length alone: the result does not depend on
    the batch shape, the position in a batch, or how XLA fuses the surrounding kernel.
    """
    n = x.shape[-1]
    if n == 0:
        return jnp.zeros(x.shape[:-1], dtype=x.dtype)
    size = 1 << (n - 1).bit_length()
    if size != n:
        pad = jnp.zeros((*x.shape[:-1], size - n), dtype=x.dtype)
        x = jnp.concatenate([x, pad], axis=-1)
    while x.shape[-1] > 1:
        half = x.shape[-1] // 2
        x = x[..., :half] + x[..., half:]
    return x[..., 0]


def materialise(x: jax.Array) -> jax.Array:
    """``x`` rounded and stored on its own: no FMA contraction with the ops that consume it."""
    return jax.lax.optimization_barrier(x)


class AbstractTarget(ABC):
    """The target interface of the engine (see the module docstring)."""

    n_free: int
    n_sites: int
    site_dtype: Any
    log_Z0: float
    beta_scale: float

    @abstractmethod
    def energy(self, x: jax.Array) -> jax.Array:
        """E_1(x), float64 scalar."""

    @abstractmethod
    def explore(self, key: jax.Array, x: jax.Array, beta: jax.Array, n_expl: int) -> jax.Array:
        """``n_expl`` γ_β-invariant sweeps from ``x``."""

    @abstractmethod
    def sample_reference(self, key: jax.Array) -> jax.Array:
        """An exact draw from γ_0."""

    def explore_batch(
        self, keys: jax.Array, xs: jax.Array, betas: jax.Array, n_expl: int
    ) -> jax.Array:
        """:meth:`explore` of a batch (leading axis B); must equal ``vmap(explore)`` bitwise.

        Override when the batched form compiles better (e.g. gathers with constant indices,
        which ``vmap`` turns into per-call index arithmetic)."""
        return jax.vmap(lambda k, x, b: self.explore(k, x, b, n_expl))(keys, xs, betas)

    def energy_batch(self, xs: jax.Array) -> jax.Array:
        """:meth:`energy` of a batch; must equal ``vmap(energy)`` bitwise."""
        return jax.vmap(self.energy)(xs)

    def site_values(self, x: jax.Array) -> jax.Array:
        """Per-site values accumulated at the target chain (``n_sites`` of ``site_dtype``)."""
        return jnp.zeros((0,), dtype=self.site_dtype)

    def site_sum(self, x: jax.Array) -> jax.Array:
        """Σ of the site values as float64 (the magnetisation numerator)."""
        return jnp.zeros((), dtype=jnp.float64)

    def to_node_order(self, values: np.ndarray) -> np.ndarray:
        """Per-site host arrays (..., n_sites) from internal order to the model's order."""
        return np.asarray(values)

    @abstractmethod
    def fingerprint_doc(self) -> dict[str, Any]:
        """What defines the target (hashed into checkpoint fingerprints)."""


class IsingTarget(AbstractTarget):
    """Block Gibbs heat bath on an :class:`IsingModel`.

    States are int8 spins ±1 stored in colour order (each colour class one contiguous slice);
    :meth:`to_node_order` maps per-site results back. One sweep draws u ∈ [0, 1)ⁿ and updates
    the classes in turn from the same state: h_i = β_t(b_i + Σ_j J_ij s_j), s_i = +1 iff
    u_i < σ(2β h_i). At β = 0, σ(0) = ½ exactly, so one sweep is an exact iid uniform draw.
    """

    site_dtype = jnp.int32

    def __init__(self, model: IsingModel) -> None:
        if not isinstance(model, IsingModel):
            raise TypeError(f"IsingTarget needs an IsingModel, got {type(model).__name__}")
        self.model = model
        n = model.n
        perm, self.slices = colour_layout(model)
        inv = np.empty(n, dtype=np.int64)
        inv[perm] = np.arange(n)
        nbr, w = neighbour_table(n, model.edges, model.J)
        self.perm = perm
        self._nbr = inv[nbr[perm]].astype(np.int32) if nbr.size else nbr[perm]
        self._w = w[perm]
        self._b = model.h[perm].copy()
        self._edges = inv[model.edges].astype(np.int32).reshape(-1, 2)
        self._J = model.J.copy()
        self.n_free = n
        self.n_sites = n
        self.log_Z0 = n * math.log(2.0)
        self.beta_scale = float(model.beta_t)

    # Spin arrays may carry leading batch axes (..., n): gathers index the last axis with
    # constant indices, which XLA hoists, instead of the per-call index arithmetic vmap adds.

    def hamiltonian(self, x: jax.Array) -> jax.Array:
        """H(s) (energy units) of internal-order spins of shape (..., n)."""
        s = x.astype(jnp.float64)
        b = jnp.broadcast_to(jnp.asarray(self._b), s.shape)
        field = fixed_sum(b * s)
        pairs = s[..., self._edges[:, 0]] * s[..., self._edges[:, 1]]
        pair = fixed_sum(jnp.broadcast_to(jnp.asarray(self._J), pairs.shape) * pairs)
        return -(field + pair)

    def energy(self, x: jax.Array) -> jax.Array:
        return self.beta_scale * self.hamiltonian(x)

    def energy_batch(self, xs: jax.Array) -> jax.Array:
        return self.energy(xs)

    def _sweep(self, u: jax.Array, x: jax.Array, beta: jax.Array) -> jax.Array:
        """One sweep of spins (..., n) with uniforms (..., n) at inverse temperatures (...)."""
        scale = (2.0 * jnp.asarray(beta, dtype=jnp.float64) * self.beta_scale)[..., None]
        lead = x.shape[:-1]
        for start, stop in self.slices:
            s = x.astype(jnp.float64)
            shape = (*lead, stop - start)
            h = jnp.broadcast_to(jnp.asarray(self._b[start:stop]), shape)
            for k in range(self._nbr.shape[1]):
                w = jnp.broadcast_to(jnp.asarray(self._w[start:stop, k]), shape)
                h = h + w * s[..., self._nbr[start:stop, k]]
            p = 1.0 / (1.0 + jnp.exp(-materialise(scale * h)))
            new = jnp.where(u[..., start:stop] < p, 1, -1).astype(jnp.int8)
            x = jax.lax.dynamic_update_slice_in_dim(x, new, start, axis=x.ndim - 1)
        return x

    def _uniforms(self, key: jax.Array, w: jax.Array) -> jax.Array:
        return jax.random.uniform(jax.random.fold_in(key, w), (self.n_free,), dtype=jnp.float64)

    def explore(self, key: jax.Array, x: jax.Array, beta: jax.Array, n_expl: int) -> jax.Array:
        if n_expl == 0:
            return x
        body = lambda w, state: self._sweep(self._uniforms(key, w), state, beta)  # noqa: E731
        return jax.lax.fori_loop(0, n_expl, body, x)

    def explore_batch(
        self, keys: jax.Array, xs: jax.Array, betas: jax.Array, n_expl: int
    ) -> jax.Array:
        if n_expl == 0:
            return xs

        def body(w, state):
            u = jax.vmap(lambda k: self._uniforms(k, w))(keys)
            return self._sweep(u, state, betas)

        return jax.lax.fori_loop(0, n_expl, body, xs)

    def sample_reference(self, key: jax.Array) -> jax.Array:
        u = jax.random.uniform(key, (self.n_free,), dtype=jnp.float64)
        return jnp.where(u < 0.5, 1, -1).astype(jnp.int8)

    def site_values(self, x: jax.Array) -> jax.Array:
        return x.astype(jnp.int32)

    def site_sum(self, x: jax.Array) -> jax.Array:
        return fixed_sum(x.astype(jnp.float64))

    def to_node_order(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values)
        out = np.empty_like(values)
        out[..., self.perm] = values
        return out

    def fingerprint_doc(self) -> dict[str, Any]:
        return self.model.fingerprint_doc()


class GaussianPathTarget(AbstractTarget):
    """Pigeons' ``toy_mvn_target`` path: log γ_β(x) = −½ p(β)|x|², p(β) = (1 − β)·1 + β·p_1.

    In engine terms E_1(x) = ((p_1 − 1)/2)|x|² on the reference N(0, I); the explorer is an exact
    iid draw from N(0, p(β)⁻¹ I). ``site_sum`` is Σx; there are no site accumulators.
    """

    site_dtype = jnp.float64
    n_sites = 0

    def __init__(self, d: int, precision: float = 10.0) -> None:
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
            raise ValueError(f"d must be an integer >= 1, got {d!r}")
        if not (math.isfinite(precision) and precision > 0):
            raise ValueError(f"precision must be finite and > 0, got {precision!r}")
        self.d = int(d)
        self.precision = float(precision)
        self.n_free = self.d
        self.log_Z0 = 0.5 * self.d * math.log(2.0 * math.pi)
        self.beta_scale = 1.0
        self._half_gap = 0.5 * (self.precision - 1.0)

    def energy(self, x: jax.Array) -> jax.Array:
        return self._half_gap * fixed_sum(materialise(x * x))

    def explore(self, key: jax.Array, x: jax.Array, beta: jax.Array, n_expl: int) -> jax.Array:
        if n_expl == 0:
            return x
        z = jax.random.normal(jax.random.fold_in(key, n_expl - 1), (self.d,), dtype=jnp.float64)
        p = (1.0 - beta) + materialise(beta * self.precision)
        return materialise(z / jnp.sqrt(p))

    def sample_reference(self, key: jax.Array) -> jax.Array:
        return jax.random.normal(key, (self.d,), dtype=jnp.float64)

    def site_sum(self, x: jax.Array) -> jax.Array:
        return fixed_sum(x)

    def fingerprint_doc(self) -> dict[str, Any]:
        return {"kind": "gaussian_path", "d": self.d, "precision": self.precision}
