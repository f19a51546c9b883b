"""Frozen records passed between stages, with JSON-ready views (floats never rounded)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


class WarmStartFlag(Enum):
    """Status flags of the NLSQ warm start; several may combine."""

    converged = ("converged", True)
    at_bounds = ("a free parameter lies within 1e-6·(hi−lo) of a bound", True)
    bound_active = (
        "a quantity the data identify (σ_k ≤ its prior sd) lies at a bound: the best fit is "
        "outside the box",
        False,
    )
    max_nfev = ("evaluation budget exhausted with finite results below the start cost", True)
    singular = ("JᵀJ is rank-deficient; some parameters are unidentified", True)
    scaling_unidentified = ("a slot shows no dynamics; its contrast is held", True)
    chi2_out_of_range = (
        "with σ known, χ²_red lies outside 1 ± 5/√dof: a wrong basin, σ or model",
        False,
    )
    no_progress = ("the solver did not move from the start", False)
    nonfinite = ("NaN or Inf in the parameters, cost or residuals", False)
    error = ("the solver raised", False)

    def __init__(self, message: str, usable: bool) -> None:
        self.message = message
        self.usable = usable


@dataclass(frozen=True)
class StartRecord:
    """One multi-start: its start vector (free physics), final cost and flags."""

    start: np.ndarray
    theta: np.ndarray
    cost: float
    flags: tuple[str, ...]


@dataclass(frozen=True)
class NLSQResult:
    """The joint warm start.

    ``theta_names``/``theta`` list every free quantity (varying physics in canonical order, then
    free contrast_a, then free offset_a); ``cov`` is their covariance s²(JᵀJ)⁺ and ``sigma_k`` its
    root diagonal. ``params`` is the full 14-vector, ``contrast``/``offset`` per slot.
    ``cost`` is the solver's ½Σr² of the final pass; ``chi2_red`` is set only when σ is known.
    """

    flags: tuple[WarmStartFlag, ...]
    message: str
    theta_names: tuple[str, ...]
    theta: np.ndarray
    cov: np.ndarray
    sigma_k: np.ndarray
    params: np.ndarray
    contrast: np.ndarray
    offset: np.ndarray
    sigma_hat: np.ndarray
    sigma_known: bool
    chi2_red: float | None
    chi2_red_reason: str | None
    cost: float
    start_cost: float
    ssr_weighted: float
    dof: int
    residual_rms: np.ndarray
    condition_number: float
    unidentified: tuple[str, ...]
    nfev: int | None
    njev: int | None
    nit: int | None
    solver_status: int | None
    wall_s: float
    scaling_mode: str
    starts: tuple[StartRecord, ...] = ()
    passes: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return all(f.usable for f in self.flags)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; floats are full precision, non-finite values become null."""
        return {
            "usable": self.usable,
            "flags": [f.name for f in self.flags],
            "flag_messages": {f.name: f.message for f in self.flags},
            "message": self.message,
            "scaling_mode": self.scaling_mode,
            "theta_names": list(self.theta_names),
            "theta": _floats(self.theta),
            "sigma_k": _floats(self.sigma_k),
            "cov": _floats(self.cov),
            "params": _floats(self.params),
            "contrast": _floats(self.contrast),
            "offset": _floats(self.offset),
            "sigma_hat": _floats(self.sigma_hat),
            "sigma_known": self.sigma_known,
            "chi2_red": _float(self.chi2_red),
            "chi2_red_reason": self.chi2_red_reason,
            "cost": _float(self.cost),
            "start_cost": _float(self.start_cost),
            "ssr_weighted": _float(self.ssr_weighted),
            "dof": self.dof,
            "residual_rms": _floats(self.residual_rms),
            "condition_number": _float(self.condition_number),
            "unidentified": list(self.unidentified),
            "nfev": self.nfev,
            "njev": self.njev,
            "nit": self.nit,
            "solver_status": self.solver_status,
            "wall_s": self.wall_s,
            "passes": self.passes,
            "starts": [
                {
                    "start": _floats(s.start),
                    "theta": _floats(s.theta),
                    "cost": _float(s.cost),
                    "flags": list(s.flags),
                }
                for s in self.starts
            ],
            **self.extra,
        }


def _float(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _floats(a: np.ndarray) -> Any:
    """Nested lists of Python floats (repr round-trips exactly), NaN/Inf → None."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        return _float(arr.item())
    return [_floats(x) for x in arr]
