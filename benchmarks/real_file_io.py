"""Reading a real-size APS-U file: peak memory and wall time follow the selection, not the file.

Writes two APS-U two-time files the way boost_corr does (float32 upper-triangle matrices, lzf,
one chunk per matrix; a qmap with ``dynamic_index_mapping``): one with ``--bins`` matrices of
``--frames`` × ``--frames`` (default 120 × 800 × 800) and one with a single matrix. Then:

- runs the data-only job ``hpcfit data=file … nlsq.enabled=false cmc.enabled=false`` selecting
  one bin of each file, ``--repeats`` times each, alternating, and records the peak RSS of the
  process tree (``wait4``) and the wall time. Goal: the difference under 150 MB.
- times ``hpcfit-inspect`` on the large file (goal: under 1.5 s).

    .venv/bin/python benchmarks/real_file_io.py            # ≈ 2 min on 2 cores, 0.3 GB of disk
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _record  # noqa: E402

BIN = Path(sys.executable).parent


def write_aps_u(path: Path, n_bins: int, n_frames: int, seed: int = 0) -> Path:
    """An APS-U file of ``n_bins`` matrices; label b sits in cell b − 1 of a 1 × n_bins grid
    (q-major cells, all non-empty), q = 0.001·b, φ = 0."""
    import h5py

    rng = np.random.default_rng(seed)
    lag = np.abs(np.subtract.outer(np.arange(n_frames), np.arange(n_frames)))
    base = 1.0 + 0.2 * np.exp(-lag / 50.0)
    with h5py.File(path, "w") as f:
        qmap = f.create_group("xpcs/qmap")
        qmap["dynamic_v_list_dim0"] = 0.001 * np.arange(1, n_bins + 1)
        qmap["dynamic_v_list_dim1"] = np.zeros(1)
        qmap["dynamic_index_mapping"] = np.arange(n_bins, dtype=np.uint16)
        qmap["dynamic_num_pts"] = np.array([n_bins, 1], dtype=np.int64)
        qmap["map_names"] = ["q", "phi"]
        f["entry/instrument/detector_1/frame_time"] = 0.001
        tt = f.create_group("xpcs/twotime")
        tt["config/avg_frame"], tt["config/stride_frame"] = 1, 1
        tt["processed_bins"] = np.arange(1, n_bins + 1, dtype=np.int32)
        for b in range(1, n_bins + 1):
            m = np.triu(base + 0.002 * rng.standard_normal(base.shape)).astype(np.float32)
            tt.create_dataset(
                f"correlation_map/c2_{b:05d}", data=m, compression="lzf", chunks=m.shape
            )
    return path


def peak_run(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Wall time and peak RSS (MB) of ``cmd`` and its descendants (output to a log file)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = cwd / "command.log"
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}: {log.read_text()[-2000:]}")
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bins", type=int, default=120)
    ap.add_argument("--frames", type=int, default=800)
    ap.add_argument("--select-bin", type=int, default=60, help="the label selected (1-based)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    load_start = _record.loadavg()
    with tempfile.TemporaryDirectory(prefix="hpcfit-io-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        big = write_aps_u(work / "big.h5", args.bins, args.frames)
        write_s = time.perf_counter() - t0
        one = write_aps_u(work / "one.h5", 1, args.frames)
        q_sel = 0.001 * args.select_bin
        runs: dict[str, list[dict[str, Any]]] = {"big": [], "one": []}
        for r in range(args.repeats):
            for name, path, q in (("big", big, q_sel), ("one", one, 0.001)):
                cmd = [
                    str(BIN / "hpcfit"),
                    "data=file",
                    f"data.path={path}",
                    f"data.q={q}",
                    "nlsq.enabled=false",
                    "cmc.enabled=false",
                    f"hydra.run.dir={work / f'run-{name}-{r}'}",
                ]
                runs[name].append(peak_run(cmd, work))
                print(name, runs[name][-1], flush=True)
        inspect = [
            peak_run([str(BIN / "hpcfit-inspect"), str(big)], work) for _ in range(args.repeats)
        ]
        file_mb = big.stat().st_size / 2**20

    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "wall_s_median": statistics.median(r["wall_s"] for r in rows),
            "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in rows),
            "peak_rss_mb_max": max(r["peak_rss_mb"] for r in rows),
            "runs": rows,
        }

    results = {
        "data_only_big_file": summary(runs["big"]),
        "data_only_one_bin_file": summary(runs["one"]),
        "inspect_big_file": summary(inspect),
        "big_file_mb": file_mb,
        "write_big_file_s": write_s,
    }
    diff = (
        results["data_only_big_file"]["peak_rss_mb_max"]
        - results["data_only_one_bin_file"]["peak_rss_mb_max"]
    )
    results["peak_rss_difference_mb"] = diff
    results["goals"] = {
        "peak_rss_difference_under_150_mb": diff < 150.0,
        "inspect_under_1_5_s": results["inspect_big_file"]["wall_s_median"] < 1.5,
    }
    path = _record.write_record(
        "real_file_io",
        {
            "workload": "xpcs data-only run on an APS-U file",
            "params": vars(args),
            "results": results,
        },
        load_start=load_start,
    )
    inspect_s = results["inspect_big_file"]["wall_s_median"]
    print(f"peak RSS difference {diff:.1f} MB; inspect {inspect_s:.2f} s")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
