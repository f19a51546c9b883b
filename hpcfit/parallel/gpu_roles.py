"""Which MPI ranks see a GPU: the per-rank environment decided before JAX starts.

Right after MPI starts and before JAX is imported, node-local rank ``l``
takes a GPU when ``l < gpus_per_node``: ``CUDA_VISIBLE_DEVICES`` = the l-th entry of the
launch-time list (or ``l``), JAX platforms ``cuda,cpu``, deterministic GPU ops unless disabled,
and an optional persistent compilation cache. The other ranks are CPU ranks: no visible GPU,
platform ``cpu`` and the virtual host devices of the NUTS chains. A task that the launcher
already bound to one GPU keeps it. ``gpus_per_node=auto`` counts the launch-time
``CUDA_VISIBLE_DEVICES`` list, else ``SLURM_GPUS_ON_NODE``, else 0.

Pure functions of their arguments (no MPI, no JAX); :mod:`hpcfit.device` re-exports them.
"""

from __future__ import annotations

import numbers
import os
import sys
from collections.abc import Mapping, Sequence

from hpcfit.errors import ConfigError
from hpcfit.runtime.process import merge_xla_flags

_DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops"


class RankRole(dict[str, str]):
    """Environment updates for one rank (a plain ``dict`` to merge into ``os.environ``), with the
    ``role`` they give it (``"gpu"`` or ``"cpu"``) and whether a launcher binding was kept."""

    def __init__(self, role: str, updates: Mapping[str, str], *, bound: bool = False) -> None:
        super().__init__(updates)
        self.role = role
        self.bound = bound


def visible_devices(value: str | None) -> list[str] | None:
    """A ``CUDA_VISIBLE_DEVICES`` value as a list of entries; None when the variable is unset.

    Entries are indices or ``GPU-``/``MIG-`` UUIDs; as in CUDA, the list ends at the first entry
    that is neither (``-1``, ``NoDevFiles``), so an empty string or ``-1`` means no GPU.
    """
    if value is None:
        return None
    entries: list[str] = []
    for raw in value.split(","):
        entry = raw.strip()
        if not (entry.isdigit() or entry.startswith(("GPU-", "MIG-"))):
            break
        entries.append(entry)
    return entries


def gpus_per_node_from_env(environ: Mapping[str, str]) -> int:
    """``device.gpus_per_node=auto``: the launch-time ``CUDA_VISIBLE_DEVICES`` count (an empty
    value means 0), else ``SLURM_GPUS_ON_NODE``, else 0."""
    visible = visible_devices(environ.get("CUDA_VISIBLE_DEVICES"))
    if visible is not None:
        return len(visible)
    slurm = environ.get("SLURM_GPUS_ON_NODE", "").strip()
    if not slurm:
        return 0
    if not slurm.isdigit():
        raise ConfigError(
            f"device.gpus_per_node=auto: expected SLURM_GPUS_ON_NODE to be a count >= 0, "
            f"got {slurm!r}"
        )
    return int(slurm)


def _gpus_per_node(value: int | str | None, environ: Mapping[str, str]) -> int:
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return gpus_per_node_from_env(environ)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ConfigError(f"device.gpus_per_node: expected auto or an integer >= 0, got {value!r}")
    return int(value)


def _is_bound(visible: list[str] | None, node_visible: Sequence[str | None] | None) -> bool:
    """Whether the launcher bound this task to one GPU (a one-entry list of its own)."""
    if visible is None or len(visible) != 1:
        return False
    if node_visible is None:
        return True
    lists = [visible_devices(v) for v in node_visible]
    entries = [tuple(v) for v in lists if v is not None and len(v) == 1]
    return len(entries) == len(lists) and len(set(entries)) == len(entries)


def plan_rank_role(
    local_rank: int,
    gpus_per_node: int | str | None,
    environ: Mapping[str, str],
    *,
    device_count: int | None = None,
    deterministic_gpu: bool = True,
    compile_cache: str | os.PathLike[str] | None = None,
    node_visible: Sequence[str | None] | None = None,
) -> RankRole:
    """Environment updates that give node-local rank ``local_rank`` its GPU or CPU role.

    Parameters
    ----------
    local_rank : int              rank in the node-local (shared-memory) communicator
    gpus_per_node : int | "auto"  GPU ranks per node (``auto``/None: :func:`gpus_per_node_from_env`)
    environ : Mapping             the launch-time environment (e.g. ``os.environ``)
    device_count : int | None     virtual host devices for CPU ranks (NUTS chains); None: unchanged
    deterministic_gpu : bool      add ``--xla_gpu_deterministic_ops=true`` on GPU ranks
    compile_cache : path | None   JAX persistent compilation cache for GPU ranks (an existing
                                  ``JAX_COMPILATION_CACHE_DIR`` wins)
    node_visible : list | None    the launch-time ``CUDA_VISIBLE_DEVICES`` of every node-local
                                  rank (None where unset). Without it a one-entry list counts as
                                  a launcher binding; with it only when the node's lists are
                                  one-entry and pairwise different (a shared single GPU is not)

    Returns
    -------
    RankRole  a dict of ``CUDA_VISIBLE_DEVICES``, ``JAX_PLATFORMS``, ``JAX_ENABLE_X64``,
    ``XLA_FLAGS`` (and ``JAX_COMPILATION_CACHE_DIR``) with ``.role`` ``"gpu"`` or ``"cpu"``.
    Raises ConfigError when ``gpus_per_node`` exceeds the launch-time visible list. Pure: unlike
    :func:`assign_rank_devices` it may run where JAX is already imported (tests, dry runs).
    """
    if isinstance(local_rank, bool) or not isinstance(local_rank, numbers.Integral):
        raise TypeError(f"local_rank must be an integer, got {local_rank!r}")
    if local_rank < 0:
        raise ValueError(f"local_rank must be >= 0, got {local_rank}")
    local = int(local_rank)
    n_gpus = _gpus_per_node(gpus_per_node, environ)
    launch_value = environ.get("CUDA_VISIBLE_DEVICES")
    visible = visible_devices(launch_value)
    bound = n_gpus > 0 and _is_bound(visible, node_visible)
    if not bound and visible is not None and n_gpus > len(visible):
        raise ConfigError(
            f"device.gpus_per_node: expected at most {len(visible)} (the GPUs listed in "
            f"CUDA_VISIBLE_DEVICES={launch_value!r}), got {n_gpus}"
        )
    flags = environ.get("XLA_FLAGS", "")
    updates = {"JAX_ENABLE_X64": "1"}
    if bound or local < n_gpus:
        entries = visible if visible is not None else [str(i) for i in range(n_gpus)]
        updates["CUDA_VISIBLE_DEVICES"] = entries[0] if bound else entries[local]
        updates["JAX_PLATFORMS"] = "cuda,cpu"
        if deterministic_gpu:
            kept = [f for f in flags.split() if not f.startswith(_DETERMINISTIC_FLAG)]
            flags = " ".join([*kept, f"{_DETERMINISTIC_FLAG}=true"])
        updates["XLA_FLAGS"] = flags
        if compile_cache is not None and "JAX_COMPILATION_CACHE_DIR" not in environ:
            updates["JAX_COMPILATION_CACHE_DIR"] = os.fspath(compile_cache)
        return RankRole("gpu", updates, bound=bound)
    updates["CUDA_VISIBLE_DEVICES"] = ""
    updates["JAX_PLATFORMS"] = "cpu"
    updates["XLA_FLAGS"] = merge_xla_flags(flags, device_count)
    return RankRole("cpu", updates)


def assign_rank_devices(
    local_rank: int,
    gpus_per_node: int | str | None,
    environ: Mapping[str, str],
    *,
    device_count: int | None = None,
    deterministic_gpu: bool = True,
    compile_cache: str | os.PathLike[str] | None = None,
    node_visible: Sequence[str | None] | None = None,
) -> RankRole:
    """:func:`plan_rank_role`, called right after MPI starts, before JAX is imported.

    Raises RuntimeError when JAX is already imported: it fixes its platforms and visible GPUs
    at import, so the returned updates could no longer take effect.
    """
    if "jax" in sys.modules:
        raise RuntimeError(
            "assign_rank_devices must run before jax is imported: JAX fixes its platforms and "
            "visible GPUs at import"
        )
    return plan_rank_role(
        local_rank,
        gpus_per_node,
        environ,
        device_count=device_count,
        deterministic_gpu=deterministic_gpu,
        compile_cache=compile_cache,
        node_visible=node_visible,
    )
