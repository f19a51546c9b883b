"""The rank that ended a job first, from the launcher reports of MPICH 4/5, Open MPI and srun
(the blocks as those launchers print them) and the pids in the rank logs."""

from __future__ import annotations

from pathlib import Path

from hpcfit.parallel.failures import first_failure, rank_pids

BAR = "=" * 83
MPICH5 = f"""
{BAR}
=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES
=   PID 14448 RUNNING AT vm
=   EXIT CODE: 9
=   CLEANING UP REMAINING PROCESSES
=   YOU CAN IGNORE THE BELOW CLEANUP MESSAGES
{BAR}
YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)
This typically refers to a problem with your application.
""".splitlines()
MPICH4 = f"""
{BAR}
=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES
=   RANK 3 PID 1234 RUNNING AT c001-001
=   KILLED BY SIGNAL: 9 (Killed)
{BAR}
{BAR}
=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES
=   RANK 0 PID 1231 RUNNING AT c001-001
=   KILLED BY SIGNAL: 9 (Killed)
{BAR}
""".splitlines()
OPENMPI = [
    "Primary job  terminated normally, but 1 process returned",
    "a non-zero exit code. Per user-direction, the job has been aborted.",
    "mpiexec noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed).",
]
SRUN = [
    "srun: error: node17: task 2: Out Of Memory",
    "srun: error: node17: tasks 0-1,3: Killed",
]


def begins(pid: int) -> str:
    return f"=== hpcfit run begins 2026-12-07 10:30:01: pid {pid} on vm ===\n"


def test_pids_come_from_each_rank_logs_last_run(tmp_path: Path) -> None:
    (tmp_path / "rank-0.log").write_text(begins(100) + "x\n" + begins(14447) + "y\n")
    (tmp_path / "rank-1.log").write_text(begins(14448) + "z\n")
    (tmp_path / "rank-x.log").write_text(begins(5))  # not a rank log
    assert rank_pids(tmp_path) == {14447: 0, 14448: 1}


def test_mpich5_names_the_pid_which_the_logs_turn_into_a_rank() -> None:
    got = first_failure(MPICH5, {14447: 0, 14448: 1})
    assert got == "rank 1 (pid 14448 on vm) ended first: Killed (signal 9)"
    assert first_failure(MPICH5, {1: 0}) is None  # a pid no log knows is not guessed


def test_mpich4_names_the_rank_and_the_first_block_wins() -> None:
    got = first_failure(MPICH4, {})
    assert got == "rank 3 (pid 1234 on c001-001) ended first: killed by signal 9 (SIGKILL)"


def test_open_mpi_and_srun_reports() -> None:
    assert first_failure(OPENMPI, {}) == (
        "rank 1 (pid 0 on vm) ended first: killed by signal 9 (SIGKILL)"
    )
    assert first_failure(SRUN, {}) == "rank 2 (on node17) ended first: Out Of Memory"
    assert first_failure(["hpcfit: the ranks exited with status 1"], {}) is None
