"""Cost of the c2 model per point: hpcfit's pooled and meshgrid evaluators against heterodyne.

    python benchmarks/model_cost.py                 # defaults: N = 1000, 20 000 points, 5 rounds
    python benchmarks/model_cost.py --no-peer       # hpcfit only

Measured (float64, CPU, one angle slot, embedded truth parameters, q = 0.0054 1/Å, dt = 0.01 s):

* pooled c2 at ``--n-points`` random strict-upper-triangle points (i < j) of an N-frame grid,
  drawn without replacement from a seeded PCG64 and kept in canonical (row-major) order:
  ``value`` (c2 at the points), ``value_and_grad`` (``jax.value_and_grad`` of
  Σ((c2 − y)/σ)² w.r.t. the 14 parameters) and ``jacfwd`` (the (M, 14) Jacobian of the
  residual vector, what the NLSQ solvers use);
* the meshgrid map at N ∈ ``--mesh-sizes`` (cost per element, N² elements);
* the same functions of the ``heterodyne`` peer (``compute_c2_elementwise`` with a ShardGrid of
  the same indices, ``compute_c2_heterodyne``), run in its own venv by
  ``peers/heterodyne_driver.py``; hpcfit and peer blocks alternate metric by metric for
  ``--rounds`` rounds, and ratios are peer / hpcfit (> 1: hpcfit is faster);
* value parity hpcfit vs peer on the same inputs, and both against the heterodyne kernel's
  values for the reference example.

Writes ``benchmarks/results/model_cost-<host>-<date>.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _record  # noqa: E402
from peers.client import PeerError, open_peer  # noqa: E402

PEER = "heterodyne"
SETUP_HINT = "bash benchmarks/peers/setup_heterodyne.sh"
POOLED_METRICS = ("value", "value_and_grad", "jacfwd")

# The reference example and the heterodyne kernel's values.
SPEC4_PARAMS = [2000.0, -0.5, 10.0, 50000.0, 0.8, 0.0, 300.0, 0.5, 5.0, 0.3, -0.5, 0.2, 0.1, 3.0]
SPEC4_VALUES = {"c2[0,0]": 1.2999999999912522, "c2[0,49]": 1.2563341440546192}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n-frames", type=int, default=1000, help="N of the pooled grid")
    ap.add_argument("--n-points", type=int, default=20_000, help="pooled points (i < j)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the points and the noise")
    ap.add_argument("--phi", type=float, default=45.0, help="slot azimuth (deg)")
    ap.add_argument("--mesh-sizes", type=int, nargs="+", default=[200, 500, 1000])
    ap.add_argument("--rounds", type=int, default=5, help="alternating hpcfit/peer rounds")
    ap.add_argument("--repeats", type=int, default=10, help="minimum repeats per block")
    ap.add_argument("--min-time", type=float, default=0.4, help="minimum seconds per block")
    ap.add_argument("--goal-grad-us", type=float, default=0.15, help="goal, µs per point")
    ap.add_argument("--no-peer", action="store_true", help="skip the heterodyne peer")
    return ap.parse_args(argv)


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float64).tiny)))


def smooth_clip_deviation(params: np.ndarray, t: np.ndarray) -> float:
    """max |smooth_clip(x, 0, 1; k=50) − clip(x, 0, 1)| of the sample fraction on ``t``.

    heterodyne 2.0.1 bounds f_s with a softplus "smooth clip" (sharpness 50) where
    heterodyne 2.0.0 and hpcfit use a hard clip; this is the size of that difference.
    """
    f0, f1, f2, f3 = params[9:13]
    x = f0 * np.exp(np.clip(f1 * (t - f2), -100.0, 100.0)) + f3
    k = 50.0
    x_lo = np.logaddexp(0.0, k * x) / k
    smooth = 1.0 - np.logaddexp(0.0, k * (1.0 - x_lo)) / k
    return float(np.max(np.abs(smooth - np.clip(x, 0.0, 1.0))))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = _record.loadavg()

    from hpcfit.runtime.process import configure

    configure()

    import jax
    import jax.numpy as jnp

    from hpcfit.xpcs.dataset import production_grid
    from hpcfit.xpcs.model import c2_meshgrid, c2_pooled
    from hpcfit.xpcs.params import NAMES
    from hpcfit.xpcs.synthetic import EMBEDDED

    n, m = args.n_frames, args.n_points
    params = np.asarray(EMBEDDED.truth, dtype=np.float64)
    q, dt, phi, contrast, offset, sigma = EMBEDDED.q, EMBEDDED.dt, args.phi, 0.30, 1.00, 0.002
    t = production_grid(1, n, dt)
    rng = np.random.Generator(np.random.PCG64(args.seed))
    iu, ju = np.triu_indices(n, k=1)
    pick = np.sort(rng.choice(iu.size, size=m, replace=False))
    i, j = iu[pick].astype(np.int32), ju[pick].astype(np.int32)
    a = np.zeros(m, dtype=np.int32)

    # -- hpcfit functions (all data passed as arguments, none closed over) ---------------------
    f64 = lambda x: jnp.asarray(x, dtype=jnp.float64)  # noqa: E731
    slot = (f64([phi]), f64([contrast]), f64([offset]))
    pooled = (f64(t), f64(q), f64(dt), *slot, jnp.asarray(a), jnp.asarray(i), jnp.asarray(j))
    p = f64(params)
    y_clean = np.asarray(c2_pooled(p, *pooled))  # eager: keeps the timed jit's cache cold
    y = f64(y_clean + sigma * rng.standard_normal(m))
    sig = f64(sigma)

    def residual(p, t, q, dt, phis, cs, os_, a, i, j, y, sigma):
        return (c2_pooled(p, t, q, dt, phis, cs, os_, a, i, j) - y) / sigma

    def loss(p, *rest):
        r = residual(p, *rest)
        return jnp.sum(r * r)

    fns: dict[str, tuple[Any, tuple]] = {
        "value": (jax.jit(c2_pooled), (p, *pooled)),
        "value_and_grad": (jax.jit(jax.value_and_grad(loss)), (p, *pooled, y, sig)),
        "jacfwd": (jax.jit(jax.jacfwd(residual)), (p, *pooled, y, sig)),
    }
    mesh = jax.jit(c2_meshgrid)
    t_mesh = {nm: production_grid(1, nm, dt) for nm in args.mesh_sizes}
    for nm, tm in t_mesh.items():
        fns[f"mesh_{nm}"] = (
            mesh,
            (p, f64(tm), f64(q), f64(dt), f64(phi), f64(contrast), f64(offset)),
        )
    metrics = [*POOLED_METRICS, *(f"mesh_{nm}" for nm in args.mesh_sizes)]

    # -- peer ----------------------------------------------------------------------------------
    peer, peer_info, inputs, peer_reason = open_peer(
        None if args.no_peer else _record.peer_python(PEER),
        PEER,
        SETUP_HINT,
        {
            "t": t,
            "i": i,
            "j": j,
            "y": np.asarray(y),
            "sigma": sigma,
            "params": params,
            "q": q,
            "dt": dt,
            "phi": phi,
            "contrast": contrast,
            "offset": offset,
            **{f"t_mesh_{nm}": tm for nm, tm in t_mesh.items()},
        },
        skip=args.no_peer,
    )
    if peer is not None:
        try:
            peer.call("load_pooled", npz=str(inputs))
        except PeerError as exc:
            peer_reason = f"peer driver failed: {exc}"
            peer.close()
            peer = None
    if peer_reason:
        print(f"[model_cost] peer part skipped: {peer_reason}", flush=True)

    # -- alternating timing rounds --------------------------------------------------------------
    blocks: dict[str, dict[str, list]] = {
        "hpcfit": {k: [] for k in metrics},
        "peer": {k: [] for k in metrics},
    }
    for r in range(args.rounds):
        for k in metrics:
            fn, fargs = fns[k]
            blocks["hpcfit"][k].append(
                _record.time_call(
                    fn, *fargs, repeats=args.repeats, min_time_s=args.min_time, first=r == 0
                )
            )
            if peer is not None:
                try:
                    blocks["peer"][k].append(
                        peer.call(
                            "time",
                            what=k,
                            repeats=args.repeats,
                            min_time_s=args.min_time,
                            first=r == 0,
                        )
                    )
                except PeerError as exc:
                    peer_reason = f"peer timing failed: {exc}"
                    peer.close()
                    peer = None
        print(f"[model_cost] round {r + 1}/{args.rounds} done", flush=True)

    timings = {
        side: {k: _record.merge_timings(v) for k, v in per.items() if v}
        for side, per in blocks.items()
    }

    def ratio(k: str) -> dict[str, Any] | None:
        if k not in timings["peer"]:
            return None
        h, pe = timings["hpcfit"][k], timings["peer"][k]
        return {
            "p50": pe["p50"] / h["p50"],
            "min": pe["min"] / h["min"],
            "per_round_p50": [
                pb / hb for pb, hb in zip(pe["block_p50"], h["block_p50"], strict=False)
            ],
        }

    pooled_res: dict[str, Any] = {
        "n_points": m,
        "timings_us": {},
        "per_point_us": {},
        "ratio_peer_over_hpcfit": {},
    }
    for k in POOLED_METRICS:
        pooled_res["timings_us"][k] = {side: timings[side].get(k) for side in ("hpcfit", "peer")}
        pooled_res["per_point_us"][k] = {
            side: _record.per_point(timings[side][k], m) if k in timings[side] else None
            for side in ("hpcfit", "peer")
        }
        pooled_res["ratio_peer_over_hpcfit"][k] = ratio(k)
    mesh_res: dict[str, Any] = {}
    for nm in args.mesh_sizes:
        k = f"mesh_{nm}"
        mesh_res[str(nm)] = {
            "n_elements": nm * nm,
            "timings_us": {side: timings[side].get(k) for side in ("hpcfit", "peer")},
            "per_element_us": {
                side: _record.per_point(timings[side][k], nm * nm) if k in timings[side] else None
                for side in ("hpcfit", "peer")
            },
            "ratio_peer_over_hpcfit": ratio(k),
        }

    grad_pp = pooled_res["per_point_us"]["value_and_grad"]["hpcfit"]
    goal = {
        "metric": "hpcfit pooled value_and_grad, µs per point (p50)",
        "target_us_per_point": args.goal_grad_us,
        "measured_us_per_point": grad_pp["p50"],
        "measured_min_us_per_point": grad_pp["min"],
        "met": grad_pp["p50"] <= args.goal_grad_us,
        "note": "the goal's host is unspecified; check the load average in provenance",
    }

    # -- parity ------------------------------------------------------------------------------
    parity: dict[str, Any] = {"tolerance_rel": 1e-12, "peer": None}
    interior = params.copy()
    interior[[9, 10, 12]] = [0.5, 0.0, 0.0]  # f_s ≡ 0.5: the peer's smooth clip is inactive
    spec4_t = np.arange(50, dtype=np.float64) * 0.01
    cases = {
        "pooled_benchmark_params": ("pooled", params, t, phi, contrast, offset),
        "pooled_interior_fraction": ("pooled", interior, t, phi, contrast, offset),
        f"meshgrid_N{min(args.mesh_sizes)}": (
            "mesh",
            params,
            t_mesh[min(args.mesh_sizes)],
            phi,
            contrast,
            offset,
        ),
        "spec4_reference_example": ("mesh", np.asarray(SPEC4_PARAMS), spec4_t, 30.0, 0.3, 1.0),
    }
    hp_vals: dict[str, np.ndarray] = {}
    for name, (kind, pp, tt, ph, c, o) in cases.items():
        if kind == "pooled":
            hp_vals[name] = np.asarray(
                c2_pooled(f64(pp), f64(tt), q, dt, f64([ph]), f64([c]), f64([o]), a, i, j)
            )
        else:
            hp_vals[name] = np.asarray(c2_meshgrid(f64(pp), f64(tt), q, dt, ph, c, o))
    spec4 = hp_vals["spec4_reference_example"]
    parity["hpcfit_vs_spec4"] = {
        "c2[0,0]": float(spec4[0, 0]),
        "c2[0,49]": float(spec4[0, 49]),
        "max_rel_diff": max(
            abs(spec4[0, 0] / SPEC4_VALUES["c2[0,0]"] - 1),
            abs(spec4[0, 49] / SPEC4_VALUES["c2[0,49]"] - 1),
        ),
        "spec_values": SPEC4_VALUES,
    }
    parity["fraction_smooth_clip_max_abs_dev"] = {
        name: smooth_clip_deviation(pp, tt) for name, (_, pp, tt, *_rest) in cases.items()
    }
    if peer is not None:
        try:
            peer_par: dict[str, Any] = {}
            for name, (kind, pp, tt, ph, c, o) in cases.items():
                inp, out = peer.workdir / f"{name}.npz", peer.workdir / f"{name}.npy"
                np.savez(inp, params=pp, t=tt, q=q, dt=dt, phi=ph, contrast=c, offset=o, i=i, j=j)
                peer.call(
                    "pooled_values" if kind == "pooled" else "meshgrid_values",
                    npz=str(inp),
                    out=str(out),
                )
                pv = np.load(out)
                peer_par[name] = {"max_rel_diff": max_rel(hp_vals[name], pv), "n": int(pv.size)}
                if name == "spec4_reference_example":
                    peer_par[name].update(
                        {"peer_c2[0,0]": float(pv[0, 0]), "peer_c2[0,49]": float(pv[0, 49])}
                    )
                peer_par[name]["meets_tolerance"] = (
                    peer_par[name]["max_rel_diff"] <= parity["tolerance_rel"]
                )
            parity["peer"] = peer_par
        except PeerError as exc:
            parity["peer"] = None
            parity["peer_error"] = str(exc)

    if peer is not None:
        peer.close()

    payload = {
        "workload": "xpcs.model_cost",
        "params": {
            "n_frames": n,
            "n_points": m,
            "points": "seeded PCG64 choice without replacement from triu_indices(N, k=1), sorted",
            "seed": args.seed,
            "slot": {"phi_deg": phi, "q": q, "dt": dt, "contrast": contrast, "offset": offset},
            "sigma": sigma,
            "params": dict(zip(NAMES, params.tolist(), strict=True)),
            "t_grid": "production grid t_k = (1 + k)·dt",
            "mesh_sizes": args.mesh_sizes,
            "rounds": args.rounds,
            "repeats_min": args.repeats,
            "min_time_s_per_block": args.min_time,
            "loss": "Σ((c2 − y)/σ)² over the points, gradient w.r.t. all 14 parameters",
            "peer": PEER,
        },
        "results": {
            "pooled": pooled_res,
            "meshgrid": mesh_res,
            "goal": goal,
            "parity": parity,
        },
        "peer": {"name": PEER, "info": peer_info, "skipped_reason": peer_reason},
    }
    path = _record.write_record("model_cost", payload, load_start=load_start)
    _summary(pooled_res, mesh_res, goal, parity, path)
    return 0


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def _summary(pooled: dict, mesh: dict, goal: dict, parity: dict, path: Path) -> None:
    print("pooled (µs per point, p50): hpcfit | peer | peer/hpcfit")
    for k in POOLED_METRICS:
        pp = pooled["per_point_us"][k]
        r = pooled["ratio_peer_over_hpcfit"][k]
        print(
            f"  {k:15s} {_fmt(pp['hpcfit']['p50'], '.4f')} | "
            f"{_fmt(pp['peer']['p50'] if pp['peer'] else None, '.4f')} | "
            f"{_fmt(r['p50'] if r else None, '.2f')}"
        )
    print("meshgrid (ns per element, p50): hpcfit | peer | peer/hpcfit")
    for nm, res in mesh.items():
        pe = res["per_element_us"]
        r = res["ratio_peer_over_hpcfit"]
        print(
            f"  N={nm:5s} {_fmt(pe['hpcfit']['p50'] * 1e3, '.2f')} | "
            f"{_fmt(pe['peer']['p50'] * 1e3 if pe['peer'] else None, '.2f')} | "
            f"{_fmt(r['p50'] if r else None, '.2f')}"
        )
    print(
        f"goal: gradient ≤ {goal['target_us_per_point']} µs/point: measured "
        f"{goal['measured_us_per_point']:.4f} → {'met' if goal['met'] else 'NOT met'}"
    )
    print(f"parity hpcfit vs reference: max rel {parity['hpcfit_vs_spec4']['max_rel_diff']:.2e}")
    for name, res in (parity.get("peer") or {}).items():
        print(f"parity hpcfit vs peer, {name}: max rel {res['max_rel_diff']:.2e}")
    print(f"record: {path}")


if __name__ == "__main__":
    sys.exit(main())
