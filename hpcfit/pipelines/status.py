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


def guarded(record: RunRecord, stage: Callable[[], Any]) -> tuple[Any, Status]:
    """Run a rank-0 stage; an error becomes a final status (and run.json), never an exception."""
    try:
        out = stage()
    except InputError as exc:
        message = " ".join(str(exc).split())
        sys.stderr.write(f"hpcfit: error: {message}\n")
        sys.stderr.flush()
        record.finish("failed", EXIT_INPUT, message)
        return None, Status(EXIT_INPUT, "failed", message)
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
