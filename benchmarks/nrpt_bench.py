"""NRPT throughput on Ising grids, side by side with hamon, and strong scaling over MPI ranks.

    python benchmarks/nrpt_bench.py                       # 4×4, 16×16; n_expl 1 2 4; P 1→2
    python benchmarks/nrpt_bench.py --sizes 4 --no-peer   # hpcfit only
    python benchmarks/nrpt_bench.py --no-scaling          # skip the mpiexec runs

Restricted to what this host can run (CPU only). Model: open L×L grid,
J = 1, h = 0, β = 1. For each size a pilot (N = 10, R = 10, n_expl = 1) measures Λ̂ and sets
N = N_rec = ⌈2Λ̂⌉ + 1; then for each n_expl:

* **hpcfit**: one cold ``hpcfit.nrpt.run`` (fresh target, so the round kernel compiles) and
  ``--repeats`` warm runs, R = ``--rounds`` (12: 4096 scans in the last round). Our measures use
  the last round: **round trips per second** (its round trips ÷ its wall time) and **ESS/s of
  ⟨H⟩** (ArviZ bulk ESS of the target chain's H series ÷ the same wall time); also τ_obs/τ̄,
  per-scan time, cold and warm full-run wall.
* **hamon** (``.peers/hamon``, driven through ``peers/hamon_driver.py``): ``hamon.nrpt`` on the
  same model (float64, as hpcfit), the same N and the same ladder (hpcfit's tuned one), n_expl
  Gibbs sweeps per swap, as many scans as hpcfit's last round; one cold and ``--repeats`` warm
  calls, alternating with hpcfit's. Its ESS uses the same ArviZ estimator on its cold-chain energy.

Round-trip conventions differ: hpcfit counts Pigeons.jl's 3-state recorder per replica (a trip
needs reference → target → reference, starting at the reference; positions before the swap);
hamon counts per machine a return to chain 0 after any visit to the top (positions after the
swap, no initial reference visit needed). Both are recorded, and hpcfit's records are also
counted in hamon's convention (``round_trips_hamon_convention``) so rates compare like for like.
Goal: ≥ 2× hamon's round trips per second at equal or better τ_obs/τ̄.

**Strong scaling** (``--scale-sizes``, default 16): ``mpiexec -n P`` workers for P in ``--ranks``
run the same warm job through path B (one kernel call and one all-gather per scan); P = 1 is also
run on path A. The record keeps the last-round wall per P, the speedup against path B at P = 1,
and whether the records of every P are bitwise equal (they must be). Each rank is pinned to one
core of the allowed set when there are enough (P = 1 included, so the comparison is per core).
Path B pays a host round trip per scan (kernel dispatch, fetch of 3 numbers per replica,
all-gather), so it gains only when exploring a block takes longer than that: add a larger grid
(``--scale-sizes 16 48``).

Writes ``benchmarks/results/nrpt_bench-<host>-<date>.json``. Speed is never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _record  # noqa: E402

SETUP_HINT = "bash benchmarks/peers/setup_hamon.sh"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 16], help="grid sides L")
    ap.add_argument("--n-expl", type=int, nargs="+", default=[1, 2, 4], help="sweeps per scan")
    ap.add_argument("--rounds", type=int, default=12, help="R (last round 2^R scans)")
    ap.add_argument("--repeats", type=int, default=3, help="warm runs per configuration")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-peer", action="store_true", help="skip hamon")
    ap.add_argument("--no-scaling", action="store_true", help="skip the mpiexec runs")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="P for strong scaling")
    ap.add_argument("--scale-sizes", type=int, nargs="+", default=[16], help="L of scaling runs")
    ap.add_argument("--scale-n-expl", type=int, default=1)
    ap.add_argument("--scale-rounds", type=int, default=None, help="R of scaling runs (--rounds)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per mpiexec run")
    ap.add_argument("--worker", type=str, default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


# -- hpcfit side ------------------------------------------------------------------------------


def _setup_jax() -> None:
    from hpcfit.runtime.process import configure

    configure()


def hamon_convention_trips(chain) -> int:
    """Round trips of hpcfit's records counted as hamon does (per replica: a return to chain 0
    after any visit to the top chain), on the positions after each swap (records[:, 1:])."""
    import numpy as np

    n = int(chain.shape[0])
    visited = np.zeros(n, dtype=bool)
    trips = 0
    for j in range(1, chain.shape[1]):
        c = chain[:, j]
        visited |= c == n - 1
        done = visited & (c == 0)
        trips += int(done.sum())
        visited &= ~done
    return trips


def _measures(res, wall_full: float) -> dict[str, Any]:
    last = res.history[-1]
    wall = float(last["wall_s"])
    trips_hc = hamon_convention_trips(res.records["chain"])
    return {
        "full_wall_s": wall_full,
        "last_round_wall_s": wall,
        "last_round_scans": int(last["scans"]),
        "per_scan_us": wall / last["scans"] * 1e6,
        "round_trips": res.round_trips,
        "round_trips_hamon_convention": trips_hc,
        "round_trips_hamon_convention_per_s": trips_hc / wall,
        "efficiency_hamon_convention": trips_hc / last["scans"] / res.tau_predicted,
        "restarts": res.restarts,
        "round_trips_per_s": res.round_trips / wall,
        "ess_energy": res.ess_energy,
        "ess_per_s": res.ess_energy / wall,
        "Lambda": res.Lambda,
        "tau_observed": res.tau_observed,
        "tau_predicted": res.tau_predicted,
        "efficiency": res.efficiency,
        "mean_energy": res.mean_energy,
        "mean_energy_se": res.mean_energy_se,
    }


def hpcfit_run(target, n_chains: int, n_expl: int, rounds: int, seed: int, **kw) -> tuple:
    from hpcfit.nrpt import run

    t0 = time.perf_counter()
    res = run(target, n_chains=n_chains, n_rounds=rounds, n_expl=n_expl, seed=seed, **kw)
    return res, time.perf_counter() - t0


def _digest(res) -> str:
    h = hashlib.sha256()
    for key in ("chain", "e1", "v", "site_sum"):
        h.update(res.records[key].tobytes())
    h.update(res.betas.tobytes())
    return h.hexdigest()


# -- hamon side -------------------------------------------------------------------------------


def hamon_measures(reply: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from hpcfit.nrpt.stats import ess_bulk

    energy = np.asarray(reply["energy"], dtype=np.float64)
    ess = ess_bulk(energy)
    wall = float(reply["wall_s"])
    return {
        "wall_s": wall,
        "scans": reply["n_scans"],
        "per_scan_us": wall / reply["n_scans"] * 1e6,
        "round_trips": reply["round_trips"],
        "restarts": reply["restarts"],
        "round_trips_per_s": reply["round_trips"] / wall,
        "ess_energy": ess,
        "ess_per_s": ess / wall,
        "Lambda": reply["Lambda"],
        "tau_observed": reply["tau_observed"],
        "tau_predicted": reply["tau_predicted"],
        "efficiency": reply["efficiency"],
        "mean_energy": float(energy.mean()),
    }


def _median(rows: list[dict[str, Any]], key: str) -> float:
    import statistics

    return float(statistics.median(r[key] for r in rows))


def bench_size(L: int, args, peer) -> dict[str, Any]:
    from hpcfit.nrpt import IsingTarget, grid_model

    model = grid_model(L)
    pilot, pilot_wall = hpcfit_run(IsingTarget(model), 10, 1, 10, args.seed)
    n_chains = pilot.n_chains_recommended
    print(f"L={L}: pilot Λ̂ = {pilot.Lambda:.3f} → N = {n_chains} ({pilot_wall:.1f} s)", flush=True)
    out: dict[str, Any] = {
        "L": L,
        "n": L * L,
        "pilot": {"Lambda": pilot.Lambda, "n_chains_recommended": n_chains, "wall_s": pilot_wall},
        "n_chains": n_chains,
        "by_n_expl": [],
    }
    for n_expl in args.n_expl:
        target = IsingTarget(model)  # fresh object: the first run compiles (cold)
        cold, cold_wall = hpcfit_run(target, n_chains, n_expl, args.rounds, args.seed)
        row: dict[str, Any] = {"n_expl": n_expl, "hpcfit_cold_full_wall_s": cold_wall}
        ours, theirs = [], []
        if peer is not None:
            peer.call(
                "setup",
                L=L,
                J=1.0,
                h=0.0,
                betas=cold.betas.tolist(),
                n_expl=n_expl,
                dtype="float64",
            )
            scans = 2**args.rounds
            first = peer.call("run", seed=args.seed, n_scans=scans)
            row["hamon_cold_wall_s"] = first["wall_s"]
        for k in range(args.repeats):
            res, wall = hpcfit_run(target, n_chains, n_expl, args.rounds, args.seed + k)
            ours.append(_measures(res, wall))
            if peer is not None:
                theirs.append(hamon_measures(peer.call("run", seed=args.seed + k, n_scans=scans)))
        row["hpcfit"] = ours
        row["hpcfit_median"] = {
            key: _median(ours, key)
            for key in (
                "round_trips_per_s",
                "ess_per_s",
                "per_scan_us",
                "efficiency",
                "efficiency_hamon_convention",
                "round_trips_hamon_convention_per_s",
                "full_wall_s",
                "last_round_wall_s",
            )
        }
        row["hpcfit_per_scan_timing"] = _record.stats_us(
            [r["last_round_wall_s"] / r["last_round_scans"] for r in ours]
        )
        msg = (
            f"  n_expl={n_expl}: hpcfit {row['hpcfit_median']['round_trips_per_s']:.0f} trips/s, "
            f"ESS/s {row['hpcfit_median']['ess_per_s']:.0f}, "
            f"{row['hpcfit_median']['per_scan_us']:.1f} µs/scan, "
            f"τ/τ̄ {row['hpcfit_median']['efficiency']:.2f}, cold {cold_wall:.1f} s"
        )
        if theirs:
            row["hamon"] = theirs
            row["hamon_median"] = {
                key: _median(theirs, key)
                for key in ("round_trips_per_s", "ess_per_s", "per_scan_us", "efficiency")
            }
            hm, hp = row["hamon_median"], row["hpcfit_median"]
            row["ratio_hpcfit_over_hamon"] = {
                "round_trips_per_s": hp["round_trips_per_s"] / hm["round_trips_per_s"]
                if hm["round_trips_per_s"] > 0
                else None,
                "round_trips_per_s_same_convention": hp["round_trips_hamon_convention_per_s"]
                / hm["round_trips_per_s"]
                if hm["round_trips_per_s"] > 0
                else None,
                "ess_per_s": hp["ess_per_s"] / hm["ess_per_s"] if hm["ess_per_s"] > 0 else None,
                "per_scan_speed": hm["per_scan_us"] / hp["per_scan_us"],
                "efficiency": hp["efficiency"] / hm["efficiency"] if hm["efficiency"] else None,
                "efficiency_same_convention": hp["efficiency_hamon_convention"] / hm["efficiency"]
                if hm["efficiency"]
                else None,
            }
            msg += (
                f" (τ/τ̄ {hp['efficiency_hamon_convention']:.2f} counted as hamon)"
                f" | hamon {hm['round_trips_per_s']:.0f} trips/s, ESS/s {hm['ess_per_s']:.0f}, "
                f"{hm['per_scan_us']:.1f} µs/scan, τ/τ̄ {hm['efficiency']:.2f}"
            )
        print(msg, flush=True)
        out["by_n_expl"].append(row)
    return out


# -- strong scaling -------------------------------------------------------------------------


def worker(spec_json: str) -> None:
    """Run under mpiexec: warm path-B runs on P ranks; rank 0 prints one JSON line."""
    _setup_jax()
    from hpcfit.nrpt import IsingTarget, grid_model
    from hpcfit.parallel.comm import world

    spec = json.loads(spec_json)
    comm = world()
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) >= comm.size:  # one core per rank, as the CLI's pinning does
        os.sched_setaffinity(0, {allowed[comm.rank]})
    target = IsingTarget(grid_model(spec["L"]))
    kw = {"comm": comm, "path": spec.get("path", "host")}
    if comm.size == 1 and spec.get("path") == "scan":
        kw = {}
    rows = []
    digest = None
    for k in range(spec["repeats"] + 1):  # the first run compiles
        res, wall = hpcfit_run(target, spec["n_chains"], spec["n_expl"], spec["rounds"], 0, **kw)
        if k:
            rows.append(_measures(res, wall))
        digest = _digest(res)
    if comm.rank == 0:
        print("RESULT " + json.dumps(_record._jsonable({"rows": rows, "digest": digest})))


def scaling(args, L: int, n_chains: int) -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    runs = []
    configs = [(1, "scan")] + [(p, "host") for p in args.ranks]
    for p, path in configs:
        spec = {
            "L": L,
            "n_chains": n_chains,
            "n_expl": args.scale_n_expl,
            "rounds": args.scale_rounds or args.rounds,
            "repeats": args.repeats,
            "path": path,
        }
        cmd = [mpiexec, "-n", str(p), sys.executable, "-m", "mpi4py", __file__]
        cmd += ["--worker", json.dumps(spec)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=root)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            runs.append({"P": p, "path": path, "error": proc.stderr[-2000:]})
            print(f"  P={p} ({path}): failed", flush=True)
            continue
        out = json.loads(line[len("RESULT ") :])
        med = _median(out["rows"], "last_round_wall_s")
        runs.append(
            {
                "P": p,
                "path": path,
                "process_wall_s": time.perf_counter() - t0,
                "last_round_wall_s_median": med,
                "rows": out["rows"],
                "digest": out["digest"],
            }
        )
        print(f"  P={p} ({path}): last round {med:.2f} s", flush=True)
    ok = [r for r in runs if "error" not in r]
    base = next((r for r in ok if r["P"] == 1 and r["path"] == "host"), None)
    for r in ok:
        if base is not None:
            r["speedup_vs_path_b_p1"] = (
                base["last_round_wall_s_median"] / r["last_round_wall_s_median"]
            )
    digests = {r["digest"] for r in ok}
    return {
        "L": L,
        "n_chains": n_chains,
        "n_expl": args.scale_n_expl,
        "rounds": args.scale_rounds or args.rounds,
        "runs": runs,
        "bitwise_equal_across_P": len(digests) == 1 and len(ok) == len(runs),
    }


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        worker(args.worker)
        return 0
    _setup_jax()
    load_start = _record.loadavg()
    peer, info, reason = None, None, None
    if args.no_peer:
        reason = "--no-peer given"
    else:
        from peers.client import PeerError, PeerProcess

        python = _record.peer_python("hamon")
        if python is None:
            reason = f"peer venv .peers/hamon missing; create it with `{SETUP_HINT}`"
        else:
            try:
                peer = PeerProcess(python, "hamon_driver.py")
                info = peer.call("info")
            except (PeerError, OSError) as exc:
                reason = f"hamon driver failed: {exc}"
                peer = None
    if reason:
        print(f"hamon not run: {reason}", flush=True)
    try:
        sizes = [bench_size(L, args, peer) for L in args.sizes]
    finally:
        if peer is not None:
            peer.close()
    scale = []
    if not args.no_scaling:
        for L in args.scale_sizes:
            n_chains = next((s["n_chains"] for s in sizes if s["L"] == L), None)
            if n_chains is None:
                from hpcfit.nrpt import IsingTarget, grid_model

                pilot, _ = hpcfit_run(IsingTarget(grid_model(L)), 10, 1, 10, args.seed)
                n_chains = pilot.n_chains_recommended
            print(f"strong scaling, L={L}, N={n_chains}:", flush=True)
            scale.append(scaling(args, L, n_chains))
    payload = {
        "workload": "nrpt",
        "params": {
            "model": "open L×L Ising grid, J = 1, h = 0, β = 1",
            "sizes": args.sizes,
            "n_expl": args.n_expl,
            "rounds": args.rounds,
            "repeats": args.repeats,
            "seed": args.seed,
            "round_trip_conventions": {
                "hpcfit": "Pigeons.jl 3-state recorder per replica, positions before the swap",
                "hamon": "per machine, return to chain 0 after a visit to the top, after the swap",
            },
        },
        "results": {"sizes": sizes, "strong_scaling": scale},
        "peer": {"name": "hamon", "info": info, "skipped": reason},
    }
    mpi = {"P": 1, "ranks_per_node": 1, "gpu_ranks": 0, "scaling_ranks": args.ranks}
    path = _record.write_record("nrpt_bench", payload, mpi=mpi, load_start=load_start)
    print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    sys.exit(main())
