"""Launcher mode: argv, launcher choice, exit-status and signal propagation, and a rank killed
mid-shard under the real ``mpiexec``, then resumed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_CMC, combined_arrays

from hpcfit.config import Launcher
from hpcfit.errors import ConfigError
from hpcfit.launch import (
    choose_launcher,
    rank_argv,
    rank_capacity,
    require_capacity,
    spawn,
    unfinished_work,
)
from hpcfit.pipelines.status import RUN_BEGINS


def test_auto_launcher_uses_srun_only_inside_an_allocation(tmp_path: Path) -> None:
    fake = tmp_path / "srun"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    inside = {"SLURM_JOB_ID": "7", "PATH": str(tmp_path)}
    assert choose_launcher(Launcher.auto, inside) is Launcher.srun
    assert choose_launcher(Launcher.auto, {"PATH": str(tmp_path)}) is Launcher.mpiexec
    assert choose_launcher(Launcher.auto, {"SLURM_JOB_ID": "7", "PATH": "/nonexistent"}) is (
        Launcher.mpiexec
    )
    assert choose_launcher(Launcher.mpiexec, inside) is Launcher.mpiexec


def test_rank_argv(tmp_path: Path) -> None:
    python = sys.executable
    worker = [python, "-m", "mpi4py", "-m", "hpcfit.rank", str(tmp_path)]
    mpiexec = rank_argv(Launcher.mpiexec, 3, 4, tmp_path)
    assert mpiexec[1:] == ["-n", "3", *worker]
    assert Path(mpiexec[0]).name == "mpiexec"
    assert Path(mpiexec[0]).parent == Path(python).parent  # the venv's mpich wheel first
    srun = rank_argv(Launcher.srun, 2, 4, tmp_path)
    assert srun == ["srun", "--mpi=pmi2", "-n", "2", "-c", "4", "--cpu-bind=cores", *worker]


@pytest.mark.parametrize(("code", "expected"), [(0, 0), (3, 3), (70, 70)])
def test_spawn_returns_the_exit_status(code: int, expected: int) -> None:
    assert spawn([sys.executable, "-c", f"raise SystemExit({code})"]) == expected


def test_spawn_reports_death_by_signal_as_128_plus_n() -> None:
    argv = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"]
    assert spawn(argv) == 128 + signal.SIGTERM


def test_spawn_forwards_usr1(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGUSR1, lambda *a: sys.exit(42))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)\n"
    )

    def send_usr1_when_ready() -> None:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGUSR1)

    import threading

    threading.Thread(target=send_usr1_when_ready, daemon=True).start()
    assert spawn([sys.executable, "-c", child]) == 42


def test_unfinished_work_names_rank_and_shard(tmp_path: Path) -> None:
    (tmp_path / "rank-1.log").write_text(
        "t INFO hpcfit: rank 1 start shard 1 attempt 0\n"
        "t INFO hpcfit: rank 1 end shard 1 attempt 0: ok (2.0 s)\n"
        "t INFO hpcfit: rank 1 start shard 3 attempt 0\n"
    )
    (tmp_path / "rank-0.log").write_text(
        "t INFO hpcfit: rank 0 start shard 0 attempt 0\n"
        "t INFO hpcfit: rank 0 end shard 0 attempt 0: ok\n"
    )
    assert unfinished_work(tmp_path) == ["rank 1 started shard 3 attempt 0 and did not finish it"]


def test_unfinished_work_reads_only_the_last_run_of_a_log(tmp_path: Path) -> None:
    """A previous run that died in shard 3 is not blamed for this run's death in shard 5."""
    (tmp_path / "rank-1.log").write_text(
        f"{RUN_BEGINS} 2026-12-01 10:00:00: pid 1 on a ===\n"
        "t INFO hpcfit: rank 1 start shard 3 attempt 0\n"
        f"{RUN_BEGINS} 2026-12-01 11:00:00: pid 2 on a ===\n"
        "t INFO hpcfit: rank 1 start shard 3 attempt 0\n"
        "t INFO hpcfit: rank 1 end shard 3 attempt 0: sampler ok (2.0 s)\n"
        "t INFO hpcfit: rank 1 start shard 5 attempt 0\n"
    )
    assert unfinished_work(tmp_path) == ["rank 1 started shard 5 attempt 0 and did not finish it"]


# Later shards of a rank compile nothing, so the tiny job's shard would take 0.1 s: 8000 draws
# make each take several seconds, long enough to kill a rank inside one.
LAUNCH_JOB = (*TINY_CMC, "cmc.num_samples=8000")


def hpcfit(run_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "hpcfit", *LAUNCH_JOB, *args, f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def rank_pid(run_dir: Path, rank: int) -> int | None:
    """The pid of the worker of ``run_dir`` whose MPI rank is ``rank``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"hpcfit.rank" in cmd
            and str(run_dir).encode() in cmd
            and (f"PMI_RANK={rank}".encode() in env)
        ):
            return int(entry.name)
    return None


def wait_for(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} did not appear in {path} within {timeout} s")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted single-process run of the tiny job."""
    run_dir = tmp_path_factory.mktemp("launch") / "reference"
    job = hpcfit(run_dir, "mpi.ranks=1")
    out, _ = job.communicate(timeout=600)
    assert job.returncode == 0, out
    return run_dir


def assert_same_draws(run_dir: Path, reference: Path) -> None:
    for key, value in combined_arrays(reference).items():
        assert np.array_equal(combined_arrays(run_dir)[key], value), key


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_rank_mode_under_mpiexec_matches_one_process(tmp_path: Path, reference: Path) -> None:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    argv = [str(mpiexec), "-n", "2", sys.executable, "-m", "hpcfit", *LAUNCH_JOB]
    run_dir = tmp_path / "ranks"
    proc = subprocess.run(
        [*argv, f"hydra.run.dir={run_dir}"], capture_output=True, text=True, timeout=500
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_same_draws(run_dir, reference)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["ranks"] == 2 and [r["rank"] for r in record["rank_setup"]] == [0, 1]
    assert sorted(p.name for p in run_dir.glob("rank-*.log")) == ["rank-0.log", "rank-1.log"]
    assert not (run_dir / ".hydra").exists()
    wrong = subprocess.run(
        [*argv, "mpi.ranks=3", f"hydra.run.dir={tmp_path / 'wrong'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert wrong.returncode == 2, wrong.stdout + wrong.stderr
    assert "hpcfit: error: mpi.ranks: expected 2 (the world size), got 3" in wrong.stderr


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_killed_rank_ends_the_job_promptly_and_a_rerun_resumes(
    tmp_path: Path, reference: Path
) -> None:
    run_dir = tmp_path / "killed"
    job = hpcfit(run_dir, "mpi.ranks=2")
    try:
        # rank 1 owns shards 1 and 3: kill it in shard 3, after shard 1 is checkpointed
        wait_for(run_dir / "rank-1.log", "rank 1 start shard 3 attempt 0", timeout=600)
        pid = rank_pid(run_dir, 1)
        assert pid is not None, "no worker process with PMI_RANK=1 found"
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        assert "end shard 3" not in (run_dir / "rank-1.log").read_text(), "killed too late"
        out, _ = job.communicate(timeout=120)
        elapsed = time.monotonic() - killed_at
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0, out
    assert elapsed < 60, f"job took {elapsed:.0f} s to end after the kill"
    assert "rank 1 started shard 3 attempt 0 and did not finish it" in out, out
    # MPICH's report names the pid that failed first; the rank logs turn it into rank 1
    assert f"hpcfit: rank 1 (pid {pid} on " in out and ") ended first" in out, out
    assert (run_dir / "cmc" / "shards" / "shard_00001.json").exists()
    # the launcher gives run.json the job's true end, not "running" (nor an earlier success)
    killed = json.loads((run_dir / "run.json").read_text())
    assert killed["status"] in ("killed", "failed") and killed["exit_code"] == job.returncode
    assert "rank 1 started shard 3" in killed["message"]
    assert killed["message"].startswith(f"rank 1 (pid {pid} on ")

    resumed = hpcfit(run_dir, "mpi.ranks=2")
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    log1 = (run_dir / "rank-1.log").read_text()
    assert "shard 1 reused from its checkpoint" in log1
    assert_same_draws(run_dir, reference)  # as if it had never been interrupted
    record = json.loads((run_dir / "run.json").read_text())
    assert record["ranks"] == 2 and record["status"] == "ok"
    assert len(record["rank_setup"]) == 2
    assert all(r["local_devices"] >= 2 for r in record["rank_setup"])


def test_missing_data_file_stops_before_any_rank_starts(tmp_path: Path) -> None:
    run_dir = tmp_path / "bad"
    argv = [
        sys.executable,
        "-m",
        "hpcfit",
        "mpi.ranks=2",
        "data=file",
        "data.dt=0.1",
        f"data.path={tmp_path / 'absent.h5'}",
        f"hydra.run.dir={run_dir}",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"hpcfit: error: {tmp_path / 'absent.h5'}: data.path: file not found "
        "(expected an existing .h5/.npz)"
    ]
    assert "starting 2 ranks" not in proc.stdout
    assert not run_dir.exists() or not any(run_dir.iterdir())


def test_spawn_copies_the_output_and_keeps_its_last_lines(capfd) -> None:
    """The ranks' output still reaches the console, and the launcher keeps the last lines
    (where the MPI launcher reports the rank that failed). The two streams are read by two
    threads, so only the order within a stream is fixed."""
    child = (
        "import sys\nfor k in range(5): print(f'line {k}')\n"
        "print('oops', file=sys.stderr)\nsys.exit(3)"
    )
    tail: deque[str] = deque(maxlen=6)
    assert spawn([sys.executable, "-c", child], tail=tail) == 3
    out, err = capfd.readouterr()
    lines = [f"line {k}" for k in range(5)]
    assert out.splitlines() == lines and err.strip() == "oops"
    assert sorted(tail) == sorted([*lines, "oops"])  # both streams are kept
    short: deque[str] = deque(maxlen=3)
    assert spawn([sys.executable, "-c", "for k in range(10): print(k)"], tail=short) == 0
    assert list(short) == ["7", "8", "9"]  # the last lines


def test_rank_capacity_is_the_slurm_task_count_inside_an_allocation() -> None:
    inside = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "16"}
    assert rank_capacity(inside) == (16, "tasks of this Slurm allocation (SLURM_NTASKS)")
    cores = len(os.sched_getaffinity(0))
    assert rank_capacity({"SLURM_NTASKS": "16"}) == (cores, "CPU cores this process may use")
    require_capacity(16, False, inside)
    with pytest.raises(ConfigError, match=r"mpi.ranks: 17 ranks exceed the 16 tasks"):
        require_capacity(17, False, inside)
    require_capacity(17, True, inside)  # mpi.oversubscribe=true


def test_more_ranks_than_cores_stop_before_any_rank_starts(tmp_path: Path) -> None:
    """``mpi.ranks=1000`` on this machine: one line, exit 2, no rank started, no run files."""
    run_dir = tmp_path / "many"
    argv = [sys.executable, "-m", "hpcfit", "mpi.ranks=1000", f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    cores = len(os.sched_getaffinity(0))
    assert proc.stderr.strip().splitlines() == [
        f"hpcfit: error: mpi.ranks: 1000 ranks exceed the {cores} CPU cores this process may "
        "use; lower mpi.ranks or set mpi.oversubscribe=true"
    ]
    assert "starting" not in proc.stdout and not list(run_dir.glob("rank-*.log"))
