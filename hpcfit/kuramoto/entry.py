"""What every public Kuramoto entry point does around its kernel.

1. check the arguments (:mod:`hpcfit.kuramoto.validate`), before anything compiles;
2. resolve the device **once** with the score B·N (``hpcfit.device.resolve_entry_device``, which
   returns None inside ``jit``/``vmap``/``grad`` traces and passes a ``jax.Device`` through);
3. with a device, commit the inputs to it (``tree_device_put``; NumPy inputs are put there too,
   so the outputs come back committed to it) and run under ``jax.default_device``; with None,
   leave placement alone (outputs are plain, uncommitted arrays);
4. pick the chunk size from the device's platform and call the jitted kernel of
   :mod:`hpcfit.kuramoto.chunks` (cached per static arguments at module level).
"""

from __future__ import annotations

import contextlib
from typing import Any

import jax
import numpy as np

from hpcfit import device as routing
from hpcfit.kuramoto import chunks, validate


def _platform(dev: Any, arrays: tuple) -> str:
    if dev is not None:
        return dev.platform
    for leaf in arrays:
        if isinstance(leaf, jax.Array) and not validate.is_tracer(leaf) and leaf.committed:
            return next(iter(leaf.devices())).platform
    return jax.default_backend()


def place(device: Any, n_members: int, n_oscillators: int, arrays: tuple) -> tuple[Any, tuple]:
    """(device or None, the arrays committed to it) for one entry-point call."""
    score = routing.kuramoto_score(n_members, n_oscillators)
    dev = routing.resolve_entry_device(device, score=score, arrays=arrays)
    if dev is None:
        return None, arrays
    arrays = tuple(
        jax.device_put(a, dev) if isinstance(a, np.ndarray | np.generic) else a for a in arrays
    )
    return dev, routing.tree_device_put(arrays, dev)


def _on(dev: Any):
    return jax.default_device(dev) if dev is not None else contextlib.nullcontext()


def _statics(n_steps: Any, chunk: Any, checkpoint_steps: Any) -> tuple[int, int | None, Any]:
    return (
        validate.count("n_steps", n_steps, 0),
        validate.optional_count("chunk", chunk),
        validate.optional_count("checkpoint_steps", checkpoint_steps),
    )


def run_forward(
    theta0: Any,
    omega: Any,
    K: Any,
    *,
    dt: Any,
    n_steps: Any,
    record: Any,
    chunk: Any,
    checkpoint_steps: Any,
    device: Any,
    batched: bool,
) -> dict[str, jax.Array]:
    """Checked, routed :func:`chunks.forward` (θ0 (B, N) if ``batched`` else (N,))."""
    theta0, omega, K = (validate.members if batched else validate.single)(theta0, omega, K)
    dt = validate.check_dt(dt)
    n_steps, chunk, checkpoint_steps = _statics(n_steps, chunk, checkpoint_steps)
    record = validate.check_record(record)
    n_members = theta0.shape[0] if batched else 1
    dev, (theta0, omega, K, dt) = place(device, n_members, theta0.shape[-1], (theta0, omega, K, dt))
    size = chunk or chunks.default_chunk(_platform(dev, (theta0, omega, K)))
    with _on(dev):
        return chunks.forward(
            theta0,
            omega,
            K,
            dt,
            n_steps=n_steps,
            record=record,
            chunk=size,
            checkpoint_steps=checkpoint_steps,
        )


def run_gradient(
    theta0: Any,
    omega: Any,
    K: Any,
    *,
    dt: Any,
    n_steps: Any,
    cotangent: Any,
    chunk: Any,
    checkpoint_steps: Any,
    device: Any,
    batched: bool,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Checked, routed :func:`chunks.gradient`."""
    theta0, omega, K = (validate.members if batched else validate.single)(theta0, omega, K)
    lam = validate.cotangent(cotangent, tuple(int(d) for d in theta0.shape))
    dt = validate.check_dt(dt)
    n_steps, chunk, checkpoint_steps = _statics(n_steps, chunk, checkpoint_steps)
    n_members = theta0.shape[0] if batched else 1
    dev, (theta0, omega, K, dt, lam) = place(
        device, n_members, theta0.shape[-1], (theta0, omega, K, dt, lam)
    )
    size = chunk or chunks.default_chunk(_platform(dev, (theta0, omega, K)))
    with _on(dev):
        return chunks.gradient(
            theta0,
            omega,
            K,
            dt,
            lam,
            n_steps=n_steps,
            chunk=size,
            checkpoint_steps=checkpoint_steps,
        )
