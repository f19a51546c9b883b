"""The whole job under MPI: bitwise rank invariance and resume.

Run with ``mpiexec -n 2`` and ``-n 4`` (``make test``). Rank 0 first computes the single-process
reference while the other ranks wait in a sleeping (non-blocking) barrier; then every rank runs
the same job on the world communicator and rank 0 compares the combined draws and the summary.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from helpers import TINY_CMC, combined_arrays, compose
from mpi4py import MPI

from hpcfit.parallel.comm import MPIComm, SerialComm
from hpcfit.pipelines import xpcs


def sleeping_barrier() -> None:
    request = MPI.COMM_WORLD.Ibarrier()
    while not request.Test():
        time.sleep(0.05)


@pytest.mark.mpi
@pytest.mark.timeout(900)
def test_combined_draws_are_bitwise_independent_of_rank_count(mpi_tmp_path) -> None:
    comm = MPIComm()
    cfg, resolved = compose(*TINY_CMC)
    serial_dir, parallel_dir = mpi_tmp_path / "ranks1", mpi_tmp_path / f"ranks{comm.size}"
    if comm.rank == 0:
        assert xpcs.run(cfg, serial_dir, resolved, SerialComm()) == 0
    sleeping_barrier()
    assert xpcs.run(cfg, parallel_dir, resolved, comm) == 0
    if comm.rank == 0:
        serial, parallel = combined_arrays(serial_dir), combined_arrays(parallel_dir)
        for key in serial:
            assert np.array_equal(serial[key], parallel[key]), key
        one = json.loads((serial_dir / "cmc" / "summary.json").read_text())
        many = json.loads((parallel_dir / "cmc" / "summary.json").read_text())
        assert one["parameters"] == many["parameters"]
        record = json.loads((parallel_dir / "run.json").read_text())
        assert record["ranks"] == comm.size
        owners = record["cmc"]["owners"]
        assert sorted(s for ids in owners for s in ids) == [0, 1, 2, 3]
    # every rank wrote its own log; only rank 0 wrote shared outputs
    assert (parallel_dir / f"rank-{comm.rank}.log").exists()
    sleeping_barrier()

    # resume on this rank count: delete two checkpoints, rerun, same draws, two shards rerun
    if comm.rank == 0:
        for s in (0, 3):
            (parallel_dir / "cmc" / "shards" / f"shard_{s:05d}.json").unlink()
    sleeping_barrier()
    assert xpcs.run(cfg, parallel_dir, resolved, comm) == 0
    rerun = comm._comm.gather(  # noqa: SLF001
        (parallel_dir / f"rank-{comm.rank}.log").read_text().count("attempt 0\n")
    )
    if comm.rank == 0:
        again = combined_arrays(parallel_dir)
        for key, value in combined_arrays(serial_dir).items():
            assert np.array_equal(again[key], value), key
        # first run: 4 start lines in total; the rerun adds exactly 2 (shards 0 and 3)
        assert sum(rerun) == 4 + 2, rerun
