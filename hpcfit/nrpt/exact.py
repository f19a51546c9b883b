"""Exact answers for small models and for the Gaussian path.

* :func:`enumerate_ising`: streaming exact enumeration of all 2ⁿ states (n ≤ 20) at β_t:
  log Z, ⟨H⟩, Var H, ⟨M⟩, ⟨|M|⟩, ⟨M²⟩ (M = Σs/n) and the marginals ⟨s_i⟩. States are processed in
  blocks with a running log-sum-exp, so memory stays bounded.
* :func:`gaussian_barrier` and :func:`gaussian_log_z_ratio`: the closed forms of Pigeons'
  ``toy_mvn_target`` path, Λ(β) = c_d·log(σ_0/σ_β) with c_d = 2^{2−d}/B(d/2, d/2) and
  log Z_1/Z_0 = −(d/2) log p_1 (Predescu et al. 2004; Syed et al. 2022, Sec. 5).

Pure NumPy/SciPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln

from hpcfit.nrpt.model import IsingModel

MAX_SPINS = 20
_BLOCK_BITS = 14


@dataclass(frozen=True)
class ExactIsing:
    """Exact expectations under exp(−β_t H)/Z (H in energy units, M = Σs/n)."""

    log_Z: float
    mean_energy: float
    var_energy: float
    mean_magnetisation: float
    mean_abs_magnetisation: float
    mean_sq_magnetisation: float
    marginals: np.ndarray


def _spins(start: int, stop: int, n: int) -> np.ndarray:
    """Int8[(stop − start, n)] spins of states start…stop−1 (bit i of the index = spin i)."""
    idx = np.arange(start, stop, dtype=np.int64)[:, None]
    bits = (idx >> np.arange(n, dtype=np.int64)[None, :]) & 1
    return (2 * bits - 1).astype(np.int8)


def enumerate_ising(model: IsingModel) -> ExactIsing:
    """Exact values for ``model`` at its β_t by streaming over the 2ⁿ states (n ≤ 20)."""
    n = model.n
    if n > MAX_SPINS:
        raise ValueError(f"exact enumeration is limited to n <= {MAX_SPINS} spins, got {n}")
    beta = model.beta_t
    total = 1 << n
    block = 1 << min(n, _BLOCK_BITS)
    log_scale = -math.inf  # running max of the log weights
    acc = np.zeros(6)  # Σw, ΣwH', ΣwH'², ΣwM, Σw|M|, ΣwM² (weights relative to exp(log_scale))
    marg = np.zeros(n)
    h_ref = None
    for start in range(0, total, block):
        s = _spins(start, min(start + block, total), n)
        H = model.energy(s)
        if h_ref is None:
            h_ref = float(H.min())  # shift H before squaring: Var H without cancellation
        logw = -beta * H
        top = float(logw.max())
        if top > log_scale:
            factor = math.exp(log_scale - top) if math.isfinite(log_scale) else 0.0
            acc *= factor
            marg *= factor
            log_scale = top
        w = np.exp(logw - log_scale)
        dh = H - h_ref
        M = s.astype(np.float64).mean(axis=1)
        acc += [w.sum(), w @ dh, w @ (dh * dh), w @ M, w @ np.abs(M), w @ (M * M)]
        marg += w @ s.astype(np.float64)
    z = acc[0]
    mean_dh = acc[1] / z
    return ExactIsing(
        log_Z=float(log_scale + math.log(z)),
        mean_energy=float(h_ref + mean_dh),
        var_energy=float(acc[2] / z - mean_dh * mean_dh),
        mean_magnetisation=float(acc[3] / z),
        mean_abs_magnetisation=float(acc[4] / z),
        mean_sq_magnetisation=float(acc[5] / z),
        marginals=marg / z,
    )


def gaussian_barrier_constant(d: int) -> float:
    """c_d = 2^{2−d}/B(d/2, d/2) = ½ E|χ²_d − χ'²_d|/…, computed in log space."""
    return math.exp((2 - d) * math.log(2.0) - betaln(0.5 * d, 0.5 * d))


def gaussian_barrier(beta: np.ndarray | float, d: int, precision: float = 10.0) -> np.ndarray:
    """Exact cumulative barrier Λ(β) = c_d·½·log p(β), p(β) = 1 + (p_1 − 1)β."""
    b = np.asarray(beta, dtype=np.float64)
    return gaussian_barrier_constant(d) * 0.5 * np.log1p((precision - 1.0) * b)


def gaussian_log_z_ratio(d: int, precision: float = 10.0) -> float:
    """log Z_1/Z_0 = −(d/2) log p_1 for the Gaussian path."""
    return -0.5 * d * math.log(precision)
