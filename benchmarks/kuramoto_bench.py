"""Networked-Kuramoto RK4: hpcfit's JAX integrator against NumPy and the oscillatools peer.

    python benchmarks/kuramoto_bench.py              # defaults: the bench network below
    python benchmarks/kuramoto_bench.py --no-peer    # hpcfit and the NumPy reference only

Bench network: ``numpy.random.default_rng(20260703)``, ω ~ N(0, 0.7²) drawn first,
then θ0 ~ U(0, 2π); K = 1.8/N off the diagonal; N = 256, dt = 0.05, 200 steps (r goes
0.097 → 0.853). Measured, float64 on the CPU:

* ``final_state`` and ``trajectory``: the cold first call (tracing and compilation included) and
  ``--repeats`` steady calls, against a plain NumPy direct-form RK4 (N² sines per evaluation,
  the test suite's reference) timed in the same run; ``speedup`` = NumPy p50 / JAX p50 (goal
  ≥ 20×) and ``parity_max_abs_diff`` of the trajectories (≤ 1e-11);
* ``gradient`` (one ``jax.vjp`` of ``final_state``, cotangent of L = 1 − r²);
* ``ensemble`` of B members (B = 8 and 64; one θ0 per member, shared ω and K, record="final")
  against a Python loop of B ``final_state`` calls: with the default chunk (1 on CPU: members
  bitwise equal to single calls) and as one vmapped chunk of B (``chunk=B``: the members share
  K's loads in a matrix product; equal to single calls to rounding only). Goal ≥ 3× for B = 64;
  ``ensemble_parity_max_abs_diff`` against the loop;
* the ``oscillatools`` 0.1.0 peer (its pure-NumPy RK4 floor and adjoint, in its own venv
  ``.peers/oscillatools``, driven by ``peers/oscillatools_driver.py``): timings of its forward
  and gradient, and parity of its trajectory and gradient with hpcfit's;
* ``hpcfit.device.resolve_device("auto", score=…)`` per call on this host (goal ≤ 2 µs).

Writes ``benchmarks/results/kuramoto_bench-<host>-<date>.json`` (the record format of
``benchmarks/_record.py``).
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

PEER = "oscillatools"
SETUP_HINT = "bash benchmarks/peers/setup_oscillatools.sh"
GOALS = {"speedup_vs_numpy": 20.0, "ensemble_speedup_b64": 3.0, "resolve_device_us": 2.0}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=256, help="oscillators N")
    ap.add_argument("--steps", type=int, default=200, help="RK4 steps")
    ap.add_argument("--dt", type=float, default=0.05, help="step")
    ap.add_argument("--repeats", type=int, default=15, help="steady repeats of the JAX calls")
    ap.add_argument("--numpy-repeats", type=int, default=3, help="repeats of the NumPy reference")
    ap.add_argument("--members", type=int, nargs="+", default=[8, 64], help="ensemble sizes B")
    ap.add_argument("--ensemble-repeats", type=int, default=5, help="repeats per ensemble timing")
    ap.add_argument("--peer-repeats", type=int, default=3, help="repeats of the peer's calls")
    ap.add_argument("--resolve-calls", type=int, default=100_000, help="resolve_device calls")
    ap.add_argument("--no-peer", action="store_true", help="skip the oscillatools peer")
    return ap.parse_args(argv)


def numpy_trajectory(theta0, omega, K, dt, n_steps) -> np.ndarray:
    """Plain NumPy classic RK4 of dθ_j/dt = ω_j + Σ_k K_jk sin(θ_k − θ_j), direct form."""
    off = K * (1.0 - np.eye(K.shape[0]))

    def f(th):
        return omega + np.sum(off * np.sin(th[None, :] - th[:, None]), axis=1)

    out = np.empty((n_steps + 1, theta0.size))
    out[0] = th = theta0
    for i in range(n_steps):
        k1 = f(th)
        k2 = f(th + 0.5 * dt * k1)
        k3 = f(th + 0.5 * dt * k2)
        k4 = f(th + dt * k3)
        th = th + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        out[i + 1] = th
    return out


def one_minus_r2_cotangent(theta: np.ndarray) -> np.ndarray:
    """λ = ∂(1 − r²)/∂θ = (2/N)(Re Z sin θ − Im Z cos θ), Z = mean e^{iθ}."""
    z = np.exp(1j * theta).mean()
    return (2.0 / theta.size) * (z.real * np.sin(theta) - z.imag * np.cos(theta))


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _at_least(goal: float, **values: float | None) -> dict[str, Any]:
    met = {k: v is not None and v >= goal for k, v in values.items()}
    return {"goal": goal, **values, "met": met}


def _at_most(goal: float, value: float) -> dict[str, Any]:
    return {"goal": goal, "value": value, "met": value <= goal}


def bench_ensembles(args, kur, net, results: dict[str, Any]) -> None:
    rng = np.random.default_rng(1)
    out = {}
    for b in args.members:
        thetas = rng.uniform(0.0, 2 * np.pi, (b, args.n))
        kw = {"dt": args.dt, "n_steps": args.steps}

        def loop(thetas=thetas, kw=kw):
            return [kur.final_state(th, net.omega, net.coupling, **kw) for th in thetas]

        def vmap_default(thetas=thetas, kw=kw):
            return kur.ensemble(thetas, net.omega, net.coupling, record="final", **kw)

        def vmap_chunk(thetas=thetas, kw=kw, b=b):
            return kur.ensemble(thetas, net.omega, net.coupling, record="final", chunk=b, **kw)

        rep = args.ensemble_repeats
        t_loop = _record.time_call(loop, repeats=rep)
        t_default = _record.time_call(vmap_default, repeats=rep)
        t_chunk = _record.time_call(vmap_chunk, repeats=rep)
        singles = np.stack([np.asarray(x) for x in loop()])
        default = np.asarray(vmap_default()["final"])
        chunked = np.asarray(vmap_chunk()["final"])
        out[f"B{b}"] = {
            "members": b,
            "loop_of_single_calls": t_loop,
            "ensemble_default_chunk": t_default,
            f"ensemble_chunk_{b}": t_chunk,
            "speedup_default_chunk": _ratio(t_loop["p50"], t_default["p50"]),
            "speedup_one_vmapped_chunk": _ratio(t_loop["p50"], t_chunk["p50"]),
            "ensemble_parity_max_abs_diff": float(np.max(np.abs(default - singles))),
            "ensemble_bitwise_equal_to_single_calls": bool(np.array_equal(default, singles)),
            "one_vmapped_chunk_parity_max_abs_diff": float(np.max(np.abs(chunked - singles))),
        }
        print(
            f"[kuramoto] ensemble B={b}: loop {t_loop['p50'] / 1e3:.1f} ms, default chunk "
            f"{t_default['p50'] / 1e3:.1f} ms, one chunk of {b} {t_chunk['p50'] / 1e3:.1f} ms",
            flush=True,
        )
    results["ensemble"] = out


def bench_resolve(n_calls: int) -> dict[str, Any]:
    from hpcfit import device

    score = device.kuramoto_score(1, 256)
    device.resolve_device("auto", score=score)
    blocks = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n_calls // 5):
            device.resolve_device("auto", score=score)
        blocks.append((time.perf_counter() - t0) / (n_calls // 5) * 1e6)
    return {
        "calls": n_calls,
        "us_per_call_blocks": blocks,
        "us_per_call_min": min(blocks),
        "us_per_call_median": float(np.median(blocks)),
        "result": repr(device.resolve_device("auto", score=score)),
    }


def bench_peer(args, net, ours: dict[str, np.ndarray], lam: np.ndarray) -> dict[str, Any]:
    inputs = {
        "theta0": net.theta0,
        "omega": net.omega,
        "K": net.coupling,
        "dt": np.float64(args.dt),
        "n_steps": np.int64(args.steps),
        "cotangent": lam,
    }
    python = None if args.no_peer else _record.peer_python(PEER)
    peer, info, path, reason = open_peer(python, PEER, SETUP_HINT, inputs, skip=args.no_peer)
    if peer is None:
        print(f"[kuramoto] peer part skipped: {reason}", flush=True)
        return {"name": PEER, "skipped_reason": reason}
    try:
        loaded = peer.call("load", npz=str(path))
        forward = peer.call("time", what="forward", repeats=args.peer_repeats)
        grad = peer.call("time", what="gradient", repeats=max(1, args.peer_repeats - 1))
        values_path = peer.workdir / "values.npz"
        peer.call("values", out=str(values_path))
        v = np.load(values_path)
        parity = {
            "trajectory_max_abs_diff": float(np.max(np.abs(v["trajectory"] - ours["trajectory"]))),
            "g_theta0_max_abs_diff": float(np.max(np.abs(v["g_theta0"] - ours["g_theta0"]))),
            "g_omega_max_abs_diff": float(np.max(np.abs(v["g_omega"] - ours["g_omega"]))),
            "g_K_max_abs_diff": float(np.max(np.abs(v["g_K"] - ours["g_K"]))),
        }
    except PeerError as exc:
        return {"name": PEER, "info": info, "skipped_reason": f"peer call failed: {exc}"}
    finally:
        peer.close()
    print(
        f"[kuramoto] peer {PEER}: forward {forward['p50'] / 1e3:.0f} ms, gradient "
        f"{grad['p50'] / 1e3:.0f} ms (tiers {grad['tier']}), trajectory parity "
        f"{parity['trajectory_max_abs_diff']:.1e}",
        flush=True,
    )
    return {
        "name": PEER,
        "info": info,
        "loaded": loaded,
        "forward": forward,
        "gradient": grad,
        "parity_vs_hpcfit": parity,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = _record.loadavg()

    from hpcfit.runtime.process import configure

    configure()

    import hpcfit.kuramoto as kur
    from hpcfit.kuramoto.network import bench_network

    net = bench_network(args.n)
    kw = {"dt": args.dt, "n_steps": args.steps}
    results: dict[str, Any] = {}

    # -- one network: JAX vs NumPy (same run) --------------------------------------------------
    t_np = _record.time_call(
        numpy_trajectory,
        net.theta0,
        net.omega,
        net.coupling,
        args.dt,
        args.steps,
        repeats=args.numpy_repeats,
        first=False,
    )
    ref = numpy_trajectory(net.theta0, net.omega, net.coupling, args.dt, args.steps)
    fs = _record.time_call(
        lambda: kur.final_state(net.theta0, net.omega, net.coupling, **kw), repeats=args.repeats
    )
    tr = _record.time_call(
        lambda: kur.trajectory(net.theta0, net.omega, net.coupling, **kw), repeats=args.repeats
    )
    traj = np.asarray(kur.trajectory(net.theta0, net.omega, net.coupling, **kw))
    lam = one_minus_r2_cotangent(traj[-1])
    gr = _record.time_call(
        lambda: kur.gradient(net.theta0, net.omega, net.coupling, cotangent=lam, **kw),
        repeats=args.repeats,
    )
    g = [
        np.asarray(x)
        for x in kur.gradient(net.theta0, net.omega, net.coupling, cotangent=lam, **kw)
    ]
    r = np.asarray(kur.order_parameter(traj))
    results["numpy_direct_rk4"] = t_np
    results["final_state"] = {**fs, "speedup_vs_numpy": _ratio(t_np["p50"], fs["p50"])}
    results["trajectory"] = {
        **tr,
        "speedup_vs_numpy": _ratio(t_np["p50"], tr["p50"]),
        "parity_max_abs_diff": float(np.max(np.abs(traj - ref))),
    }
    results["gradient"] = {**gr, "cost_vs_final_state_p50": _ratio(gr["p50"], fs["p50"])}
    results["order_parameter_start_end"] = [float(r[0]), float(r[-1])]
    print(
        f"[kuramoto] N={args.n}, {args.steps} steps: NumPy {t_np['p50'] / 1e3:.0f} ms; "
        f"final_state {fs['p50'] / 1e3:.2f} ms (cold {fs['first_call_us'] / 1e3:.0f} ms), "
        f"trajectory {tr['p50'] / 1e3:.2f} ms, gradient {gr['p50'] / 1e3:.2f} ms; parity "
        f"{results['trajectory']['parity_max_abs_diff']:.1e}; r {r[0]:.3f} → {r[-1]:.3f}",
        flush=True,
    )

    bench_ensembles(args, kur, net, results)
    results["resolve_device"] = bench_resolve(args.resolve_calls)
    print(
        f"[kuramoto] resolve_device: {results['resolve_device']['us_per_call_median']:.2f} µs",
        flush=True,
    )
    ours = {"trajectory": traj, "g_theta0": g[0], "g_omega": g[1], "g_K": g[2]}
    peer = bench_peer(args, net, ours, lam)
    if "forward" in peer:
        peer["ratios"] = {
            "forward_peer_over_hpcfit_trajectory_p50": _ratio(peer["forward"]["p50"], tr["p50"]),
            "gradient_peer_over_hpcfit_p50": _ratio(peer["gradient"]["p50"], gr["p50"]),
        }

    b64 = results["ensemble"].get("B64", {})
    results["goals"] = {
        "speedup_vs_numpy": _at_least(
            GOALS["speedup_vs_numpy"],
            final_state=results["final_state"]["speedup_vs_numpy"],
            trajectory=results["trajectory"]["speedup_vs_numpy"],
        ),
        "parity_max_abs_diff": _at_most(1e-11, results["trajectory"]["parity_max_abs_diff"]),
        "ensemble_speedup_b64": _at_least(
            GOALS["ensemble_speedup_b64"],
            default_chunk=b64.get("speedup_default_chunk"),
            one_vmapped_chunk=b64.get("speedup_one_vmapped_chunk"),
        ),
        "resolve_device_us": _at_most(
            GOALS["resolve_device_us"], results["resolve_device"]["us_per_call_median"]
        ),
    }

    path = _record.write_record(
        "kuramoto_bench",
        {
            "workload": "kuramoto",
            "params": {
                "network": "bench (default_rng(20260703): ω ~ N(0, 0.7²) then θ0 ~ U(0, 2π))",
                "N": args.n,
                "n_steps": args.steps,
                "dt": args.dt,
                "coupling": 1.8,
                "repeats": args.repeats,
                "numpy_repeats": args.numpy_repeats,
                "ensemble_members": args.members,
                "ensemble_repeats": args.ensemble_repeats,
                "peer_repeats": args.peer_repeats,
            },
            "results": results,
            "peer": peer,
        },
        load_start=load_start,
    )
    print(f"[kuramoto] wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
