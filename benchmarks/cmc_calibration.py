"""Are CMC's intervals honest? Coverage of the truth over many noise seeds, CMC against full NUTS.

For each of ``--datasets`` noise seeds, synthetic data as ``hpcfit data=synthetic`` makes it (3
angles, the embedded truth, contrast 0.3 and offset 1, known σ = 0.002; ``--n-frames`` frames of
``--dt`` s) is fitted twice by the whole CLI job with the default model (16 free quantities) and
the default sampler except for the lengths given here: CMC with ``--n-shards`` shards, and one
full-data NUTS run (K = 1). Per quantity and for each job:

* the coverage of the central 68 % and 95 % intervals of the (combined) draws, i.e. the fraction
  of datasets whose interval holds the truth, with its binomial standard error
  √(p̂(1 − p̂)/n); a calibrated posterior covers 0.68 and 0.95 within 2√(p(1 − p)/n);
* the mean over datasets of sd / σ_k, σ_k the NLSQ warm start's standard error (calibrated
  over noise seeds, see ``nlsq_warm_start``), and of sd_CMC / sd_full.

Short maps need a frame interval that resolves the reference decay: at 40–50 frames of 0.01 s
several quantities are pinned only by their priors, and neither the warm start's σ_k nor a
Gaussian consensus is meant for that (see ``tests/xpcs/test_posterior.py``); 0.05 s identifies
all 16.

    .venv/bin/python benchmarks/cmc_calibration.py                     # 20 datasets, ≈ 40 min
    .venv/bin/python benchmarks/cmc_calibration.py --datasets 3        # a quick look

Writes ``benchmarks/results/cmc_calibration-<host>-<date>.json`` and the coverage plot
``docs/img/cmc_calibration.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LEVELS = (0.68, 0.95)
CONTRAST, OFFSET = 0.3, 1.0  # configs/data/synthetic.yaml


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datasets", type=int, default=20, help="noise seeds 1…n")
    ap.add_argument("--n-frames", type=int, default=50, help="data.n_frames")
    ap.add_argument("--dt", type=float, default=0.05, help="data.dt (s)")
    ap.add_argument("--n-shards", type=int, default=2, help="K of the CMC job")
    ap.add_argument("--warmup", type=int, default=300, help="cmc.num_warmup")
    ap.add_argument("--samples", type=int, default=500, help="cmc.num_samples")
    ap.add_argument("--chains", type=int, default=2, help="cmc.num_chains")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per job")
    ap.add_argument("--work-dir", type=Path, default=None, help="run directories (default: tmp)")
    ap.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "cmc_calibration.png")
    return ap.parse_args(argv)


def job(args: argparse.Namespace, seed: int, n_shards: int, run_dir: Path) -> dict[str, Any]:
    """One CLI job; its exit code, wall time, draws, NLSQ σ_k and steps per iteration."""
    argv = [
        str(ROOT / ".venv" / "bin" / "hpcfit"), "data=synthetic", f"data.n_frames={args.n_frames}",
        f"data.dt={args.dt}", f"data.seed={seed}", f"cmc.n_shards={n_shards}",
        f"cmc.num_chains={args.chains}", f"cmc.num_warmup={args.warmup}",
        f"cmc.num_samples={args.samples}", "cmc.checkpoint.enabled=false",
        f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=args.timeout, check=False)
    out: dict[str, Any] = {"exit_code": proc.returncode, "wall_s": time.perf_counter() - t0}
    if proc.returncode != 0:
        out["stderr"] = proc.stderr[-2000:]
        return out
    with np.load(run_dir / "cmc" / "combined.npz") as z:
        names = [str(n) for n in z["names"]]
        theta = z["draws_theta"].reshape(-1, len(names))
    warm = json.loads((run_dir / "nlsq" / "result.json").read_text())
    sigma_k = dict(zip(warm["theta_names"], warm["sigma_k"], strict=True))
    diag = json.loads((run_dir / "cmc" / "diagnostics.json").read_text())
    out.update(
        names=names,
        mean=theta.mean(axis=0).tolist(),
        sd=theta.std(axis=0, ddof=1).tolist(),
        quantiles={
            str(level): np.quantile(theta, [(1 - level) / 2, (1 + level) / 2], axis=0).tolist()
            for level in LEVELS
        },
        sigma_k=[sigma_k.get(n) for n in names],
        median_steps=[s["attempts"][-1].get("median_steps") for s in diag["shards"]],
        attempts=[len(s["attempts"]) for s in diag["shards"]],
    )
    return out


def truths(names: list[str]) -> np.ndarray:
    """The generator's value of every reported quantity (configs/data/synthetic.yaml)."""
    from hpcfit.xpcs.params import NAMES
    from hpcfit.xpcs.synthetic import EMBEDDED

    physics = dict(zip(NAMES, EMBEDDED.truth, strict=True))
    value = {"contrast": CONTRAST, "offset": OFFSET}
    return np.array([physics.get(n, value.get(n.split("_")[0])) for n in names], dtype=float)


def summarise(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Coverage per quantity and level, with binomial standard errors, over the datasets."""
    ok = [r[key] for r in runs if r[key]["exit_code"] == 0]
    names = ok[0]["names"]
    truth = truths(names)
    n = len(ok)
    out: dict[str, Any] = {"n_datasets": n, "names": names, "coverage": {}}
    for level in LEVELS:
        inside = np.array(
            [
                (np.array(r["quantiles"][str(level)][0]) <= truth)
                & (truth <= np.array(r["quantiles"][str(level)][1]))
                for r in ok
            ]
        )
        p = inside.mean(axis=0)
        out["coverage"][str(level)] = {
            "fraction": p.tolist(),
            "stderr": np.sqrt(p * (1 - p) / n).tolist(),
            "band_2sigma": 2.0 * math.sqrt(level * (1 - level) / n),
            "outside_band": [
                names[i]
                for i in range(len(names))
                if abs(p[i] - level) > 2.0 * math.sqrt(level * (1 - level) / n)
            ],
        }
    sd = np.array([r["sd"] for r in ok])
    sk = np.array([[np.nan if v is None else v for v in r["sigma_k"]] for r in ok], dtype=float)
    out["sd_over_sigma_k"] = np.nanmean(sd / sk, axis=0).tolist()
    z = np.array([(np.array(r["mean"]) - truth) / np.array(r["sd"]) for r in ok])
    out["z_rms"] = np.sqrt(np.mean(z * z, axis=0)).tolist()  # 1 for a calibrated posterior
    out["median_steps"] = [s for r in ok for s in r["median_steps"]]
    out["retried_shards"] = sum(a > 1 for r in ok for a in r["attempts"])
    return out


def plot(summary: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=False)
    for ax, level in zip(axes, LEVELS, strict=True):
        for shift, (key, label) in ((-0.15, ("cmc", "CMC")), (0.15, ("full", "full NUTS (K = 1)"))):
            s = summary[key]
            cov = s["coverage"][str(level)]
            x = np.arange(len(s["names"])) + shift
            ax.errorbar(
                x, cov["fraction"], yerr=cov["stderr"], fmt="o", ms=4, capsize=2, label=label
            )
        band = summary["cmc"]["coverage"][str(level)]["band_2sigma"]
        ax.axhspan(level - band, min(level + band, 1.0), color="0.85", zorder=0)
        ax.axhline(level, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(summary["cmc"]["names"])))
        ax.set_xticklabels(summary["cmc"]["names"], rotation=60, ha="right", fontsize=8)
        ax.set_ylim(0.0, 1.02)
        ax.set_title(f"{int(level * 100)} % intervals (grey: ±2 binomial sd)")
        ax.set_ylabel("coverage of the truth")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load0 = _record.loadavg()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="hpcfit-calibration-"))
    runs = []
    for seed in range(1, args.datasets + 1):
        row: dict[str, Any] = {"seed": seed}
        for key, k in (("cmc", args.n_shards), ("full", 1)):
            run_dir = work / f"seed{seed}-{key}"
            shutil.rmtree(run_dir, ignore_errors=True)
            row[key] = job(args, seed, k, run_dir)
            shutil.rmtree(run_dir, ignore_errors=True)
        print(
            f"seed {seed}: CMC exit {row['cmc']['exit_code']} ({row['cmc']['wall_s']:.0f} s), "
            f"full exit {row['full']['exit_code']} ({row['full']['wall_s']:.0f} s)",
            flush=True,
        )
        runs.append(row)
    summary = {key: summarise(runs, key) for key in ("cmc", "full")}
    names = summary["cmc"]["names"]
    ok = [r for r in runs if r["cmc"]["exit_code"] == 0 and r["full"]["exit_code"] == 0]
    ratio = np.mean([np.array(r["cmc"]["sd"]) / np.array(r["full"]["sd"]) for r in ok], axis=0)
    summary["sd_cmc_over_full"] = dict(zip(names, ratio.tolist(), strict=True))
    title = (
        f"{len(ok)} synthetic datasets ({args.n_frames} frames of {args.dt} s, 3 angles, 16 "
        f"quantities); CMC K = {args.n_shards} against full NUTS"
    )
    plot(summary, args.plot, title)
    params = {k: v for k, v in vars(args).items() if k not in ("work_dir", "plot")}
    path = _record.write_record(
        "cmc_calibration",
        {"workload": title, "params": params, "results": {"summary": summary, "runs": runs}},
        load_start=load0,
    )
    for level in LEVELS:
        for key in ("cmc", "full"):
            cov = summary[key]["coverage"][str(level)]
            print(f"{key} {level}: outside the 2σ band: {cov['outside_band'] or 'none'}")
    print(f"sd_CMC / sd_full: {np.round(ratio, 3).tolist()}")
    print(f"wrote {path} and {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
