"""Does ``cmc.plan_only=true`` predict the job it sizes? Plan, then run, the same command.

For each case: ``hpcfit OVERRIDES cmc.plan_only=true`` (one process, planning for the ranks in
OVERRIDES), then ``hpcfit OVERRIDES`` for real. Recorded: the plan's job time and memory per
rank against the measured wall time of the command and the peak RSS of every rank (``run.json``
``peak_rss_mb``). A case with ``--plan-only`` records the plan alone (a job too long to run
here; recorded as ``plan_only``); its estimate is still the answer a user gets before queueing.

    .venv/bin/python benchmarks/plan_vs_run.py                       # make run's job, ≈ 12 min
    .venv/bin/python benchmarks/plan_vs_run.py --plan-only data=synthetic data.n_frames=1000
    .venv/bin/python benchmarks/plan_vs_run.py --record plan_vs_run_large \\
        data=synthetic data.n_frames=300 cmc.n_shards=auto           # K = 7, ≈ 15 min
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _record  # noqa: E402

# make run's job (K = 2 of the embedded data, 2 chains per shard) on one rank: the plan sizes an
# allocation of cmc.num_chains cores per rank, and make run's 2 ranks × 2 chains would share
# this 2-core machine's cores (each rank at half speed: a shard took 598 s against 276 s planned)
DEFAULT = ["mpi.ranks=1", "cmc.num_chains=2", "cmc.n_shards=2"]


def hpcfit(args: list[str], run_dir: Path) -> tuple[int, float, str]:
    env = {**os.environ, "HPCFIT_RUN_ID": run_dir.name, "PYTHONUNBUFFERED": "1"}
    exe = str(Path(sys.executable).with_name("hpcfit"))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [exe, *args, f"hydra.run.dir={run_dir}"], env=env, capture_output=True, text=True
    )
    return proc.returncode, time.perf_counter() - t0, proc.stdout + proc.stderr


def attempts_per_shard(run_dir: Path) -> dict[str, int]:
    """How many shards needed 1, 2, 3 … attempts (``cmc/diagnostics.json``)."""
    path = run_dir / "cmc" / "diagnostics.json"
    if not path.exists():
        return {}
    counts: dict[str, int] = {}
    for shard in json.loads(path.read_text())["shards"]:
        n = str(len(shard["attempts"]))
        counts[n] = counts.get(n, 0) + 1
    return dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--plan-only", action="store_true", help="record the plan, skip the run")
    ap.add_argument("--keep", type=Path, help="keep the plan's and the run's directories here")
    ap.add_argument(
        "--record",
        choices=("plan_vs_run", "plan_vs_run_large"),
        default="plan_vs_run",
        help="the record's name: make run's job, or a larger one",
    )
    ap.add_argument("overrides", nargs="*", default=None)
    args = ap.parse_args(argv)
    overrides = DEFAULT + (args.overrides or [])
    load_start = _record.loadavg()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or Path(scratch)
        code, plan_wall, out = hpcfit([*overrides, "cmc.plan_only=true"], Path(tmp) / "plan")
        if code != 0:
            raise SystemExit(f"the plan exited {code}:\n{out[-3000:]}")
        plan = json.loads((Path(tmp) / "plan" / "plan.json").read_text())
        est = plan["estimate"]
        print(f"plan ({plan_wall:.0f} s): job {est['job_s']:.0f} s, {est['sbatch']}", flush=True)
        measured: dict[str, Any] | None = None
        if not args.plan_only:
            code, wall, out = hpcfit(overrides, Path(tmp) / "run")
            record = json.loads((Path(tmp) / "run" / "run.json").read_text())
            measured = {
                "exit_code": code,
                "wall_s": wall,
                "peak_rss_mb": record.get("peak_rss_mb"),
                "status": record.get("status"),
                "attempts_per_shard": attempts_per_shard(Path(tmp) / "run"),
            }
            ratio = est["job_s"] / wall
            print(f"run: {wall:.0f} s (plan/measured {ratio:.2f}), exit {code}", flush=True)
            print(f"peak RSS per rank: {record.get('peak_rss_mb')} MB", flush=True)
            measured["plan_over_measured"] = ratio
    path = _record.write_record(
        "plan_only" if args.plan_only else args.record,
        {
            "workload": "hpcfit cmc.plan_only=true, then the same job",
            "params": {"overrides": overrides, "plan_only": args.plan_only},
            "results": {"plan": plan, "plan_wall_s": plan_wall, "measured": measured},
        },
        load_start=load_start,
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
