"""What every pipeline shares: ending a job with a :class:`~hpcfit.status.Status` (the exit
codes and ``run.json`` states are those of :mod:`hpcfit.status`), the guard that turns a rank-0
stage's exception into a status, and the per-rank log file.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpcfit.errors import AdviceWarning, InputError
from hpcfit.io.run_record import RunRecord
from hpcfit.status import (  # noqa: F401  (the pipelines' names for them)
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_WARM_START,
    EXIT_WORK_FAILED,
    Status,
)

log = logging.getLogger("hpcfit")


def fail(record: RunRecord | None, code: int, message: str, state: str | None = None) -> Status:
    """Rank 0: end the job with ``code``. Input errors print one ``hpcfit: error: …`` line,
    others are logged; ``run.json`` records state, code and message (``record`` None: no record)."""
    state = state or ("failed" if code == EXIT_INPUT else "internal_error")
    if code == EXIT_INPUT:
        sys.stderr.write(f"hpcfit: error: {message}\n")
        sys.stderr.flush()
    else:
        log.error("job failed: %s", message)
    if record is not None:
        record.finish(state, code, message)
    return Status(code, state, message)


def rank_errors_status(errors: list[Any] | None, record: RunRecord | None) -> Status | None:
    """Rank 0: the gathered per-rank ``(code, message)`` errors (None: that rank was fine) as
    one final status, or None when every rank was fine. An input error (the same on every
    rank) wins; internal errors are joined so that each failing rank is named."""
    bad = [e for e in errors or [] if e]
    if not bad:
        return None
    inputs = [e for e in bad if e[0] == EXIT_INPUT]
    if inputs:
        return fail(record, EXIT_INPUT, inputs[0][1])
    return fail(record, bad[0][0], "; ".join(m for _, m in bad))


def guarded(record: RunRecord, stage: Callable[[], Any]) -> tuple[Any, Status]:
    """Run a rank-0 stage; an error becomes a final status (and run.json), never an exception."""
    try:
        out = stage()
    except InputError as exc:
        return None, fail(record, EXIT_INPUT, " ".join(str(exc).split()))
    except Exception as exc:  # internal error: keep the record and the traceback
        traceback.print_exc()
        sys.stderr.flush()
        message = f"{type(exc).__name__}: {exc}"
        log.error("rank 0: internal error: %s", message)
        record.finish("internal_error", EXIT_INTERNAL, message)
        return None, Status(EXIT_INTERNAL, "internal_error", message)
    if isinstance(out, Status):
        return None, out
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Status):
        return out
    return out, Status(EXIT_OK, "ok", final=False)


RUN_BEGINS = "=== hpcfit run begins"
"""The first line a run writes to each rank log: the logs of earlier runs in the same directory
stay above it, and crash reports read only what follows the last one."""


class _RunBeginsFileHandler(logging.FileHandler):
    """Appends to ``path``, writing ``first_line`` when the file is first opened: no file until
    a line is logged."""

    def __init__(self, path: Path, first_line: str) -> None:
        super().__init__(path, mode="a", delay=True)
        self.first_line = first_line

    def _open(self):  # noqa: ANN202  (logging's own hook)
        stream = super()._open()
        stream.write(self.first_line)
        return stream


class RunLog:
    """A rank's log file for one run, and where Python warnings go while it is open.

    Rank logs are appended to (a requeued or resumed run keeps the history) below a
    :data:`RUN_BEGINS` line with the pid and host. hpcfit's own warnings
    (:class:`~hpcfit.errors.AdviceWarning`: data, configuration, checkpoints) are logged on the
    ``hpcfit`` logger: one line on the console and in the log. Other
    libraries' warnings go to the log file only, with their source location; :meth:`close`
    prints how many there were and where they are.
    """

    def __init__(self, path: Path) -> None:
        import os
        import socket
        import time
        import warnings

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.library_warnings = path, 0
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        begins = f"{RUN_BEGINS} {stamp}: pid {os.getpid()} on {socket.gethostname()} ===\n"
        self.handler = _RunBeginsFileHandler(path, begins)
        self.handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        logging.getLogger().addHandler(self.handler)
        if (
            log.level == logging.NOTSET
        ):  # the run log holds hpcfit's INFO lines whatever the console
            log.setLevel(logging.INFO)
        logging.getLogger("arviz").setLevel(logging.WARNING)  # backend chatter on import
        self.library = logging.getLogger("hpcfit.library_warnings")
        self.library.propagate = False  # the file only, not the console
        self.library.addHandler(self.handler)
        self._showwarning = warnings.showwarning
        warnings.showwarning = self._route

    def _route(self, message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, AdviceWarning):
            log.warning("%s", message)
            return
        self.library_warnings += 1
        self.library.warning("%s: %s (%s:%s)", category.__name__, message, filename, lineno)

    def close(self) -> None:
        import warnings

        warnings.showwarning = self._showwarning
        if self.library_warnings:
            log.info(
                "%d warning(s) from libraries (nlsq, JAX, …) are in %s",
                self.library_warnings,
                self.path,
            )
        self.library.removeHandler(self.handler)
        logging.getLogger().removeHandler(self.handler)
        self.handler.close()
