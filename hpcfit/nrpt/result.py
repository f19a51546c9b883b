"""The record an NRPT run returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpcfit.status import EXIT_INTERNAL, EXIT_OK, EXIT_WORK_FAILED

STATUS_OK = "ok"
STATUS_NONFINITE = "non_finite_energy"
STATUS_ERROR = "internal_error"
EXIT_CODES = {STATUS_OK: EXIT_OK, STATUS_NONFINITE: EXIT_WORK_FAILED, STATUS_ERROR: EXIT_INTERNAL}


def _nan() -> float:
    return math.nan


def _empty() -> np.ndarray:
    return np.zeros(0)


@dataclass
class NrptResult:
    """Everything a run reports; estimates come from the last (production) round only.

    A failed run stops at the round boundary where the failure was seen, on every rank alike:
    ``"non_finite_energy"`` (exit code 3) names in ``failure`` the replica, chain, first global
    scan and round of the first non-finite E_1; ``"internal_error"`` (exit code 70) carries the
    exception that rank 0 met while closing a round (statistics, schedule, checkpoint write) in
    ``message``. The history holds the rounds before it and the estimates are NaN/empty.

    Units: energies in the model's energy units (H = E_1/β_t), magnetisations per spin, barrier
    Λ dimensionless, τ in round trips per scan.
    """

    status: str
    n_chains: int
    n_rounds: int
    n_expl: int
    seed: int
    ranks: int
    device: str
    failure: dict[str, int] | None = None
    message: str = ""
    betas: np.ndarray = field(default_factory=_empty)  # ladder of the production round
    rejection: np.ndarray = field(default_factory=_empty)  # r_i per pair
    Lambda: float = field(default_factory=_nan)  # global barrier Λ̂ = Σ r_i
    cumulative_barrier: np.ndarray = field(default_factory=_empty)  # Λ̂(β_k)
    local_barrier_midpoints: np.ndarray = field(default_factory=_empty)
    local_barrier: np.ndarray = field(default_factory=_empty)  # λ̂ at the pair midpoints
    local_barrier_grid: np.ndarray = field(default_factory=_empty)  # 101 points on [0, 1]
    local_barrier_on_grid: np.ndarray = field(default_factory=_empty)
    tau_observed: float = field(default_factory=_nan)  # round trips / scans, last round
    tau_predicted: float = field(default_factory=_nan)  # τ̄ = 1/(2 + 2Λ̂)
    efficiency: float = field(default_factory=_nan)  # τ_obs/τ̄
    round_trips: int = 0
    restarts: int = 0
    log_Z: float = field(default_factory=_nan)  # stepping stone, log Ẑ_1
    log_Z_forward: float = field(default_factory=_nan)  # F
    log_Z_backward: float = field(default_factory=_nan)  # B
    n_chains_recommended: int = 0
    mean_energy: float = field(default_factory=_nan)
    mean_energy_se: float = field(default_factory=_nan)
    var_energy: float = field(default_factory=_nan)
    mean_magnetisation: float = field(default_factory=_nan)
    mean_magnetisation_se: float = field(default_factory=_nan)
    mean_abs_magnetisation: float = field(default_factory=_nan)
    mean_abs_magnetisation_se: float = field(default_factory=_nan)
    mean_sq_magnetisation: float = field(default_factory=_nan)
    mean_sq_magnetisation_se: float = field(default_factory=_nan)
    marginals: np.ndarray = field(default_factory=_empty)  # ⟨s_i⟩ in the model's spin order
    marginals_se: np.ndarray = field(default_factory=_empty)
    ess_energy: float = field(default_factory=_nan)  # ArviZ bulk ESS of H, last round
    energy_series: np.ndarray = field(default_factory=_empty)  # H at the target chain
    abs_magnetisation_series: np.ndarray = field(default_factory=_empty)  # |M| at the target
    records: dict[str, np.ndarray] = field(default_factory=dict)  # last round, [N × T]
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per round
    scans: int = 0  # scans run in all rounds (2^{R+1} − 2 when complete)
    resumed_from: int = 0  # the round a checkpoint supplied (0: a fresh run)
    wall_s: float = field(default_factory=_nan)
    versions: dict[str, str | None] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 completed, 3 numerical failure, 70 internal error."""
        return EXIT_CODES[self.status]

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK
