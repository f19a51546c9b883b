"""Coarse-to-fine warm start for long two-time maps.

A map of N frames has N(N − 1)/2 pooled points per angle (0.5 M at N = 1000), so one NLSQ
evaluation costs seconds and a multistart on all points is unaffordable. The least-squares
landscape also has a label-swapped local minimum (the reference and sample components exchanged)
that a single start can fall into. So:

1. **Coarse stage.** Every k-th frame with k = ceil(N / ``coarse_frames``): the c2 values there
   are the file's own (no averaging), on a grid of step k·dt that keeps each frame's absolute
   time, so the model is unchanged. A multistart is cheap: the configured start, its label swap
   (:func:`swapped_start`), and Latin-hypercube starts (``nlsq.multistart``).
   Each coarse start has a budget of ``coarse.max_nfev`` evaluations: a start that needs more
   is far from any good basin, and the fine stage refines the winner with the full budget.
2. **Fine stage.** A fit on all points from the coarse optimum of lowest cost. Up to
   ``coarse.chunked_above`` points it is ``nlsq.curve_fit`` (trust-region reflective, holding
   the whole Jacobian). Above, it is Levenberg–Marquardt with the normal equations accumulated
   in chunks (:mod:`hpcfit.xpcs.refine`): the peak memory is the data plus one chunk, not all
   points × all quantities. Long maps pin the parameters well, and from the coarse optimum it
   converges in a few steps (2 at 1000 and 2000 frames of the embedded truth); on a weakly
   determined short map it would crawl along the valley, which is why short maps keep
   ``nlsq``. With σ unknown, the chunked stage weights the slots by the coarse stage's σ̂ (a
   consistent estimate from the same noise).

Maps of fewer than 2·``coarse_frames`` frames skip the coarse stage (one fit, as before).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np

from hpcfit.records import NLSQResult
from hpcfit.xpcs.dataset import XpcsData
from hpcfit.xpcs.params import INDEX, ParamSpace
from hpcfit.xpcs.settings import NlsqConfig

log = logging.getLogger("hpcfit")

_REF = ("D0_ref", "alpha_ref", "D_offset_ref")
_SMP = ("D0_sample", "alpha_sample", "D_offset_sample")


def coarse_stride(n_frames: int, coarse_frames: int) -> int:
    """k for the coarse stage: 1 (no coarse stage) unless N ≥ 2·coarse_frames."""
    if coarse_frames <= 0 or n_frames < 2 * coarse_frames:
        return 1
    return math.ceil(n_frames / coarse_frames)


def strided(data: XpcsData, k: int) -> XpcsData:
    """Every k-th frame of ``data`` (exact values; grid step k·frame_stride·dt)."""
    mask = None if data.frame_mask is None else np.ascontiguousarray(data.frame_mask[:, ::k])
    return XpcsData(
        c2=np.ascontiguousarray(data.c2[:, ::k, ::k]),
        q=data.q,
        phi=data.phi,
        dt=data.dt,
        start_frame=data.start_frame,
        sigma=data.sigma,
        t_file=None if data.t_file is None else data.t_file[::k],
        provenance={"source": "coarse", "stride": k},
        frame_stride=data.frame_stride * k,
        frame_mask=mask,
    )


def swapped_start(space: ParamSpace, t: np.ndarray) -> np.ndarray:
    """The configured start with the reference and sample components exchanged.

    The transport parameters of the two components swap; the sample fraction f_s(t) becomes the
    best fit of f0·e^{f1(t − f2)} + f3 to 1 − f_s(t) on the grid (the exact complement is not
    always of that form). Fixed parameters keep their values; everything stays inside the bounds.
    """
    from scipy.optimize import least_squares

    p = space.start.copy()
    vary = space.vary
    for a, b in zip(_REF, _SMP, strict=True):
        ia, ib = INDEX[a], INDEX[b]
        if vary[ia] and vary[ib]:
            p[ia], p[ib] = space.start[ib], space.start[ia]
    f0, f1, f2, f3 = (INDEX[n] for n in ("f0", "f1", "f2", "f3"))

    def fs(v: np.ndarray) -> np.ndarray:
        rate = np.clip(v[f1] * (t - v[f2]), -100.0, 100.0)
        return np.clip(v[f0] * np.exp(rate) + v[f3], 0.0, 1.0)

    target = 1.0 - fs(space.start)
    free = [i for i in (f0, f1, f3) if vary[i]]
    if free:
        lo, hi = space.lo[free], space.hi[free]
        x0 = np.clip(p[free], lo, hi)

        def resid(x: np.ndarray) -> np.ndarray:
            v = p.copy()
            v[free] = x
            return fs(v) - target

        p[free] = least_squares(resid, x0, bounds=(lo, hi)).x
    return np.clip(p, space.lo, space.hi)


def fit_warm_start(data: XpcsData, space: ParamSpace, cfg: NlsqConfig) -> NLSQResult:
    """The warm start: coarse-to-fine for long maps, else one fit (see the module docstring)."""
    from hpcfit.xpcs.nlsq import fit

    k = coarse_stride(data.n_frames, cfg.coarse.frames)
    if k == 1:
        return fit(data, space, cfg, stage="")
    wall0 = time.perf_counter()
    coarse = strided(data, k)
    starts = [space.start[space.free_index], swapped_start(space, coarse.t)[space.free_index]]
    n_lhs = max(cfg.coarse.starts - len(starts), 0)
    coarse_cfg = dataclasses.replace(
        cfg,
        multistart=dataclasses.replace(cfg.multistart, n=n_lhs + 1),
        max_nfev=min(cfg.max_nfev, cfg.coarse.max_nfev),
    )
    log.info(
        "NLSQ coarse stage: every %d-th frame (%d of %d), %d points, %d starts",
        k,
        coarse.n_frames,
        data.n_frames,
        coarse.n_points,
        len(starts) + n_lhs,
    )
    first = fit(coarse, space, coarse_cfg, stage="coarse", extra_starts=starts[1:])
    log.info(
        "NLSQ fine stage: all %d points from the best coarse start (cost %.6g)",
        data.n_points,
        first.cost,
    )
    if data.n_points > cfg.coarse.chunked_above:
        fine = fine_stage(data, space, cfg, first)
    else:
        best = dataclasses.replace(space, start=first.params.copy())
        one_start = dataclasses.replace(cfg, multistart=dataclasses.replace(cfg.multistart, n=0))
        fine = fit(data, best, one_start, stage="fine")
    extra = {
        **fine.extra,
        "coarse": {
            "stride": k,
            "n_frames": coarse.n_frames,
            "n_points": coarse.n_points,
            "cost": first.cost,
            "chi2_red": first.chi2_red,
            "flags": [f.name for f in first.flags],
            "wall_s": first.wall_s,
        },
    }
    return dataclasses.replace(
        fine, starts=first.starts, extra=extra, wall_s=time.perf_counter() - wall0
    )


def fine_stage(
    data: XpcsData, space: ParamSpace, cfg: NlsqConfig, coarse: NLSQResult
) -> NLSQResult:
    """Refine the coarse optimum on all points of ``data`` (chunked; see the module docstring)."""
    from hpcfit.xpcs.nlsq import Evaluation, Pass, known_sigma, result
    from hpcfit.xpcs.problem import Problem
    from hpcfit.xpcs.refine import refine

    wall0 = time.perf_counter()
    problem = Problem.from_data(data, space)
    sigma = known_sigma(data, cfg)
    used = sigma
    if used is None:
        s = np.asarray(coarse.sigma_hat, dtype=np.float64)
        used = s if np.all(np.isfinite(s) & (s > 0)) else np.ones(problem.n_phi)
    weights = 1.0 / used
    out = refine(
        problem,
        coarse.theta,
        weights,
        chunk_bytes=cfg.jac_chunk_bytes,
        max_steps=cfg.coarse.fine_steps,
    )
    end = Evaluation(out.theta, out.residuals, out.jtj, out.cost)
    final = Pass(
        x0=out.start_theta,
        x=out.theta,
        cost=out.cost,
        start_cost=out.start_cost,
        success=out.converged,
        status=1 if out.converged else 0,
        message=out.message,
        nfev=out.n_costs + out.n_jacobians,
        njev=out.n_jacobians,
        nit=out.n_steps,
        raised=False,
        end=end,
    )
    return result(problem, final, end, weights, sigma, coarse.starts, 1, cfg, wall0)
