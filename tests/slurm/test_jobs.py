"""The repository's own job scripts, submitted to a real one-node Slurm.

The node has the machine's 2 CPUs: CMC jobs run 2 ranks bound to one core each
(``--ntasks=2 --cpus-per-task=1``) with 2 chains per rank (``cmc.num_chains=2`` after the script
name overrides the script's chains = ``--cpus-per-task``), on the tiny CMC problem of
``helpers.TINY_CMC`` with 60 frames in 16 shards (``CMC_JOB``). Command-line options override the
scripts' ``#SBATCH`` lines.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_CMC, combined_arrays

from hpcfit.io.checkpoint import load_shard

REPO = Path(__file__).resolve().parents[2]
CPU = str(REPO / "slurm" / "cpu.sbatch")
SWEEP = str(REPO / "slurm" / "sweep_array.sbatch")
TWO_RANKS = ("--ntasks=2", "--cpus-per-task=1", "--time=15")
# 16 shards of ~220 points: a rank compiles its sampler once and then runs 8 shards of about a
# second each, so a signal sent when the first checkpoint appears lands mid-run
CMC_JOB = (*TINY_CMC, "cmc.num_chains=2", "data.n_frames=60", "cmc.n_shards=16")
JOB_TIMEOUT = 420  # s: a 2-rank tiny CMC job takes 35-90 s on a (loaded) 2-core machine


def output(cluster, job_id: str) -> str:
    return cluster.report(job_id)


def run_record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


@pytest.fixture(scope="module")
def cmc_job(slurm_cluster, tmp_path_factory) -> tuple[Path, str]:
    """slurm/cpu.sbatch, 2 ranks, run to completion: (submit dir, job id)."""
    cwd = tmp_path_factory.mktemp("cpu-job")
    job = slurm_cluster.sbatch(*TWO_RANKS, CPU, *CMC_JOB, cwd=cwd)
    slurm_cluster.assert_completed(job, JOB_TIMEOUT)
    return cwd, job


def test_multi_rank_cmc_job_completes(slurm_cluster, cmc_job) -> None:
    cwd, job = cmc_job
    run_dir = cwd / "runs" / job  # the script's run id is the job id
    log = output(slurm_cluster, job)
    record = run_record(run_dir)
    assert record["status"] == "ok" and record["exit_code"] == 0, log
    assert record["ranks"] == 2, log
    assert sorted(p.name for p in run_dir.glob("rank-*.log")) == ["rank-0.log", "rank-1.log"]
    # srun --cpu-bind=cores: each rank bound to its own core, kept by hpcfit's pinning
    affinities = [tuple(r["affinity"]) for r in record["rank_setup"]]
    assert len(set(affinities)) == 2 and all(len(a) == 1 for a in affinities), affinities
    assert all(r["local_devices"] == 2 for r in record["rank_setup"]), record["rank_setup"]
    assert (run_dir / "cmc" / "combined.npz").exists() and (run_dir / "results.h5").exists()
    assert not (run_dir / "REQUEUE").exists()


@pytest.mark.timeout(1100)  # longer than the sum of the waits below, so they report first
def test_usr1_requeues_and_the_job_resumes_bitwise(slurm_cluster, cmc_job, tmp_path) -> None:
    """USR1 to the batch shell mid-run: the step stops, finished shards stay valid
    checkpoints, the job is requeued under its id and its second start reuses them; the final
    draws equal those of the uninterrupted job bit for bit."""
    ref_cwd, ref_job = cmc_job
    # no grace: ranks that ignore USR1 (MPICH installs its own handler) get SIGTERM at once
    job = slurm_cluster.sbatch(
        *TWO_RANKS, CPU, *CMC_JOB, cwd=tmp_path, env={"HPCFIT_USR1_GRACE": "0"}
    )
    run_dir = tmp_path / "runs" / job
    shards = run_dir / "cmc" / "shards"

    def first_shard_done(records) -> bool:
        if records and records[0]["JobState"] in ("COMPLETED", "FAILED", "CANCELLED"):
            raise AssertionError(f"job ended before any checkpoint\n{output(slurm_cluster, job)}")
        return (shards / "shard_00000.json").exists()

    slurm_cluster.wait(job, JOB_TIMEOUT, until=first_shard_done)
    slurm_cluster.run("scancel", "--batch", "--signal=USR1", job)
    records = slurm_cluster.wait(
        job, 120, until=lambda recs: recs and recs[0].get("Restarts") == "1"
    )
    assert records[0]["JobState"] in ("PENDING", "REQUEUED"), output(slurm_cluster, job)

    # between the two starts: every checkpoint present is complete and readable
    done = sorted(int(p.stem.split("_")[1]) for p in shards.glob("shard_*.json"))
    assert 1 <= len(done) < 16, f"checkpoints {done}: not interrupted mid-run"
    for shard_id in done:
        fp = json.loads((shards / f"shard_{shard_id:05d}.json").read_text())["fingerprint"]
        result, reason = load_shard(shards, shard_id, fp)
        assert result is not None and reason == "", f"shard {shard_id}: {reason}"
    assert not (run_dir / "REQUEUE").exists()

    # A requeued job is held for CredExpire + 1 s (about 2 min): when its stopped start ends,
    # slurmd revokes the job's credential and refuses ("already killed") any start whose
    # credential is dated no later than that revocation, in whole seconds. Release it early
    # only once the stopped start has fully ended (PENDING, no longer REQUEUED: epilog done)
    # and the clock has left the revocation's second.
    slurm_cluster.wait(job, 120, until=lambda recs: recs and recs[0]["JobState"] == "PENDING")
    time.sleep(2)
    slurm_cluster.run("scontrol", "update", f"jobid={job}", "starttime=now")
    records = slurm_cluster.assert_completed(job, JOB_TIMEOUT)
    assert records[0]["Restarts"] == "1"
    log = output(slurm_cluster, job)
    assert "USR1 received" in log and "(restart 1)" in log, log
    rank_logs = "".join(p.read_text() for p in run_dir.glob("rank-*.log"))
    for shard_id in done:
        assert f"shard {shard_id} reused from its checkpoint" in rank_logs, log
    assert run_record(run_dir)["status"] == "ok"
    reference = combined_arrays(ref_cwd / "runs" / ref_job)
    resumed = combined_arrays(run_dir)
    assert reference.keys() == resumed.keys()
    for key, value in reference.items():
        assert np.array_equal(resumed[key], value), key


def test_array_sweep_completes(slurm_cluster, tmp_path) -> None:
    """slurm/sweep_array.sbatch: one array task per line of the sweep file, each in
    runs/<array job>_<task> with that line's overrides."""
    (tmp_path / "sweep.txt").write_text("cmc.seed=0\ncmc.seed=1 cmc.num_samples=30\n")
    job = slurm_cluster.sbatch(
        "--array=0-1",
        "--ntasks=1",
        "--cpus-per-task=1",
        "--time=15",
        SWEEP,
        "sweep.txt",
        *TINY_CMC,
        "cmc.num_chains=2",
        "cmc.n_shards=1",
        cwd=tmp_path,
    )
    records = slurm_cluster.assert_completed(job, JOB_TIMEOUT)
    assert sorted(r["ArrayTaskId"] for r in records) == ["0", "1"], output(slurm_cluster, job)
    draws = []
    for task, (seed, samples) in enumerate([(0, 40), (1, 30)]):
        run_dir = tmp_path / "runs" / f"{job}_{task}"
        record = run_record(run_dir)
        assert record["status"] == "ok", output(slurm_cluster, job)
        assert record["config"]["cmc"]["seed"] == seed
        assert record["config"]["cmc"]["num_samples"] == samples
        draws.append(combined_arrays(run_dir)["draws_theta"])
    assert draws[0].shape[1] == 40 and draws[1].shape[1] == 30


def test_a_failing_job_fails_promptly_with_its_status(slurm_cluster, tmp_path) -> None:
    """Bad input on every rank: the step exits 2 and so does the job (FAILED, ExitCode 2:0)."""
    job = slurm_cluster.sbatch(
        *TWO_RANKS,
        CPU,
        "data=file",
        "data.dt=0.1",
        f"data.path={tmp_path / 'absent.h5'}",
        "cmc.num_chains=2",
        cwd=tmp_path,
    )
    records = slurm_cluster.wait(job, 180)
    log = output(slurm_cluster, job)
    assert (records[0]["JobState"], records[0]["ExitCode"]) == ("FAILED", "2:0"), log
    assert "hpcfit: error:" in log and "absent.h5" in log, log


ROUTED = {
    "kuramoto": ("kuramoto.n_oscillators=16", "kuramoto.n_members=4", "kuramoto.n_steps=20"),
    "nrpt": ("nrpt.n_chains=4", "nrpt.n_rounds=4"),
}


@pytest.mark.parametrize("workload", sorted(ROUTED))
def test_mixed_script_runs_the_routed_workloads(slurm_cluster, tmp_path, workload) -> None:
    """slurm/gpu_mixed.sbatch on the GPU-less test node (--gpus-per-node=0): every rank takes
    the cpu role, and the routed workload runs on 2 ranks."""
    job = slurm_cluster.sbatch(
        "--gpus-per-node=0",
        "--ntasks-per-node=2",
        "--cpus-per-task=1",
        "--time=10",
        str(REPO / "slurm" / "gpu_mixed.sbatch"),
        f"workload={workload}",
        *ROUTED[workload],
        cwd=tmp_path,
    )
    slurm_cluster.assert_completed(job, 240)
    record = run_record(tmp_path / "runs" / job)
    log = output(slurm_cluster, job)
    assert record["status"] == "ok" and record["ranks"] == 2, log
    assert record["config"]["workload"]["name"] == workload, record["config"]["workload"]
    assert record["config"]["device"]["gpus_per_node"] in (0, "0"), record["config"]["device"]
    assert [r.get("role") for r in record["rank_setup"]] == ["cpu", "cpu"], log
