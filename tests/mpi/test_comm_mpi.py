"""MPIComm under mpiexec (size-agnostic: valid for any number of ranks)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def comm():
    from hpcfit.parallel.comm import MPIComm

    return MPIComm()


def test_world_matches_mpi(comm) -> None:
    from mpi4py import MPI

    assert (comm.rank, comm.size) == (MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size())


def test_pickle_collectives(comm) -> None:
    root_obj = {"seed": 7} if comm.rank == 0 else None
    assert comm.bcast(root_obj) == {"seed": 7}
    items = [f"item{r}" for r in range(comm.size)] if comm.rank == 0 else None
    assert comm.scatter(items) == f"item{comm.rank}"
    gathered = comm.gather(comm.rank * 10)
    assert gathered == ([10 * r for r in range(comm.size)] if comm.rank == 0 else None)
    assert comm.allreduce_sum(float(comm.rank)) == sum(range(comm.size))
    assert comm.allreduce_or(comm.rank == comm.size - 1)


def test_buffer_scatterv_gatherv_roundtrip(comm) -> None:
    counts = [r + 2 for r in range(comm.size)]  # unequal blocks
    full = np.arange(sum(counts) * 3, dtype=np.float64).reshape(-1, 3) * 0.5
    local = comm.scatterv(full if comm.rank == 0 else None, counts)
    start = sum(counts[: comm.rank])
    np.testing.assert_array_equal(local, full[start : start + counts[comm.rank]])
    assert local.dtype == np.float64
    back = comm.gatherv(local)
    if comm.rank == 0:
        np.testing.assert_array_equal(back, full)
    else:
        assert back is None


def test_integer_buffers_keep_dtype(comm) -> None:
    counts = [3] * comm.size
    full = np.arange(3 * comm.size, dtype=np.int32)
    local = comm.scatterv(full if comm.rank == 0 else None, counts)
    assert local.dtype == np.int32 and local.tolist() == list(
        range(3 * comm.rank, 3 * comm.rank + 3)
    )


def test_shared_split_covers_local_ranks(comm) -> None:
    node = comm.split_shared()
    assert 1 <= node.size <= comm.size and 0 <= node.rank < node.size


def test_world_is_mpi_when_launched_on_several_ranks(comm) -> None:
    from hpcfit.parallel.comm import MPIComm, SerialComm, world

    expected = MPIComm if comm.size > 1 else SerialComm
    assert isinstance(world(), expected)


def test_notes_reach_rank_zero_from_every_rank(comm) -> None:
    import time

    if comm.rank != 0:
        comm.post({"from": comm.rank, "n": 1})
        comm.post({"from": comm.rank, "n": 2})
    comm.post({"from": comm.rank, "n": 0}, dest=comm.rank)  # a note to oneself
    comm.flush_posts()
    expected = 1 + (2 * (comm.size - 1) if comm.rank == 0 else 0)
    notes, deadline = [], time.monotonic() + 30
    while len(notes) < expected and time.monotonic() < deadline:
        notes += comm.poll()
        time.sleep(0.01)
    assert len(notes) == expected
    if comm.rank == 0:
        for r in range(1, comm.size):  # each sender's notes arrive in order
            assert [n["n"] for n in notes if n["from"] == r] == [1, 2]
    comm.barrier()


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int8])
def test_allgather_rows_in_rank_order_with_an_empty_rank(comm, dtype) -> None:
    counts = [(r + 1) % 3 for r in range(comm.size)]  # rank 2 (when present) sends no rows
    start = sum(counts[: comm.rank])
    local = np.arange(start, start + counts[comm.rank], dtype=np.int64)[:, None] * 10 + [0, 1]
    local = local.astype(dtype)
    expected = (np.arange(sum(counts))[:, None] * 10 + [0, 1]).astype(dtype)
    for given in (None, counts):
        out = comm.allgather_rows(local, given)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, expected)


@pytest.mark.timeout(240)
def test_every_communicator_is_freed(comm) -> None:
    """MPICH has about 2000 context ids per process: 2500 lifetimes of an MPIComm with a split
    and a node split exhaust them unless each clone and sub-communicator is released."""
    from mpi4py import MPI

    from hpcfit.parallel.comm import MPIComm

    for _ in range(2500):
        with MPIComm() as world, world.split(world.rank % 2) as half, world.split_shared() as node:
            assert half.size >= 1 and node.size >= 1
    assert world._comm == MPI.COMM_NULL  # noqa: SLF001
    comm.barrier()


def test_notes_and_collectives_share_one_communicator(comm) -> None:
    """Notes travel on the job's one clone with their own tag, interleaved with collectives."""
    import time

    if comm.rank != 0:
        comm.post({"from": comm.rank})
    total = comm.allreduce_sum(1.0)  # a collective while the notes are in flight
    comm.flush_posts()
    notes, deadline = [], time.monotonic() + 30
    while comm.rank == 0 and len(notes) < comm.size - 1 and time.monotonic() < deadline:
        notes += comm.poll()
        time.sleep(0.01)
    assert total == comm.size
    if comm.rank == 0:
        assert sorted(n["from"] for n in notes) == list(range(1, comm.size))
    comm.barrier()
