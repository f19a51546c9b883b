"""Sizing a CMC job before it is queued: wall time, memory per rank and the ``sbatch`` line.

Pure arithmetic on what a short NUTS probe of one shard measured (:mod:`hpcfit.cmc.probe`):

* a rank compiles its sampler once (every shard has one padded shape), and a shard costs its
  leapfrog steps (gradient evaluations) at the probe's time per step. The probe runs the job's
  whole warmup, so its warmup steps are the job's and its sampling iterations take as many
  steps as the job's will; only the number of sampling iterations is cut. (A probe with a
  tenth of the warmup adapts its mass matrix on a few dozen draws, and its sampling then takes
  2–3 times the steps of the job's: the estimate of a 300-frame job was 2.6 times its run);
* a rank runs ⌈K/R⌉ shards one after another; the job is the data load and warm start on
  rank 0, then the slowest rank; a shard that fails its gates and is retried costs one more
  compile and a longer shard each time (retry r runs at most max(2^r·W + S, W + 2^r·S)
  iterations: twice the warmup per retry, or twice the sampling iterations after low ESS
  alone, :func:`hpcfit.cmc.nuts.retry_settings`; counted here as 2^r times the warmup's or the
  sampling's steps), so the upper estimate allows ``max_retries`` retries on one shard per rank;
* a rank's memory is its process before any data (the JAX runtime), plus its shards' points,
  plus what sampling one shard added in the probe; rank 0 also holds the data and the warm
  start, measured as the peak of the planning process itself.

The ``sbatch`` line asks for the upper estimate × ``TIME_MARGIN`` and the larger rank memory ×
``MEMORY_MARGIN``, rounded up.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

TIME_MARGIN = 1.5
MEMORY_MARGIN = 1.25
N_EXTRA_FIELDS = 4  # NUTS fields kept per draw: hpcfit.cmc.nuts.EXTRA_FIELDS (not imported: JAX)
BYTES_PER_POINT = 64  # a shard point on a rank: a, i, j, y as received, then as JAX arrays with σ


@dataclass(frozen=True)
class ProbeTiming:
    """What the probe of one shard measured."""

    points: int  # points of the probed shard
    warmup_iterations: int  # the probe's warmup iterations per chain (the job's)
    sampling_iterations: int  # the probe's sampling iterations per chain
    wall_s: float  # the whole probe attempt
    compile_s: float  # JAX tracing, lowering and XLA compiles inside it
    warmup_steps: float  # leapfrog steps of the warmup, the chain with the most
    mean_steps: float  # leapfrog steps per sampling iteration, mean over chains
    status: str  # the probe attempt's status ("ok" or why it failed)
    sampling_mb: float  # memory the attempt added to the process (MB)

    @property
    def iterations(self) -> int:
        return self.warmup_iterations + self.sampling_iterations


@dataclass(frozen=True)
class JobPlan:
    """The estimate for one job shape; every time in seconds, every memory in MB."""

    n_shards: int
    n_ranks: int
    points_per_shard: int
    shards_per_rank: int
    cores_per_rank: int
    compile_s: float  # once per rank
    shard_s: float  # sampling one shard, without the compile
    prepare_s: float
    job_s: float
    job_s_with_retries: float
    memory_rank0_mb: float
    memory_rank_mb: float
    sbatch: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def draws_mb(n_shards: int, num_chains: int, num_samples: int, n_quantities: int) -> float:
    """Memory of the kept draws of ``n_shards`` shards, in MB: u and θ of every quantity and
    the four NUTS fields per draw in float64, held twice (the results and rank 0's gathered
    copy)."""
    values = num_chains * num_samples * (2 * n_quantities + N_EXTRA_FIELDS)
    return 2.0 * n_shards * values * 8.0 / 2**20


def seconds_per_step(probe: ProbeTiming) -> float:
    """The probe's wall time per leapfrog step, its compile taken out (s). The chains run side
    by side, so the wall time is the warmup with the most steps plus the sampling. A probe that
    failed before counting steps is timed per iteration instead (see :func:`shard_steps`)."""
    if _counted(probe):
        steps = probe.warmup_steps + probe.sampling_iterations * probe.mean_steps
    else:
        steps = float(probe.iterations)
    return max(probe.wall_s - probe.compile_s, 0.0) / max(steps, 1.0)


def shard_steps(probe: ProbeTiming, num_warmup: int, num_samples: int) -> tuple[float, float]:
    """Leapfrog steps of one shard's warmup and sampling at the job's iteration counts (the
    iteration counts themselves when the probe counted no steps)."""
    if not _counted(probe):
        return float(num_warmup), float(num_samples)
    warmup = probe.warmup_steps * num_warmup / max(probe.warmup_iterations, 1)
    return warmup, num_samples * probe.mean_steps


def _counted(probe: ProbeTiming) -> bool:
    return math.isfinite(probe.warmup_steps) and math.isfinite(probe.mean_steps)


def shard_seconds(probe: ProbeTiming, num_warmup: int, num_samples: int) -> float:
    """One shard's leapfrog steps at the probe's time per step (no compile)."""
    return seconds_per_step(probe) * sum(shard_steps(probe, num_warmup, num_samples))


def retry_seconds(probe: ProbeTiming, num_warmup: int, num_samples: int, retry: int) -> float:
    """The longest retry r ≥ 1 of a shard (no compile): 2^r times the warmup's steps, or 2^r
    times the sampling's (:func:`retry_iterations`)."""
    warmup, sampling = shard_steps(probe, num_warmup, num_samples)
    return seconds_per_step(probe) * retry_iterations(warmup, sampling, retry)


def retry_iterations[N: (int, float)](num_warmup: N, num_samples: N, retry: int) -> N:
    """The most iterations retry r ≥ 1 of a shard runs: 2^r·W + S on the warmup path, W + 2^r·S
    on the thinning path (a mix of the two runs fewer). Given the leapfrog steps of the warmup
    and of the sampling instead, the most steps."""
    grow = 2**retry
    return max(grow * num_warmup + num_samples, num_warmup + grow * num_samples)


def plan_job(
    probe: ProbeTiming,
    *,
    n_shards: int,
    n_ranks: int,
    points_per_shard: int,
    cores_per_rank: int,
    num_warmup: int,
    num_samples: int,
    max_retries: int,
    prepare_s: float,
    base_mb: float,
    rank0_peak_mb: float,
    overrides: str = "",
) -> JobPlan:
    """The job's estimate at ``n_ranks`` ranks (see the module docstring)."""
    per_rank = -(-n_shards // n_ranks)
    shard_s = shard_seconds(probe, num_warmup, num_samples)
    job_s = prepare_s + probe.compile_s + per_rank * shard_s
    upper = job_s + sum(
        probe.compile_s + retry_seconds(probe, num_warmup, num_samples, r)
        for r in range(1, max_retries + 1)
    )
    shards_mb = per_rank * points_per_shard * BYTES_PER_POINT / 2**20
    rank_mb = base_mb + shards_mb + probe.sampling_mb
    rank0_mb = max(rank0_peak_mb, rank_mb) + shards_mb
    line = sbatch_line(n_ranks, cores_per_rank, upper, max(rank0_mb, rank_mb), overrides)
    return JobPlan(
        n_shards=n_shards,
        n_ranks=n_ranks,
        points_per_shard=points_per_shard,
        shards_per_rank=per_rank,
        cores_per_rank=cores_per_rank,
        compile_s=probe.compile_s,
        shard_s=shard_s,
        prepare_s=prepare_s,
        job_s=job_s,
        job_s_with_retries=upper,
        memory_rank0_mb=rank0_mb,
        memory_rank_mb=rank_mb,
        sbatch=line,
    )


def slurm_time(seconds: float) -> str:
    """Slurm's ``--time`` format, rounded up to whole minutes: ``[D-]HH:MM:00``."""
    minutes = max(1, math.ceil(seconds / 60.0))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    hhmm = f"{hours:02d}:{mins:02d}:00"
    return f"{days}-{hhmm}" if days else hhmm


def sbatch_line(
    n_ranks: int, cores_per_rank: int, seconds: float, rank_mb: float, overrides: str = ""
) -> str:
    """The ``sbatch`` command for ``slurm/cpu.sbatch`` with margins (see the module docstring)."""
    mem_per_cpu = math.ceil(rank_mb * MEMORY_MARGIN / max(cores_per_rank, 1))
    parts = [
        "sbatch",
        f"--ntasks={n_ranks}",
        f"--cpus-per-task={cores_per_rank}",
        f"--time={slurm_time(seconds * TIME_MARGIN)}",
        f"--mem-per-cpu={mem_per_cpu}M",
        "slurm/cpu.sbatch",
    ]
    if overrides:
        parts.append(overrides)
    return " ".join(parts)


def describe(plan: JobPlan, probe: ProbeTiming) -> list[str]:
    """The console lines of a plan."""

    def hms(s: float) -> str:
        return (
            f"{s / 3600:.2f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"
        )

    return [
        f"plan: K = {plan.n_shards} shards of ~{plan.points_per_shard} points, "
        f"{plan.shards_per_rank} per rank on {plan.n_ranks} rank(s) × {plan.cores_per_rank} cores",
        f"plan: probe of one shard: {probe.warmup_iterations} + {probe.sampling_iterations} "
        f"iterations in {probe.wall_s:.1f} s ({probe.compile_s:.1f} s compiling), "
        f"{probe.warmup_steps:.0f} leapfrog steps in the warmup, {probe.mean_steps:.1f} per "
        f"sampling iteration, {probe.status}",
        f"plan: compile once per rank {hms(plan.compile_s)}, per shard {hms(plan.shard_s)}; "
        f"job {hms(plan.job_s)} "
        f"(up to {hms(plan.job_s_with_retries)} with retries), of which load and warm start "
        f"{hms(plan.prepare_s)}",
        f"plan: memory per rank {plan.memory_rank_mb:.0f} MB, rank 0 {plan.memory_rank0_mb:.0f} MB",
        f"plan: {plan.sbatch}",
    ]
