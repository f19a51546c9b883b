"""Classic fixed-step RK4 for one oscillator network: ``init``/``step`` and the ``lax.scan`` driver.

    k1 = f(θ),  k2 = f(θ + dt/2·k1),  k3 = f(θ + dt/2·k2),  k4 = f(θ + dt·k3)
    θ⁺ = θ + dt/6·(k1 + 2k2 + 2k3 + k4)

(Kutta, Z. Math. Phys. 46, 435, 1901; Hairer, Nørsett & Wanner, "Solving Ordinary Differential
Equations I", Sec. II.1.) Phases are not wrapped. A trajectory has n_steps + 1 rows, row 0 is θ0.

Everything here is a pure function of one member (no batching, no validation, no jit): the
batched, jitted kernels live in :mod:`hpcfit.kuramoto.chunks` and the checked public entry
points in :mod:`hpcfit.kuramoto.integrate` and :mod:`hpcfit.kuramoto.ensemble`. The scan carries
only the phases; ω, the masked K and dt are loop constants, so reverse mode stores O(n_steps·N)
residuals (no copy of K per step). ``checkpoint_steps`` wraps blocks of that many steps in
``jax.checkpoint``: reverse mode then keeps one state per block and recomputes the steps inside
a block, for long horizons.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from hpcfit.kuramoto.dynamics import coupling, mask_diagonal, order_parameter

RECORDS = ("order_parameter", "trajectory", "final")
"""What a run records besides the final phases: r(t), every phase, or nothing."""


class Carry(NamedTuple):
    """State of one RK4 integration."""

    theta: jax.Array  # (N,) phases (rad)
    omega: jax.Array  # (N,) natural frequencies (rad/time)
    coupling: jax.Array  # (N, N) couplings with a zero diagonal (rad/time)


def init(theta0: jax.Array, omega: jax.Array, K: jax.Array) -> Carry:
    """The carry at t = 0; the diagonal of K is masked once here.

    Parameters
    ----------
    theta0 : Float64[Array, "N"]  initial phases (rad)
    omega : Float64[Array, "N"]  natural frequencies (rad/time)
    K : Float64[Array, "N N"]  couplings (rad/time)
    """
    return Carry(theta0, omega, mask_diagonal(K))


def step(carry: Carry, dt: jax.Array, *, form: str = "expanded") -> tuple[Carry, jax.Array]:
    """One classic RK4 step of size ``dt`` (time units): ``(carry, θ⁺)``.

    ``lax.scan(lambda c, _: step(c, dt), init(θ0, ω, K), None, length=n)`` integrates n steps and
    stacks the rows θ(t_1) … θ(t_n).
    """
    theta, omega, K = carry
    force = coupling(form)

    def f(th: jax.Array) -> jax.Array:
        return omega + force(th, K)

    k1 = f(theta)
    k2 = f(theta + (0.5 * dt) * k1)
    k3 = f(theta + (0.5 * dt) * k2)
    k4 = f(theta + dt * k3)
    new = theta + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return carry._replace(theta=new), new


def solve(
    theta0: jax.Array,
    omega: jax.Array,
    K: jax.Array,
    dt: jax.Array,
    *,
    n_steps: int,
    record: str = "final",
    checkpoint_steps: int | None = None,
    n_real: int | None = None,
    form: str = "expanded",
) -> dict[str, jax.Array]:
    """Integrate one member for ``n_steps`` steps and return what ``record`` asks for.

    Parameters
    ----------
    theta0, omega : Float64[Array, "N"]  initial phases (rad), frequencies (rad/time)
    K : Float64[Array, "N N"]  couplings (rad/time); the diagonal is ignored
    dt : Float64[Array, ""]  step (time units; traced)
    n_steps : int  number of steps (static)
    record : "order_parameter" | "trajectory" | "final"
    checkpoint_steps : int | None  block length for ``jax.checkpoint`` (reverse mode only)
    n_real : int | None  oscillators 0…n_real−1 are real, the rest padding (uncoupled, ω = 0);
        records and the final phases cover the real ones only
    form : "expanded" | "direct"

    Returns
    -------
    dict with ``"final"`` (n_real,) and, for ``record="trajectory"``, ``"trajectory"``
    (n_steps + 1, n_real) or, for ``"order_parameter"``, ``"order_parameter"`` (n_steps + 1,)
    """
    n = theta0.shape[-1] if n_real is None else n_real
    carry = init(theta0, omega, K)

    def emit(theta: jax.Array) -> jax.Array | None:
        if record == "trajectory":
            return theta[:n]
        if record == "order_parameter":
            return order_parameter(theta[:n])
        return None

    def body(theta: jax.Array, _: None) -> tuple[jax.Array, jax.Array | None]:
        new = step(carry._replace(theta=theta), dt, form=form)[1]
        return new, emit(new)

    def run(theta: jax.Array, length: int) -> tuple[jax.Array, jax.Array | None]:
        return jax.lax.scan(body, theta, None, length=length)

    if checkpoint_steps is None or checkpoint_steps >= n_steps:
        theta, rows = run(theta0, n_steps)
    else:
        n_blocks, rest = divmod(n_steps, checkpoint_steps)
        block = jax.checkpoint(lambda th: run(th, checkpoint_steps), prevent_cse=False)
        theta, rows = jax.lax.scan(lambda th, _: block(th), theta0, None, length=n_blocks)
        if rows is not None:
            rows = rows.reshape(n_blocks * checkpoint_steps, *rows.shape[2:])
        if rest:
            theta, tail = run(theta, rest)
            if rows is not None and tail is not None:
                rows = jnp.concatenate([rows, tail], axis=0)
    out = {"final": theta[:n]}
    first = emit(theta0)
    if rows is not None:
        assert first is not None  # emit records a row exactly when the scan does
        out[record] = jnp.concatenate([first[None], rows], axis=0)
    return out


def solve_vjp(
    theta0: jax.Array,
    omega: jax.Array,
    K: jax.Array,
    dt: jax.Array,
    cotangent: jax.Array,
    *,
    n_steps: int,
    checkpoint_steps: int | None = None,
    n_real: int | None = None,
    form: str = "expanded",
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(∂L/∂θ0, ∂L/∂ω, ∂L/∂K) by ``jax.vjp`` of the final phases, for λ = ∂L/∂θ_final.

    ``cotangent`` has the n_real entries of the final phases; the gradients have the (padded)
    shapes of the inputs. With n_steps = 0 the final phases are θ0, so the result is (λ, 0, 0).
    """

    def final(a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
        return solve(
            a,
            b,
            c,
            dt,
            n_steps=n_steps,
            record="final",
            checkpoint_steps=checkpoint_steps,
            n_real=n_real,
            form=form,
        )["final"]

    _, pullback = jax.vjp(final, theta0, omega, K)
    return pullback(cotangent)
