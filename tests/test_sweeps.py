"""Sweeps and the job scripts' shell logic, without a cluster.

* ``hydra/launcher=slurm`` composes into submitit parameters whose generated job script asks
  for ``mpi.ranks`` tasks per node, ``cmc.num_chains`` cores per task and PMI2;
* the sbatch scripts parse, and their USR1 → stop → requeue logic behaves as documented when
  ``srun`` and ``scontrol`` are stand-ins (the real thing runs in ``tests/slurm/``);
* a local multirun (``hpcfit -m cmc.n_shards=2,4 mpi.ranks=2``) runs one 2-rank MPI job per
  sweep point (``slow``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY_CMC

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "slurm").glob("*.sbatch"))


def launcher_params(*overrides: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from hpcfit import config

    monkeypatch.setenv("HPCFIT_RUN_ID", "sweep-id")
    config.register()
    with initialize_config_dir(config_dir=str(config.config_dir()), version_base=None):
        cfg = compose(
            config_name="config",
            overrides=["hydra/launcher=slurm", *overrides],
            return_hydra_config=True,
        )
    return instantiate(cfg.hydra.launcher).params


def test_slurm_launcher_takes_ranks_and_chains_from_the_job_config(monkeypatch, tmp_path) -> None:
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    params = launcher_params("mpi.ranks=3", "cmc.num_chains=4", monkeypatch=monkeypatch)
    assert params["tasks_per_node"] == 3 and params["cpus_per_task"] == 4
    assert params["submitit_folder"] == "multirun/sweep-id/.submitit/%j"
    # the job script submitit generates from them, as the launcher maps its parameters
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor = submitit.AutoExecutor(folder=tmp_path, cluster="slurm")
    executor.update_parameters(
        **{
            (k if k in base else f"slurm_{k}"): v
            for k, v in params.items()
            if k not in ("submitit_folder", "max_num_timeout")
        }
    )
    script = executor._executor._make_submission_file_text("python -m submitit.core._submit", "u")
    lines = script.splitlines()
    assert "#SBATCH --ntasks-per-node=3" in lines and "#SBATCH --cpus-per-task=4" in lines
    srun = next(i for i, line in enumerate(lines) if line.startswith("srun "))
    setup = lines[:srun]
    for export in ("SLURM_MPI_TYPE=pmi2", "SLURM_CPU_BIND=cores"):
        assert f"export {export}" in setup, script
    assert any("mpich_shm_" in line for line in setup), script


def test_slurm_launcher_needs_mpi_ranks(monkeypatch) -> None:
    with pytest.raises(Exception, match="tasks_per_node"):
        launcher_params(monkeypatch=monkeypatch)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_job_scripts_parse_and_ask_for_pmi2_binding_and_requeue(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    text = script.read_text()
    for directive in ("#SBATCH --signal=B:USR1@300", "#SBATCH --requeue"):
        assert directive in text.splitlines(), (script.name, directive)
    assert "srun --mpi=pmi2 --cpu-bind=cores --kill-on-bad-exit=1" in text
    assert "export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK" in text


def test_local_cluster_scripts_parse() -> None:
    for script in sorted((REPO / "slurm" / "local").glob("*.sh")):
        subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)


FAKE_SRUN = """#!/bin/bash
# stand-in for srun: records its arguments, then runs like a step until killed or done
echo "$@" > "$FAKE_DIR/srun.args"
trap 'echo USR1 >> "$FAKE_DIR/srun.signals"' USR1
trap 'echo TERM >> "$FAKE_DIR/srun.signals"; exit 143' TERM
touch "$FAKE_DIR/srun.started"
for _ in $(seq 600); do
    [[ -e $FAKE_DIR/srun.exit ]] && exit "$(<"$FAKE_DIR/srun.exit")"
    sleep 0.05
done
exit 99
"""
FAKE_SCONTROL = """#!/bin/bash
echo "$@" >> "$FAKE_DIR/scontrol.calls"
"""


def run_batch_script(tmp_path: Path, *, usr1: bool, step_exit: int, grace: int = 0):
    """slurm/cpu.sbatch under bash with stand-ins for srun and scontrol; returns (rc, files)."""
    fake = tmp_path / "fake"
    fake.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    env = {
        "PATH": f"{fake}:/usr/bin:/bin",
        "FAKE_DIR": str(fake),
        "SLURM_JOB_ID": "42",
        "SLURM_NTASKS": "2",
        "SLURM_CPUS_PER_TASK": "3",
        "HPCFIT_USR1_GRACE": str(grace),
    }
    proc = subprocess.Popen(
        ["bash", str(REPO / "slurm" / "cpu.sbatch"), "cmc.seed=7"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (fake / "srun.started").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)
    if usr1:
        proc.send_signal(signal.SIGUSR1)
    else:
        (fake / "srun.exit").write_text(str(step_exit))
    out, _ = proc.communicate(timeout=60)

    def read(name: str) -> str:
        path = fake / name
        return path.read_text() if path.exists() else ""

    return proc.returncode, out, read


def test_usr1_stops_the_step_and_requeues_the_job(tmp_path: Path) -> None:
    rc, out, read = run_batch_script(tmp_path, usr1=True, step_exit=0)
    assert rc == 0, out
    assert read("srun.signals").split() == ["USR1", "TERM"], out  # USR1 first, then TERM
    assert read("scontrol.calls").split() == ["requeue", "42"], out
    args = read("srun.args").split()
    assert args[:5] == ["--mpi=pmi2", "--cpu-bind=cores", "--kill-on-bad-exit=1", "python", "-m"]
    assert "mpi.ranks=2" in args and "cmc.num_chains=3" in args and args[-1] == "cmc.seed=7"
    assert "step ended with status 143; requeueing job 42" in out, out


def test_a_failed_step_is_not_requeued_and_its_status_is_the_jobs(tmp_path: Path) -> None:
    rc, out, read = run_batch_script(tmp_path, usr1=False, step_exit=3)
    assert rc == 3, out
    assert read("scontrol.calls") == "" and read("srun.signals") == "", out


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.slow
def test_local_multirun_starts_one_mpi_job_per_point(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "hpcfit", "-m", *TINY_CMC, "cmc.n_shards=2,4", "mpi.ranks=2"]
    env = {**os.environ, "HPCFIT_RUN_ID": "local-sweep", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=560)
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, output
    sweep = tmp_path / "multirun" / "local-sweep"
    assert proc.stdout.count("hpcfit: starting 2 ranks:") == 2, output
    for point, shards in ((0, 2), (1, 4)):
        run_dir = sweep / str(point)
        record = json.loads((run_dir / "run.json").read_text())
        assert record["status"] == "ok" and record["ranks"] == 2, output
        assert json.loads((run_dir / "cmc" / "plan.json").read_text())["n_shards"] == shards
        rank1 = (run_dir / "rank-1.log").read_text()
        owned = [s for s in range(shards) if f"rank 1 start shard {s} attempt 0" in rank1]
        assert owned == list(range(1, shards, 2)), rank1  # shard s on rank s mod 2
        assert (run_dir / "overrides.yaml").exists() and (run_dir / "cmc" / "combined.npz").exists()
