"""The Kuramoto and NRPT jobs under MPI: every output file is bitwise identical to a
single-process run. Run with ``mpiexec -n 2`` and
``-n 4``: 7 members or replicas give unequal loads on both, and 3 replicas leave a rank empty on 4.

Rank 0 computes the single-process reference while the other ranks wait in a sleeping barrier.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import compose
from mpi4py import MPI

from hpcfit.parallel.comm import MPIComm, SerialComm
from hpcfit.pipelines import kuramoto, nrpt


def sleeping_barrier() -> None:
    request = MPI.COMM_WORLD.Ibarrier()
    while not request.Test():
        time.sleep(0.02)


def h5_tree(path: Path) -> dict[str, np.ndarray]:
    """Every dataset by path, except wall-clock times."""
    out: dict[str, np.ndarray] = {}

    def keep(name: str, node) -> None:
        if isinstance(node, h5py.Dataset) and not name.endswith("wall_s"):
            out[name] = node[()]

    with h5py.File(path, "r") as h5:
        h5.visititems(keep)
    return out


def run_both(module, overrides: tuple[str, ...], base: Path) -> tuple[Path, Path]:
    comm = MPIComm()
    cfg, resolved = compose(*overrides)
    serial, parallel = base / "ranks1", base / f"ranks{comm.size}"
    if comm.rank == 0:
        assert module.run(cfg, serial, resolved, SerialComm()) == 0
    sleeping_barrier()
    assert module.run(cfg, parallel, resolved, comm) == 0
    return serial, parallel


@pytest.mark.mpi
@pytest.mark.timeout(300)
@pytest.mark.parametrize("batch_chunk", ["null", "3"])
def test_kuramoto_is_bitwise_independent_of_rank_count(
    mpi_tmp_path: Path, batch_chunk: str
) -> None:
    """Default chunks of one member, and vmapped chunks of 3 padded to a fixed width."""
    overrides = (
        "workload=kuramoto",
        "kuramoto.n_oscillators=10",
        "kuramoto.n_members=7",
        "kuramoto.n_steps=25",
        "kuramoto.omega=per_member",
        f"device.batch_chunk={batch_chunk}",
    )
    serial, parallel = run_both(kuramoto, overrides, mpi_tmp_path)
    if MPI.COMM_WORLD.rank == 0:
        one = h5_tree(serial / "kuramoto" / "ensemble.h5")
        many = h5_tree(parallel / "kuramoto" / "ensemble.h5")
        assert one.keys() == many.keys()
        for key in one:
            assert np.array_equal(one[key], many[key]), key
        summary = json.loads((parallel / "kuramoto" / "summary.json").read_text())
        assert summary["ranks"] == MPI.COMM_WORLD.size
    sleeping_barrier()


@pytest.mark.mpi
@pytest.mark.timeout(300)
@pytest.mark.parametrize("n_chains", [7, 3])
def test_nrpt_is_bitwise_independent_of_rank_count(mpi_tmp_path: Path, n_chains: int) -> None:
    overrides = (
        "workload=nrpt",
        "nrpt.L=3",
        f"nrpt.n_chains={n_chains}",
        "nrpt.n_rounds=5",
        "nrpt.n_expl=2",
    )
    serial, parallel = run_both(nrpt, overrides, mpi_tmp_path / f"n{n_chains}")
    if MPI.COMM_WORLD.rank == 0:
        one = h5_tree(serial / "nrpt" / "rounds.h5")
        many = h5_tree(parallel / "nrpt" / "rounds.h5")
        assert one.keys() == many.keys() and one
        for key in one:
            assert np.array_equal(one[key], many[key]), key
        a = json.loads((serial / "nrpt" / "summary.json").read_text())
        b = json.loads((parallel / "nrpt" / "summary.json").read_text())
        assert a.pop("ranks") == 1 and b.pop("ranks") == MPI.COMM_WORLD.size
        for volatile in ("wall_s", "history", "device", "versions"):
            a.pop(volatile, None), b.pop(volatile, None)
        assert a == b
    sleeping_barrier()
