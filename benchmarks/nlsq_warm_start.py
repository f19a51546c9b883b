"""NLSQ warm start on the embedded dataset: hpcfit vs scipy least_squares vs heterodyne.

    python benchmarks/nlsq_warm_start.py            # 1 cold + 3 repeat rounds
    python benchmarks/nlsq_warm_start.py --no-peer

Each round runs, in turn:

* **hpcfit** ``hpcfit.xpcs.nlsq.fit(data, space, NlsqConfig())`` — profile mode (contrast and
  offset per slot by variable projection), ``nlsq.CurveFit`` TRF (instance and model
  cached per problem structure, so repeats compile nothing) with the autodiff Jacobian,
  x_scale = prior sd, tolerances 1e-8; the wall
  time includes everything ``fit`` does (Problem set-up, solve, residuals and JᵀJ by
  ``Problem.evaluate`` for σ̂ and the covariance, diagnostics);
* **scipy** ``scipy.optimize.least_squares(method="trf", jac="2-point")`` on the same residual
  (``jax.jit(Problem.residual_function(weights=1/σ, fit_mode=False))``, called from NumPy), same
  start, bounds, x_scale = prior sd and tolerances, max_nfev 20 000; timed from building the
  Problem to the solution, like ``fit``;
* **heterodyne** (peer venv): ``fit_nlsq_multi_phi`` on the same c2 maps, weights 1/σ², the same
  start, bounds and fixed parameters, loss linear, tolerances 1e-8.

The first round is the cold call (JIT compilation included): the headline, what one hpcfit run
pays. Later rounds are repeats in the same process; each ``fit`` builds a new Problem, so they
compile again. JAX tracing/lowering/compile time inside each hpcfit and scipy call is measured
with ``jax.monitoring``; hpcfit's wall minus it is recorded as a diagnostic
(``results.hpcfit_minus_compile``), never as the headline. Both costs are ½Σr² of the same
weighted residual. Goal: hpcfit ≥ 3× faster than scipy on the cold first call at equal or better
final cost (``met_repeat_p50`` gives the same test on the repeats).

The start is the embedded dataset's default: D0_ref = 5000, D0_sample = 20000, registry defaults
otherwise, with f2 and the three offsets fixed (``EMBEDDED_FIXED``).

Writes ``benchmarks/results/nlsq_warm_start-<host>-<date>.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _record  # noqa: E402
from peers.client import PeerError, open_peer  # noqa: E402

PEER = "heterodyne"
SETUP_HINT = "bash benchmarks/peers/setup_heterodyne.sh"
START = {"D0_ref": 5000.0, "D0_sample": 20000.0}
COST_RTOL = 1e-8  # "equal" final cost: within this relative tolerance


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="rounds after the cold one")
    ap.add_argument("--max-nfev", type=int, default=20_000, help="scipy's max_nfev")
    ap.add_argument("--goal-speedup", type=float, default=3.0)
    ap.add_argument("--no-peer", action="store_true", help="skip the heterodyne peer")
    ap.add_argument("--peer-repeats", type=int, default=None, help="peer rounds (default: all)")
    return ap.parse_args(argv)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """First call and repeats of the wall time; also wall minus JAX compile time where known."""
    out: dict[str, Any] = {}
    for key, label in (("wall_s", ""), ("wall_minus_compile_s", "_minus_compile")):
        walls = [r[key] for r in runs if key in r]
        if not walls:
            continue
        rep = walls[1:]
        out.update(
            {
                f"first{label}_s": walls[0],
                f"repeats{label}_s": rep,
                f"repeat{label}_p50_s": float(np.median(rep)) if rep else None,
                f"repeat{label}_min_s": float(np.min(rep)) if rep else None,
            }
        )
    return out


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = _record.loadavg()

    from hpcfit.runtime.process import configure

    configure()

    import jax
    import jax.numpy as jnp
    from scipy.optimize import least_squares

    from hpcfit.config import NlsqConfig
    from hpcfit.runtime.compile_meter import CompileMeter
    from hpcfit.xpcs.nlsq import fit
    from hpcfit.xpcs.params import NAMES, make_space
    from hpcfit.xpcs.problem import Problem
    from hpcfit.xpcs.synthetic import EMBEDDED, EMBEDDED_FIXED, embedded

    data = embedded()
    space = make_space(fixed=EMBEDDED_FIXED, start=START)
    cfg = NlsqConfig()
    weights = 1.0 / np.asarray(data.sigma, dtype=np.float64)
    free = space.free_index

    def run_hpcfit() -> dict[str, Any]:
        with CompileMeter() as meter:
            t0 = time.perf_counter()
            res = fit(data, space, cfg)
            wall = time.perf_counter() - t0
        compile_s = meter.summary()
        return {
            "wall_s": wall,
            "wall_minus_compile_s": wall - compile_s["total_s"],
            "record_wall_s": res.wall_s,
            "jax_compile": compile_s,
            "cost": res.cost,
            "start_cost": res.start_cost,
            "nfev": res.nfev,
            "njev": res.njev,
            "nit": res.nit,
            "status": res.solver_status,
            "message": res.message,
            "flags": [f.name for f in res.flags],
            "chi2_red": res.chi2_red,
            "params": dict(zip(NAMES, res.params.tolist(), strict=True)),
            "contrast": res.contrast.tolist(),
            "offset": res.offset.tolist(),
        }

    def run_scipy() -> dict[str, Any]:
        with CompileMeter() as meter:
            t0 = time.perf_counter()
            problem = Problem.from_data(data, space)
            residual = jax.jit(problem.residual_function(weights, fit_mode=False))
            lo, hi = problem.unknown_bounds(fit_mode=False)
            x_scale = problem.unknown_prior_sd(fit_mode=False)
            x0 = np.clip(space.start[free], lo, hi)
            nfev_box = [0]

            def fun(x: np.ndarray) -> np.ndarray:
                nfev_box[0] += 1
                return np.asarray(residual(jnp.asarray(x)))

            res = least_squares(
                fun,
                x0,
                jac="2-point",
                method="trf",
                bounds=(lo, hi),
                x_scale=x_scale,
                ftol=cfg.ftol,
                xtol=cfg.xtol,
                gtol=cfg.gtol,
                max_nfev=args.max_nfev,
            )
            wall = time.perf_counter() - t0
        r = fun(res.x)
        compile_s = meter.summary()
        return {
            "wall_s": wall,
            "wall_minus_compile_s": wall - compile_s["total_s"],
            "jax_compile": compile_s,
            "cost": 0.5 * float(np.sum(r * r)),
            "solver_cost": float(res.cost),
            "nfev": int(res.nfev),
            "njev": int(res.njev) if res.njev is not None else None,
            "residual_evaluations": nfev_box[0] - 1,
            "status": int(res.status),
            "message": str(res.message),
            "params": dict(zip(NAMES, space.full(res.x).tolist(), strict=True)),
        }

    # -- peer -----------------------------------------------------------------------------------
    peer, peer_info, peer_inputs, peer_reason = open_peer(
        None if args.no_peer else _record.peer_python(PEER),
        PEER,
        SETUP_HINT,
        {
            "c2": data.c2,
            "phi": data.phi,
            "sigma": data.sigma,
            "q": float(data.q[0]),
            "dt": data.dt,
            "start_frame": data.start_frame,
            "names": np.asarray(NAMES),
            "start": space.start,
            "lo": space.lo,
            "hi": space.hi,
            "vary": space.vary,
            "tol": cfg.ftol,
            "max_nfev": cfg.max_nfev,
        },
        skip=args.no_peer,
    )
    if peer_reason:
        print(f"[nlsq_warm_start] peer part skipped: {peer_reason}", flush=True)

    peer_individual: dict[str, Any] | None = None
    if peer is not None:
        # The mode equivalent to hpcfit's (contrast and offset per angle, fitted jointly).
        try:
            peer_individual = peer.call("nlsq", npz=str(peer_inputs), mode="individual", repeats=1)
        except PeerError as exc:
            peer_individual = {"error": str(exc)}

    # -- alternating rounds ---------------------------------------------------------------------
    runs: dict[str, list[dict[str, Any]]] = {"hpcfit": [], "scipy": [], "peer": []}
    peer_rounds = 1 + args.repeats if args.peer_repeats is None else 1 + args.peer_repeats
    for r in range(1 + args.repeats):
        runs["hpcfit"].append(run_hpcfit())
        runs["scipy"].append(run_scipy())
        if peer is not None and r < peer_rounds:
            try:
                reply = peer.call("nlsq", npz=str(peer_inputs), mode="auto", repeats=1)
                runs["peer"].extend(reply["runs"])
            except PeerError as exc:
                peer_reason = f"peer NLSQ failed: {exc}"
                peer.close()
                peer = None
        h, s = runs["hpcfit"][-1], runs["scipy"][-1]
        pe = runs["peer"][-1] if runs["peer"] else {}
        print(
            f"[nlsq_warm_start] round {r}: hpcfit {h['wall_s']:.2f} s (cost {h['cost']:.6f}), "
            f"scipy {s['wall_s']:.2f} s (cost {s['cost']:.6f}), "
            f"peer {pe.get('wall_s', float('nan')):.2f} s",
            flush=True,
        )
    if peer is not None:
        peer.close()

    # -- the peer's solution in hpcfit's objective ----------------------------------------------
    problem = Problem.from_data(data, space)
    resid_profile = jax.jit(problem.residual_function(weights, fit_mode=False))
    resid_fit = jax.jit(problem.residual_function(weights, fit_mode=True))

    def cost_profile(params: np.ndarray) -> float:
        r = np.asarray(resid_profile(jnp.asarray(np.asarray(params)[free])))
        return 0.5 * float(np.sum(r * r))

    def cost_fit(params: np.ndarray, contrast: list[float], offset: list[float]) -> float:
        theta = np.concatenate([np.asarray(params)[free], contrast, offset])
        r = np.asarray(resid_fit(jnp.asarray(theta)))
        return 0.5 * float(np.sum(r * r))

    peer_ok = [x for x in runs["peer"] if "params" in x]
    peer_eval = None
    if peer_ok:
        pp = np.asarray(peer_ok[-1]["params"])
        peer_eval = {
            "hpcfit_cost_profiled_at_peer_params": cost_profile(pp),
            "hpcfit_cost_at_peer_params_and_scaling": cost_fit(
                pp, peer_ok[-1]["contrast"], peer_ok[-1]["offset"]
            ),
            "peer_own_cost": float(np.sum(peer_ok[-1]["per_angle_cost"])),
            "peer_objective": "½Σ((c2_model − c2)·√w)² over all off-diagonal (i, j), both "
            "triangles, rows/columns 0 excluded, one shared contrast/offset (per_angle_mode auto)",
        }

    # -- diagnostics: cost of one residual and Jacobian evaluation ------------------------------
    x0 = jnp.asarray(np.clip(space.start[free], *problem.unknown_bounds(False)))
    variants = {
        "residual_profile": resid_profile,
        "jacfwd_profile": jax.jit(jax.jacfwd(resid_profile)),
    }
    evals = {k: _record.time_call(fn, x0, repeats=10, min_time_s=0.5) for k, fn in variants.items()}
    diag = {
        "n_points": problem.size,
        "timings_us": evals,
        "per_point_us": {k: _record.per_point(v, problem.size) for k, v in evals.items()},
        "note": "residual_profile is jax.jit(Problem.residual_function(1/σ, fit_mode=False)), the "
        "residual of the scipy baseline (and of hpcfit's profile-mode model); jacfwd_profile is "
        "its forward-mode Jacobian",
    }

    # -- comparison -----------------------------------------------------------------------------
    sh, ss = summarise(runs["hpcfit"]), summarise(runs["scipy"])
    cost_h = runs["hpcfit"][-1]["cost"]
    cost_s = runs["scipy"][-1]["cost"]
    speedup_first = ss["first_s"] / sh["first_s"]
    speedup_rep = (ss["repeat_p50_s"] / sh["repeat_p50_s"]) if sh["repeat_p50_s"] else None
    cost_ok = cost_h <= cost_s * (1.0 + COST_RTOL)
    goal = {
        "target_speedup": args.goal_speedup,
        "headline": "speedup_first_call",
        "speedup_first_call": speedup_first,
        "speedup_repeat_p50": speedup_rep,
        "speedup_definition": "scipy wall / hpcfit wall (> 1: hpcfit faster); the headline is "
        "the cold first call (JIT compilation included), what one hpcfit run pays",
        "cost_hpcfit": cost_h,
        "cost_scipy": cost_s,
        "cost_rel_diff": cost_h / cost_s - 1.0,
        "cost_equal_or_better": cost_ok,
        "cost_rtol": COST_RTOL,
        "met": bool(cost_ok and speedup_first >= args.goal_speedup),
        "met_repeat_p50": bool(
            cost_ok and speedup_rep is not None and speedup_rep >= args.goal_speedup
        ),
    }
    # Diagnostic, not the headline: every fit() builds a new Problem, so repeated fits in one
    # process recompile; this is the steady state if that compilation were cached.
    h_nc = sh.get("repeat_minus_compile_p50_s")
    minus_compile = {
        "what": "hpcfit.xpcs.nlsq.fit wall minus the JAX trace/lower/compile time inside it "
        "(jax.monitoring); diagnostic only, the headline stays the cold first call",
        "first_s": sh.get("first_minus_compile_s"),
        "repeat_p50_s": h_nc,
        "repeat_min_s": sh.get("repeat_minus_compile_min_s"),
        "compile_share_repeat_p50": 1.0 - h_nc / sh["repeat_p50_s"] if h_nc else None,
        "scipy_repeat_minus_compile_p50_s": ss.get("repeat_minus_compile_p50_s"),
        "speedup_vs_scipy_minus_compile_repeat_p50": (
            ss["repeat_minus_compile_p50_s"] / h_nc if h_nc else None
        ),
        "speedup_vs_scipy_wall_repeat_p50": ss["repeat_p50_s"] / h_nc if h_nc else None,
    }
    sp = summarise(peer_ok) if peer_ok else None
    peer_block = {
        "name": PEER,
        "info": peer_info,
        "skipped_reason": peer_reason,
        "individual_mode": peer_individual,
        "auto_mode_runs": runs["peer"],
        "auto_mode_wall": sp,
        "evaluated_in_hpcfit_objective": peer_eval,
        "speedup_hpcfit_vs_peer_repeat_p50": (
            sp["repeat_p50_s"] / sh["repeat_p50_s"]
            if sp and sp["repeat_p50_s"] and sh["repeat_p50_s"]
            else None
        ),
        "speedup_hpcfit_vs_peer_first_call": (sp["first_s"] / sh["first_s"] if sp else None),
        "comparability": (
            "heterodyne 2.0.1's per-angle scaling mode ('individual', hpcfit's parameterisation) "
            "is attempted first and recorded in individual_mode; when it fails, its default for "
            "n_phi ≥ 3 ('auto': one contrast and offset shared by all angles, 16 unknowns) is "
            "timed instead. That is a different objective (shared scaling, both triangles, row 0 "
            "excluded), so compare its cost only through evaluated_in_hpcfit_objective."
        ),
    }

    payload = {
        "workload": "xpcs.nlsq_warm_start",
        "params": {
            "dataset": "embedded (hpcfit.xpcs.synthetic.EMBEDDED)",
            "n_frames": data.n_frames,
            "n_phi": data.n_phi,
            "n_points": problem.size,
            "truth": dict(zip(NAMES, EMBEDDED.truth, strict=True)),
            "start": dict(zip(NAMES, space.start.tolist(), strict=True)),
            "fixed": list(EMBEDDED_FIXED),
            "free": list(space.free_names),
            "nlsq_config": {k: str(v) for k, v in cfg.__dict__.items()},
            "scipy": {
                "method": "trf",
                "jac": "2-point",
                "x_scale": "prior sd",
                "tol": cfg.ftol,
                "max_nfev": args.max_nfev,
            },
            "repeats": args.repeats,
        },
        "results": {
            "hpcfit": {"wall": sh, "runs": runs["hpcfit"]},
            "hpcfit_minus_compile": minus_compile,
            "scipy_least_squares": {"wall": ss, "runs": runs["scipy"]},
            "goal": goal,
            "diagnostics": diag,
        },
        "peer": peer_block,
    }
    path = _record.write_record("nlsq_warm_start", payload, load_start=load_start)

    print(
        f"hpcfit fit: first {sh['first_s']:.2f} s, repeats p50 {_f(sh['repeat_p50_s'])} s, "
        f"cost {cost_h:.6f}, nfev {runs['hpcfit'][-1]['nfev']}"
    )
    print(
        f"scipy least_squares: first {ss['first_s']:.2f} s, "
        f"repeats p50 {_f(ss['repeat_p50_s'])} s, "
        f"cost {cost_s:.6f}, nfev {runs['scipy'][-1]['nfev']}, njev {runs['scipy'][-1]['njev']}"
    )
    print(
        f"speedup scipy/hpcfit: first (headline) {speedup_first:.2f}×, repeats "
        f"{_f(speedup_rep)}× → goal ≥ {args.goal_speedup}× {'met' if goal['met'] else 'NOT met'}"
    )
    h_c = [r["jax_compile"]["total_s"] for r in runs["hpcfit"]]
    s_c = [r["jax_compile"]["total_s"] for r in runs["scipy"]]
    print(
        f"  JAX compile inside the calls: hpcfit {np.round(h_c, 2).tolist()} s "
        f"({runs['hpcfit'][-1]['jax_compile']['n_backend_compiles']} compiles in the last), "
        f"scipy {np.round(s_c, 2).tolist()} s"
    )
    print(
        f"  (diagnostic) hpcfit minus compile: first {_f(minus_compile['first_s'])} s, repeats "
        f"p50 {_f(h_nc)} s; scipy minus compile {_f(ss.get('repeat_minus_compile_p50_s'))} s → "
        f"{_f(minus_compile['speedup_vs_scipy_minus_compile_repeat_p50'])}×"
    )
    if sp:
        print(
            f"heterodyne (auto mode): first {sp['first_s']:.2f} s, repeats {sp['repeats_s']}, "
            f"hpcfit cost at its params {peer_eval['hpcfit_cost_profiled_at_peer_params']:.4f}"
        )
    if peer_individual is not None:
        runs_i = peer_individual.get("runs") or [{}]
        print(
            f"heterodyne individual mode: success={runs_i[0].get('success')} "
            f"message={str(runs_i[0].get('message', peer_individual.get('error')))[:120]}"
        )
    for k, v in diag["per_point_us"].items():
        print(f"  {k:26s} {v['p50']:.4f} µs/point (p50)")
    print(f"record: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
