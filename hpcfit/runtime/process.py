"""Process setup before JAX starts: x64, XLA flags, thread and nlsq variables.

JAX reads ``JAX_ENABLE_X64`` when it is imported and ``XLA_FLAGS`` when its backend starts, so
every entry point calls :func:`configure` before anything imports ``jax`` (NumPyro and nlsq
import it too). Library modules that need JAX call :func:`ensure_x64`, which is safe at any time.
"""

from __future__ import annotations

import os
import sys

_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def merge_xla_flags(existing: str, device_count: int | None) -> str:
    """Return ``existing`` XLA flags with the host device count replaced (other flags kept).

    ``device_count=None`` leaves the flags as they are, a user's device count included.
    """
    if device_count is None:
        return existing
    flags = [f for f in existing.split() if not f.startswith(_DEVICE_COUNT_FLAG)]
    flags.append(f"{_DEVICE_COUNT_FLAG}={int(device_count)}")
    return " ".join(flags)


def configure(*, device_count: int | None = None, threads: int = 1) -> None:
    """Set the environment for a float64, CPU-thread-limited JAX process.

    Must run before ``jax`` is imported for the device count to take effect; x64 is also switched
    on afterwards through ``jax.config`` in case JAX was already imported by the caller.
    """
    if device_count is not None and "jax" in sys.modules:
        raise RuntimeError("configure(device_count=...) must run before jax is imported")
    os.environ["XLA_FLAGS"] = merge_xla_flags(os.environ.get("XLA_FLAGS", ""), device_count)
    os.environ["JAX_ENABLE_X64"] = "1"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # GPU ranks are routed explicitly
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        os.environ.setdefault("NLSQ_DISABLE_PERSISTENT_CACHE", "1")
    ensure_x64()


def ensure_x64() -> None:
    """Switch JAX to float64 (before or after its import)."""
    os.environ.setdefault("JAX_ENABLE_X64", "1")
    import jax

    jax.config.update("jax_enable_x64", True)
