"""Round statistics: pure functions of a round's gathered records.

Records are fixed-shape arrays in replica order, [N replicas × T scans]: ``chain`` (c(r) before
the swap), ``e1`` (E_1 after exploration), ``v`` (log U), ``site_sum``, and the per-batch site
accumulators ``acc`` (N, B, n_sites). Scan j of the round has global counter t0 + j; pair i is
attempted at scans with t ≡ i (mod 2). Everything here is NumPy on one rank in a fixed order,
so results do not depend on how replicas were spread over ranks.

References: Syed, Bouchard-Côté, Deligiannidis, Doucet, JRSS-B 84 (2022) (rejection rates,
barrier, τ̄ = 1/(2 + 2Λ)); Pigeons.jl (round-trip recorder, stepping stone); Vehtari et al.,
Bayesian Analysis 16 (2021) (bulk ESS).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.special import logsumexp

from hpcfit.nrpt.schedule import barrier_curve

SE_BATCHES = 32


def energies_by_chain(chain: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[N chains × T] view of a per-replica record: row c is the replica at chain c."""
    at_chain = np.argsort(chain, axis=0, kind="stable")
    return np.take_along_axis(values, at_chain, axis=0)


def pair_attempts(n_chains: int, t0: int, n_scans: int) -> np.ndarray:
    """Bool[(N−1, T)]: pair i is attempted at scan j iff (t0 + j) ≡ i (mod 2)."""
    t = t0 + np.arange(n_scans)
    i = np.arange(n_chains - 1)
    return (t[None, :] % 2) == (i[:, None] % 2)


def log_ratios(e_chain: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """Float64[(N−1, T)] Δ_i(t) = (β_i − β_{i+1})·(E_1 at chain i − E_1 at chain i+1)."""
    db = (betas[:-1] - betas[1:])[:, None]
    return db * (e_chain[:-1] - e_chain[1:])


def rejection_rates(
    e_chain: np.ndarray, betas: np.ndarray, t0: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rao–Blackwellised rejection r_i = 1 − mean exp(min(0, Δ_i)) over pair i's attempts.

    Returns (r Float64[(N−1,)], number of attempts Int64[(N−1,)]); r_i = 0.5 without attempts.
    """
    n, t = e_chain.shape
    mask = pair_attempts(n, t0, t)
    accept = np.exp(np.minimum(0.0, log_ratios(e_chain, betas)))
    counts = mask.sum(axis=1)
    sums = np.where(mask, accept, 0.0).sum(axis=1)
    safe = np.maximum(counts, 1)
    r = np.where(counts > 0, 1.0 - sums / safe, 0.5)
    return r, counts.astype(np.int64)


def round_trips(chain: np.ndarray, n_chains: int) -> tuple[np.ndarray, np.ndarray]:
    """Pigeons' 3-state recorder, all replicas starting in state 0 at the round's start.

    Per scan (before the swap), with is_ref = (c = 0 and N > 1), is_tgt = (c = N−1):
    0 → 1 on is_ref; 1 → 2 on is_tgt (a tempered restart); 2 → 1 on is_ref (a round trip).

    Returns (round trips, restarts), each Int64[(N replicas,)].
    """
    n_rep, n_scans = chain.shape
    state = np.zeros(n_rep, dtype=np.int8)
    trips = np.zeros(n_rep, dtype=np.int64)
    restarts = np.zeros(n_rep, dtype=np.int64)
    for j in range(n_scans):
        c = chain[:, j]
        is_ref = (c == 0) & (n_chains > 1)
        is_tgt = c == n_chains - 1
        start = (state == 0) & is_ref
        restart = (state == 1) & is_tgt
        trip = (state == 2) & is_ref
        trips += trip
        restarts += restart
        state = np.where(start | trip, 1, np.where(restart, 2, state)).astype(np.int8)
    return trips, restarts


def tau_predicted(barrier: float) -> float:
    """τ̄ = 1/(2 + 2Λ), the round-trip rate of the idealised NRPT (Syed et al. 2022, Thm 3)."""
    return 1.0 / (2.0 + 2.0 * barrier)


def recommended_chains(barrier: float, target_acceptance: float = 0.5) -> int:
    """N_rec = ⌈Λ̂/(1 − a*)⌉ + 1, a* the target swap acceptance (½: ⌈2Λ̂⌉ + 1; reported only)."""
    return int(math.ceil(barrier / (1.0 - target_acceptance))) + 1


def stepping_stone(
    e_chain: np.ndarray, betas: np.ndarray, t0: int, log_z0: float
) -> tuple[float, float, float]:
    """Stepping-stone log Ẑ_1 over each pair's attempts (Pigeons' ``stepping_stone``).

    ℓᶠ_i = −(β_{i+1} − β_i)·E_1(x_lo), ℓᵇ_i = −(β_i − β_{i+1})·E_1(x_hi);
    F = Σ_i [logsumexp ℓᶠ_i − log n_i], B = −Σ_i [logsumexp ℓᵇ_i − log n_i];
    log Ẑ_1 = log Z_0 + (F + B)/2 (only one of F, B if the other is not finite).

    Returns (log Ẑ_1, F, B).
    """
    n, t = e_chain.shape
    mask = pair_attempts(n, t0, t)
    forward = backward = 0.0
    for i in range(n - 1):
        lo = e_chain[i][mask[i]]
        hi = e_chain[i + 1][mask[i]]
        if lo.size == 0:
            return math.nan, math.nan, math.nan
        log_n = math.log(lo.size)
        forward += float(logsumexp(-(betas[i + 1] - betas[i]) * lo)) - log_n
        backward -= float(logsumexp(-(betas[i] - betas[i + 1]) * hi)) - log_n
    finite = [x for x in (forward, backward) if math.isfinite(x)]
    mean = sum(finite) / len(finite) if finite else math.nan
    return log_z0 + mean, forward, backward


def batch_means_se(y: np.ndarray, n_batches: int = SE_BATCHES) -> float:
    """Standard error of the mean of a series from min(n_batches, T) equal batch means."""
    y = np.asarray(y, dtype=np.float64)
    nb = min(n_batches, y.shape[0])
    if nb < 2:
        return math.nan
    size = y.shape[0] // nb
    means = y[: nb * size].reshape(nb, size).mean(axis=1)
    return float(np.std(means, ddof=1) / math.sqrt(nb))


def ess_bulk(y: np.ndarray) -> float:
    """ArviZ bulk ESS of one chain (``arviz_stats.ess(method="bulk")``); NaN if undefined."""
    import arviz_stats

    y = np.asarray(y, dtype=np.float64)
    if y.shape[0] < 4 or not np.all(np.isfinite(y)) or np.ptp(y) == 0:
        return math.nan
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        out = arviz_stats.ess(y[None, :], method="bulk", chain_axis=0, draw_axis=1)
    return float(np.asarray(out))


def first_nonfinite(records: dict[str, np.ndarray], t0: int) -> dict[str, int] | None:
    """The first non-finite E_1 of a round: replica, chain and global scan; None if all finite."""
    bad = ~np.isfinite(records["e1"])
    if not bad.any():
        return None
    scans = np.flatnonzero(bad.any(axis=0))
    j = int(scans[0])
    r = int(np.flatnonzero(bad[:, j])[0])
    return {"replica": r, "chain": int(records["chain"][r, j]), "scan": t0 + j}


def round_summary(
    records: dict[str, np.ndarray], betas: np.ndarray, t0: int, target_acceptance: float = 0.5
) -> dict[str, Any]:
    """A round's rejection rates, Λ̂, round trips, restarts, τ_obs, τ̄ and efficiency."""
    chain = records["chain"]
    n, t = chain.shape
    e_chain = energies_by_chain(chain, records["e1"])
    rejection, attempts = rejection_rates(e_chain, betas, t0)
    barrier = float(rejection.sum())
    trips, restarts = round_trips(chain, n)
    tau_obs = float(trips.sum()) / t
    tau_bar = tau_predicted(barrier)
    return {
        "scans": int(t),
        "rejection": rejection,
        "attempts": attempts,
        "Lambda": barrier,
        "round_trips": int(trips.sum()),
        "restarts": int(restarts.sum()),
        "tau_observed": tau_obs,
        "tau_predicted": tau_bar,
        "efficiency": tau_obs / tau_bar,
        "n_chains_recommended": recommended_chains(barrier, target_acceptance),
    }


def production_estimates(
    records: dict[str, np.ndarray],
    betas: np.ndarray,
    t0: int,
    *,
    log_z0: float,
    beta_scale: float,
    n_free: int,
) -> dict[str, Any]:
    """Every round statistic from the production round (site arrays in internal order)."""
    chain = records["chain"]
    n, t = chain.shape
    e_chain = energies_by_chain(chain, records["e1"])
    s_chain = energies_by_chain(chain, records["site_sum"])
    rejection, _ = rejection_rates(e_chain, betas, t0)
    curve = barrier_curve(betas, rejection)
    local = curve.derivative()
    mid = 0.5 * (betas[:-1] + betas[1:])
    grid = np.linspace(0.0, 1.0, 101)
    log_z, forward, backward = stepping_stone(e_chain, betas, t0, log_z0)
    energy = e_chain[-1] / beta_scale if beta_scale != 0 else e_chain[-1].copy()
    mag = s_chain[-1] / n_free
    abs_mag = np.abs(mag)
    sq_mag = mag * mag
    acc = records["acc"]
    nb = min(SE_BATCHES, t)
    size = t // nb
    per_batch = acc.sum(axis=0)[:nb].astype(np.float64)  # (nb, n_sites): exact integer sums
    marginals = per_batch.sum(axis=0) / (nb * size)
    if per_batch.shape[1] and nb >= 2:
        marginals_se = np.std(per_batch / size, axis=0, ddof=1) / math.sqrt(nb)
    else:
        marginals_se = np.full(per_batch.shape[1], math.nan)
    return {
        "cumulative_barrier": curve(betas),
        "local_barrier_midpoints": mid,
        "local_barrier": local(mid),
        "local_barrier_grid": grid,
        "local_barrier_on_grid": local(grid),
        "log_Z": log_z,
        "log_Z_forward": forward,
        "log_Z_backward": backward,
        "mean_energy": float(energy.mean()),
        "mean_energy_se": batch_means_se(energy),
        "var_energy": float(energy.var(ddof=1)) if t > 1 else math.nan,
        "mean_magnetisation": float(mag.mean()),
        "mean_magnetisation_se": batch_means_se(mag),
        "mean_abs_magnetisation": float(abs_mag.mean()),
        "mean_abs_magnetisation_se": batch_means_se(abs_mag),
        "mean_sq_magnetisation": float(sq_mag.mean()),
        "mean_sq_magnetisation_se": batch_means_se(sq_mag),
        "marginals": marginals,
        "marginals_se": marginals_se,
        "ess_energy": ess_bulk(energy),
        "energy_series": energy,
        "abs_magnetisation_series": abs_mag,
    }
