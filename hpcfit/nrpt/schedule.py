"""Barrier and schedule adaptation (Pigeons.jl's ``optimal_schedule``).

With rejection rates r_i of the pairs (β_i, β_{i+1}), the cumulative barrier is C_0 = 0,
C_k = Σ_{i<k} r_i, and Λ̂ = C_{N−1} (Syed et al., JRSS-B 2022, Sec. 4). The new ladder equalises
the barrier between neighbours: x_k = C_k/Λ̂, g the monotone cubic (Fritsch–Carlson family; SciPy's
``PchipInterpolator``) through (x_k, β_k), β'_k = g(k/(N−1)), endpoints pinned to exactly 0 and 1.
Zero rejections (Λ̂ = 0, or some pairs never rejecting) are guarded by adding 1e-6 to every r_i
once. Pure NumPy/SciPy, evaluated on rank 0 only.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

ZERO_GUARD = 1e-6


def uniform_ladder(n_chains: int) -> np.ndarray:
    """Float64[(N,)] β_k = k/(N−1), with β_0 = 0 and β_{N−1} = 1 exactly."""
    if n_chains < 2:
        raise ValueError(f"a ladder needs at least 2 chains, got {n_chains}")
    betas = np.linspace(0.0, 1.0, n_chains)
    betas[0], betas[-1] = 0.0, 1.0
    return betas


def check_ladder(betas: np.ndarray) -> np.ndarray:
    """``betas`` as float64 if it starts at 0, ends at 1 and strictly increases, else ValueError."""
    b = np.asarray(betas, dtype=np.float64)
    if b.ndim != 1 or b.shape[0] < 2:
        raise ValueError(f"a ladder is a vector of >= 2 values, got shape {b.shape}")
    if b[0] != 0.0 or b[-1] != 1.0 or not np.all(np.diff(b) > 0):
        raise ValueError(f"a ladder must increase strictly from 0 to 1, got {b.tolist()}")
    return b


def cumulative_barrier(rejection: np.ndarray) -> np.ndarray:
    """Float64[(N,)] C_0 = 0, C_k = Σ_{i<k} r_i."""
    r = np.asarray(rejection, dtype=np.float64)
    return np.concatenate(([0.0], np.cumsum(r)))


def barrier_curve(betas: np.ndarray, rejection: np.ndarray) -> PchipInterpolator:
    """The monotone cubic Λ̂(β) through (β_k, C_k); its derivative is the local barrier λ̂(β)."""
    return PchipInterpolator(check_ladder(betas), cumulative_barrier(rejection))


def local_barrier(betas: np.ndarray, rejection: np.ndarray, at: np.ndarray) -> np.ndarray:
    """λ̂(β) = dΛ̂/dβ at the points ``at`` (1/β units)."""
    return barrier_curve(betas, rejection).derivative()(np.asarray(at, dtype=np.float64))


def optimal_schedule(betas: np.ndarray, rejection: np.ndarray) -> np.ndarray:
    """The adapted ladder (same length as ``betas``).

    Raises ValueError if the rejection rates are not finite and in [0, 1], or if the barrier
    is still degenerate after the 1e-6 guard.
    """
    b = check_ladder(betas)
    r = np.asarray(rejection, dtype=np.float64)
    if r.shape != (b.shape[0] - 1,):
        raise ValueError(f"need {b.shape[0] - 1} rejection rates, got shape {r.shape}")
    if not np.all(np.isfinite(r)) or np.any(r < 0) or np.any(r > 1):
        raise ValueError(f"rejection rates must lie in [0, 1], got {r.tolist()}")
    for attempt in range(2):
        c = cumulative_barrier(r)
        if c[-1] > 0:
            x = c / c[-1]
            if np.all(np.diff(x) > 0):
                break
        if attempt == 1:
            raise ValueError(f"degenerate barrier even after the zero guard: {r.tolist()}")
        r = r + ZERO_GUARD
    n = b.shape[0]
    x[0], x[-1] = 0.0, 1.0
    new = PchipInterpolator(x, b)(np.arange(n, dtype=np.float64) / (n - 1))
    new[0], new[-1] = 0.0, 1.0
    return new
