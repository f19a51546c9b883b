"""Settings of the NLSQ warm start: plain frozen dataclasses and enums.

They are the ``nlsq`` section of the job's configuration schema (:mod:`hpcfit.config` registers
them with Hydra) and the argument of the warm-start numerics (:mod:`hpcfit.xpcs.nlsq`,
:mod:`hpcfit.xpcs.coarse`), which therefore import neither Hydra nor the schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Scaling(Enum):
    profile = "profile"  # variable projection of contrast/offset per slot
    fit = "fit"  # contrast/offset as ordinary unknowns


class Loss(Enum):
    linear = "linear"
    soft_l1 = "soft_l1"


class XScale(Enum):
    prior_sd = "prior_sd"
    jac = "jac"


@dataclass(frozen=True)
class CoarseConfig:
    """Coarse stage of the warm start on long maps (``hpcfit.xpcs.coarse``)."""

    frames: int = 128  # frames kept (every k-th); maps shorter than 2× this skip the stage; 0: off
    starts: int = 8  # configured start, its label swap, then Latin-hypercube starts
    max_nfev: int = 200  # per coarse start: one that needs more is not the winner
    chunked_above: int = 250_000  # fine stages on more points use the chunked solver
    fine_steps: int = 100  # step budget of the chunked fine stage (a pass over all points each)


@dataclass(frozen=True)
class MultistartConfig:
    n: int = 0  # 0 = off; otherwise the configured start plus n − 1 Latin-hypercube starts
    seed: int = 0


@dataclass(frozen=True)
class NlsqConfig:
    """Joint multi-angle warm start with ``nlsq.curve_fit``."""

    enabled: bool = True
    scaling: Scaling = Scaling.profile
    loss: Loss = Loss.linear
    f_scale: float = 1.0
    x_scale: XScale = XScale.prior_sd
    ftol: float = 1e-8
    xtol: float = 1e-8
    gtol: float = 1e-8
    max_nfev: int = 2000
    sigma: list[float] | None = None  # known noise level per slot (one value: all slots)
    multistart: MultistartConfig = field(default_factory=MultistartConfig)
    coarse: CoarseConfig = field(default_factory=CoarseConfig)
    jac_chunk_bytes: int = 32 * 2**20  # Jacobian block of the chunked passes (peak memory)
