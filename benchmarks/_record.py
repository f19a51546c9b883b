"""Shared helpers of the benchmark scripts: provenance, timings and the JSON record.

Records follow one benchmark record format: ``schema`` (name,
version), ``generated_utc``, ``workload``, ``params``, ``results`` (timings in µs with the first
call apart from the steady-state repeats), ``device``, ``mpi``, ``versions`` and ``provenance``
(host, load, git, command, environment). :func:`write_record` writes
``benchmarks/results/<name>-<host>-<YYYYMMDD>.json`` atomically.

Only the standard library is imported at module level, so the peer drivers (which run in another
virtual environment) can reuse :func:`time_call` and :func:`stats_us` without importing hpcfit.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("HPCFIT_BENCH_RESULTS", ROOT / "benchmarks" / "results"))
VERSIONED = ("hpcfit", "jax", "jaxlib", "numpy", "scipy", "nlsq", "numpyro", "mpi4py", "mpich")
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NPROC",
    "JAX_PLATFORMS",
    "NLSQ_DISABLE_PERSISTENT_CACHE",
)


# -- timings ---------------------------------------------------------------------------------
def block(out: Any) -> Any:
    """Wait for every JAX array in ``out`` (a no-op for NumPy results and when JAX is absent)."""
    jax = sys.modules.get("jax")
    if jax is not None:
        return jax.block_until_ready(out)
    return out


def _percentile(sorted_xs: Sequence[float], p: float) -> float:
    """Linear-interpolation percentile (NumPy's default) of an already sorted sequence."""
    if len(sorted_xs) == 1:
        return float(sorted_xs[0])
    k = (len(sorted_xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return float(sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (k - lo))


def stats_us(samples_s: Sequence[float]) -> dict[str, Any]:
    """Timing summary in µs: p50 (the median), p95, p99, mean, min, max and every sample."""
    us = [float(s) * 1e6 for s in samples_s]
    xs = sorted(us)
    return {
        "p50": _percentile(xs, 50),
        "p95": _percentile(xs, 95),
        "p99": _percentile(xs, 99),
        "mean": sum(xs) / len(xs),
        "min": xs[0],
        "max": xs[-1],
        "n": len(xs),
        "samples": [round(x, 3) for x in us],  # ns resolution keeps the records small
    }


def time_call(
    fn: Callable[..., Any],
    *args: Any,
    repeats: int = 20,
    min_time_s: float = 0.0,
    max_repeats: int = 10_000,
    first: bool = True,
) -> dict[str, Any]:
    """Time ``fn(*args)`` with ``block_until_ready`` on its result.

    The first call (tracing, compilation and one run for a jitted function) is timed on its own
    as ``first_call_us``; then ``repeats`` steady-state calls (more, up to ``max_repeats``, until
    ``min_time_s`` has passed) are summarised by :func:`stats_us`. ``compile_us_est`` is the
    first call minus the steady-state median. ``first=False`` skips the separate first call
    (for a function already warmed up elsewhere).
    """
    out: dict[str, Any] = {}
    if first:
        t0 = time.perf_counter()
        block(fn(*args))
        out["first_call_us"] = (time.perf_counter() - t0) * 1e6
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < repeats or (
        time.perf_counter() - start < min_time_s and len(samples) < max_repeats
    ):
        t0 = time.perf_counter()
        block(fn(*args))
        samples.append(time.perf_counter() - t0)
    out.update(stats_us(samples))
    if first:
        out["compile_us_est"] = out["first_call_us"] - out["p50"]
    return out


def merge_timings(blocks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pool the steady-state samples of several :func:`time_call` blocks (e.g. alternating rounds).

    The first call is taken from the first block that has one; ``block_p50`` lists each block's
    median, so drift between rounds stays visible.
    """
    samples = [s for b in blocks for s in b["samples"]]
    out = stats_us([s * 1e-6 for s in samples])
    firsts = [b["first_call_us"] for b in blocks if "first_call_us" in b]
    if firsts:
        out["first_call_us"] = firsts[0]
        out["compile_us_est"] = firsts[0] - out["p50"]
    out["block_p50"] = [b["p50"] for b in blocks]
    return out


def per_point(timing: dict[str, Any], n_points: int) -> dict[str, float]:
    """The p50 and min of a timing divided by the number of points, in µs per point."""
    return {"p50": timing["p50"] / n_points, "min": timing["min"] / n_points}


# -- provenance ------------------------------------------------------------------------------
def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _gpus() -> list[str] | None:
    """``nvidia-smi -L`` lines, or None when no NVIDIA tool or GPU is present."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        res = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [x.strip() for x in res.stdout.splitlines() if x.strip()]
    return lines if res.returncode == 0 and lines else None


def _git(*args: str) -> str | None:
    try:
        res = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def git_info() -> dict[str, Any]:
    """Commit SHA (None before the first commit), branch and dirty flag of the checkout."""
    status = _git("status", "--porcelain")
    return {
        "commit": _git("rev-parse", "--verify", "--quiet", "HEAD"),
        "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": None if status is None else bool(status),
    }


def host_info() -> dict[str, Any]:
    """CPU model, core count, affinity, load average, platform and GPUs of this host."""
    try:
        affinity: list[int] | None = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    try:
        load: list[float] | None = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "loadavg": load,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "gpu": _gpus(),
    }


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def mpi_library(python: str | None = None) -> str | None:
    """``MPI.Get_library_version()`` of ``python`` (default: this one), asked in a subprocess.

    A subprocess keeps MPI out of the benchmark process (and mpi4py imports in one module).
    """
    code = (
        "import mpi4py; mpi4py.rc.initialize = False; mpi4py.rc.finalize = False\n"
        "from mpi4py import MPI; print(MPI.Get_library_version().strip().splitlines()[0])"
    )
    try:
        res = subprocess.run(
            [python or sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:
        return None
    return res.stdout.strip() or None


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version()}
    out.update({name: _version(name) for name in VERSIONED})
    out["mpi_library"] = mpi_library()
    return out


def device_info() -> dict[str, Any]:
    """JAX's default backend (only if JAX is already imported by the benchmark)."""
    jax = sys.modules.get("jax")
    if jax is None:
        return {"platform": None, "device_kind": None, "count": 0, "deterministic": None}
    devices = jax.devices()
    return {
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "count": len(devices),
        "deterministic": devices[0].platform == "cpu"
        or "--xla_gpu_deterministic_ops=true" in os.environ.get("XLA_FLAGS", ""),
    }


def environment() -> dict[str, Any]:
    env = {k: os.environ.get(k) for k in ("JAX_ENABLE_X64", "XLA_FLAGS", *THREAD_VARS)}
    jax = sys.modules.get("jax")
    if jax is not None:
        env["jax_enable_x64"] = bool(jax.config.jax_enable_x64)
    return env


def provenance() -> dict[str, Any]:
    return {
        **host_info(),
        "git": git_info(),
        "command": [sys.executable, *sys.argv],
        "cwd": os.getcwd(),
        "env": environment(),
    }


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", socket.gethostname().split(".")[0]) or "host"


def record_path(name: str, when: _dt.datetime | None = None) -> Path:
    when = when or _dt.datetime.now(_dt.UTC)
    return RESULTS / f"{name}-{_host_tag()}-{when:%Y%m%d}.json"


def _jsonable(x: Any) -> Any:
    """NumPy scalars/arrays and tuples to plain JSON; non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if hasattr(x, "tolist"):  # NumPy arrays and scalars, JAX arrays
        return _jsonable(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, bool | int | float | str) or x is None:
        return x
    return str(x)


def write_record(
    name: str,
    payload: dict[str, Any],
    *,
    mpi: dict[str, Any] | None = None,
    load_start: list[float] | None = None,
) -> Path:
    """Write ``payload`` (workload, params, results, …) with the common header and provenance.

    Returns the path ``benchmarks/results/<name>-<host>-<YYYYMMDD>.json``; a record of the same
    name written on the same day by the same host is replaced.
    """
    now = _dt.datetime.now(_dt.UTC)
    prov = provenance()
    if load_start is not None:
        prov["loadavg_start"] = load_start
    record = {
        "schema": {"name": f"hpcfit.bench.{name}", "version": SCHEMA_VERSION},
        "generated_utc": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        **payload,
        "device": device_info(),
        "mpi": mpi or {"P": 1, "ranks_per_node": 1, "gpu_ranks": 0},
        "versions": versions(),
        "provenance": prov,
    }
    path = record_path(name, now)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(_jsonable(record), fh, indent=1, allow_nan=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def loadavg() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


# -- peer virtual environments ------------------------------------------------------------------
def peer_python(name: str) -> Path | None:
    """The interpreter of ``.peers/<name>`` (or ``$HPCFIT_PEER_<NAME>``), None if missing."""
    override = os.environ.get(f"HPCFIT_PEER_{name.upper()}")
    venv = Path(override) if override else ROOT / ".peers" / name
    py = venv / "bin" / "python"
    return py if py.is_file() and os.access(py, os.X_OK) else None


__all__ = [
    "block",
    "git_info",
    "host_info",
    "loadavg",
    "mpi_library",
    "peer_python",
    "per_point",
    "provenance",
    "record_path",
    "stats_us",
    "time_call",
    "versions",
    "write_record",
]
