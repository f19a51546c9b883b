"""Networks and frequency samples for the Kuramoto workload, its tests and benchmarks.

NumPy only (host arrays, float64). Frequencies in rad per unit time, couplings likewise.

* :func:`bench_network`: the benchmark network (oscillatools' test network with a
  fixed seed): ``rng = numpy.random.default_rng(20260703)``, ω = rng.normal(0, 0.7, N) drawn
  first, then θ0 = rng.uniform(0, 2π, N); K = coupling/N off the diagonal.
* :func:`all_to_all`: K_jk = coupling/N for j ≠ k, 0 on the diagonal (mean-field coupling).
* :func:`lorentzian_frequencies`, :func:`gaussian_frequencies`: deterministic samples of a
  frequency density g (quantiles at (j − ½)/N), for the synchronisation tests; with
  them the all-to-all network synchronises above K_c = 2/(π g(0)) (Kuramoto 1975; Strogatz,
  Physica D 143, 1, 2000).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import ndtri

BENCH_SEED = 20260703
BENCH_SIGMA = 0.7
"""Standard deviation of the bench network's frequencies (rad/time)."""


class BenchNetwork(NamedTuple):
    """The bench network, in the order its values are drawn."""

    omega: np.ndarray  # (N,) rad/time, N(0, 0.7²)
    theta0: np.ndarray  # (N,) rad, U(0, 2π)
    coupling: np.ndarray  # (N, N) rad/time, coupling/N off the diagonal


def _size(n_oscillators: int) -> int:
    n = int(n_oscillators)
    if n != n_oscillators or n < 1:
        raise ValueError(f"n_oscillators must be an integer >= 1, got {n_oscillators!r}")
    return n


def all_to_all(n_oscillators: int, coupling: float) -> np.ndarray:
    """K (N, N) with K_jk = coupling/N off the diagonal and 0 on it."""
    n = _size(n_oscillators)
    k = np.full((n, n), float(coupling) / n)
    np.fill_diagonal(k, 0.0)
    return k


def bench_network(
    n_oscillators: int = 256, coupling: float = 1.8, seed: int = BENCH_SEED
) -> BenchNetwork:
    """(ω, θ0, K) of the benchmark network; N = 256 by default."""
    n = _size(n_oscillators)
    rng = np.random.default_rng(seed)
    omega = rng.normal(0.0, BENCH_SIGMA, n)
    theta0 = rng.uniform(0.0, 2.0 * np.pi, n)
    return BenchNetwork(omega, theta0, all_to_all(n, coupling))


def _midpoints(n: int) -> np.ndarray:
    return (np.arange(1, n + 1) - 0.5) / n


def lorentzian_frequencies(n_oscillators: int, gamma: float) -> np.ndarray:
    """ω_j = γ tan(π(j − ½)/N − π/2), j = 1…N: quantiles of a Lorentzian of half-width γ.

    g(ω) = γ / (π(γ² + ω²)), g(0) = 1/(πγ), so K_c = 2γ.
    """
    n = _size(n_oscillators)
    return float(gamma) * np.tan(np.pi * _midpoints(n) - 0.5 * np.pi)


def gaussian_frequencies(n_oscillators: int, sigma: float) -> np.ndarray:
    """ω_j = σ Φ⁻¹((j − ½)/N), j = 1…N: quantiles of N(0, σ²); g(0) = 1/(σ√(2π))."""
    n = _size(n_oscillators)
    return float(sigma) * ndtri(_midpoints(n))


def critical_coupling_lorentzian(gamma: float) -> float:
    """K_c = 2/(π g(0)) = 2γ for a Lorentzian of half-width γ."""
    return 2.0 * float(gamma)


def critical_coupling_gaussian(sigma: float) -> float:
    """K_c = 2/(π g(0)) = σ√(8/π) ≈ 1.5958σ for N(0, σ²)."""
    return float(sigma) * np.sqrt(8.0 / np.pi)
