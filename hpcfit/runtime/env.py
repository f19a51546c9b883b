"""Which launch mode this process is in, as a pure function of its environment.

A process is in **rank mode** when a launcher made it one of several MPI ranks (`mpiexec -n 4
hpcfit`, `srun hpcfit`, a submitit task, a spawned worker), and in **launcher mode** otherwise.
The variables that prove it:

=================================  ===========================================
``PMI_RANK``, ``PMI_SIZE``         MPICH's ``mpiexec``; ``srun --mpi=pmi2``
``OMPI_COMM_WORLD_RANK``/``_SIZE`` Open MPI's ``mpirun``
``PMIX_RANK``                      PMIx launchers (the size is known after MPI init)
``SLURM_PROCID``,                  any ``srun`` step; ``SLURM_NTASKS`` alone proves nothing:
``SLURM_STEP_NUM_TASKS``           the batch shell has it too
=================================  ===========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RankEnv:
    """The launch facts of this process.

    ``size`` is None when only PMIx announced the rank (MPI tells the size after init).
    ``source`` names the variables that decided (``"pmi"``, ``"openmpi"``, ``"pmix"``,
    ``"slurm"`` or ``"none"``); ``slurm_step`` is True inside an ``srun`` step.
    """

    mode: str
    rank: int
    size: int | None
    source: str
    slurm_step: bool

    @property
    def is_rank(self) -> bool:
        return self.mode == "rank"


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name, "").strip()
    return int(value) if value.lstrip("-").isdigit() else None


def detect(env: Mapping[str, str]) -> RankEnv:
    """Classify the environment ``env`` (e.g. ``os.environ``) into launcher or rank mode."""
    slurm_step = _int(env, "SLURM_STEP_NUM_TASKS") is not None and "SLURM_PROCID" in env
    candidates = (
        ("pmi", "PMI_RANK", "PMI_SIZE"),
        ("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
        ("slurm", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS"),
    )
    for source, rank_var, size_var in candidates:
        rank, size = _int(env, rank_var), _int(env, size_var)
        if rank is not None and size is not None:
            mode = "rank" if size > 1 else "launcher"
            return RankEnv(mode, rank, size, source, slurm_step)
    pmix_rank = _int(env, "PMIX_RANK")
    if pmix_rank is not None:
        return RankEnv("rank", pmix_rank, None, "pmix", slurm_step)
    return RankEnv("launcher", 0, 1, "none", slurm_step)


def world_size_mismatch(expected: RankEnv, mpi_size: int) -> str | None:
    """The error text when the launcher and MPI disagree on the number of ranks, else None."""
    if expected.size is None or expected.size == mpi_size:
        return None
    hint = " — under Slurm use `srun --mpi=pmi2`" if expected.slurm_step else ""
    return f"launcher started {expected.size} tasks, MPI sees {mpi_size}{hint}"
