"""Sizing a CMC job: the arithmetic of the estimate, the sbatch line, and the plan mode run as a
user runs it (``hpcfit ... cmc.plan_only=true``)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpcfit.cmc.plan import resolve_n_shards
from hpcfit.cmc.sizing import (
    ProbeTiming,
    plan_job,
    retry_iterations,
    sbatch_line,
    shard_seconds,
    slurm_time,
)

# the job's 500 warmup iterations took 2500 leapfrog steps on the slowest chain, then 100
# sampling iterations of 5 steps: 3000 steps in 40 − 10 = 30 s, 0.01 s per step
PROBE = ProbeTiming(
    points=5000,
    warmup_iterations=500,
    sampling_iterations=100,
    wall_s=40.0,
    compile_s=10.0,
    warmup_steps=2500.0,
    mean_steps=5.0,
    status="ok",
    sampling_mb=100.0,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1.0, "00:01:00"), (60.0, "00:01:00"), (61.0, "00:02:00"), (3600.0, "01:00:00"),
     (86400.0, "1-00:00:00"), (90061.0, "1-01:02:00")],
)  # fmt: skip
def test_slurm_time_rounds_up_to_minutes(seconds, text):
    assert slurm_time(seconds) == text


def test_shard_time_is_leapfrog_steps_at_the_probe_rate():
    # 2500 warmup steps + 1000 sampling iterations × 5 steps, at 0.01 s per step
    assert shard_seconds(PROBE, 500, 1000) == pytest.approx(75.0)
    # a job with twice the warmup: twice the warmup steps
    assert shard_seconds(PROBE, 1000, 1000) == pytest.approx(100.0)


def test_a_probe_without_step_counts_is_timed_per_iteration():
    failed = dataclasses.replace(PROBE, warmup_steps=math.nan, mean_steps=math.nan)
    # 30 s over 600 iterations = 0.05 s per iteration; 1500 iterations → 75 s
    assert shard_seconds(failed, 500, 1000) == pytest.approx(75.0)


def test_the_probe_runs_the_whole_warmup_and_a_fraction_of_the_draws():
    from hpcfit.cmc.nuts import NutsSettings
    from hpcfit.cmc.probe import probe_settings

    s = probe_settings(NutsSettings(num_warmup=500, num_samples=1000), 0.1)
    assert (s.num_warmup, s.num_samples) == (500, 100)
    assert probe_settings(NutsSettings(num_warmup=50, num_samples=100), 0.1).num_samples == 20


def test_a_retry_runs_at_most_the_longer_of_its_two_paths():
    assert retry_iterations(500, 1000, 1) == 2500  # thinning: 500 + 2·1000 > 2·500 + 1000
    assert retry_iterations(2000, 100, 1) == 4100  # warmup: 2·2000 + 100 > 2000 + 2·100
    assert retry_iterations(500, 1000, 2) == 4500


def test_job_estimate_runs_ceil_k_over_r_shards_per_rank():
    plan = plan_job(
        PROBE,
        n_shards=10,
        n_ranks=4,
        points_per_shard=5000,
        cores_per_rank=4,
        num_warmup=500,
        num_samples=1000,
        max_retries=2,
        prepare_s=20.0,
        base_mb=300.0,
        rank0_peak_mb=900.0,
    )
    assert plan.shards_per_rank == 3
    # one compile per rank (10 s), then three shards of 75 s; a retry compiles again and takes
    # at most 2500 + 2·5000 then 2500 + 4·5000 steps (the thinning path) at 0.01 s each
    assert plan.job_s == pytest.approx(20.0 + 10.0 + 3 * 75.0)
    assert plan.job_s_with_retries == pytest.approx(plan.job_s + 10.0 + 125.0 + 10.0 + 225.0)
    shards_mb = 3 * 5000 * 64 / 2**20
    assert plan.memory_rank_mb == pytest.approx(300.0 + shards_mb + 100.0)
    assert plan.memory_rank0_mb == pytest.approx(900.0 + shards_mb)
    # 625 s × 1.5 = 937.5 s → 16 min; (900 + shards) MB × 1.25 / 4 cores per task
    assert "--ntasks=4 --cpus-per-task=4 --time=00:16:00" in plan.sbatch
    assert plan.sbatch.endswith("slurm/cpu.sbatch")


def test_sbatch_line_carries_the_overrides():
    line = sbatch_line(2, 2, 100.0, 1000.0, "data=file data.path=/d/x.h5")
    assert line == (
        "sbatch --ntasks=2 --cpus-per-task=2 --time=00:03:00 --mem-per-cpu=625M "
        "slurm/cpu.sbatch data=file data.path=/d/x.h5"
    )


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_plan_only_sizes_the_job_for_the_requested_ranks_without_sampling(tmp_path: Path):
    """One process plans a 4-rank job: K from the auto rule at R = 4, a probe of one shard,
    ``plan.json`` and ``run.json`` (state planned, exit 0), the sbatch line, no shard sampled."""
    env = {**os.environ, "HPCFIT_RUN_ID": "plan", "PYTHONUNBUFFERED": "1"}
    args = [
        "data=synthetic", "data.n_frames=40", "cmc.plan_only=true", "mpi.ranks=4",
        "cmc.num_chains=2", "cmc.num_warmup=100", "cmc.num_samples=100",
        "cmc.max_points_per_shard=1000", "cmc.min_points_per_shard=500", "hydra.run.dir=out",
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "hpcfit", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "planned" and record["exit_code"] == 0
    plan = json.loads((out / "plan.json").read_text())
    est, probe = plan["estimate"], plan["probe"]
    k = resolve_n_shards("auto", 3 * 40 * 39 // 2, 4, 1000, 500, 1)
    assert est["n_shards"] == k and est["n_ranks"] == 4
    assert est["shards_per_rank"] == -(-k // 4)
    assert probe["warmup_iterations"] == 100  # the job's warmup
    assert probe["sampling_iterations"] == 20  # 10 % of 100, at least 20
    assert probe["status"] == "ok" and probe["mean_steps"] >= 1
    assert probe["warmup_steps"] >= 100  # at least one step per iteration
    assert 0 <= probe["compile_s"] <= probe["wall_s"]
    assert est["compile_s"] == pytest.approx(probe["compile_s"])
    assert est["job_s"] == pytest.approx(
        est["prepare_s"] + est["compile_s"] + est["shards_per_rank"] * est["shard_s"]
    )
    assert est["sbatch"].startswith("sbatch --ntasks=4 --cpus-per-task=2 --time=")
    assert "data.n_frames=40" in est["sbatch"] and "plan_only" not in est["sbatch"]
    assert est["sbatch"] in proc.stdout + proc.stderr
    assert not (out / "cmc" / "shards").exists() and not (out / "results.h5").exists()


def test_draws_memory_counts_every_kept_nuts_field() -> None:
    from hpcfit.cmc.nuts import EXTRA_FIELDS
    from hpcfit.cmc.sizing import N_EXTRA_FIELDS, draws_mb

    assert N_EXTRA_FIELDS == len(EXTRA_FIELDS)
    # 2 shards × 4 chains × 1000 draws × (2·16 + 4) float64 values, held twice
    assert draws_mb(2, 4, 1000, 16) == pytest.approx(2 * 2 * 4 * 1000 * 36 * 8 / 2**20)
