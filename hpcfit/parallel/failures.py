"""Which rank ended a job first, read from the MPI launcher's own report.

When one rank dies, the launcher stops the others at once, so every rank log ends in the middle
of its work. The launcher itself says which process failed first:

* MPICH (Hydra) prints a "BAD TERMINATION" block naming that process, ``=   PID p RUNNING AT
  host`` (5.x) or ``=   RANK r PID p RUNNING AT host`` (4.x), then ``=   EXIT CODE: c`` or
  ``=   KILLED BY SIGNAL: n (name)``;
* Open MPI prints ``… process rank r with PID p on node host exited on signal n (name)`` (or
  ``… exited with status c``);
* Slurm's ``srun`` prints ``srun: error: host: task(s) r[,…]: Killed`` (or another reason).

A PID is turned into a rank with the pids the ranks wrote at the top of their logs (the
``=== hpcfit run begins …: pid p on host ===`` line of :class:`hpcfit.pipelines.status.RunLog`).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterable
from pathlib import Path

_MPICH_PROCESS = re.compile(r"^=\s+(?:RANK (\d+) )?PID (\d+) RUNNING AT (\S+)")
_MPICH_EXIT = re.compile(r"^=\s+(?:EXIT CODE: (-?\d+)|KILLED BY SIGNAL: (\d+))")
_MPICH_EXIT_STRING = re.compile(r"TERMINATED WITH THE EXIT STRING: (.+)$")
_OPENMPI = re.compile(
    r"process rank (\d+) with PID (\d+) on node (\S+) exited (?:on signal (\d+)|with status (\d+))"
)
_SRUN = re.compile(r"srun: error: (\S+): tasks? (\d+)[\d,\-]*: (.+)$")
_BEGINS = re.compile(r"^=== hpcfit run begins [^:]*:\d\d:\d\d: pid (\d+) on (\S+) ===")


def rank_pids(run_dir: Path) -> dict[int, int]:
    """pid → rank from the last run-begins line of each ``rank-<r>.log`` in ``run_dir``."""
    found: dict[int, int] = {}
    for path in run_dir.glob("rank-*.log"):
        try:
            rank = int(path.stem.split("-", 1)[1])
            lines = path.read_text(errors="replace").splitlines()
        except (ValueError, OSError):
            continue
        pids = [int(m.group(1)) for m in map(_BEGINS.match, lines) if m]
        if pids:
            found[pids[-1]] = rank
    return found


def _signal_text(signum: int) -> str:
    try:
        return f"killed by signal {signum} ({signal.Signals(signum).name})"
    except ValueError:
        return f"killed by signal {signum}"


def first_failure(lines: Iterable[str], pids: dict[int, int]) -> str | None:
    """ "rank r (pid p on host) ended first: …" from the launcher's output, or None when it
    names no process (or a pid no rank log knows)."""
    lines = list(lines)
    for k, line in enumerate(lines):
        m = _MPICH_PROCESS.match(line)
        if m:
            rank = int(m.group(1)) if m.group(1) else pids.get(int(m.group(2)))
            if rank is None:
                return None
            how = ""
            for nxt in lines[k + 1 : k + 10]:
                e, text = _MPICH_EXIT.match(nxt), _MPICH_EXIT_STRING.search(nxt)
                if text:  # "Killed (signal 9)": Hydra 5 gives a signal as an exit code
                    how = text.group(1).strip()
                    break
                if e and not how:
                    how = f"exit code {e.group(1)}" if e.group(1) else _signal_text(int(e.group(2)))
            tail = f": {how}" if how else ""
            return f"rank {rank} (pid {m.group(2)} on {m.group(3)}) ended first{tail}"
        m = _OPENMPI.search(line)
        if m:
            how = _signal_text(int(m.group(4))) if m.group(4) else f"exit code {m.group(5)}"
            return f"rank {m.group(1)} (pid {m.group(2)} on {m.group(3)}) ended first: {how}"
        m = _SRUN.search(line)
        if m:
            return f"rank {m.group(2)} (on {m.group(1)}) ended first: {m.group(3).strip()}"
    return None
