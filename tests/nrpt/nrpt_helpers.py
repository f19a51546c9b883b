"""Shared pieces of the NRPT tests: toy targets and the z-score check."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from hpcfit.nrpt.targets import AbstractTarget

Z_MAX = 4.0  # statistical tests use fixed seeds and |z| < 4


class FlatTarget(AbstractTarget):
    """E_1 ≡ 0: every swap has Δ = 0 > v = log U, so every proposal is accepted (the conveyor)."""

    n_free = 1
    n_sites = 0
    site_dtype = jnp.float64
    log_Z0 = 0.0
    beta_scale = 1.0

    def energy(self, x):
        return jnp.zeros((), dtype=jnp.float64)

    def explore(self, key, x, beta, n_expl):
        return x

    def sample_reference(self, key):
        return jnp.zeros((1,), dtype=jnp.float64)

    def fingerprint_doc(self):
        return {"kind": "flat"}


class BlowUpTarget(AbstractTarget):
    """N(0, 1) draws at every β whose E_1 is NaN once the first coordinate exceeds 2.5."""

    n_free = 1
    n_sites = 0
    site_dtype = jnp.float64
    log_Z0 = 0.0
    beta_scale = 1.0

    def energy(self, x):
        return jnp.where(x[0] > 2.5, jnp.nan, x[0] * x[0])

    def explore(self, key, x, beta, n_expl):
        return jax.random.normal(key, (1,), dtype=jnp.float64)

    def sample_reference(self, key):
        return jax.random.normal(key, (1,), dtype=jnp.float64) * 0.1

    def fingerprint_doc(self):
        return {"kind": "blow_up"}


def z_score(estimate: float, se: float, exact: float) -> float:
    """(estimate − exact)/se; 0 when both the error and the SE vanish."""
    err = estimate - exact
    if se == 0 and abs(err) < 1e-12:
        return 0.0
    return err / se if se > 0 else math.inf


def assert_z(name: str, estimate: float, se: float, exact: float) -> None:
    z = z_score(estimate, se, exact)
    assert abs(z) < Z_MAX, f"{name}: estimate {estimate} ± {se} vs exact {exact} (z = {z:.2f})"


def assert_ising_matches(result, exact, log_z_tol: float = 0.2) -> None:
    """Pass rule of the exact-answer tests: |z| < 4 for ⟨H⟩, ⟨|M|⟩, ⟨M²⟩ and every marginal;
    |Δ log Z| < tol."""
    assert result.ok, result.message
    assert_z("<H>", result.mean_energy, result.mean_energy_se, exact.mean_energy)
    for name in ("abs_magnetisation", "sq_magnetisation"):
        estimate = getattr(result, f"mean_{name}")
        se = getattr(result, f"mean_{name}_se")
        assert_z(f"<{name}>", estimate, se, getattr(exact, f"mean_{name}"))
    for i, (m, se, ex) in enumerate(
        zip(result.marginals, result.marginals_se, exact.marginals, strict=True)
    ):
        assert_z(f"<s_{i}>", float(m), float(se), float(ex))
    assert abs(result.log_Z - exact.log_Z) < log_z_tol, (result.log_Z, exact.log_Z)


def random_graph(n: int, p: float, seed: int) -> np.ndarray:
    """Int64[(m, 2)] edges i < j of an Erdős–Rényi graph (NumPy generator, fixed seed)."""
    rng = np.random.default_rng(seed)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < p]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


_VOLATILE = {"wall_s", "resumed_from", "versions", "device", "ranks"}


def assert_results_equal(a, b) -> None:
    """Bitwise equality of two NrptResults: records, ladders, history and every estimate.

    Wall times, the resume point, versions, device name and rank count are not compared."""
    import dataclasses

    for f in dataclasses.fields(a):
        if f.name in _VOLATILE:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "history":
            assert len(x) == len(y)
            for row_a, row_b in zip(x, y, strict=True):
                assert row_a.keys() == row_b.keys()
                for k in row_a:
                    if k != "wall_s":
                        _equal(f"history[{row_a['round']}].{k}", row_a[k], row_b[k])
        elif f.name == "records":
            assert x.keys() == y.keys()
            for k in x:
                _equal(f"records.{k}", x[k], y[k])
        else:
            _equal(f.name, x, y)


def _equal(name, x, y) -> None:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        assert np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True), name
    elif isinstance(x, float) and math.isnan(x):
        assert isinstance(y, float) and math.isnan(y), name
    else:
        assert x == y, (name, x, y)
