"""Process setup before JAX starts: x64, XLA flags, thread and nlsq variables, glibc malloc.

JAX reads ``JAX_ENABLE_X64`` when it is imported and ``XLA_FLAGS`` when its backend starts, so
every entry point calls :func:`configure` before anything imports ``jax`` (NumPyro and nlsq
import it too). Float64 is switched on once, when :mod:`hpcfit` is imported (:func:`ensure_x64`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from typing import Any

_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
_M_ARENA_MAX = -8  # glibc's mallopt parameter numbers: the arena count,
_M_MMAP_THRESHOLD = -3  # and the size from which a block gets its own mapping
MALLOC_ARENAS = 2
"""glibc malloc arenas of a hpcfit process, unless ``MALLOC_ARENA_MAX`` is set.

With glibc's default (up to 8 per core), memory that XLA's CPU threads free inside one long
computation is not reused across their arenas: one 4-chain NUTS shard of the embedded data
(14 850 points, 500 + 1000 iterations) grew by about 35 MB/s to a 17.9 GB peak; with two
arenas it peaked at 1.0 GB and ran 11 % faster (``benchmarks/malloc_arenas.py``)."""


def merge_xla_flags(existing: str, device_count: int | None) -> str:
    """Return ``existing`` XLA flags with the host device count replaced (other flags kept).

    ``device_count=None`` leaves the flags as they are, a user's device count included.
    """
    if device_count is None:
        return existing
    flags = [f for f in existing.split() if not f.startswith(_DEVICE_COUNT_FLAG)]
    flags.append(f"{_DEVICE_COUNT_FLAG}={int(device_count)}")
    return " ".join(flags)


MMAP_THRESHOLD = 128 * 1024
"""Bytes from which glibc maps a block on its own (and unmaps it when freed), fixed.

glibc's default starts at 128 KiB but rises to the size of each mapped block freed (up to
32 MiB), after which XLA's per-iteration buffers of that size come from the arenas, where freed
memory stays in the process. One 2-chain NUTS shard of 19 222 points (500 + 1000 iterations)
then grew from 0.7 to 1.5 GB, and a 7-shard job peaked at 2.4 GB against the plan's 0.9 GB;
with the threshold fixed at 128 KiB the same shard stays at 0.74 GB, at the same speed
(``benchmarks/plan_vs_run.py``, record ``plan_vs_run_large``). Fixing the threshold also turns
off glibc's dynamic adjustment. ``MALLOC_MMAP_THRESHOLD_`` wins when set."""


def _mallopt() -> Any:
    """glibc's ``mallopt``, or None on another C library or system."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries: left alone
        return None


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> int | None:
    """Fix glibc's mmap threshold at ``threshold`` bytes (``MALLOC_MMAP_THRESHOLD_`` wins when
    set); the threshold in force, or None where the C library is not glibc."""
    value = os.environ.get("MALLOC_MMAP_THRESHOLD_", "").strip()
    if value.isdigit():  # glibc read it at start-up
        return int(value)
    mallopt = _mallopt()
    if mallopt is None:
        return None
    return threshold if mallopt(_M_MMAP_THRESHOLD, threshold) == 1 else None


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> int | None:
    """Cap glibc's malloc arenas at ``arenas`` (``MALLOC_ARENA_MAX`` wins when set); the cap
    applied, or None where the C library is not glibc. Call before JAX starts its threads."""
    value = os.environ.get("MALLOC_ARENA_MAX", "").strip()
    if value.isdigit():  # glibc read it at start-up; a value it ignores gets hpcfit's cap
        return int(value)
    mallopt = _mallopt()
    if mallopt is None:
        return None
    return arenas if mallopt(_M_ARENA_MAX, arenas) == 1 else None


def configure(*, device_count: int | None = None, threads: int = 1) -> None:
    """Set the environment for a float64, CPU-thread-limited JAX process.

    The device count takes effect only before the JAX backend starts (the first JAX operation):
    it goes into ``XLA_FLAGS`` and, when JAX is already imported, into ``jax_num_cpu_devices``,
    which raises ``RuntimeError`` if the backend has already started instead of silently
    keeping one device, and x64 is switched on through ``jax.config`` as well. JAX is never
    imported here: rank roles (GPU or CPU, :mod:`hpcfit.device`) must be set before it is.
    """
    os.environ["XLA_FLAGS"] = merge_xla_flags(os.environ.get("XLA_FLAGS", ""), device_count)
    os.environ["JAX_ENABLE_X64"] = "1"
    limit_malloc_arenas()
    fix_mmap_threshold()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # GPU ranks are routed explicitly
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        os.environ.setdefault("NLSQ_DISABLE_PERSISTENT_CACHE", "1")
    if "jax" in sys.modules:  # otherwise JAX reads the variables above when it is imported
        import jax

        if device_count is not None:
            jax.config.update("jax_num_cpu_devices", int(device_count))
        ensure_x64()


def check_devices(n_chains: int) -> int:
    """``jax.local_device_count()``; raises RuntimeError when it is below ``n_chains``."""
    import jax

    n = jax.local_device_count()
    if n < n_chains:
        raise RuntimeError(
            f"JAX sees {n} local devices but cmc.num_chains={n_chains} parallel chains need "
            f"{n_chains}: the device count was set after the JAX backend started"
        )
    return n


def ensure_x64() -> None:
    """Switch JAX to float64: the variable JAX reads when it is imported, and its config when it
    already is. Never imports JAX; called once, when :mod:`hpcfit` is imported."""
    os.environ["JAX_ENABLE_X64"] = "1"
    jax = sys.modules.get("jax")
    if jax is not None and hasattr(jax, "config"):  # not while JAX itself is being imported
        jax.config.update("jax_enable_x64", True)


def import_nlsq():
    """Import ``nlsq`` without its import-time side effects on logging."""
    root = logging.getLogger()
    before = list(root.handlers)
    import nlsq

    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
    logging.getLogger("nlsq").propagate = False
    return nlsq
