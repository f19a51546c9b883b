"""Peak memory and wall time of one NUTS shard with and without the malloc-arena cap.

    python benchmarks/malloc_arenas.py          # arenas 64 against hpcfit's 2; ≈ 17 min
    python benchmarks/malloc_arenas.py --warmup 100 --samples 100     # a quick look, ≈ 4 min

Runs the main job on the embedded dataset through the console script (``hpcfit``, one rank,
``cmc.num_chains`` chains, one attempt) once per ``MALLOC_ARENA_MAX`` value and reads, from the
run directory, the rank's peak RSS (``run.json``) and the shard's attempt time and compile time
(``cmc/diagnostics.json``). Without a cap, the memory the XLA CPU threads free during the one
long NUTS computation is not reused across glibc's per-thread arenas, so the peak grows with
the number of iterations; with hpcfit's cap it stays at the size of the data and program.
Writes ``benchmarks/results/malloc_arenas-<host>-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _record  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--arenas", type=int, nargs="+", default=[64, 2])
    ap.add_argument("--warmup", type=int, default=500)  # the default cmc.num_warmup
    ap.add_argument("--samples", type=int, default=1000)  # the default cmc.num_samples
    ap.add_argument("--chains", type=int, default=4)
    return ap.parse_args(argv)


def one_job(arenas: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """The job with ``MALLOC_ARENA_MAX=arenas``: peak RSS, attempt and compile seconds."""
    run_dir = root / f"arenas-{arenas}"
    hpcfit = Path(sys.executable).with_name("hpcfit")
    cmd = [
        str(hpcfit),
        f"hydra.run.dir={run_dir}",
        f"cmc.num_warmup={args.warmup}",
        f"cmc.num_samples={args.samples}",
        f"cmc.num_chains={args.chains}",
        "cmc.max_retries=0",
        "cmc.on_shard_failure=exclude",  # a gate miss of a short run still ends the job
        "cmc.checkpoint.enabled=false",
    ]
    env = {**os.environ, "MALLOC_ARENA_MAX": str(arenas)}
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    run = json.loads((run_dir / "run.json").read_text())
    diag = json.loads((run_dir / "cmc" / "diagnostics.json").read_text())
    attempt = diag["shards"][0]["attempts"][0]
    return {
        "malloc_arena_max": arenas,
        "peak_rss_mb": max(run["peak_rss_mb"]),
        "attempt_wall_s": attempt["wall_s"],
        "compile_s": attempt["compile_s"],
        "sampling_s": attempt["wall_s"] - attempt["compile_s"],
        "mean_steps": attempt["mean_steps"],
    }


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    load_start = _record.loadavg()
    with tempfile.TemporaryDirectory(prefix="hpcfit-arenas-") as tmp:
        rows = []
        for arenas in args.arenas:
            row = one_job(arenas, args, Path(tmp))
            rows.append(row)
            print(
                f"MALLOC_ARENA_MAX={arenas}: peak RSS {row['peak_rss_mb']:.0f} MB, attempt "
                f"{row['attempt_wall_s']:.1f} s (compile {row['compile_s']:.1f} s)",
                flush=True,
            )
    path = _record.write_record(
        "malloc_arenas",
        {
            "workload": "make run's job (embedded data, one rank, one shard), one NUTS attempt",
            "params": vars(args),
            "results": rows,
        },
        load_start=load_start,
    )
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
