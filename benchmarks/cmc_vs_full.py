"""CMC with K shards against one full-data NUTS run (K = 1): time per effective sample, agreement.

    python benchmarks/cmc_vs_full.py                    # K = 4; CMC on 1 and on 2 ranks
    python benchmarks/cmc_vs_full.py --cmc-ranks 1      # the R = 1 comparison only

Both runs are the same CLI job (``.venv/bin/hpcfit``, checkpoints off; the sampler settings of
the configured defaults composed once and passed explicitly) on the same data, model, seed and
sampler settings, differing only in ``cmc.n_shards`` (checked in the run records): a synthetic
problem with the pipeline tests' tiny model (2 angles, 4 free physics parameters + contrast and
offset per angle = 8 quantities, open gates) and ``--n-frames`` frames (100: 9900 pooled
points), ``--chains`` chains per shard. The full run is K = 1 on one rank; CMC runs on each
rank count of ``--cmc-ranks`` (R = 2 uses ``mpi.cores_per_rank`` = chains, so on a 2-core
host its two ranks share the cores: 4 chain threads on 2 CPUs).

Measured per run: wall time (process start to exit), sampling phase (first "start shard" to the
last "shard … done" line of the rank logs), per-shard wall; bulk ESS, minimum over parameters:
for CMC that of the *combined* draws (``diagnostics.json["combined"]``; shard ESS values are not
summed), for K = 1 the single shard's (``diagnostics.json["shards"][0]``). Time per effective
sample = time / ESS_min; the CMC time to reach the full run's ESS is CMC time × ESS_full /
ESS_cmc. Goal: CMC faster per effective sample by ≥ K/2 — reported for every measured CMC run,
and for a *projection* to K ranks (the sampling phase becomes the slowest shard; the rest of the
job unchanged), clearly labelled as such. The fixed cost per shard (tracing and compiling its
NUTS program, start points) is estimated from the shard walls, assuming the K shards together
do the full run's gradient work. Posterior agreement per parameter:
(mean_cmc − mean_full) / sd_full and sd_cmc / sd_full from the θ draws of ``cmc/combined.npz``,
with the Monte-Carlo standard error of the first from both runs' bulk ESS.

Writes ``benchmarks/results/cmc_vs_full-<host>-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _record  # noqa: E402
from cmc_scaling import (  # noqa: E402
    TINY,
    bitwise_equal,
    combined,
    pin_sampler,
    run_cli,
    run_config,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n-frames", type=int, default=100, help="frames per angle (2 angles)")
    ap.add_argument("--n-shards", type=int, default=4, help="K of the CMC run")
    ap.add_argument("--warmup", type=int, default=200, help="cmc.num_warmup")
    ap.add_argument("--samples", type=int, default=200, help="cmc.num_samples")
    ap.add_argument("--chains", type=int, default=2, help="cmc.num_chains (≥ 2)")
    ap.add_argument("--seed", type=int, default=0, help="cmc.seed")
    ap.add_argument("--cmc-ranks", type=int, nargs="+", default=[1, 2], help="R of the CMC runs")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument("--work-dir", type=Path, default=None, help="run directories (default: tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the run directories")
    return ap.parse_args(argv)


def ess(run_dir: Path, from_shard: bool) -> dict[str, Any]:
    """Bulk ESS per parameter: the single shard's (K = 1) or the combined draws' (CMC)."""
    diag = json.loads((run_dir / "cmc" / "diagnostics.json").read_text())
    combined_ess = {n: v["ess_bulk"] for n, v in diag["combined"].items()}
    if from_shard:
        d = diag["shards"][0]["diagnostics"]
        per = dict(zip(d["names"], d["ess_bulk"], strict=True))
        source = 'diagnostics.json["shards"][0]["diagnostics"]["ess_bulk"]'
    else:
        per, source = combined_ess, 'diagnostics.json["combined"][name]["ess_bulk"]'
    name = min(per, key=lambda n: per[n])
    shard_min = [min(s["diagnostics"]["ess_bulk"]) for s in diag["shards"] if s.get("diagnostics")]
    return {
        "source": source,
        "per_parameter": per,
        "min": per[name],
        "argmin": name,
        "combined_per_parameter": combined_ess,
        "shard_min_ess": shard_min,
        "shard_wall_s": [s["wall_s"] for s in diag["shards"]],
        "shard_max_rhat": [
            max(r for r in s["diagnostics"]["rhat"] if r is not None)
            for s in diag["shards"]
            if s.get("diagnostics")
        ],
    }


def agreement(
    cmc: dict[str, np.ndarray], full: dict[str, np.ndarray], ess_c: dict, ess_f: dict
) -> dict[str, Any]:
    names = [str(n) for n in full["names"]]
    if [str(n) for n in cmc["names"]] != names:
        raise ValueError("CMC and full runs have different parameter names")
    tc = cmc["draws_theta"].reshape(-1, len(names))
    tf = full["draws_theta"].reshape(-1, len(names))
    out = {}
    for p, n in enumerate(names):
        mc, mf = float(np.mean(tc[:, p])), float(np.mean(tf[:, p]))
        sc, sf = float(np.std(tc[:, p], ddof=1)), float(np.std(tf[:, p], ddof=1))
        se = math.sqrt(sc**2 / ess_c["per_parameter"][n] + sf**2 / ess_f["per_parameter"][n])
        out[n] = {
            "mean_cmc": mc,
            "mean_full": mf,
            "sd_cmc": sc,
            "sd_full": sf,
            "z_mean": (mc - mf) / sf,
            "z_mean_mcse": se / sf,
            "sd_ratio": sc / sf,
        }
    return {
        "per_parameter": out,
        "max_abs_z_mean": max(abs(v["z_mean"]) for v in out.values()),
        "sd_ratio_range": [
            min(v["sd_ratio"] for v in out.values()),
            max(v["sd_ratio"] for v in out.values()),
        ],
        "note": "z_mean = (mean_cmc − mean_full)/sd_full; z_mean_mcse = its Monte-Carlo standard "
        "error sqrt(sd_cmc²/ESS_cmc + sd_full²/ESS_full)/sd_full from bulk ESS",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = _record.loadavg()
    hpcfit = str(Path(sys.executable).parent / "hpcfit")
    k = args.n_shards
    base = pin_sampler(
        [
            *TINY,
            f"data.n_frames={args.n_frames}",
            f"cmc.num_warmup={args.warmup}",
            f"cmc.num_samples={args.samples}",
            f"cmc.num_chains={args.chains}",
            f"cmc.seed={args.seed}",
        ]
    )
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="hpcfit-cmc-vs-full-"))
    work.mkdir(parents=True, exist_ok=True)

    plan = [("full_r1", 1, 1)] + [(f"cmc_r{r}", k, r) for r in args.cmc_ranks]
    runs: dict[str, dict[str, Any]] = {}
    for name, n_shards, ranks in plan:
        d = work / name
        shutil.rmtree(d, ignore_errors=True)
        print(f"[cmc_vs_full] {name}: K={n_shards}, R={ranks} …", flush=True)
        argv_ = [hpcfit, *base, f"cmc.n_shards={n_shards}", f"mpi.ranks={ranks}"]
        runs[name] = run_cli([*argv_, f"hydra.run.dir={d}"], d, None, args.timeout)
        runs[name].update({"n_shards": n_shards, "ranks": ranks})
        if runs[name]["exit_code"] == 0:
            runs[name]["ess_bulk"] = ess(d, from_shard=n_shards == 1)
    ok = all(r["exit_code"] == 0 for r in runs.values())

    def strip(cfg: dict[str, Any] | None) -> dict[str, Any] | None:
        return cfg and {**cfg, "cmc": {k: v for k, v in cfg["cmc"].items() if k != "n_shards"}}

    configs = {n: strip(run_config(work / n)) for n in runs}
    full = runs["full_r1"]
    results: dict[str, Any] = {
        "runs": runs,
        "all_runs_ok": ok,
        "configs_identical_except_shards_and_ranks": {
            n: configs[n] == configs["full_r1"] for n in runs if n != "full_r1"
        },
    }
    if ok:
        ess_f = full["ess_bulk"]["min"]
        arrays = {n: combined(work / n) for n in runs}
        target = k / 2
        comparisons: dict[str, Any] = {}
        for name in (n for n in runs if n.startswith("cmc_")):
            r = runs[name]
            ess_c = r["ess_bulk"]["min"]
            cmp: dict[str, Any] = {"ess_min_cmc": ess_c, "ess_min_full": ess_f}
            for key in ("sampling_phase_s", "wall_total_s"):
                tc, tf = r[key], full[key]
                cmp[key.removesuffix("_s")] = {
                    "cmc_s": tc,
                    "full_s": tf,
                    "cmc_s_per_ess": tc / ess_c,
                    "full_s_per_ess": tf / ess_f,
                    "cmc_s_to_full_ess": tc * ess_f / ess_c,
                    "speedup_per_ess": (tf / ess_f) / (tc / ess_c),
                    "met": (tf / ess_f) / (tc / ess_c) >= target,
                }
            cmp["cpu_whole_job"] = {
                "cmc_cpu_s": r["cpu_s"],
                "full_cpu_s": full["cpu_s"],
                "cmc_cpu_s_per_ess": r["cpu_s"] / ess_c,
                "full_cpu_s_per_ess": full["cpu_s"] / ess_f,
                "full_over_cmc_per_ess": (full["cpu_s"] / ess_f) / (r["cpu_s"] / ess_c),
                "note": "CPU seconds of the whole process tree (RUSAGE_CHILDREN): the work done, "
                "much less sensitive to other load on the host than the wall time",
            }
            cmp["bitwise_equal_to_cmc_r1"] = (
                bitwise_equal(arrays[name], arrays["cmc_r1"]) if "cmc_r1" in arrays else None
            )
            comparisons[name] = cmp
        # projection: K ranks, each one shard; sampling phase = slowest shard
        ref = runs.get("cmc_r1") or next(runs[n] for n in runs if n.startswith("cmc_"))
        slowest = max(ref["ess_bulk"]["shard_wall_s"])
        proj_total = ref["wall_total_s"] - ref["sampling_phase_s"] + slowest
        ess_c = ref["ess_bulk"]["min"]
        projection = {
            "what": f"CMC on K = {k} ranks with one shard each, from the R = 1 CMC run: the "
            "sampling phase becomes its slowest shard, the rest of the job is unchanged; no "
            "contention, no communication (a projection, not a measurement)",
            "sampling_phase_s": slowest,
            "wall_total_s": proj_total,
            "speedup_per_ess_sampling": (full["sampling_phase_s"] / ess_f) / (slowest / ess_c),
            "speedup_per_ess_total": (full["wall_total_s"] / ess_f) / (proj_total / ess_c),
        }
        projection["met_sampling"] = projection["speedup_per_ess_sampling"] >= target
        # shard wall = fixed cost (tracing, compiling, start points) + work ∝ points: with equal
        # total work, Σ CMC shard walls − full shard wall = (K − 1) × fixed cost
        full_shard = full["ess_bulk"]["shard_wall_s"][0]
        fixed = (sum(ref["ess_bulk"]["shard_wall_s"]) - full_shard) / (k - 1) if k > 1 else None
        overhead = {
            "fixed_per_shard_s": fixed,
            "fixed_per_shard_cpu_s": (ref["cpu_s"] - full["cpu_s"]) / (k - 1) if k > 1 else None,
            "full_shard_wall_s": full_shard,
            "cmc_shard_wall_s": ref["ess_bulk"]["shard_wall_s"],
            "assumption": "every shard pays the same fixed cost (each run_attempt traces and "
            "compiles its NUTS program anew) and the K shards together do the full run's "
            "gradient work (equal steps per draw, work ∝ points): an estimate, not a measurement; "
            "the CPU variant is (CPU of the CMC job − CPU of the full job) / (K − 1)",
        }
        cmc_ref = arrays.get("cmc_r1") or next(arrays[n] for n in arrays if n.startswith("cmc_"))
        results.update(
            {
                "comparisons": comparisons,
                "projection_k_ranks": projection,
                "per_shard_overhead_estimate": overhead,
                "agreement": agreement(
                    cmc_ref, arrays["full_r1"], ref["ess_bulk"], full["ess_bulk"]
                ),
                "goal": {
                    "target_speedup_per_ess": target,
                    "definition": "(full time / full ESS_min) / (CMC time / CMC ESS_min), "
                    "on the sampling phase (headline) and on the whole job",
                    "met_sampling_by_run": {
                        n: c["sampling_phase"]["met"] for n, c in comparisons.items()
                    },
                    "met_projected_k_ranks": projection["met_sampling"],
                },
            }
        )

    payload = {
        "workload": "cmc.vs_full",
        "params": {
            "overrides": base,
            "n_frames": args.n_frames,
            "n_points": 2 * args.n_frames * (args.n_frames - 1) // 2,
            "n_shards_cmc": k,
            "num_warmup": args.warmup,
            "num_samples": args.samples,
            "num_chains": args.chains,
            "seed": args.seed,
            "cmc_ranks": args.cmc_ranks,
            "checkpoints": False,
            "work_dir": str(work) if args.keep or args.work_dir else None,
        },
        "results": results,
    }
    path = _record.write_record(
        "cmc_vs_full",
        payload,
        mpi={"P": max(args.cmc_ranks), "ranks_per_node": max(args.cmc_ranks), "gpu_ranks": 0},
        load_start=load_start,
    )
    if not (args.keep or args.work_dir):
        shutil.rmtree(work, ignore_errors=True)

    for name, r in runs.items():
        e = r.get("ess_bulk") or {}
        print(
            f"{name}: exit {r['exit_code']}, wall {r['wall_total_s']:.1f} s, sampling "
            f"{r.get('sampling_phase_s') or float('nan'):.1f} s, ESS_min "
            f"{e.get('min', float('nan')):.0f} ({e.get('argmin')})"
        )
    if ok:
        for name, c in results["comparisons"].items():
            s, t = c["sampling_phase"], c["wall_total"]
            print(
                f"{name} vs full: per-ESS speedup sampling {s['speedup_per_ess']:.2f}×, total "
                f"{t['speedup_per_ess']:.2f}× (goal ≥ {k / 2:g}× {'met' if s['met'] else 'NOT met'}"
                f"); CMC time to the full run's ESS {s['cmc_s_to_full_ess']:.1f} s vs "
                f"{s['full_s']:.1f} s"
            )
        p = results["projection_k_ranks"]
        print(
            f"projection to {k} ranks: sampling {p['sampling_phase_s']:.1f} s → per-ESS speedup "
            f"{p['speedup_per_ess_sampling']:.2f}× (total {p['speedup_per_ess_total']:.2f}×)"
        )
        o = results["per_shard_overhead_estimate"]
        if o["fixed_per_shard_s"] is not None:
            print(
                f"fixed cost per shard (estimate): {o['fixed_per_shard_s']:.1f} s wall, "
                f"{o['fixed_per_shard_cpu_s']:.1f} CPU-s, of a "
                f"{np.mean(o['cmc_shard_wall_s']):.1f} s shard (full run's shard "
                f"{o['full_shard_wall_s']:.1f} s)"
            )
        for name, c in results["comparisons"].items():
            u = c["cpu_whole_job"]
            print(
                f"{name}: CPU of the whole job {u['cmc_cpu_s']:.1f} s vs full "
                f"{u['full_cpu_s']:.1f} s → full/CMC per ESS {u['full_over_cmc_per_ess']:.2f}×"
            )
        a = results["agreement"]
        print(
            f"agreement: max |Δmean|/sd_full {a['max_abs_z_mean']:.3f}, sd_cmc/sd_full "
            f"{a['sd_ratio_range'][0]:.3f}–{a['sd_ratio_range'][1]:.3f}"
        )
    print(f"load average start {load_start} → end {_record.loadavg()}")
    print(f"record: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
