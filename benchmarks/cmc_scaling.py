"""Strong scaling of a CMC job at fixed K: 1 rank against 2 ranks, and its MPI communication share.

    python benchmarks/cmc_scaling.py                     # K = 4, 1 core per rank, 3 runs
    python benchmarks/cmc_scaling.py --no-worker         # the two CLI runs only
    python benchmarks/cmc_scaling.py --cores-per-rank 2  # needs 4 free cores

The job is a small synthetic problem (the pipeline tests' tiny CMC set-up: 2 angles × 30
frames, 870 points, 4 free physics parameters + contrast and offset per angle = 8 quantities,
open gates) with more NUTS iterations, K = ``--n-shards`` shards, ``--chains`` chains per shard
and checkpoints off; the sampler settings of the configured defaults (``PINNED``) are composed
once and passed explicitly, so a default changed meanwhile cannot split the runs. Runs, each a
fresh process tree, ``--rounds`` times alternating R = 1 and R = 2 (the host is shared, so the
load drifts; alternation and the median over rounds soften that):

1. **CLI, R = 1**: ``.venv/bin/hpcfit <overrides> mpi.ranks=1 hydra.run.dir=…``, the process
   restricted to the first ``--cores-per-rank`` C allowed CPUs (the launcher does not pin a
   single rank, so the restriction is applied from outside);
2. **CLI, R = 2**: the same with ``mpi.ranks=2 mpi.cores_per_rank=C``: the launcher starts two
   ranks with mpiexec and each pins itself to C CPUs of its own (if 2·C CPUs are allowed;
   otherwise the ranks share cores and the record says so). Cores scale with ranks, which is
   what strong scaling means; chains per shard are identical in both runs, so the results must
   be bitwise identical;
3. once, **worker, R = 2** (skipped by ``--no-worker``): ``mpiexec -n 2 python -m mpi4py
   benchmarks/cmc_scaling.py --worker DIR`` runs the same job through
   ``hpcfit.pipelines.xpcs.run`` (after ``hpcfit.rank.setup``: pinning and device count) with
   the ``MPIComm`` wrapped in a timing proxy that records the entry and exit time of every
   collective (bcast, scatter, gather, scatterv, gatherv, allreduce, barrier) and of the
   point-to-point progress notes.

Measured: wall time of each run (process start to exit) and its CPU time (user + system of the
whole process tree, ``RUSAGE_CHILDREN``), the sampling phase from the rank logs (first "start
shard" line of any rank to the last "shard … done on rank" line, which rank 0 prints), per-shard
and per-rank busy times; speedup R=1 / R=2 of both, per round, median and best-of-rounds (goal
≥ 1.8× on the median sampling phase); bitwise equality of ``cmc/combined.npz`` (draws_u,
draws_theta, names) of every run with the first R = 1 run.

Communication (goal < 2% of the wall time): time spent inside collectives is mostly *waiting* —
rank 1 waits in the first broadcast while rank 0 runs the NLSQ warm start, and whichever rank
finishes its shards first waits in the gather (load imbalance) — so the record keeps two
numbers: the raw seconds inside collectives per rank, and the communication proper, Σ over
collectives of (last rank's exit − last rank's entry), i.e. the time a collective takes once
every rank has arrived (``perf_counter`` is CLOCK_MONOTONIC, one clock for all processes of a
host). The headline fraction is the latter over rank 0's ``run`` wall.

Writes ``benchmarks/results/cmc_scaling-<host>-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import resource
import shutil
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

# The pipeline tests' tiny CMC problem (tests/helpers.py: TINY_CMC) without its NUTS sizes.
TINY = (
    "data=synthetic",
    "data.dt=0.05",
    "data.phi=[0.0,60.0]",
    "data.contrast=[0.30,0.28]",
    "data.seed=2024",
    "model.fixed=[f2,D_offset_ref,D_offset_sample,v_offset,alpha_ref,alpha_sample,beta,f1,f3,phi0]",
    "model.start={D0_ref:5000.0,D0_sample:20000.0,alpha_ref:0.2,alpha_sample:0.5,beta:0.3,"
    "f1:-0.8,f3:0.1,phi0:3.0}",
    "cmc.gates.max_rhat=100",
    "cmc.gates.min_ess_bulk_per_chain=0",
    "cmc.gates.min_ess_tail_per_chain=0",
    "cmc.gates.max_divergence_rate=1",
    "cmc.gates.min_bfmi=0",
    "cmc.checkpoint.enabled=false",
)
COLLECTIVES = (
    "bcast",
    "scatter",
    "gather",
    "scatterv",
    "gatherv",
    "allreduce_sum",
    "allreduce_or",
    "barrier",
)
LOG_TIME = "%Y-%m-%d %H:%M:%S,%f"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n-frames", type=int, default=30, help="frames per angle")
    ap.add_argument("--n-shards", type=int, default=4, help="K (fixed for both runs)")
    ap.add_argument("--warmup", type=int, default=100, help="cmc.num_warmup")
    ap.add_argument("--samples", type=int, default=100, help="cmc.num_samples")
    ap.add_argument("--chains", type=int, default=2, help="cmc.num_chains (≥ 2)")
    ap.add_argument("--seed", type=int, default=0, help="cmc.seed")
    ap.add_argument("--cores-per-rank", type=int, default=1, help="C: CPUs per rank")
    ap.add_argument("--rounds", type=int, default=2, help="alternating R=1, R=2 CLI rounds")
    ap.add_argument("--no-worker", action="store_true", help="skip the instrumented MPI run")
    ap.add_argument("--goal-speedup", type=float, default=1.8)
    ap.add_argument("--goal-comm-fraction", type=float, default=0.02)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument("--work-dir", type=Path, default=None, help="run directories (default: tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the run directories")
    ap.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def overrides(args: argparse.Namespace) -> list[str]:
    return [
        *TINY,
        f"data.n_frames={args.n_frames}",
        f"cmc.n_shards={args.n_shards}",
        f"cmc.num_warmup={args.warmup}",
        f"cmc.num_samples={args.samples}",
        f"cmc.num_chains={args.chains}",
        f"cmc.seed={args.seed}",
        f"mpi.cores_per_rank={args.cores_per_rank}",
    ]


PINNED = (
    "dense_mass",
    "target_accept",
    "max_tree_depth",
    "precondition",
    "whiten_scale",
    "init_jitter",
    "sample_sigma",
    "combine",
    "robust_z",
    "shard_owner",
    "on_shard_failure",
    "max_retries",
)


def _override_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return str(v)


def pin_sampler(ov: list[str]) -> list[str]:
    """``ov`` plus explicit ``cmc.<key>=<value>`` for the sampler settings in ``PINNED`` (the
    configured defaults, composed once), so every run of one invocation uses the same settings
    even if the default config files change meanwhile."""
    _, resolved = compose(ov)
    given = {o.split("=", 1)[0] for o in ov}
    extra = [
        f"cmc.{k}={_override_value(resolved['cmc'][k])}"
        for k in PINNED
        if f"cmc.{k}" not in given and k in resolved["cmc"]
    ]
    return [*ov, *extra]


def run_config(run_dir: Path) -> dict[str, Any] | None:
    """The resolved config of a run (``run.json``) without ``mpi.ranks``."""
    path = run_dir / "run.json"
    if not path.is_file():
        return None
    cfg = json.loads(path.read_text()).get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("mpi"), dict):
        cfg = {**cfg, "mpi": {k: v for k, v in cfg["mpi"].items() if k != "ranks"}}
    return cfg


# -- the instrumented worker (runs under mpiexec) ---------------------------------------------
class TimedComm:
    """A ``Comm`` that forwards to another and records (method, entry, exit, bytes) per call.

    Collectives go to ``events``; ``post``/``flush_posts`` (progress notes, point to point) and
    ``poll`` (rank 0's progress thread, off the critical path) are summed apart.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.events: list[tuple[str, float, float, int | None]] = []
        self.p2p_s = 0.0
        self.poll_s = 0.0

    @property
    def rank(self) -> int:
        return self._inner.rank

    @property
    def size(self) -> int:
        return self._inner.size

    def _timed(self, name: str, payload: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = getattr(self._inner, name)(*args, **kwargs)
        t1 = time.perf_counter()
        self.events.append((name, t0, t1, _nbytes(payload)))
        return out

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self._timed("bcast", obj if self.rank == root else None, obj, root=root)

    def scatter(self, objs: Any, root: int = 0) -> Any:
        return self._timed("scatter", objs if self.rank == root else None, objs, root=root)

    def gather(self, obj: Any, root: int = 0) -> Any:
        return self._timed("gather", obj, obj, root=root)

    def allreduce_sum(self, value: float) -> float:
        return self._timed("allreduce_sum", None, value)

    def allreduce_or(self, flag: bool) -> bool:
        return self._timed("allreduce_or", None, flag)

    def barrier(self) -> None:
        return self._timed("barrier", None)

    def scatterv(self, array: Any, counts: Any, root: int = 0) -> Any:
        return self._timed("scatterv", array if self.rank == root else None, array, counts, root)

    def gatherv(self, local: Any, root: int = 0) -> Any:
        return self._timed("gatherv", local, local, root)

    def split_shared(self) -> Any:
        return self._inner.split_shared()

    def abort(self, code: int = 1) -> None:
        self._inner.abort(code)

    def post(self, obj: Any, dest: int = 0) -> None:
        t0 = time.perf_counter()
        self._inner.post(obj, dest)
        self.p2p_s += time.perf_counter() - t0

    def poll(self) -> list[Any]:
        t0 = time.perf_counter()
        out = self._inner.poll()
        self.poll_s += time.perf_counter() - t0
        return out

    def flush_posts(self) -> None:
        t0 = time.perf_counter()
        self._inner.flush_posts()
        self.p2p_s += time.perf_counter() - t0


def _nbytes(payload: Any) -> int | None:
    """Bytes the sender hands over: ndarray size, else the pickle length (None: nothing)."""
    if payload is None:
        return None
    if isinstance(payload, np.ndarray):
        return int(payload.nbytes)
    try:
        return len(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001 - size is informative only
        return None


def compose(overrides_: list[str]) -> tuple[Any, dict[str, Any]]:
    """(Config, resolved dict) composed as the command line would (cf. tests/helpers.py)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from hpcfit import config

    config.register()
    with initialize_config_dir(config_dir=str(config.config_dir()), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=list(overrides_))
    resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    from hpcfit.validation import to_config

    return to_config(cfg), resolved


def worker(run_dir: Path) -> int:
    """One rank of the instrumented run: set up as ``hpcfit.rank`` does, run, report timings."""
    from hpcfit.runtime.process import configure

    configure()  # float64 and thread variables before anything imports jax
    from hpcfit.parallel.comm import MPIComm

    raw = MPIComm()
    spec = json.loads((run_dir / "bench_overrides.json").read_text()) if raw.rank == 0 else None
    cfg, resolved = raw.bcast(compose(spec) if raw.rank == 0 else None)
    from hpcfit.pipelines import xpcs
    from hpcfit.rank import setup

    facts = setup(raw, cfg)  # pinning, XLA device count (before JAX starts), device check
    timed = TimedComm(raw)
    raw.barrier()
    t0 = time.perf_counter()
    code = xpcs.run(cfg, run_dir, resolved, timed, facts=facts if raw.rank == 0 else None)
    t1 = time.perf_counter()
    mine = {
        "rank": raw.rank,
        "exit_code": code,
        "run_start": t0,
        "run_end": t1,
        "events": timed.events,
        "p2p_s": timed.p2p_s,
        "poll_s": timed.poll_s,
        "affinity": sorted(os.sched_getaffinity(0)),
    }
    every = raw.gather(mine)
    if raw.rank == 0:
        (run_dir / "comm_timing.json").write_text(json.dumps(every))
    return code


# -- analysis -----------------------------------------------------------------------------------
def _log_time(line: str) -> float:
    return dt.datetime.strptime(line[:23], LOG_TIME).timestamp()


def log_phases(run_dir: Path) -> dict[str, Any]:
    """Sampling phase and per-shard times from ``rank-<r>.log``."""
    starts, ends, done, shards = [], [], [], []
    for log in sorted(run_dir.glob("rank-*.log")):
        rank = int(log.stem.split("-")[1])
        open_at: dict[int, float] = {}
        for line in log.read_text().splitlines():
            if " start shard " in line:
                t = _log_time(line)
                starts.append(t)
                open_at[int(line.split(" start shard ")[1].split()[0])] = t
            elif " end shard " in line:
                t = _log_time(line)
                ends.append(t)
                s = int(line.split(" end shard ")[1].split()[0])
                wall = float(line.rsplit("(", 1)[1].split()[0])
                shards.append(
                    {"shard": s, "rank": rank, "attempt_wall_s": wall, "start": open_at.get(s)}
                )
            elif " done on rank " in line:
                done.append(_log_time(line))
    if not starts or not done:
        return {"sampling_phase_s": None, "shards": shards}
    t0 = min(starts)
    for sh in shards:
        start = sh.pop("start")
        sh["start_offset_s"] = None if start is None else start - t0
    busy: dict[int, float] = {}
    for sh in shards:
        busy[sh["rank"]] = busy.get(sh["rank"], 0.0) + sh["attempt_wall_s"]
    mean_busy = sum(busy.values()) / len(busy)
    return {
        "sampling_phase_s": max(done) - t0,
        "sampling_phase_to_last_end_line_s": max(ends) - t0,
        "shards": sorted(shards, key=lambda x: x["shard"]),
        "rank_busy_s": {str(r): b for r, b in sorted(busy.items())},
        "imbalance_max_over_mean": max(busy.values()) / mean_busy if mean_busy else None,
        "note": "log timestamps have 1 ms resolution; rank 0 prints another rank's 'done' line "
        "from a thread polling every 0.2 s",
    }


def combined(run_dir: Path) -> dict[str, np.ndarray] | None:
    path = run_dir / "cmc" / "combined.npz"
    if not path.is_file():
        return None
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def bitwise_equal(a: dict[str, np.ndarray] | None, b: dict[str, np.ndarray] | None) -> bool:
    if a is None or b is None or set(a) != set(b):
        return False
    return all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def comm_analysis(every: list[dict[str, Any]]) -> dict[str, Any]:
    """Raw seconds inside collectives per rank, and the time after the last rank's arrival."""
    per_rank = []
    for r in every:
        by: dict[str, float] = {}
        for name, t0, t1, _ in r["events"]:
            by[name] = by.get(name, 0.0) + (t1 - t0)
        wall = r["run_end"] - r["run_start"]
        raw = sum(by.values())
        per_rank.append(
            {
                "rank": r["rank"],
                "run_wall_s": wall,
                "collective_raw_s": raw,
                "collective_raw_fraction": raw / wall,
                "by_method_raw_s": by,
                "n_collectives": len(r["events"]),
                "p2p_notes_s": r["p2p_s"],
                "poll_thread_s": r["poll_s"],
                "affinity": r["affinity"],
            }
        )
    seqs = [[e[0] for e in r["events"]] for r in every]
    out: dict[str, Any] = {"per_rank": per_rank, "sequences_match": all(s == seqs[0] for s in seqs)}
    if not out["sequences_match"]:
        out["note"] = "ranks called different collective sequences; no matched analysis"
        return out
    calls, by_method = [], {}
    for k, name in enumerate(seqs[0]):
        enter = [r["events"][k][1] for r in every]
        leave = [r["events"][k][2] for r in every]
        span = max(0.0, max(leave) - max(enter))
        wait = max(enter) - min(enter)
        sizes = [r["events"][k][3] for r in every if r["events"][k][3] is not None]
        calls.append(
            {
                "k": k,
                "method": name,
                "after_last_arrival_s": span,
                "arrival_spread_s": wait,
                "bytes_sent": max(sizes) if sizes else None,
            }
        )
        by_method[name] = by_method.get(name, 0.0) + span
    root = next(r for r in every if r["rank"] == 0)
    wall0 = root["run_end"] - root["run_start"]
    total = sum(c["after_last_arrival_s"] for c in calls)
    out.update(
        {
            "calls": calls,
            "after_last_arrival_s": total,
            "after_last_arrival_by_method_s": by_method,
            "rank0_run_wall_s": wall0,
            "comm_fraction": total / wall0,
            "definition": "Σ over collective calls of (max over ranks of exit time − max over "
            "ranks of entry time), over rank 0's xpcs.run wall; arrival_spread_s is waiting "
            "(rank 0's warm start before the first bcast, load imbalance before the gather, "
            "rank 0's output writing before the last bcast), not communication",
        }
    )
    return out


# -- driver -------------------------------------------------------------------------------------
def run_cli(
    argv: list[str], run_dir: Path, cpus: set[int] | None, timeout: float
) -> dict[str, Any]:
    """Run ``argv`` (affinity ``cpus`` if given); wall time, exit code, phases."""
    run_dir.mkdir(parents=True, exist_ok=True)
    load0 = _record.loadavg()

    def pin() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(run_dir.parent / f"{run_dir.name}.out", "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.run(
            argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=pin, timeout=timeout
        )
        wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    record = {}
    if (run_dir / "run.json").is_file():
        record = json.loads((run_dir / "run.json").read_text())
    return {
        "argv": argv,
        "exit_code": proc.returncode,
        "status": record.get("status"),
        "affinity": sorted(cpus) if cpus is not None else "inherited (all allowed CPUs)",
        "rank_setup": record.get("rank_setup"),
        "wall_total_s": wall,
        "cpu_s": cpu,
        "cpu_over_wall": cpu / wall,
        "loadavg_before": load0,
        "loadavg_after": _record.loadavg(),
        **log_phases(run_dir),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        return worker(args.worker)
    load_start = _record.loadavg()
    bindir = Path(sys.executable).parent
    hpcfit, mpiexec = str(bindir / "hpcfit"), str(bindir / "mpiexec")
    ov = pin_sampler(overrides(args))
    allowed = sorted(os.sched_getaffinity(0))
    c = args.cores_per_rank
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="hpcfit-cmc-scaling-"))
    work.mkdir(parents=True, exist_ok=True)

    runs: dict[str, dict[str, Any]] = {}
    r1_cpus = set(allowed[:c])
    for r in range(args.rounds):
        for ranks in (1, 2):
            name = f"cli_r{ranks}_round{r}"
            d = work / name
            shutil.rmtree(d, ignore_errors=True)
            print(f"[cmc_scaling] {name} …", flush=True)
            runs[name] = run_cli(
                [hpcfit, *ov, f"mpi.ranks={ranks}", f"hydra.run.dir={d}"],
                d,
                r1_cpus if ranks == 1 else None,
                args.timeout,
            )
    comm: dict[str, Any] | None = None
    if not args.no_worker:
        print("[cmc_scaling] worker_r2 (instrumented) …", flush=True)
        d = work / "worker_r2"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        (d / "bench_overrides.json").write_text(json.dumps([*ov, "mpi.ranks=2"]))
        worker_argv = [
            mpiexec,
            "-n",
            "2",
            sys.executable,
            "-m",
            "mpi4py",
            str(Path(__file__).resolve()),
            "--worker",
            str(d),
        ]
        runs["worker_r2"] = run_cli(worker_argv, d, None, args.timeout)
        if (d / "comm_timing.json").is_file():
            comm = comm_analysis(json.loads((d / "comm_timing.json").read_text()))

    ok = all(r["exit_code"] == 0 for r in runs.values())
    ref = "cli_r1_round0"
    arrays = {k: combined(work / k) for k in runs}
    bitwise = {
        "reference": ref,
        "arrays": sorted(arrays[ref]) if arrays[ref] else None,
        "equal_to_reference": {k: bitwise_equal(arrays[ref], arrays[k]) for k in runs if k != ref},
    }
    bitwise["all_equal"] = all(bitwise["equal_to_reference"].values())
    configs = {k: run_config(work / k) for k in runs}
    same_config = {k: configs[k] == configs[ref] for k in runs if k != ref}

    keys = ("sampling_phase_s", "sampling_phase_to_last_end_line_s", "wall_total_s")
    per_round = []
    for r in range(args.rounds):
        r1, r2 = runs[f"cli_r1_round{r}"], runs[f"cli_r2_round{r}"]
        per_round.append(
            {
                k.removesuffix("_s"): (r1[k] / r2[k] if r1.get(k) and r2.get(k) else None)
                for k in keys
            }
        )

    def med(key: str) -> float | None:
        xs = [x[key] for x in per_round if x[key] is not None]
        return statistics.median(xs) if xs else None

    def best(key: str) -> float | None:
        a = [runs[f"cli_r1_round{r}"].get(key) for r in range(args.rounds)]
        b = [runs[f"cli_r2_round{r}"].get(key) for r in range(args.rounds)]
        return min(a) / min(b) if all(a) and all(b) else None

    speedup = {
        "per_round": per_round,
        "median": {k.removesuffix("_s"): med(k.removesuffix("_s")) for k in keys},
        "best_of_rounds": {k.removesuffix("_s"): best(k) for k in keys},
        "definition": "R=1 time / R=2 time; median of the per-round ratios (rounds alternate "
        "R=1 and R=2), and min over rounds of R=1 / min over rounds of R=2",
    }
    headline = speedup["median"]["sampling_phase"]
    oversubscribed = len(allowed) < 2 * c
    goals = {
        "speedup": {
            "target": args.goal_speedup,
            "metric": "sampling phase R=1 / R=2, median over rounds (CLI runs)",
            "measured": headline,
            "best_of_rounds": speedup["best_of_rounds"]["sampling_phase"],
            "met": bool(ok and headline is not None and headline >= args.goal_speedup),
        },
        "comm_fraction": {
            "target_below": args.goal_comm_fraction,
            "metric": "collective time after the last rank's arrival / rank 0's run wall "
            "(instrumented R=2 run)",
            "measured": comm.get("comm_fraction") if comm else None,
            "met": bool(
                comm
                and comm.get("comm_fraction") is not None
                and comm["comm_fraction"] < args.goal_comm_fraction
            ),
        },
        "bitwise_identical": bitwise["all_equal"],
    }
    payload = {
        "workload": "cmc.scaling",
        "params": {
            "overrides": ov,
            "rounds": args.rounds,
            "n_frames": args.n_frames,
            "n_points": 2 * args.n_frames * (args.n_frames - 1) // 2,
            "n_shards": args.n_shards,
            "num_warmup": args.warmup,
            "num_samples": args.samples,
            "num_chains": args.chains,
            "cores_per_rank": c,
            "allowed_cpus": allowed,
            "r1_cpus": sorted(r1_cpus),
            "oversubscribed": oversubscribed,
            "threads_note": (
                f"each rank runs {args.chains} chains on {args.chains} virtual XLA devices "
                f"pinned to {c} CPU(s), so chains time-share cores the same way in both runs"
                + (
                    f"; only {len(allowed)} CPUs allowed for 2 ranks × {c}: the R=2 ranks share "
                    "cores"
                    if oversubscribed
                    else ""
                )
            ),
            "work_dir": str(work) if args.keep or args.work_dir else None,
        },
        "results": {
            "runs": runs,
            "speedup_r1_over_r2": speedup,
            "parallel_efficiency_sampling": headline / 2 if headline else None,
            "bitwise": bitwise,
            "configs_identical_except_mpi_ranks": same_config,
            "comm": comm,
            "goals": goals,
            "all_runs_ok": ok,
        },
    }
    path = _record.write_record(
        "cmc_scaling",
        payload,
        mpi={"P": 2, "ranks_per_node": 2, "gpu_ranks": 0, "compared_with_P": 1},
        load_start=load_start,
    )
    if not (args.keep or args.work_dir):
        shutil.rmtree(work, ignore_errors=True)

    def f(x: float | None, spec: str = ".2f") -> str:
        return "n/a" if x is None else format(x, spec)

    for name, r in runs.items():
        print(
            f"{name}: exit {r['exit_code']}, wall {f(r['wall_total_s'], '.1f')} s, sampling "
            f"phase {f(r.get('sampling_phase_s'), '.1f')} s, CPU {f(r['cpu_s'], '.1f')} s, "
            f"rank busy {r.get('rank_busy_s')}, load {f(r['loadavg_before'][0])}"
        )
    print(
        f"speedup R1/R2, sampling phase: median {f(headline)}× (rounds "
        f"{[f(x['sampling_phase']) for x in per_round]}, best-of "
        f"{f(goals['speedup']['best_of_rounds'])}×)"
        f"; total wall median {f(speedup['median']['wall_total'])}× → goal ≥ "
        f"{args.goal_speedup}× {'met' if goals['speedup']['met'] else 'NOT met'}"
    )
    if comm and "comm_fraction" in comm:
        raw = ", ".join(
            f"rank {p['rank']} {p['collective_raw_s']:.2f} s ({p['collective_raw_fraction']:.1%})"
            for p in comm["per_rank"]
        )
        met = "met" if goals["comm_fraction"]["met"] else "NOT met"
        print(
            f"communication: {comm['after_last_arrival_s'] * 1e3:.1f} ms after the last "
            f"arrival = {comm['comm_fraction']:.3%} of {comm['rank0_run_wall_s']:.1f} s → goal "
            f"< {args.goal_comm_fraction:.0%} {met}; raw time inside collectives (mostly "
            f"waiting): {raw}"
        )
    print(
        f"combined.npz bitwise identical to {ref}: {bitwise['equal_to_reference']}; configs "
        f"identical except mpi.ranks: {same_config}"
    )
    print(f"load average start {load_start} → end {_record.loadavg()}")
    print(f"record: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
