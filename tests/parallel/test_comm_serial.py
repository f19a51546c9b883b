"""SerialComm: the single-process twin of MPIComm behaves as a communicator of size 1."""

from __future__ import annotations

import numpy as np
import pytest

from hpcfit.parallel.comm import Comm, SerialComm, world


def test_serial_comm_is_a_comm() -> None:
    comm = SerialComm()
    assert isinstance(comm, Comm) and (comm.rank, comm.size) == (0, 1)


def test_serial_collectives_are_identities() -> None:
    comm = SerialComm()
    x = np.arange(12.0).reshape(4, 3)
    assert comm.bcast({"a": 1}) == {"a": 1}
    assert comm.scatter(["only"]) == "only"
    assert comm.gather(5) == [5]
    assert comm.allreduce_sum(2.5) == 2.5 and comm.allreduce_or(True)
    np.testing.assert_array_equal(comm.scatterv(x, [4]), x)
    np.testing.assert_array_equal(comm.gatherv(x), x)
    assert comm.split_shared() is comm


def test_serial_abort_exits() -> None:
    with pytest.raises(SystemExit) as info:
        SerialComm().abort(3)
    assert info.value.code == 3


def test_world_outside_mpiexec_is_serial() -> None:
    assert isinstance(world(), SerialComm)


def test_serial_notes_come_back_in_order() -> None:
    comm = SerialComm()
    assert comm.poll() == []
    comm.post({"shard_id": 0})
    comm.post({"shard_id": 1})
    comm.flush_posts()
    assert comm.poll() == [{"shard_id": 0}, {"shard_id": 1}]
    assert comm.poll() == []


def test_serial_comm_frees_as_a_context_manager() -> None:
    with SerialComm() as comm, comm.split(3) as sub:
        assert sub is comm and comm.split_shared() is comm
    comm.free()  # idempotent no-op
