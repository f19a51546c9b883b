"""The MPI seam: a ``Comm`` protocol with a serial twin and an mpi4py implementation.

Every stage takes a ``comm``; only this module imports mpi4py, so every stage and pipeline runs in
plain pytest on :class:`SerialComm`. :class:`MPIComm` works on a *clone* of ``COMM_WORLD`` so
library traffic never mixes with other users of the world communicator: one clone per process
(progress notes use their own tag on it; MPI never matches point-to-point messages with
collectives), and every sub-communicator (``split``, ``split_shared``) is owned by the
``MPIComm`` that wraps it and released by :meth:`MPIComm.free` (or ``with``). Lower-case methods
move picklable Python objects (metadata, records of a few MB); the capitalised
``Scatterv``/``Gatherv`` move contiguous float64/int arrays through buffers.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Comm(Protocol):
    """What stages need from a communicator."""

    @property
    def rank(self) -> int: ...

    @property
    def size(self) -> int: ...

    def bcast(self, obj: Any, root: int = 0) -> Any: ...

    def scatter(self, objs: Sequence[Any] | None, root: int = 0) -> Any: ...

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None: ...

    def allreduce_sum(self, value: float) -> float: ...

    def allreduce_or(self, flag: bool) -> bool: ...

    def barrier(self) -> None: ...

    def scatterv(
        self, array: np.ndarray | None, counts: Sequence[int], root: int = 0
    ) -> np.ndarray:
        """Split ``array`` (on root) along axis 0 into ``counts`` rows per rank."""
        ...

    def gatherv(self, local: np.ndarray, root: int = 0) -> np.ndarray | None:
        """Concatenate every rank's rows along axis 0 on root (None elsewhere)."""
        ...

    def allgather_rows(self, local: np.ndarray, counts: Sequence[int] | None = None) -> np.ndarray:
        """Every rank's rows concatenated along axis 0 in rank order, on every rank.

        Row shape and dtype must agree across ranks; a rank may contribute zero rows. ``counts``
        (rows per rank, known to every rank) saves the exchange of the row counts."""
        ...

    def split_shared(self) -> Comm:
        """The node-local sub-communicator (ranks sharing memory)."""
        ...

    def split(self, color: int) -> Comm:
        """The sub-communicator of the ranks that pass the same ``color`` (collective; ranks
        keep their relative order)."""
        ...

    def abort(self, code: int = 1) -> None: ...

    def free(self) -> None:
        """Release the communicator (a no-op for the serial twin); later use is an error."""
        ...

    def __enter__(self) -> Comm: ...

    def __exit__(self, *exc: object) -> None: ...

    def post(self, obj: Any, dest: int = 0) -> None:
        """Send a small note to ``dest`` without waiting (progress lines; never a collective)."""
        ...

    def poll(self) -> list[Any]:
        """The notes that have arrived for this rank so far (possibly none)."""
        ...

    def flush_posts(self) -> None:
        """Wait until every note this rank posted has been delivered."""
        ...


_NOTE_TAG = 77
_MAX_POLL_S = 0.01  # longest sleep between polls of a pending collective (s)


class SerialComm:
    """One process: every collective is the identity."""

    rank = 0
    size = 1

    def __init__(self) -> None:
        self._notes: list[Any] = []

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def scatter(self, objs: Sequence[Any] | None, root: int = 0) -> Any:
        assert objs is not None and len(objs) == 1, "scatter needs exactly one item per rank"
        return objs[0]

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        return [obj]

    def allreduce_sum(self, value: float) -> float:
        return value

    def allreduce_or(self, flag: bool) -> bool:
        return bool(flag)

    def barrier(self) -> None:
        return None

    def scatterv(
        self, array: np.ndarray | None, counts: Sequence[int], root: int = 0
    ) -> np.ndarray:
        assert array is not None and len(counts) == 1 and counts[0] == len(array)
        return np.ascontiguousarray(array).copy()

    def gatherv(self, local: np.ndarray, root: int = 0) -> np.ndarray | None:
        return np.ascontiguousarray(local).copy()

    def allgather_rows(self, local: np.ndarray, counts: Sequence[int] | None = None) -> np.ndarray:
        assert counts is None or (len(counts) == 1 and counts[0] == len(local))
        return np.ascontiguousarray(local).copy()

    def split_shared(self) -> SerialComm:
        return self

    def split(self, color: int) -> SerialComm:
        return self

    def free(self) -> None:
        return None

    def __enter__(self) -> SerialComm:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def abort(self, code: int = 1) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        if threading.current_thread() is not threading.main_thread():
            os._exit(code)  # SystemExit would end only this thread (e.g. a watchdog's)
        raise SystemExit(code)

    def post(self, obj: Any, dest: int = 0) -> None:
        self._notes.append(obj)

    def poll(self) -> list[Any]:
        notes, self._notes[:] = list(self._notes), []
        return notes

    def flush_posts(self) -> None:
        return None


class MPIComm:
    """mpi4py on one clone of ``COMM_WORLD`` (or of a given communicator), freed by
    :meth:`free`; use it as a context manager where its life is a block."""

    def __init__(self, comm: Any = None, *, _owned: Any = None) -> None:
        from mpi4py import MPI

        self._mpi = MPI
        if _owned is not None:  # a communicator this object was handed (split results)
            self._comm = _owned
        else:
            self._comm = (comm if comm is not None else MPI.COMM_WORLD).Clone()
        self._pending: list[Any] = []  # ("local", note) or ("sent", request)
        self._lock = threading.Lock()  # a progress thread may poll while the main thread posts

    @property
    def rank(self) -> int:
        return int(self._comm.Get_rank())

    @property
    def size(self) -> int:
        return int(self._comm.Get_size())

    def _arrive(self) -> None:
        """Wait for every rank while sleeping, not spinning: MPICH busy-polls inside blocking
        collectives, which on an oversubscribed node takes cores from the ranks still working
        (e.g. rank 0's warm start, or the slowest shard). A non-blocking barrier polled every
        few milliseconds costs nothing measurable and leaves those cores free."""
        request = self._comm.Ibarrier()
        delay = 1e-4
        while not request.Test():
            time.sleep(delay)
            delay = min(2 * delay, _MAX_POLL_S)

    def bcast(self, obj: Any, root: int = 0) -> Any:
        self._arrive()
        return self._comm.bcast(obj, root=root)

    def scatter(self, objs: Sequence[Any] | None, root: int = 0) -> Any:
        self._arrive()
        return self._comm.scatter(objs, root=root)

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        self._arrive()
        return self._comm.gather(obj, root=root)

    def allreduce_sum(self, value: float) -> float:
        return self._comm.allreduce(value, op=self._mpi.SUM)

    def allreduce_or(self, flag: bool) -> bool:
        return bool(self._comm.allreduce(bool(flag), op=self._mpi.LOR))

    def barrier(self) -> None:
        self._comm.Barrier()

    def _row_layout(self, array: np.ndarray | None, root: int) -> tuple[tuple[int, ...], Any]:
        meta = (
            (array.shape[1:], array.dtype.str) if self.rank == root and array is not None else None
        )
        tail, dtype = self._comm.bcast(meta, root=root)
        return tuple(tail), np.dtype(dtype)

    def scatterv(
        self, array: np.ndarray | None, counts: Sequence[int], root: int = 0
    ) -> np.ndarray:
        tail, dtype = self._row_layout(array, root)
        row = int(np.prod(tail, dtype=np.int64))
        sizes = np.asarray(counts, dtype=np.int64) * row
        displs = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        local = np.empty((int(counts[self.rank]), *tail), dtype=dtype)
        send = None
        if self.rank == root:
            assert array is not None
            buf = np.ascontiguousarray(array, dtype=dtype)
            send = [buf, sizes, displs, self._mpi._typedict[dtype.char]]  # noqa: SLF001
        self._comm.Scatterv(send, local, root=root)
        return local

    def gatherv(self, local: np.ndarray, root: int = 0) -> np.ndarray | None:
        local = np.ascontiguousarray(local)
        rows = self._comm.gather(int(local.shape[0]), root=root)
        if self.rank != root:
            self._comm.Gatherv(local, None, root=root)
            return None
        row = int(np.prod(local.shape[1:], dtype=np.int64))
        sizes = np.asarray(rows, dtype=np.int64) * row
        displs = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        out = np.empty((int(sum(rows)), *local.shape[1:]), dtype=local.dtype)
        recv = [out, sizes, displs, self._mpi._typedict[local.dtype.char]]  # noqa: SLF001
        self._comm.Gatherv(local, recv, root=root)
        return out

    def allgather_rows(self, local: np.ndarray, counts: Sequence[int] | None = None) -> np.ndarray:
        """``Allgatherv`` of the rows of ``local`` into one buffer on every rank (no root, no
        pickling of the data); the row counts are exchanged first unless ``counts`` is given."""
        local = np.ascontiguousarray(local)
        if counts is None:
            counts = self._comm.allgather(int(local.shape[0]))
        rows = np.asarray(counts, dtype=np.int64)
        assert rows.shape == (self.size,) and rows[self.rank] == local.shape[0]
        row = int(np.prod(local.shape[1:], dtype=np.int64))
        sizes = rows * row
        displs = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        out = np.empty((int(rows.sum()), *local.shape[1:]), dtype=local.dtype)
        mpi_type = self._mpi._typedict[local.dtype.char]  # noqa: SLF001
        self._comm.Allgatherv([local, mpi_type], [out, sizes, displs, mpi_type])
        return out

    def split_shared(self) -> MPIComm:
        node = self._comm.Split_type(self._mpi.COMM_TYPE_SHARED, key=self.rank)
        return MPIComm(_owned=node)

    def split(self, color: int) -> MPIComm:
        self._arrive()
        return MPIComm(_owned=self._comm.Split(int(color), key=self.rank))

    def free(self) -> None:
        """Release the communicator (collective over its ranks); idempotent."""
        if self._comm != self._mpi.COMM_NULL:
            self.flush_posts()
            self._comm.Free()

    def __enter__(self) -> MPIComm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    def abort(self, code: int = 1) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self._comm.Abort(code)

    def post(self, obj: Any, dest: int = 0) -> None:
        with self._lock:
            if dest == self.rank:
                self._pending.append(("local", obj))
            else:
                request = self._comm.isend(obj, dest=dest, tag=_NOTE_TAG)
                self._pending.append(("sent", request))

    def poll(self) -> list[Any]:
        with self._lock:
            notes = [obj for kind, obj in self._pending if kind == "local"]
            self._pending = [p for p in self._pending if p[0] != "local"]
            any_source = self._mpi.ANY_SOURCE
            while self._comm.iprobe(source=any_source, tag=_NOTE_TAG):
                notes.append(self._comm.recv(source=any_source, tag=_NOTE_TAG))
        return notes

    def flush_posts(self) -> None:
        with self._lock:
            sent = [request for kind, request in self._pending if kind == "sent"]
            self._pending = [p for p in self._pending if p[0] == "local"]
        for request in sent:
            request.wait()


def world() -> Comm:
    """``MPIComm`` when this process is one of several MPI ranks, else ``SerialComm``."""
    from mpi4py import MPI

    return MPIComm() if MPI.COMM_WORLD.Get_size() > 1 else SerialComm()


def abort_world_if_parallel(message: str, details: str = "") -> None:
    """Abort every rank when running under MPI with more than one rank (no-op otherwise).

    Used by the test suite's failure hook so that one failing rank cannot leave the others
    waiting in a collective.
    """
    if "mpi4py.MPI" not in sys.modules:
        return
    from mpi4py import MPI

    if MPI.COMM_WORLD.Get_size() > 1:
        rank = MPI.COMM_WORLD.Get_rank()
        sys.stderr.write(f"rank {rank}: {message}\n{details}\n")
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(1)
