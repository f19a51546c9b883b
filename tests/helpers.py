"""Shared test helpers: tolerance checks and small reference problems with known answers.

Imported by tests as ``from helpers import ...`` (``tests/`` is on ``sys.path`` because it holds
the root ``conftest.py``).
"""

from __future__ import annotations

import numpy as np

# The reference example (t_k = k·dt includes t = 0, so alpha_ref < 0 exercises the
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
    """t_k = k × 0.01 s for k = 0…49, computed as k·dt (includes t = 0)."""
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


# A small, well-identified CMC problem for pipeline tests: two slots, 30 frames, four free
# physics parameters (D0_ref, D0_sample, v0, f0) plus contrast and offset per slot (8 quantities);
# few NUTS steps and open gates so that every shard passes its first attempt quickly. The other
# parameters are fixed at the generator's truth.
TINY_CMC = (
    "data=synthetic",
    "data.n_frames=30",
    "data.dt=0.05",
    "data.phi=[0.0,60.0]",
    "data.contrast=[0.30,0.28]",
    "data.seed=2024",
    "model.fixed=[f2,D_offset_ref,D_offset_sample,v_offset,alpha_ref,alpha_sample,beta,f1,f3,phi0]",
    "model.start={D0_ref:5000.0,D0_sample:20000.0,alpha_ref:0.2,alpha_sample:0.5,beta:0.3,"
    "f1:-0.8,f3:0.1,phi0:3.0}",
    "cmc.n_shards=4",
    "cmc.num_warmup=60",
    "cmc.num_samples=40",
    "cmc.num_chains=2",
    "cmc.gates.max_rhat=100",
    "cmc.gates.min_ess_bulk_per_chain=0",
    "cmc.gates.min_ess_tail_per_chain=0",
    "cmc.gates.max_divergence_rate=1",
    "cmc.gates.min_bfmi=0",
)


def compose(*overrides: str):
    """(Config, resolved dict) composed exactly as the command line would."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from hpcfit import config

    config.register()
    with initialize_config_dir(config_dir=str(config.config_dir()), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=list(overrides))
    resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    from hpcfit.validation import to_config

    return to_config(cfg), resolved


def combined_arrays(run_dir) -> dict:
    """The arrays of ``<run_dir>/cmc/combined.npz``."""
    import numpy as np

    with np.load(run_dir / "cmc" / "combined.npz") as z:
        return {k: z[k] for k in z.files}
