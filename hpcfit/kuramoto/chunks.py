"""Jitted batch kernels: members in fixed-size chunks, so a member's result never depends on the
batch it was computed in.

A batch of B members (B = 1 for the single-member entry points) is padded to a multiple of the
chunk size C and run as ``lax.map`` over chunks; inside a chunk the C members are one ``vmap``
of :func:`hpcfit.kuramoto.rk4.solve` with ω and K shared (``in_axes=None``) or per member
(``in_axes=0``), chosen from their number of dimensions. Every chunk is the same compiled
computation on arrays of the same shapes, so member m gets the same bits whatever B is, whatever
its position, and whether it came from a single call or an ensemble (the tests check this,
and rank-count invariance, bitwise).

Why fixed chunks and not one vmap over the whole batch: XLA:CPU contracts a·b + c into fused
multiply-adds inside vectorised loops but not in their scalar remainders, and a shared-K mat-vec
becomes a matrix product whose accumulation order depends on the number of columns. Measured on
the development host (x86-64 with AVX-512, jax 0.12), one vmap over B members differs from
single calls in the last bits for most (B, N); fixed chunks agree bitwise for every tested case.

* **CPU default C = 1**: members run one after another through the single-member kernel (a
  mat-vec per product), no padding, and single calls cost nothing extra. Batching gains little
  on the CPU at N ≲ 400, where K stays in cache and the step is latency-bound.
* **C > 1** (the accelerator default :data:`ACCELERATOR_CHUNK`, or ``chunk=`` explicitly):
  members share K's loads through a matrix product. The oscillator axis is then zero-padded to a
  multiple of :data:`LANE` so each member occupies whole vector lanes wherever it sits in the
  chunk; padded oscillators have ω = 0 and no coupling, so they stay at θ = 0 and add exact
  zeros to every sum. A single call pays for a whole chunk.

Results with different chunk sizes agree to rounding (≈ 1e-14), not bitwise.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from hpcfit.kuramoto import rk4

CPU_CHUNK = 1
"""Members per chunk on CPU devices."""
ACCELERATOR_CHUNK = 32
"""Members per chunk on GPUs (a latency-bound step costs about the same for 1 or 32 members)."""
LANE = 64
"""With chunks of more than one member the oscillator axis is padded to a multiple of this."""


def default_chunk(platform: str) -> int:
    """Chunk size for a JAX platform name (``"cpu"``, ``"gpu"``, ``"cuda"``, …)."""
    return CPU_CHUNK if platform == "cpu" else ACCELERATOR_CHUNK


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _pad_axis(x: jax.Array, axis: int, size: int) -> jax.Array:
    if x.shape[axis] == size:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, size - x.shape[axis])
    return jnp.pad(x, widths)


def _map_members(member_fn, batched: dict, shared: dict, n_members: int, chunk: int):
    """``member_fn(**one member's batched args, **shared)`` for every member, in fixed chunks.

    ``batched`` arrays have a leading member axis of length ``n_members``; outputs (a pytree)
    come back with that leading axis.
    """
    n_chunks = -(-n_members // chunk)
    padded = {k: _pad_axis(v, 0, n_chunks * chunk) for k, v in batched.items()}

    if chunk == 1:

        def body(xs: dict):
            return member_fn(**xs, **shared)

        return jax.lax.map(body, padded)

    xs = {k: v.reshape(n_chunks, chunk, *v.shape[1:]) for k, v in padded.items()}
    in_axes = {k: 0 for k in xs}

    def chunk_body(xs_chunk: dict):
        return jax.vmap(lambda b: member_fn(**b, **shared), in_axes=(in_axes,))(xs_chunk)

    out = jax.lax.map(chunk_body, xs)
    out = jax.tree.map(lambda o: o.reshape(n_chunks * chunk, *o.shape[2:]), out)
    return jax.tree.map(lambda o: o[:n_members], out)


def _split_args(theta0, omega, K, extra: dict, n_pad: int):
    """Padded member-axis (batched) and shared arguments; ω/K are batched by their ndim."""
    batched = {"theta0": _pad_axis(theta0, 1, n_pad), **extra}
    shared: dict[str, Any] = {}
    omega = _pad_axis(omega, omega.ndim - 1, n_pad)
    K = _pad_axis(_pad_axis(K, K.ndim - 1, n_pad), K.ndim - 2, n_pad)
    (batched if omega.ndim == 2 else shared)["omega"] = omega
    (batched if K.ndim == 3 else shared)["K"] = K
    return batched, shared


@partial(jax.jit, static_argnames=("n_steps", "record", "chunk", "checkpoint_steps"))
def forward(theta0, omega, K, dt, *, n_steps, record, chunk, checkpoint_steps=None):
    """Batched :func:`rk4.solve`: θ0 (B, N) → dict of (B, …) arrays; θ0 (N,) → one member.

    ω is (N,) or (B, N), K (N, N) or (B, N, N) (shared or per member); dt a float64 scalar.
    """
    single = theta0.ndim == 1
    if single:
        theta0 = theta0[None]
    n_members, n = theta0.shape
    n_pad = n if chunk == 1 else _round_up(n, LANE)
    batched, shared = _split_args(theta0, omega, K, {}, n_pad)

    def member(theta0, omega, K):
        return rk4.solve(
            theta0,
            omega,
            K,
            dt,
            n_steps=n_steps,
            record=record,
            checkpoint_steps=checkpoint_steps,
            n_real=n,
        )

    out = _map_members(member, batched, shared, n_members, chunk)
    return jax.tree.map(lambda o: o[0], out) if single else out


@partial(jax.jit, static_argnames=("n_steps", "chunk", "checkpoint_steps"))
def gradient(theta0, omega, K, dt, cotangent, *, n_steps, chunk, checkpoint_steps=None):
    """Batched :func:`rk4.solve_vjp`: per-member (∂θ0 (B, N), ∂ω (B, N), ∂K (B, N, N)).

    Shapes as :func:`forward`; ``cotangent`` is (B, N), or (N,) with θ0 (N,) for one member
    (then the result is ((N,), (N,), (N, N))). Per-member gradients are returned even when ω or
    K is shared.
    """
    single = theta0.ndim == 1
    if single:
        theta0, cotangent = theta0[None], cotangent[None]
    n_members, n = theta0.shape
    n_pad = n if chunk == 1 else _round_up(n, LANE)
    batched, shared = _split_args(theta0, omega, K, {"cotangent": cotangent}, n_pad)

    def member(theta0, omega, K, cotangent):
        return rk4.solve_vjp(
            theta0,
            omega,
            K,
            dt,
            cotangent,
            n_steps=n_steps,
            checkpoint_steps=checkpoint_steps,
            n_real=n,
        )

    g_theta, g_omega, g_K = _map_members(member, batched, shared, n_members, chunk)
    g_theta, g_omega, g_K = g_theta[:, :n], g_omega[:, :n], g_K[:, :n, :n]
    if single:
        return g_theta[0], g_omega[0], g_K[0]
    return g_theta, g_omega, g_K
