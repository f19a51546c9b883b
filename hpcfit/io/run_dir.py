"""One owner per run directory, and a run record that tells the truth however the run ends.

* **Ownership.** The process that owns a run (the launcher, the single process of a serial run,
  or rank 0 of ranks started by ``mpiexec``/``srun``) holds an exclusive ``flock`` on
  ``<run dir>/.hpcfit.lock`` for the run's lifetime. A second run in the same directory fails
  at once with the holder's pid, host and start time. On a file system without ``flock`` the
  run goes on unlocked with a warning.
* **A clean start.** Under the lock, leftovers of interrupted atomic writes (``.*.tmp``) are
  removed, and the final outputs of an earlier run (``run.json``, ``results.h5``,
  ``posterior.nc``, plots, …) move to ``previous/<its start time>-<its status>/``, so the
  directory never mixes two runs' results. Checkpoints (``cmc/shards``,
  ``nlsq/checkpoint.*``, ``kuramoto/chunks``, ``nrpt/checkpoints``) and the rank logs stay: a
  re-run resumes from the checkpoints whose fingerprints match.
* **The final state on disk.** :func:`mark_ended` sets the state of a record still marked
  ``running`` (a launcher whose ranks died, a rank aborting the job, a signal), so a workflow
  reading ``run.json`` never sees an earlier run's success. A ``running`` record whose pid no
  longer exists on its host is a run that died without a word (:func:`stale_running`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path
from typing import IO, Any

from hpcfit.errors import InputError
from hpcfit.io.atomic import write_json

log = logging.getLogger("hpcfit")

LOCK_NAME = ".hpcfit.lock"
OWNER_ENV = "HPCFIT_RUN_OWNER"  # set by the launcher for the ranks it starts: they do not lock
OUTPUTS = (
    "run.json",
    "results.h5",
    "posterior.nc",
    "plan.json",
    "config.yaml",
    "plots",
    "cmc/diagnostics.json",
    "cmc/plan.json",
    "nlsq/result.json",
    "nlsq/result.npz",
    "kuramoto/ensemble.h5",
    "kuramoto/summary.json",
    "kuramoto/order_parameter.png",
    "nrpt/summary.json",
    "nrpt/rounds.h5",
    "nrpt/barrier.png",
)


class RunDirBusy(InputError):
    """Another run holds the directory."""


class RunDirOwner:
    """The lock on a run directory, held from :func:`claim` until :meth:`release`."""

    def __init__(self, run_dir: Path, handle: IO[str] | None) -> None:
        self.run_dir, self._handle = run_dir, handle

    def release(self) -> None:
        if self._handle is not None:
            import fcntl

            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def claim(run_dir: Path) -> RunDirOwner:
    """Lock ``run_dir`` for this process, then clean it for a new run (module docstring).

    Raises :class:`RunDirBusy` (exit status 2) when another live run holds it.
    """
    import fcntl

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = (run_dir / LOCK_NAME).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunDirBusy(
            f"{run_dir}: run directory in use by {holder}; wait for it to end or choose "
            "another hydra.run.dir"
        ) from None
    except OSError as exc:  # e.g. a parallel file system mounted without flock
        log.warning("run directory %s is not locked (%s)", run_dir, exc)
        handle.close()
        return RunDirOwner(run_dir, None)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n")
    handle.flush()
    _remove_partial_writes(run_dir)
    _retire_outputs(run_dir)
    return RunDirOwner(run_dir, handle)


def _remove_partial_writes(run_dir: Path) -> None:
    for path in run_dir.rglob(".*.tmp"):
        if path.is_file() and "previous" not in path.relative_to(run_dir).parts:
            path.unlink(missing_ok=True)


def _retire_outputs(run_dir: Path) -> None:
    """Move an earlier run's final outputs to ``previous/<start>-<status>/``."""
    present = [name for name in OUTPUTS if (run_dir / name).exists()]
    if not present:
        return
    record = read_record(run_dir)
    started = record.get("started_unix")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started if started else time.time()))
    status = str(record.get("status", "unknown"))
    if stale_running(record):
        log.warning(
            "the previous run in %s (pid %s on %s) ended without a final status",
            run_dir,
            record.get("pid"),
            record.get("host"),
        )
        status = "died"
    dest = run_dir / "previous" / f"{stamp}-{status}"
    n = 1
    while dest.exists():
        n += 1
        dest = run_dir / "previous" / f"{stamp}-{status}-{n}"
    for name in present:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(run_dir / name), str(target))
    log.info("outputs of the previous run moved to %s", dest)


def read_record(run_dir: Path) -> dict[str, Any]:
    """``run.json`` as a dict ({} when absent or unreadable)."""
    try:
        out = json.loads((Path(run_dir) / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def stale_running(record: dict[str, Any]) -> bool:
    """A record still ``running`` whose process no longer exists on this host."""
    if record.get("status") != "running" or record.get("host") != socket.gethostname():
        return False
    pid = record.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def mark_ended(run_dir: Path, status: str, exit_code: int, message: str) -> bool:
    """Give a record still marked ``running`` its final state; True if it was updated.

    A record with a final state is left alone: whoever wrote it knew more.
    """
    record = read_record(run_dir)
    if record.get("status") != "running":
        return False
    started = record.get("started_unix")
    record.update(status=status, exit_code=exit_code, message=message)
    if isinstance(started, int | float):
        record["wall_s"] = time.time() - started
    write_json(Path(run_dir) / "run.json", record)
    return True
