"""This process's resident memory from ``/proc/self/status`` (Linux), in MB (2^20 bytes), and
the most it may grow to.

``reset_peak`` clears the kernel's high-water mark (``/proc/self/clear_refs``, Linux ≥ 4.0) so
that a later ``peak_mb`` measures one stage; where that is not allowed the peak stays the
process's lifetime peak. ``limit_mb`` is what a size check compares an estimate with (the
smaller of the system's available memory and the cgroup's room, which is where Slurm and
container runtimes enforce a job's memory); ``over_limit`` makes that comparison. Off Linux
every reading is NaN and no limit is known.
"""

from __future__ import annotations

import math
from pathlib import Path

_UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a number near 2^63


def _status_kb(key: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return math.nan


def current_mb() -> float:
    """Resident set size now (VmRSS)."""
    return _status_kb("VmRSS") / 1024.0


def peak_mb() -> float:
    """Peak resident set size since start or the last :func:`reset_peak` (VmHWM)."""
    return _status_kb("VmHWM") / 1024.0


def reset_peak() -> bool:
    """Reset the peak to the current size; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _read_number(path: Path) -> float:
    try:
        text = path.read_text().strip()
    except OSError:
        return math.nan
    return math.inf if text == "max" else float(text) if text.isdigit() else math.nan


def _cgroup_room_bytes(proc_cgroup: Path, root: Path) -> float:
    """Bytes this process's cgroup may still add (limit − usage); inf without a limit."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return math.inf
    room = math.inf
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # cgroup v2
            files = [(root / rel.lstrip("/"), "memory.max", "memory.current")]
        elif "memory" in controllers.split(","):  # cgroup v1
            files = [(root / "memory" / rel.lstrip("/"), "memory.limit_in_bytes",
                      "memory.usage_in_bytes")]  # fmt: skip
        else:
            continue
        for folder, limit_name, usage_name in files:
            for d in (folder, *folder.parents):  # a namespaced cgroup shows "/": walk up
                limit = _read_number(d / limit_name)
                if not math.isnan(limit):
                    if limit < _UNLIMITED:
                        used = _read_number(d / usage_name)
                        room = min(room, limit - (0.0 if math.isnan(used) else used))
                    break
                if d == root:
                    break
    return room


def limit_mb(configured: float | None = None) -> tuple[float, str]:
    """The most memory this process may use (MB) and where the figure comes from.

    ``configured`` (``mpi.memory_limit_mb``) wins. Otherwise the smaller of the system's
    available memory (``MemAvailable`` in ``/proc/meminfo``) and the room left in this process's
    cgroup, each plus what the process already holds (VmRSS). NaN where neither is known.
    """
    if configured is not None:
        return float(configured), "mpi.memory_limit_mb"
    rss = current_mb()
    if math.isnan(rss):
        return math.nan, "unknown"
    options = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                options.append((float(line.split()[1]) / 1024.0, "available memory"))
    except OSError:
        pass
    room = _cgroup_room_bytes(Path("/proc/self/cgroup"), Path("/sys/fs/cgroup"))
    if math.isfinite(room):
        options.append((max(room, 0.0) / 2**20, "the cgroup's memory limit"))
    if not options:
        return math.nan, "unknown"
    free, source = min(options)
    return rss + free, source


def over_limit(need_mb: float, configured: float | None = None) -> str | None:
    """None when what the process holds now plus ``need_mb`` fits :func:`limit_mb`, else the
    clause "about X MB, more than the Y MB this rank can have (source)" for a one-line error."""
    limit, source = limit_mb(configured)
    rss = current_mb()
    total = need_mb + (0.0 if math.isnan(rss) else rss)
    if math.isnan(limit) or total <= limit:
        return None
    return f"about {total:,.0f} MB, more than the {limit:,.0f} MB this rank can have ({source})"
