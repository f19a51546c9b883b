"""Covariance of the warm start: Σ̂ = s²·(JᵀJ)⁺ over all free quantities.

J is the forward-mode Jacobian of the weighted residuals (``Problem.evaluate`` accumulates JᵀJ
over chunks of points when M·P·8 B exceeds the configured budget). The pseudo-inverse uses a
symmetric eigendecomposition of the Jacobi-scaled matrix D⁻¹JᵀJD⁻¹ (D = √diag JᵀJ), so
parameters that span ten decades of scale do not masquerade as null directions; eigenvalues
below 1e-12·λ_max count as zero and the parameters loading on them are reported as
unidentified.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NULL_RTOL = 1e-12
LOADING = 0.1  # a parameter whose |component| in a null eigenvector exceeds this is unidentified


@dataclass(frozen=True)
class CovarianceResult:
    cov: np.ndarray
    jtj: np.ndarray
    condition_number: float
    null_dims: int
    unidentified: tuple[int, ...]


def pseudo_inverse(jtj: np.ndarray) -> tuple[np.ndarray, float, int, tuple[int, ...]]:
    """(JᵀJ)⁺ with condition number, null dimension count and unidentified parameter indices."""
    d = np.sqrt(np.diag(jtj))
    d = np.where(d > 0, d, 1.0)
    scaled = jtj / np.outer(d, d)
    lam, vec = np.linalg.eigh(scaled)
    lam_max = float(lam[-1]) if lam.size else 0.0
    keep = lam > NULL_RTOL * lam_max
    inv_scaled = (vec[:, keep] / lam[keep]) @ vec[:, keep].T
    null = vec[:, ~keep]
    unidentified = tuple(int(k) for k in np.flatnonzero(np.any(np.abs(null) > LOADING, axis=1)))
    cond = lam_max / float(lam[keep][0]) if keep.all() and lam.size else float("inf")
    return inv_scaled / np.outer(d, d), cond, int((~keep).sum()), unidentified


def covariance(jtj: np.ndarray, *, s2: float) -> CovarianceResult:
    """s²·(JᵀJ)⁺ with its diagnostics."""
    inv, cond, null_dims, unidentified = pseudo_inverse(jtj)
    return CovarianceResult(s2 * inv, jtj, cond, null_dims, unidentified)
