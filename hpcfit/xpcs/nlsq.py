"""NLSQ warm start: one joint multi-angle fit with ``nlsq.curve_fit``.

Shared physics across all selected slots, per-slot contrast and offset (profiled by variable
projection, or fitted), residuals on the pooled strict upper triangle only. σ_a is used when
known; otherwise a first unweighted pass estimates it and a weighted second pass refines the fit.
The covariance is computed here (not the solver's): s²(JᵀJ)⁺ over *all* free quantities.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

import jax
import numpy as np

from hpcfit.records import NLSQResult, StartRecord, WarmStartFlag
from hpcfit.xpcs.covariance import CovarianceResult, covariance
from hpcfit.xpcs.dataset import XpcsData
from hpcfit.xpcs.params import ParamSpace
from hpcfit.xpcs.problem import Problem
from hpcfit.xpcs.settings import Loss, NlsqConfig, Scaling, XScale

log = logging.getLogger(__name__)

_START_MARGIN = 1e-9  # starts are clipped this fraction of (hi − lo) inside the bounds
_PIN_RTOL = 1e-6  # a free quantity this close to a bound (relative to hi − lo) is pinned


@dataclass(frozen=True)
class Evaluation:
    """The free quantities θ at a point, unweighted residuals (M,), JᵀJ and ½Σr² (weighted)."""

    theta: np.ndarray
    residuals: np.ndarray
    jtj: np.ndarray
    cost: float


@dataclass(frozen=True)
class Pass:
    """One solver run in the space of the problem's unknowns; ``end`` is evaluated at ``x``."""

    x0: np.ndarray
    x: np.ndarray
    cost: float
    start_cost: float
    success: bool
    status: int | None
    message: str
    nfev: int | None
    njev: int | None
    nit: int | None
    raised: bool
    end: Evaluation | None = None


def fit(
    data: XpcsData,
    space: ParamSpace,
    cfg: NlsqConfig,
    *,
    stage: str = "",
    extra_starts: list[np.ndarray] | tuple[np.ndarray, ...] = (),
) -> NLSQResult:
    """Run one NLSQ fit on ``data`` and return its record (never raises for solver failures).

    Starts: the configured one, then ``extra_starts`` (free physics vectors), then the
    Latin-hypercube starts of ``cfg.multistart``. Each start logs its cost (progress);
    ``stage`` names the coarse/fine stage in those lines. Use
    :func:`hpcfit.xpcs.coarse.fit_warm_start` for the warm start itself.
    """
    wall0 = time.perf_counter()
    problem = Problem.from_data(data, space)
    sigma_known = known_sigma(data, cfg)
    weights = 1.0 / sigma_known if sigma_known is not None else np.ones(problem.n_phi)
    fit_mode = cfg.scaling is Scaling.fit
    solver = _Solver(problem, cfg)

    starts = _starts(problem, cfg, extra_starts)
    first = []
    label = f"NLSQ {stage} " if stage else "NLSQ "
    for n, s in enumerate(starts, start=1):
        t0 = time.perf_counter()
        first.append(solver.run(problem.initial_unknowns(s, fit_mode), weights))
        log.info(
            "%sstart %d/%d: cost %.6g → %.6g (%d points, %.1f s)",
            label,
            n,
            len(starts),
            first[-1].start_cost,
            first[-1].cost,
            problem.size,
            time.perf_counter() - t0,
        )
    records = tuple(
        StartRecord(
            start=s,
            theta=p.x[: problem.n_phys],
            cost=p.cost,
            flags=tuple(f.name for f in _solver_flags(p)),
        )
        for s, p in zip(starts, first, strict=True)
    )
    best = _best(first)
    passes = 1
    final = best
    if sigma_known is None and problem.n_phi > 1 and best.end is not None:
        sigma_1 = problem.sigma_hat(problem.ssr_per_slot(best.end.residuals))
        if np.all(np.isfinite(sigma_1) & (sigma_1 > 0)):
            weights = 1.0 / sigma_1
            final = solver.run(best.x, weights)  # pass 2 starts at the pass-1 optimum
            # Judge progress from the original start, costed in the final weights.
            start_cost = solver.cost(best.x0, weights)
            final = replace(final, x0=best.x0, start_cost=start_cost)
            passes = 2

    end = final.end if final.end is not None else solver.evaluate(final.x, weights)
    return result(problem, final, end, weights, sigma_known, records, passes, cfg, wall0)


def result(
    problem: Problem,
    final: Pass,
    end: Evaluation,
    weights: np.ndarray,
    sigma_known: np.ndarray | None,
    starts: tuple[StartRecord, ...],
    passes: int,
    cfg: NlsqConfig,
    wall0: float,
) -> NLSQResult:
    """The record of a finished fit: covariance, σ̂, χ²_red and the flags, at ``end``."""
    theta, residuals, jtj = end.theta, end.residuals, end.jtj
    theta_names = problem.free_names()
    lo, hi = problem.unknown_bounds(fit_mode=True)
    ssr_slot = problem.ssr_per_slot(residuals)
    ssr_w = float(np.sum(ssr_slot * weights**2))
    dof = problem.size - theta.size
    cov_result = covariance(jtj, s2=ssr_w / dof)
    sigma_hat = problem.sigma_hat(ssr_slot)
    pinned = _pinned(theta, lo, hi)
    sigma_k = np.sqrt(np.clip(np.diag(cov_result.cov), 0.0, None))
    held = held_by_bound(pinned, sigma_k, problem.unknown_prior_sd(fit_mode=True), cov_result)
    sigma_k[pinned] = np.nan

    chi2_red: float | None = None
    reason: str | None = "σ estimated from residuals"
    if sigma_known is not None:
        chi2_red, reason = float(np.sum(ssr_slot / sigma_known**2) / dof), None

    flags = list(_solver_flags(final, residuals=residuals))
    if chi2_red is not None and not abs(chi2_red - 1.0) <= chi2_band(dof):
        flags.append(WarmStartFlag.chi2_out_of_range)
    if pinned.any():
        flags.append(WarmStartFlag.at_bounds)
    if held.any():
        flags.append(WarmStartFlag.bound_active)
    if cov_result.null_dims:
        flags.append(WarmStartFlag.singular)
    degenerate = problem.degenerate_slots(final.x)
    if degenerate.any():
        flags.append(WarmStartFlag.scaling_unidentified)
    if final.success and all(f.usable for f in flags) and not pinned.any():
        flags.insert(0, WarmStartFlag.converged)

    params, contrast, offset = problem.split_free(theta)
    return NLSQResult(
        flags=tuple(dict.fromkeys(flags)),
        message=final.message,
        theta_names=theta_names,
        theta=theta,
        cov=cov_result.cov,
        sigma_k=sigma_k,
        params=params,
        contrast=contrast,
        offset=offset,
        sigma_hat=sigma_hat,
        sigma_known=sigma_known is not None,
        chi2_red=chi2_red,
        chi2_red_reason=reason,
        cost=final.cost,
        start_cost=final.start_cost,
        ssr_weighted=ssr_w,
        dof=dof,
        residual_rms=np.sqrt(ssr_slot / problem.slot_counts),
        condition_number=cov_result.condition_number,
        unidentified=tuple(theta_names[k] for k in cov_result.unidentified),
        nfev=final.nfev,
        njev=final.njev,
        nit=final.nit,
        solver_status=final.status,
        wall_s=time.perf_counter() - wall0,
        scaling_mode=cfg.scaling.value,
        starts=starts,
        passes=passes,
        extra={
            "degenerate_slots": [int(k) for k in np.flatnonzero(degenerate)],
            "sigma_used": [float(x) for x in 1.0 / weights],
            "pinned": [theta_names[k] for k in np.flatnonzero(pinned)],
            "bound_active": [theta_names[k] for k in np.flatnonzero(held)],
            "n_points": problem.size,
            "slot_counts": [int(c) for c in problem.slot_counts],
        },
    )


def known_sigma(data: XpcsData, cfg: NlsqConfig) -> np.ndarray | None:
    """σ_a per slot from ``nlsq.sigma`` or the dataset, else None (estimated from residuals)."""
    if cfg.sigma:
        return np.broadcast_to(np.asarray(cfg.sigma, dtype=np.float64), (data.n_phi,)).copy()
    if data.sigma is not None:
        return np.asarray(data.sigma, dtype=np.float64)
    return None


def chi2_band(dof: int) -> float:
    """Half-width of the accepted χ²_red band 1 ± 5/√dof (five standard deviations of χ²_red
    for Gaussian noise of known σ: var χ²_red = 2/dof, so this is ≈ 3.5 sd; a wrong basin, a
    wrong σ or a wrong model lies far outside)."""
    return 5.0 / math.sqrt(max(dof, 1))


def _starts(
    problem: Problem, cfg: NlsqConfig, extra: list[np.ndarray] | tuple[np.ndarray, ...] = ()
) -> list[np.ndarray]:
    """Start 0 is the configured start, then ``extra``, then n−1 seeded Latin-hypercube starts
    over the box."""
    space = problem.space
    free = space.free_index
    lo, hi = space.lo[free], space.hi[free]
    margin = _START_MARGIN * (hi - lo)
    starts = [np.clip(space.start[free], lo + margin, hi - margin)]
    starts.extend(np.clip(np.asarray(x, np.float64), lo + margin, hi - margin) for x in extra)
    n_extra = max(cfg.multistart.n - 1, 0)
    if n_extra:
        rng = np.random.Generator(np.random.PCG64(cfg.multistart.seed))
        strata = np.stack([rng.permutation(n_extra) for _ in range(free.size)], axis=1)
        u = (strata + rng.uniform(size=strata.shape)) / n_extra
        log_scale = (lo > 0) & (hi / np.where(lo > 0, lo, 1.0) >= 100.0)
        linear = lo + u * (hi - lo)
        logarithmic = np.exp(
            np.log(np.where(log_scale, lo, 1.0)) + u * np.log(hi / np.where(log_scale, lo, hi))
        )
        points = np.where(log_scale, logarithmic, linear)
        starts.extend(np.clip(p, lo + margin, hi - margin) for p in points)
    return starts


class _Solver:
    """``nlsq.curve_fit`` on one problem with the ``CurveFit`` and model of its structure: every
    start, pass and equally shaped dataset reuses the compiled code (weights and values are
    xdata)."""

    def __init__(self, problem: Problem, cfg: NlsqConfig) -> None:
        fit_mode = cfg.scaling is Scaling.fit
        self.problem, self.cfg, self.fit_mode = problem, cfg, fit_mode
        self.curve = problem.kernels.curve_fit[fit_mode]
        self.model = problem.kernels.model[fit_mode]
        self.lo, self.hi = problem.unknown_bounds(fit_mode)
        self.x_scale = "jac" if cfg.x_scale is XScale.jac else problem.unknown_prior_sd(fit_mode)

    def evaluate(self, x: np.ndarray, weights: np.ndarray) -> Evaluation:
        """Residuals, JᵀJ and ½ Σ r² of the weighted residuals at the unknowns ``x``."""
        theta = self.problem.free_quantities(x, self.fit_mode)
        r, jtj = self.problem.evaluate(theta, weights, self.cfg.jac_chunk_bytes)
        rw = r * self.problem.point_weights(weights)
        return Evaluation(theta, r, jtj, 0.5 * float(np.sum(rw * rw)))

    def cost(self, x: np.ndarray, weights: np.ndarray) -> float:
        """½ Σ r² of the weighted residuals at the unknowns ``x``, without a Jacobian."""
        return self.problem.cost(x, weights, self.fit_mode)

    def run(self, x0: np.ndarray, weights: np.ndarray) -> Pass:
        cfg = self.cfg
        start_cost = self.cost(x0, weights)
        try:
            # nlsq broadcasts (M, P) against (P,) internally: allow that for its own code even
            # where callers (the strict test suite) make implicit rank promotion an error.
            with jax.numpy_rank_promotion("allow"):
                result = self.curve.curve_fit(
                    self.model,
                    self.problem.xdata(weights),
                    np.zeros(self.problem.size),
                    p0=x0,
                    bounds=(self.lo, self.hi),
                    method="trf",
                    loss=cfg.loss.value,
                    f_scale=cfg.f_scale if cfg.loss is Loss.soft_l1 else 1.0,
                    x_scale=self.x_scale,
                    ftol=cfg.ftol,
                    xtol=cfg.xtol,
                    gtol=cfg.gtol,
                    max_nfev=cfg.max_nfev,
                )
        except Exception as exc:  # a solver failure is a status, not a crash
            log.warning("nlsq.curve_fit raised %s: %s", type(exc).__name__, exc)
            message = f"{type(exc).__name__}: {exc}"
            return Pass(
                x0, x0.copy(), np.nan, start_cost, False, None, message, None, None, None, True
            )
        x = np.asarray(result.x if hasattr(result, "x") else result[0], dtype=np.float64)
        end = self.evaluate(x, weights) if np.all(np.isfinite(x)) else None
        return Pass(
            x0=x0,
            x=x,
            cost=self.cost(x, weights) if end is not None else np.nan,  # as start_cost
            start_cost=start_cost,
            success=bool(getattr(result, "success", False)),
            status=_int_or_none(getattr(result, "status", None)),
            message=str(getattr(result, "message", "")),
            nfev=_int_or_none(getattr(result, "nfev", None)),
            njev=_int_or_none(getattr(result, "njev", None)),
            nit=_int_or_none(getattr(result, "nit", None)),
            raised=False,
            end=end,
        )


def _int_or_none(x: object) -> int | None:
    try:
        return None if x is None else int(x)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _solver_flags(p: Pass, residuals: np.ndarray | None = None) -> list[WarmStartFlag]:
    """Flags that follow from one pass alone: error, nonfinite, no_progress, max_nfev."""
    if p.raised:
        return [WarmStartFlag.error]
    flags = []
    finite = np.all(np.isfinite(p.x)) and np.isfinite(p.cost)
    if residuals is not None:
        finite = finite and bool(np.all(np.isfinite(residuals)))
    if not finite:
        flags.append(WarmStartFlag.nonfinite)
    scale = np.maximum(np.abs(p.x0), np.finfo(np.float64).tiny)
    if np.all(np.abs(p.x - p.x0) <= 1e-12 * scale) and p.cost >= p.start_cost:
        flags.append(WarmStartFlag.no_progress)
    if p.status == 0:
        flags.append(WarmStartFlag.max_nfev)
        if not (finite and p.cost < p.start_cost) and WarmStartFlag.no_progress not in flags:
            flags.append(WarmStartFlag.no_progress)
    return flags


def _best(passes: list[Pass]) -> Pass:
    """The usable pass with the lowest cost (the first pass if none is usable)."""
    usable = [p for p in passes if all(f.usable for f in _solver_flags(p))]
    return min(usable, key=lambda p: p.cost) if usable else passes[0]


def held_by_bound(
    pinned: np.ndarray, spread: np.ndarray, prior_sd: np.ndarray, cov: CovarianceResult
) -> np.ndarray:
    """The pinned quantities the data identify: the bound, not the data, decides their value.

    A pinned quantity is *identified* when its spread √(s²(JᵀJ)⁺)_kk at the bound is finite,
    positive and no wider than its prior sd, and it loads on no null direction of JᵀJ. Then the
    fit wants to cross the bound (a wrong basin, a wrong bound, or a model that does not fit),
    and a posterior built around it would pile against the bound: the warm start is not usable.
    A pinned quantity the data do not identify (a short map, an unseen component) is left to its
    prior by the sampler and named by the run, so it does not stop the job.
    """
    identified = np.isfinite(spread) & (spread > 0.0) & (spread <= prior_sd)
    identified[list(cov.unidentified)] = False
    return pinned & identified


def _pinned(theta: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    tol = _PIN_RTOL * (hi - lo)
    return (theta - lo <= tol) | (hi - theta <= tol)
