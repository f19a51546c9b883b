"""The rank-safe frame of every job: one run record, one log per rank, decisions broadcast.

:func:`run_job` opens the frame — rank 0's :class:`~hpcfit.io.run_record.RunRecord` written
``running`` at the start, a fresh section of each rank's log — runs the workload's outline and
closes the log however it ends. The outline works through a :class:`Job`:

* :meth:`Job.on_root` runs a stage on rank 0 under the guard (an input error is one line and exit
  2, anything else an internal error with its traceback) and gives every rank the resulting
  :class:`~hpcfit.status.Status`, with the stage's value when asked;
* :meth:`Job.on_every_rank` runs a stage on each rank; the ranks' errors are gathered and rank 0
  turns them into one status that every rank receives.

No rank raises inside a collective, and every rank leaves with the code rank 0 decided.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hpcfit.errors import InputError
from hpcfit.io.run_record import RunRecord
from hpcfit.parallel.comm import Comm, SerialComm
from hpcfit.pipelines.status import RunLog, guarded, rank_errors_status
from hpcfit.status import EXIT_INPUT, EXIT_INTERNAL, EXIT_OK, Status

if TYPE_CHECKING:
    from hpcfit.config import JobConfig

T = TypeVar("T")
CONTINUE = Status(EXIT_OK, "ok", final=False)


@dataclass
class Job:
    """One run on the ranks of ``comm``; ``record`` is rank 0's (None elsewhere)."""

    comm: Comm
    run_dir: Path
    record: RunRecord | None

    @property
    def root(self) -> bool:
        return self.comm.rank == 0

    def on_root(self, stage: Callable[[RunRecord], Any], share: bool = False) -> tuple[Any, Status]:
        """Rank 0 runs ``stage(record)`` under the guard; every rank gets the status, and the
        value too with ``share`` (else it stays on rank 0). A stage may return a Status, or
        (value, Status), to end or continue the job itself."""
        value, status = None, None
        if self.root:
            assert self.record is not None
            record = self.record
            value, status = guarded(record, lambda: stage(record))
        if share:
            return self.comm.bcast((value, status))
        return value, self.comm.bcast(status)

    def on_every_rank(self, stage: Callable[[], T]) -> tuple[T | None, Status]:
        """Each rank runs ``stage()``; an input error (the same on every rank) or an exception
        (named with its rank) becomes a final status that every rank receives."""
        value, error = None, None
        try:
            value = stage()
        except InputError as exc:
            error = (EXIT_INPUT, " ".join(str(exc).split()))
        except Exception as exc:  # becomes a status; never raised inside a collective
            traceback.print_exc()
            error = (EXIT_INTERNAL, f"rank {self.comm.rank}: {type(exc).__name__}: {exc}")
        errors = self.comm.gather(error)
        status = rank_errors_status(errors, self.record) if self.root else None
        return value, self.comm.bcast(status or CONTINUE)


class WorkloadRun[C: JobConfig](Protocol):
    def __call__(
        self,
        cfg: C,
        run_dir: Path,
        resolved: dict[str, Any],
        comm: Comm | None = None,
        facts: dict[str, Any] | None = None,
    ) -> int: ...


def workload_run[C: JobConfig](
    seeds: Callable[[C], dict[str, Any]], outline: Callable[[C, Job], int]
) -> WorkloadRun[C]:
    """A workload's ``run(cfg, run_dir, resolved, comm=None, facts=None) -> exit code``: the
    frame of :func:`run_job` around ``outline(cfg, job)`` on every rank of ``comm`` (one
    process without it), with the run's ``seeds(cfg)`` and rank 0's ``facts`` (e.g. each rank's
    CPU affinity) in ``run.json``."""

    def run(
        cfg: C,
        run_dir: Path,
        resolved: dict[str, Any],
        comm: Comm | None = None,
        facts: dict[str, Any] | None = None,
    ) -> int:
        return run_job(run_dir, resolved, comm, facts, seeds(cfg), lambda job: outline(cfg, job))

    return run


def run_job(
    run_dir: Path,
    resolved: dict[str, Any],
    comm: Comm | None,
    facts: dict[str, Any] | None,
    seeds: dict[str, Any],
    outline: Callable[[Job], int],
) -> int:
    """Open the frame (run record ``running`` with ``facts`` and ``seeds``, rank logs), run
    ``outline(job)`` on every rank and return its exit code."""
    comm = comm or SerialComm()
    record = RunRecord(run_dir, resolved, seeds=seeds) if comm.rank == 0 else None
    run_log = RunLog(run_dir / f"rank-{comm.rank}.log")
    try:
        if record is not None:
            record.set(**(facts or {}))
            record.start(comm.size)
        return outline(Job(comm, run_dir, record))
    finally:
        run_log.close()
