"""Launch-mode detection: one row per launcher."""

from __future__ import annotations

import pytest

from hpcfit.runtime.env import detect, world_size_mismatch

ROWS = [
    ({}, ("launcher", 0, 1, "none")),
    ({"SLURM_NTASKS": "4", "SLURM_JOB_ID": "9"}, ("launcher", 0, 1, "none")),  # batch shell
    ({"PMI_RANK": "1", "PMI_SIZE": "4"}, ("rank", 1, 4, "pmi")),
    ({"PMI_RANK": "0", "PMI_SIZE": "1"}, ("launcher", 0, 1, "pmi")),  # mpiexec -n 1
    ({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3"}, ("rank", 2, 3, "openmpi")),
    ({"PMIX_RANK": "5"}, ("rank", 5, None, "pmix")),
    ({"SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2"}, ("rank", 1, 2, "slurm")),
    (
        {"SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2", "PMI_RANK": "1", "PMI_SIZE": "2"},
        ("rank", 1, 2, "pmi"),
    ),
]


@pytest.mark.parametrize(("env", "expected"), ROWS)
def test_detection_table(env: dict[str, str], expected: tuple) -> None:
    got = detect(env)
    assert (got.mode, got.rank, got.size, got.source) == expected
    assert got.is_rank == (expected[0] == "rank")


def test_srun_without_pmi_is_reported_with_the_fix() -> None:
    env = detect({"SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "2"})
    assert env.slurm_step
    message = world_size_mismatch(env, 1)
    assert message == "launcher started 2 tasks, MPI sees 1 — under Slurm use `srun --mpi=pmi2`"
    assert world_size_mismatch(env, 2) is None
    assert world_size_mismatch(detect({"PMIX_RANK": "0"}), 7) is None  # size unknown before init


def test_garbage_values_do_not_count() -> None:
    assert detect({"PMI_RANK": "x", "PMI_SIZE": "2"}).mode == "launcher"
