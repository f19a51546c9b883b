"""Single-network entry points: ``trajectory``, ``final_state`` and ``gradient``.

Each call checks its arguments before anything compiles (:class:`hpcfit.errors.ConfigError`),
resolves its device once with the score 1·N, and runs the same jitted chunk kernel as
:func:`hpcfit.kuramoto.ensemble`, so a single call and an ensemble member agree bitwise.
``n_steps`` is static (one compilation per value and shape); ``dt`` is traced.

Keyword arguments shared by all three:

* ``dt`` (time units, finite, > 0) and ``n_steps`` (integer ≥ 0);
* ``device``: ``"auto"`` (default; a no-op on CPU-only JAX), ``"cpu"``, ``"gpu"``, a
  ``jax.Device`` or None (leave placement alone), see :mod:`hpcfit.device`;
* ``chunk``: members per compiled chunk (default: 1 on CPU, 32 on GPUs; see
  :mod:`hpcfit.kuramoto.chunks`); results with different chunks agree to rounding only;
* ``checkpoint_steps``: with reverse mode (``gradient``, or ``jax.grad`` through these
  functions), keep one state per block of that many steps and recompute inside the blocks.
"""

from __future__ import annotations

from typing import Any

import jax

from hpcfit.kuramoto.entry import run_forward, run_gradient


def trajectory(
    theta0: Any,
    omega: Any,
    K: Any,
    *,
    dt: Any,
    n_steps: Any,
    device: Any = "auto",
    chunk: int | None = None,
    checkpoint_steps: int | None = None,
) -> jax.Array:
    """Phases at t = 0, dt, …, n_steps·dt by classic RK4 (unwrapped).

    Parameters
    ----------
    theta0 : Float64[Array, "N"]  initial phases (rad)
    omega : Float64[Array, "N"]  natural frequencies (rad/time)
    K : Float64[Array, "N N"]  couplings (rad/time), dθ_j/dt = ω_j + Σ_k K_jk sin(θ_k − θ_j);
        the diagonal is ignored

    Returns
    -------
    Float64[Array, "n_steps+1 N"]  row 0 is θ0
    """
    out = run_forward(
        theta0,
        omega,
        K,
        dt=dt,
        n_steps=n_steps,
        record="trajectory",
        chunk=chunk,
        checkpoint_steps=checkpoint_steps,
        device=device,
        batched=False,
    )
    return out["trajectory"]


def final_state(
    theta0: Any,
    omega: Any,
    K: Any,
    *,
    dt: Any,
    n_steps: Any,
    device: Any = "auto",
    chunk: int | None = None,
    checkpoint_steps: int | None = None,
) -> jax.Array:
    """Phases after n_steps RK4 steps (rad, unwrapped), without storing the trajectory.

    Same arguments as :func:`trajectory`; returns Float64[Array, "N"].
    """
    out = run_forward(
        theta0,
        omega,
        K,
        dt=dt,
        n_steps=n_steps,
        record="final",
        chunk=chunk,
        checkpoint_steps=checkpoint_steps,
        device=device,
        batched=False,
    )
    return out["final"]


def gradient(
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
    """Reverse-mode gradient of a scalar L of the final phases: ``jax.vjp`` of :func:`final_state`.

    Parameters
    ----------
    cotangent : Float64[Array, "N"]  λ = ∂L/∂θ_final; e.g. for L = 1 − r²,
        λ_j = (2/N)(Re Z · sin θ_j − Im Z · cos θ_j) with Z = mean_j e^{iθ_j}
    (the others as :func:`trajectory`)

    Returns
    -------
    (∂L/∂θ0 (N,), ∂L/∂ω (N,), ∂L/∂K (N, N)); ∂L/∂K_jj = 0 exactly; n_steps = 0 gives (λ, 0, 0)
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
        batched=False,
    )
