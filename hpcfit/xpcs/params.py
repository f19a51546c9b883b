"""The 14 heterodyne physics parameters: names, units, defaults, bounds and priors.

Canonical order, units and default priors follow the heterodyne parameter registry with the
units corrected (J is a rate of positional variance, Å²/s).
Pure Python and NumPy: no JAX, no configuration framework.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from hpcfit.errors import AdviceWarning


@dataclass(frozen=True)
class ParamInfo:
    """One physics parameter of the registry (default prior: truncated normal on the bounds)."""

    name: str
    unit: str
    default: float
    lo: float
    hi: float
    prior_mean: float
    prior_sd: float


REGISTRY: tuple[ParamInfo, ...] = (
    ParamInfo("D0_ref", "Å²/s^(1+α)", 1e4, 100.0, 1e6, 1e4, 5e3),
    ParamInfo("alpha_ref", "1", 0.0, -2.0, 2.0, 0.0, 1.0),
    ParamInfo("D_offset_ref", "Å²/s", 0.0, -1e5, 1e5, 0.0, 1e3),
    ParamInfo("D0_sample", "Å²/s^(1+α)", 1e4, 100.0, 1e6, 1e4, 5e3),
    ParamInfo("alpha_sample", "1", 0.0, -2.0, 2.0, 0.0, 1.0),
    ParamInfo("D_offset_sample", "Å²/s", 0.0, -1e5, 1e5, 0.0, 1e3),
    ParamInfo("v0", "Å/s^(1+β)", 1e3, 1e-6, 1e4, 1e3, 500.0),
    ParamInfo("beta", "1", 0.0, -2.0, 2.0, 0.0, 1.0),
    ParamInfo("v_offset", "Å/s", 0.0, -100.0, 100.0, 0.0, 25.0),
    ParamInfo("f0", "1", 0.5, 0.0, 1.0, 0.5, 0.25),
    ParamInfo("f1", "1/s", 0.0, -10.0, 10.0, 0.0, 5.0),
    ParamInfo("f2", "s", 0.0, -1e4, 1e4, 0.0, 1e3),
    ParamInfo("f3", "1", 0.0, 0.0, 1.0, 0.0, 0.5),
    ParamInfo("phi0", "deg", 0.0, -10.0, 10.0, 0.0, 5.0),
)
"""The physics parameters in canonical order."""

CONTRAST = ParamInfo("contrast", "1", 0.5, 0.0, 1.0, 0.5, 0.25)
"""Per-slot contrast (multiplies the normalised bracket)."""

OFFSET = ParamInfo("offset", "1", 1.0, 0.5, 1.5, 1.0, 0.25)
"""Per-slot baseline."""

NAMES: tuple[str, ...] = tuple(p.name for p in REGISTRY)
N_PHYS = len(REGISTRY)
INDEX: dict[str, int] = {name: k for k, name in enumerate(NAMES)}


@dataclass(frozen=True)
class ParamSpace:
    """The effective parameter set of one fit: start values, bounds, priors and which vary.

    Arrays are float64 of length 14 in canonical order; ``vary`` is boolean.
    ``scaling_*`` hold the per-slot contrast and offset specification (one value for all slots).
    """

    start: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    prior_mean: np.ndarray
    prior_sd: np.ndarray
    vary: np.ndarray
    contrast: ParamInfo = CONTRAST
    offset: ParamInfo = OFFSET
    vary_contrast: bool = True
    vary_offset: bool = True

    @property
    def free_names(self) -> tuple[str, ...]:
        return tuple(n for n, v in zip(NAMES, self.vary, strict=True) if v)

    @property
    def free_index(self) -> np.ndarray:
        return np.flatnonzero(self.vary)

    def n_free(self, n_phi: int) -> int:
        """Free quantities of a fit over ``n_phi`` slots: physics, then contrast_a, offset_a."""
        return int(self.free_index.size) + n_phi * (int(self.vary_contrast) + int(self.vary_offset))

    def full(self, free_values: np.ndarray) -> np.ndarray:
        """Insert free physics values into the start vector (fixed ones keep their value)."""
        out = self.start.copy()
        out[self.free_index] = free_values
        return out


def default_space() -> ParamSpace:
    """The registry defaults with every physics parameter free except f2."""
    return make_space(fixed=("f2",))


def make_space(
    *,
    start: dict[str, float] | None = None,
    fixed: tuple[str, ...] | list[str] = ("f2",),
    bounds: dict[str, tuple[float, float]] | None = None,
    priors: dict[str, tuple[float, float]] | None = None,
    contrast: ParamInfo = CONTRAST,
    offset: ParamInfo = OFFSET,
    vary_contrast: bool = True,
    vary_offset: bool = True,
) -> ParamSpace:
    """Build a validated :class:`ParamSpace` from overrides of the registry.

    Raises ``ValueError`` naming the parameter when a name is unknown, lo ≥ hi, or a start value
    lies outside its bounds; warns when a free parameter's prior mean lies more than 5 sd
    outside its bounds. The prior is always truncated to the effective (overridden) bounds.
    """
    start = dict(start or {})
    bounds = dict(bounds or {})
    priors = dict(priors or {})
    for label, mapping in (("start", start), ("bounds", bounds), ("priors", priors)):
        for name in mapping:
            if name not in INDEX:
                raise ValueError(
                    f"{label}.{name}: unknown parameter; expected one of {list(NAMES)}"
                )
    for name in fixed:
        if name not in INDEX:
            raise ValueError(f"fixed: unknown parameter {name!r}; expected one of {list(NAMES)}")
    s = np.array([start.get(p.name, p.default) for p in REGISTRY], dtype=np.float64)
    lo = np.array([bounds.get(p.name, (p.lo, p.hi))[0] for p in REGISTRY], dtype=np.float64)
    hi = np.array([bounds.get(p.name, (p.lo, p.hi))[1] for p in REGISTRY], dtype=np.float64)
    pm = np.array([priors.get(p.name, (p.prior_mean, p.prior_sd))[0] for p in REGISTRY])
    ps = np.array([priors.get(p.name, (p.prior_mean, p.prior_sd))[1] for p in REGISTRY])
    vary = np.array([p.name not in fixed for p in REGISTRY])
    for k, name in enumerate(NAMES):
        _check_one(name, s[k], lo[k], hi[k], ps[k])
        if vary[k] and not (lo[k] - 5 * ps[k] <= pm[k] <= hi[k] + 5 * ps[k]):
            warnings.warn(
                f"priors.{name}: prior mean {pm[k]} lies more than 5 sd ({ps[k]}) outside the "
                f"effective bounds [{lo[k]}, {hi[k]}]; the truncated prior is numerically poor",
                AdviceWarning,
                stacklevel=2,
            )
    _check_one("contrast", contrast.default, contrast.lo, contrast.hi, contrast.prior_sd)
    _check_one("offset", offset.default, offset.lo, offset.hi, offset.prior_sd)
    return ParamSpace(
        start=s,
        lo=lo,
        hi=hi,
        prior_mean=pm.astype(np.float64),
        prior_sd=ps.astype(np.float64),
        vary=vary,
        contrast=contrast,
        offset=offset,
        vary_contrast=vary_contrast,
        vary_offset=vary_offset,
    )


def _check_one(name: str, start: float, lo: float, hi: float, sd: float) -> None:
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"bounds.{name}: expected finite lo < hi, got [{lo}, {hi}]")
    if not (np.isfinite(start) and lo <= start <= hi):
        raise ValueError(f"start.{name}: value {start} lies outside its bounds [{lo}, {hi}]")
    if not (np.isfinite(sd) and sd > 0):
        raise ValueError(f"priors.{name}: expected a prior sd > 0, got {sd}")
