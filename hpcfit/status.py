"""How a job ends: the exit codes and the ``run.json`` states, defined once for every workload.

A decision that ends a job is a :class:`Status`: rank 0 broadcasts it, so every rank leaves
with the same exit code and no rank raises inside a collective. The launcher and the CLI use the
same codes; numerics that report an outcome (a shard policy, an NRPT run) name one of these
states. No imports from the rest of hpcfit.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_INPUT = 2  # bad config or data, an unusable run directory, no room, too little memory
EXIT_WORK_FAILED = 3  # shards failed (abort, too many excluded), a non-finite NRPT energy
EXIT_WARM_START = 4  # the XPCS warm start is unusable while it is required
EXIT_INTERNAL = 70  # a bug or an unexpected library error (sysexits' EX_SOFTWARE)
EXIT_SIGNAL_BASE = 128  # a signal n ends the job with 128 + n

STATES: dict[str, str] = {
    "running": "the run is under way (or its process died: see `stale_running`)",
    "ok": f"finished; exit {EXIT_OK}",
    "planned": f"plan mode (`cmc.plan_only`) wrote its plan; exit {EXIT_OK}",
    "failed": f"bad input, or ranks that exited non-zero without a word; exit {EXIT_INPUT} "
    "or their status",
    "killed": f"a signal n ended the job; exit {EXIT_SIGNAL_BASE} + n",
    "warm_start_unusable": f"the XPCS warm start is unusable while required; exit "
    f"{EXIT_WARM_START}",
    "shard_failed": f"a shard failed under `on_shard_failure=abort`, more than "
    f"`max_excluded_fraction` were excluded, or a shard ran past its time limit; exit "
    f"{EXIT_WORK_FAILED}",
    "non_finite_energy": f"an NRPT replica's energy was not finite; exit {EXIT_WORK_FAILED}",
    "internal_error": f"an unexpected error, with its traceback in the rank log; exit "
    f"{EXIT_INTERNAL}",
}
"""Every state ``run.json`` can end in (and ``running``), with what it means."""


@dataclass(frozen=True)
class Status:
    """A decision rank 0 broadcasts: continue (``final`` False) or end every rank with ``code``
    and ``state`` (one of :data:`STATES`)."""

    code: int
    state: str
    message: str | None = None
    final: bool = True

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown run state {self.state!r}; one of {sorted(STATES)}")
