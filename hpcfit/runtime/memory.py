"""This process's resident memory from ``/proc/self/status`` (Linux), in MB (2^20 bytes).

``reset_peak`` clears the kernel's high-water mark (``/proc/self/clear_refs``, Linux ≥ 4.0) so
that a later ``peak_mb`` measures one stage; where that is not allowed the peak stays the
process's lifetime peak. Off Linux every reading is NaN.
"""

from __future__ import annotations

import math
from pathlib import Path


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
