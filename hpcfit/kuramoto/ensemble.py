"""Ensembles of networks: ``ensemble`` and ``ensemble_gradient``.

Members are a ``vmap`` of the single-network integrator with ω and K shared (in_axes None, for
ω (N,) and K (N, N)) or per member (in_axes 0, for ω (B, N) and K (B, N, N)), chosen from their
number of dimensions, run in fixed-size chunks (:mod:`hpcfit.kuramoto.chunks`) so each member's
result is bitwise the same as a single call and independent of B and of its position. The device
is resolved once per call with the score B·N.

``record`` decides what comes back (a dict; every array has the member axis first):

=================== ===================================================================
``record``          keys
=================== ===================================================================
"order_parameter"   ``"order_parameter"`` (B, n_steps+1): r(t) at t = 0, dt, …, n_steps·dt;
                    ``"final"`` (B, N): final phases. The trajectory is never stored.
"trajectory"        ``"trajectory"`` (B, n_steps+1, N), row 0 = θ0; ``"final"`` (B, N)
                    (equal to the trajectory's last row).
"final"             ``"final"`` (B, N) only.
=================== ===================================================================

Phases are in rad (unwrapped), ω and K in rad per unit time, dt in time units. Other keywords
(``device``, ``chunk``, ``checkpoint_steps``) as in :mod:`hpcfit.kuramoto.integrate`.
"""

from __future__ import annotations

from typing import Any

import jax

from hpcfit.kuramoto.entry import run_forward, run_gradient


def ensemble(
    theta0: Any,
    omega: Any,
    K: Any,
    *,
    dt: Any,
    n_steps: Any,
    record: str = "order_parameter",
    device: Any = "auto",
    chunk: int | None = None,
    checkpoint_steps: int | None = None,
) -> dict[str, jax.Array]:
    """Integrate B networks by RK4; returns the dict described in the module docstring.

    Parameters
    ----------
    theta0 : Float64[Array, "B N"]  initial phases of B ≥ 1 members (rad)
    omega : Float64[Array, "N"] | Float64[Array, "B N"]  shared or per-member frequencies
    K : Float64[Array, "N N"] | Float64[Array, "B N N"]  shared or per-member couplings
    dt : float  step (> 0);  n_steps : int  steps (≥ 0, static)
    record : "order_parameter" | "trajectory" | "final"
    """
    return run_forward(
        theta0,
        omega,
        K,
        dt=dt,
        n_steps=n_steps,
        record=record,
        chunk=chunk,
        checkpoint_steps=checkpoint_steps,
        device=device,
        batched=True,
    )


def ensemble_gradient(
    theta0: Any,
    omega: Any,
    K: Any,
    *,
    dt: Any,
    n_steps: Any,
    cotangent: Any,
    device: Any = "auto",
    chunk: int | None = None,
    checkpoint_steps: int | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-member gradients of a scalar of each member's final phases.

    ``cotangent`` (B, N) holds each member's λ = ∂L_m/∂θ_final. Returns per-member
    (∂θ0 (B, N), ∂ω (B, N), ∂K (B, N, N)), also when ω or K is shared (sum over the member axis
    for the gradient of Σ_m L_m with respect to a shared ω or K).
    """
    return run_gradient(
        theta0,
        omega,
        K,
        dt=dt,
        n_steps=n_steps,
        cotangent=cotangent,
        chunk=chunk,
        checkpoint_steps=checkpoint_steps,
        device=device,
        batched=True,
    )
