"""A Hydra sweep on Slurm through ``hydra/launcher=slurm`` (hydra-submitit-launcher), against the
test cluster.

submitit runs hpcfit's pickled Hydra task function in every Slurm task, bypassing
``hpcfit.cli.main``; the task joins MPI itself (``cli._join_world``), so each sweep point is one
2-rank MPI job in its own sweep subdirectory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TINY_CMC

pytestmark = pytest.mark.slow


def test_submitit_sweep_runs_one_mpi_job_per_point(slurm_cluster, tmp_path: Path) -> None:
    argv = [
        sys.executable,
        "-m",
        "hpcfit",
        "-m",
        "hydra/launcher=slurm",
        *TINY_CMC,
        "cmc.n_shards=2",
        "mpi.ranks=2",
        "hydra.launcher.cpus_per_task=1",  # 2 ranks x 1 core on the 2-CPU test node
        "hydra.launcher.timeout_min=10",
        "cmc.seed=0,1",
    ]
    env = {**slurm_cluster.env, "HPCFIT_RUN_ID": "sweep"}
    try:
        proc = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=480
        )
    except subprocess.TimeoutExpired as exc:
        slurm_cluster.run("scancel", "--user=root", check=False)
        logs = "\n".join(p.read_text() for p in tmp_path.glob("multirun/**/*_log.*"))
        raise AssertionError(f"the sweep did not finish in {exc.timeout} s\n{logs}") from None
    logs = "\n".join(
        f"--- {p}\n{p.read_text(errors='replace')[-3000:]}"
        for p in sorted(tmp_path.glob("multirun/sweep/.submitit/*/*_log.*"))
    )
    message = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n{logs}"
    assert proc.returncode == 0, message

    sweep = tmp_path / "multirun" / "sweep"  # identical on the login node and in the tasks
    script = next(sweep.glob(".submitit/.submission_file_*.sh")).read_text()
    assert "#SBATCH --ntasks-per-node=2" in script and "#SBATCH --array=0-1" in script
    assert "export SLURM_MPI_TYPE=pmi2" in script, script
    for point, seed in ((0, 0), (1, 1)):
        run_dir = sweep / str(point)
        record = json.loads((run_dir / "run.json").read_text())
        assert record["status"] == "ok", message
        assert record["ranks"] == 2 and record["config"]["cmc"]["seed"] == seed, message
        affinities = [tuple(r["affinity"]) for r in record["rank_setup"]]
        assert len(set(affinities)) == 2, affinities  # srun bound the two ranks apart
        assert sorted(p.name for p in run_dir.glob("rank-*.log")) == ["rank-0.log", "rank-1.log"]
        assert (run_dir / "cmc" / "combined.npz").exists()
        assert not (run_dir / ".hydra").exists()  # output_subdir is off for every rank
