"""The networked Kuramoto vector field and the order parameter.

    dθ_j/dt = f_j(θ) = ω_j + Σ_k K_jk sin(θ_k − θ_j),   j = 1…N

Phases θ in rad, natural frequencies ω in rad per unit time, couplings K in rad per unit time.
There is no 1/N inside the sum (the normalisation lives in K, e.g. K_jk = coupling/N for the
all-to-all network). K is a full N×N matrix, not necessarily symmetric; its diagonal has no
effect on the dynamics and is masked to zero, so derivatives with respect to K_jj are exactly 0.

Two forms, equal in exact arithmetic:

* **expanded** (the default): with s = sin θ and c = cos θ, sin(θ_k − θ_j) = s_k c_j − c_k s_j,
  so F = c ⊙ (K s) − s ⊙ (K c): 2N sines and cosines and two mat-vecs per evaluation;
* **direct**: N² sines of the phase differences (the textbook form; used to validate the
  expanded one).

The order parameter is Kuramoto's r = |(1/N) Σ_j e^{iθ_j}| (Kuramoto, "Chemical Oscillations,
Waves, and Turbulence", Springer 1984; Strogatz, Physica D 143, 1, 2000).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from hpcfit.kuramoto.trig import sincos


def mask_diagonal(K: jax.Array) -> jax.Array:
    """K with its diagonal set to 0 (over the last two axes); the gradient there is exactly 0.

    Parameters
    ----------
    K : Float64[Array, "... N N"]  couplings (rad/time)

    Returns
    -------
    Float64[Array, "... N N"]
    """
    n = K.shape[-1]
    return jnp.where(jnp.eye(n, dtype=bool), jnp.zeros((), K.dtype), K)


def coupling_expanded(theta: jax.Array, K_masked: jax.Array) -> jax.Array:
    """F_j = Σ_k K_jk sin(θ_k − θ_j) as cos θ ⊙ (K sin θ) − sin θ ⊙ (K cos θ).

    ``K_masked`` must already have a zero diagonal (:func:`mask_diagonal`): the j = k terms of
    the two products cancel only in exact arithmetic.

    Parameters
    ----------
    theta : Float64[Array, "N"]  phases (rad)
    K_masked : Float64[Array, "N N"]  couplings with a zero diagonal (rad/time)

    Returns
    -------
    Float64[Array, "N"]  coupling term of dθ/dt (rad/time)
    """
    s, c = sincos(theta)
    return c * (K_masked @ s) - s * (K_masked @ c)


def coupling_direct(theta: jax.Array, K_masked: jax.Array) -> jax.Array:
    """F_j = Σ_k K_jk sin(θ_k − θ_j) with the N² phase differences (same units as above)."""
    diff = theta[None, :] - theta[:, None]  # [j, k] = θ_k − θ_j
    return jnp.sum(K_masked * jnp.sin(diff), axis=-1)


def vector_field(
    theta: jax.Array, omega: jax.Array, K: jax.Array, *, form: str = "expanded"
) -> jax.Array:
    """dθ/dt = ω + F(θ) for one oscillator network (the diagonal of K is masked here).

    Parameters
    ----------
    theta : Float64[Array, "N"]  phases (rad)
    omega : Float64[Array, "N"]  natural frequencies (rad/time)
    K : Float64[Array, "N N"]  couplings (rad/time); K_jj is ignored
    form : "expanded" | "direct"

    Returns
    -------
    Float64[Array, "N"]  dθ/dt (rad/time)
    """
    return omega + coupling(form)(theta, mask_diagonal(K))


def coupling(form: str):
    """The coupling function of ``form`` ("expanded" or "direct")."""
    if form == "expanded":
        return coupling_expanded
    if form == "direct":
        return coupling_direct
    raise ValueError(f"form must be 'expanded' or 'direct', got {form!r}")


def order_parameter(theta: ArrayLike) -> jax.Array:
    """Kuramoto's order parameter r = |(1/N) Σ_j e^{iθ_j}| over the last axis.

    r lies in [0, 1] (1: all phases equal; O(N^{−1/2}) for incoherent phases). A rounding excess
    above 1 (at most an ulp, for nearly equal phases) is clipped.

    Parameters
    ----------
    theta : Float64[Array, "... N"]  phases (rad); any leading axes (steps, members)

    Returns
    -------
    Float64[Array, "..."]  r (dimensionless)
    """
    theta = jnp.asarray(theta, dtype=jnp.float64)
    s, c = sincos(theta)
    r = jnp.hypot(jnp.mean(c, axis=-1), jnp.mean(s, axis=-1))
    return jnp.minimum(r, 1.0)
