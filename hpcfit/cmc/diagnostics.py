"""Per-shard NUTS diagnostics and the gates that pass or fail a shard.

R-hat and ESS come from ArviZ's array layer (``arviz_stats.rhat`` / ``arviz_stats.ess`` on a
NumPy array, which dispatch to ``arviz_stats.base.array_stats``); summary tables are never used
because they round. E-BFMI, acceptance, divergences and tree-depth hits are plain NumPy.
Everything in the record is a Python float (or int / str), never rounded, so ``json.dumps`` of
``dataclasses.asdict`` works; ``to_json`` additionally turns non-finite values into ``None``.

References
----------
Vehtari, Gelman, Simpson, Carpenter, Bürkner, "Rank-normalization, folding, and localization:
an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16(2), 2021.
Betancourt, "Diagnosing suboptimal cotangent disintegrations in Hamiltonian Monte Carlo",
arXiv:1604.00695, 2016 (E-BFMI).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import arviz_stats
import numpy as np

EXTRA_FIELDS = ("diverging", "accept_prob", "num_steps", "energy")
TAIL_PROB = (0.05, 0.95)  # Vehtari et al. 2021; ArviZ 1.x would otherwise default to its 89% CI


@dataclass(frozen=True)
class Diagnostics:
    """Diagnostics of one shard's post-warmup draws (all plain Python numbers, unrounded).

    ``rhat``, ``ess_bulk``, ``ess_tail`` have one entry per parameter (order of ``names``);
    ``ebfmi`` and ``accept_prob`` one per chain. Rates are fractions of the chains·samples
    transitions; ``nonfinite_fraction`` is the fraction of draws (parameter vectors) holding a
    NaN or Inf.
    """

    names: tuple[str, ...]
    n_chains: int
    n_samples: int
    rhat: list[float]
    ess_bulk: list[float]
    ess_tail: list[float]
    n_divergent: int
    divergence_rate: float
    ebfmi: list[float]
    accept_prob: list[float]
    max_tree_depth: int
    tree_depth_hit_rate: float
    nonfinite_fraction: float
    mean_steps: float  # leapfrog steps (gradient evaluations) per transition
    median_steps: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (strict JSON: NaN/Inf become ``None``)."""
        return {k: _finite_or_none(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Gates:
    """Shard gates (``cmc.gates.*``). ESS thresholds are per chain (ESS / chains)."""

    max_rhat: float = 1.05
    min_ess_bulk_per_chain: float = 100.0
    min_ess_tail_per_chain: float = 100.0
    max_divergence_rate: float = 0.01
    min_bfmi: float = 0.3
    max_nonfinite_fraction: float = 0.0
    max_tree_depth_rate: float = 0.05  # warn only
    min_accept_prob: float = 0.6  # warn only


@dataclass(frozen=True)
class GateResult:
    """Outcome of ``apply_gates``: each message names the gate, the parameter/chain and value."""

    passed: bool
    failures: list[str]
    warnings: list[str]


def shard_diagnostics(
    draws: Mapping[str, np.ndarray] | np.ndarray,
    extra: Mapping[str, np.ndarray],
    max_tree_depth: int,
    names: Sequence[str] | None = None,
) -> Diagnostics:
    """Compute the diagnostics of one shard.

    Parameters
    ----------
    draws : dict name -> Float[(chains, samples)], or Float[(chains, samples, P)] with ``names``
        post-warmup θ draws, grouped by chain.
    extra : dict with "diverging", "accept_prob", "num_steps", "energy", each (chains, samples)
        NUTS extra fields.
    max_tree_depth : int  a transition with num_steps ≥ 2**max_tree_depth − 1 is a hit
    names : sequence of str, optional  names for an array ``draws`` (default ``"theta[p]"``)

    Returns
    -------
    Diagnostics  (ValueError for < 2 chains, < 4 samples, a missing field or a bad shape)
    """
    x, names = _as_array(draws, names)
    n_chains, n_samples, _ = x.shape
    if n_chains < 2:
        raise ValueError(f"diagnostics need at least 2 chains, got {n_chains}")
    if n_samples < 4:
        raise ValueError(f"diagnostics need at least 4 samples per chain, got {n_samples}")
    missing = [k for k in EXTRA_FIELDS if k not in extra]
    if missing:
        raise ValueError(f"extra fields missing: {missing}")
    fields = {k: np.asarray(extra[k]) for k in EXTRA_FIELDS}
    for k, v in fields.items():
        if v.shape != (n_chains, n_samples):
            raise ValueError(f"extra[{k!r}] has shape {v.shape}, expected {(n_chains, n_samples)}")

    with np.errstate(divide="ignore", invalid="ignore"):  # constant draws give NaN, not a warning
        rhat = arviz_stats.rhat(x, method="rank", chain_axis=0, draw_axis=1)
        bulk = arviz_stats.ess(x, method="bulk", chain_axis=0, draw_axis=1)
        tail = arviz_stats.ess(x, method="tail", prob=TAIL_PROB, chain_axis=0, draw_axis=1)
        ebfmi = ebfmi_per_chain(fields["energy"])

    n_total = n_chains * n_samples
    n_div = int(np.count_nonzero(fields["diverging"]))
    hits = np.count_nonzero(fields["num_steps"] >= 2**max_tree_depth - 1)
    nonfinite = np.count_nonzero(~np.all(np.isfinite(x), axis=2))
    return Diagnostics(
        names=tuple(names),
        n_chains=int(n_chains),
        n_samples=int(n_samples),
        rhat=_float_list(rhat),
        ess_bulk=_float_list(bulk),
        ess_tail=_float_list(tail),
        n_divergent=n_div,
        divergence_rate=n_div / n_total,
        ebfmi=_float_list(ebfmi),
        accept_prob=_float_list(np.mean(fields["accept_prob"].astype(np.float64), axis=1)),
        max_tree_depth=int(max_tree_depth),
        tree_depth_hit_rate=int(hits) / n_total,
        nonfinite_fraction=int(nonfinite) / n_total,
        mean_steps=float(np.mean(fields["num_steps"])),
        median_steps=float(np.median(fields["num_steps"])),
    )


def ebfmi_per_chain(energy: np.ndarray) -> np.ndarray:
    """E-BFMI per chain, Σ_{n≥1}(E_n − E_{n−1})² / Σ_n(E_n − Ē)² (Betancourt 2016).

    Parameters
    ----------
    energy : Float[(chains, samples)]  Hamiltonian energy of each transition

    Returns
    -------
    Float[(chains,)]
    """
    e = np.asarray(energy, dtype=np.float64)
    num = np.sum(np.square(np.diff(e, axis=1)), axis=1)
    den = np.sum(np.square(e - np.mean(e, axis=1, keepdims=True)), axis=1)
    return num / den


def apply_gates(diag: Diagnostics, gates: Gates, n_chains: int) -> GateResult:
    """Check ``diag`` against ``gates``; NaN never passes a gate.

    Parameters
    ----------
    diag : Diagnostics
    gates : Gates
    n_chains : int  chains of the shard; ESS gates compare ESS / n_chains with the minimum

    Returns
    -------
    GateResult  ``passed`` is True when ``failures`` is empty (warnings do not fail a shard)
    """
    fail: list[str] = []
    warn: list[str] = []
    for name, r, eb, et in zip(diag.names, diag.rhat, diag.ess_bulk, diag.ess_tail, strict=True):
        if not r <= gates.max_rhat:
            fail.append(f"max_rhat: {name} R-hat = {r!r} > {gates.max_rhat!r}")
        if not eb / n_chains >= gates.min_ess_bulk_per_chain:
            fail.append(
                f"min_ess_bulk_per_chain: {name} bulk ESS / chain = {eb / n_chains!r}"
                f" < {gates.min_ess_bulk_per_chain!r}"
            )
        if not et / n_chains >= gates.min_ess_tail_per_chain:
            fail.append(
                f"min_ess_tail_per_chain: {name} tail ESS / chain = {et / n_chains!r}"
                f" < {gates.min_ess_tail_per_chain!r}"
            )
    if not diag.divergence_rate <= gates.max_divergence_rate:
        fail.append(
            f"max_divergence_rate: divergence rate = {diag.divergence_rate!r}"
            f" > {gates.max_divergence_rate!r} ({diag.n_divergent} divergent)"
        )
    for c, b in enumerate(diag.ebfmi):
        if not b >= gates.min_bfmi:
            fail.append(f"min_bfmi: chain {c} E-BFMI = {b!r} < {gates.min_bfmi!r}")
    if not diag.nonfinite_fraction <= gates.max_nonfinite_fraction:
        fail.append(
            f"max_nonfinite_fraction: non-finite draw fraction = {diag.nonfinite_fraction!r}"
            f" > {gates.max_nonfinite_fraction!r}"
        )
    if not diag.tree_depth_hit_rate <= gates.max_tree_depth_rate:
        warn.append(
            f"max_tree_depth_rate: tree-depth hit rate = {diag.tree_depth_hit_rate!r}"
            f" > {gates.max_tree_depth_rate!r} (max_tree_depth {diag.max_tree_depth})"
        )
    for c, a in enumerate(diag.accept_prob):
        if not a >= gates.min_accept_prob:
            warn.append(
                f"min_accept_prob: chain {c} mean acceptance = {a!r} < {gates.min_accept_prob!r}"
            )
    return GateResult(passed=not fail, failures=fail, warnings=warn)


def _as_array(
    draws: Mapping[str, np.ndarray] | np.ndarray, names: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    """(chains, samples, P) float64 array and the parameter names."""
    if isinstance(draws, Mapping):
        if names is not None:
            raise ValueError("names are taken from the draws dict; do not pass both")
        names = list(draws)
        arrays = [np.asarray(draws[k], dtype=np.float64) for k in names]
        for k, a in zip(names, arrays, strict=True):
            if a.ndim != 2:
                raise ValueError(f"draws[{k!r}] has shape {a.shape}, expected (chains, samples)")
        if not arrays:
            raise ValueError("no parameters in draws")
        return np.stack(arrays, axis=-1), names
    x = np.asarray(draws, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"draws have shape {x.shape}, expected (chains, samples, P)")
    names = [f"theta[{p}]" for p in range(x.shape[2])] if names is None else list(names)
    if len(names) != x.shape[2]:
        raise ValueError(f"{len(names)} names for {x.shape[2]} parameters")
    return x, names


def _float_list(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a, dtype=np.float64).ravel()]


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, list | tuple):
        return [_finite_or_none(u) for u in v]
    return v


def convergence(draws: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Rank-normalised split R-hat and bulk/tail ESS per parameter of (chains, samples, P) draws
    (used for the combined draws; reported, not gated)."""
    x, names = _as_array(np.asarray(draws, dtype=np.float64), names)
    with np.errstate(divide="ignore", invalid="ignore"):
        rhat = arviz_stats.rhat(x, method="rank", chain_axis=0, draw_axis=1)
        bulk = arviz_stats.ess(x, method="bulk", chain_axis=0, draw_axis=1)
        tail = arviz_stats.ess(x, method="tail", prob=TAIL_PROB, chain_axis=0, draw_axis=1)
    return {
        name: {
            "rhat": _finite_or_none(float(rhat[p])),
            "ess_bulk": _finite_or_none(float(bulk[p])),
            "ess_tail": _finite_or_none(float(tail[p])),
        }
        for p, name in enumerate(names)
    }
