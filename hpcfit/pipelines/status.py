"""What every pipeline shares: exit codes, the status record rank 0 broadcasts, the guard that
turns a rank-0 stage's exception into a status, and the per-rank log file.

A decision that ends a job is a :class:`Status` broadcast by rank 0, so every rank leaves with
the same exit code and no rank raises inside a collective (design §2.8, cmc spec §7.2).
Exit codes: 0 ok; 2 config/data error; 3 work failed (shards, a non-finite replica);
4 XPCS warm start unusable while required; 70 internal error.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcfit.errors import InputError
from hpcfit.io.run_record import RunRecord

log = logging.getLogger("hpcfit")

EXIT_OK, EXIT_INPUT, EXIT_SHARDS, EXIT_WARM_START, EXIT_INTERNAL = 0, 2, 3, 4, 70


@dataclass(frozen=True)
class Status:
    """A decision rank 0 broadcasts: continue (``final`` False) or end every rank with ``code``."""

    code: int
    state: str
    message: str | None = None
    final: bool = True


def fail(record: RunRecord | None, code: int, message: str, state: str | None = None) -> Status:
    """Rank 0: end the job with ``code``. Input errors print one ``hpcfit: error: …`` line,
    others are logged; ``run.json`` records state, code and message (``record`` None: no record)."""
    state = state or ("failed" if code == EXIT_INPUT else "error")
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
        record.finish("error", EXIT_INTERNAL, message)
        return None, Status(EXIT_INTERNAL, "error", message)
    if isinstance(out, Status):
        return None, out
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Status):
        return out
    return out, Status(EXIT_OK, "ok", final=False)


def log_to(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", delay=True)  # no file until a line is logged
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    if log.level == logging.NOTSET:  # the run log holds hpcfit's INFO lines whatever the console
        log.setLevel(logging.INFO)
    logging.getLogger("arviz").setLevel(logging.WARNING)  # backend chatter on import
    return handler
