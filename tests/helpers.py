"""Shared test helpers: tolerance checks and small reference problems with known answers.

Imported by tests as ``from helpers import ...`` (``tests/`` is on ``sys.path`` because it holds
the root ``conftest.py``).
"""

from __future__ import annotations

import numpy as np

# Model spec §4: the reference example (t_k = k·dt includes t = 0, so alpha_ref < 0 exercises the
# t ≤ 0 rule). Values were produced by the heterodyne package's own kernel.
REF_PARAMS = np.array(
    [2000.0, -0.5, 10.0, 50000.0, 0.8, 0.0, 300.0, 0.5, 5.0, 0.3, -0.5, 0.2, 0.1, 3.0]
)
REF_N = 50
REF_DT = 0.01
REF_Q = 0.0054
REF_PHI = 30.0
REF_CONTRAST = 0.3
REF_OFFSET = 1.0
REF_C2_00 = 1.2999999999912522
REF_C2_0_LAST = 1.2563341440546192


def reference_grid() -> np.ndarray:
    """t_k = k × 0.01 s for k = 0…49, computed as in the spec (includes t = 0)."""
    return np.arange(REF_N, dtype=np.float64) * REF_DT


def max_rel_err(actual, expected) -> float:
    """max |actual − expected| / |expected| over all elements (expected must be nonzero)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.max(np.abs(actual - expected) / np.abs(expected)))


def assert_rel(actual, expected, rtol: float, what: str = "") -> None:
    """Assert every element agrees to ``rtol`` relative; the message gives the worst element."""
    err = max_rel_err(actual, expected)
    assert err <= rtol, f"{what}: max relative error {err:.3e} > {rtol:.1e}"


def registry_bounds() -> tuple[np.ndarray, np.ndarray]:
    """The registry's (lo, hi) of the 14 physics parameters, canonical order."""
    from hpcfit.xpcs.params import REGISTRY

    lo = np.array([p.lo for p in REGISTRY], dtype=np.float64)
    hi = np.array([p.hi for p in REGISTRY], dtype=np.float64)
    return lo, hi


def box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """All 2^d corners of the box [lo, hi] ⊂ ℝ^d, shape (2^d, d); bit k of the row picks hi_k."""
    d = lo.size
    bits = (np.arange(2**d)[:, None] >> np.arange(d)[None, :]) & 1
    return np.where(bits.astype(bool), hi[None, :], lo[None, :])
