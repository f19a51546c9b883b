"""Device routing: which device a JAX workload runs on, and which MPI ranks see a GPU.

Pure policy. Importing this module does not import JAX: rank roles are
decided before JAX exists, and JAX is imported only inside the functions that place arrays.

**Routing within a process.** ``resolve_device(device="auto", *, score, threshold)`` returns a
``jax.Device`` or ``None`` ("do not touch placement"):

* ``None`` opts out; a ``jax.Device`` is returned as is (orchestrators resolve once and pass the
  Device down); ``"cpu"`` is the first CPU device; ``"gpu"`` the first visible GPU, or
  RuntimeError when JAX sees none. Strings are stripped and case-insensitive.
* ``"auto"`` consults ``HPCFIT_DEVICE`` (``none``/``off``: ``None``; ``cpu``/``gpu``: as if given
  explicitly; unset, empty or ``auto``: automatic). An explicit argument always wins over it.
* Automatic routing is a no-op (``None``) when no GPU is visible. With a GPU, work whose *score*
  reaches the threshold runs on the GPU, smaller work (or a ``None`` score) on the CPU.
* Threshold: the argument, else ``HPCFIT_DEVICE_THRESHOLD``, else 4096 (hamon's measured
  crossover: every point with score ≤ 2048 was faster on the CPU, every point ≥ 4096 2–11× faster
  on the GPU). ``benchmarks/device_crossover.py`` measures it for other hardware. Both variables
  are read on every call.

**Entry points** call ``resolve_entry_device``: it returns None when an input is a tracer (inside
``jit``/``vmap``/``grad``) and passes a resolved Device through untouched. A run resolves once,
commits its inputs with ``tree_device_put`` and never changes device midway.

**Scores** are the width of one step's parallel front, with ⌈n/P⌉ local items so every rank of a
workload decides alike: NRPT ``chains × free spins``, Kuramoto ``members × oscillators``. Step and
round counts do not enter (the loop is one compiled ``lax.scan``). XPCS NUTS is never routed: it
always runs on CPU devices.

**Rank roles** (:mod:`hpcfit.parallel.gpu_roles`; ``assign_rank_devices`` and
``plan_rank_role`` are re-exported here): right after MPI starts and before JAX is imported,
node-local ranks below ``gpus_per_node`` take one GPU each and the others are CPU ranks.

**Determinism.** Results are bitwise invariant in the rank count for a fixed device kind. With
``auto`` the kind can change with the rank count (the score uses ⌈n/P⌉): pin ``cpu`` or ``gpu``
when bitwise reproducibility across rank counts matters on GPU nodes.
"""

from __future__ import annotations

import enum
import functools
import math
import numbers
import operator
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from hpcfit.parallel.gpu_roles import (  # noqa: F401  (part of the hpcfit.device API)
    RankRole,
    assign_rank_devices,
    gpus_per_node_from_env,
    plan_rank_role,
    visible_devices,
)

DEFAULT_THRESHOLD = 4096
"""Score at and above which ``auto`` picks the GPU (hamon's crossover, RTX 5080, jax 0.10.1)."""
ENV_DEVICE = "HPCFIT_DEVICE"
ENV_THRESHOLD = "HPCFIT_DEVICE_THRESHOLD"

KURAMOTO_FACTOR = 1
"""Weight of the Kuramoto score relative to NRPT's. An RK4 step costs O(N²) per member and an
NRPT sweep O(n + |E|) per chain, so the plain product under-weights Kuramoto; it stays 1 until
the crossover sweep measures the two workloads' crossovers more than 2× apart on real hardware,
then it becomes their ratio, with the benchmark record cited here."""

_SPECS = ("auto", "cpu", "gpu")
_ENV_VALUES = ("auto", "cpu", "gpu", "none", "off")
_NO_GPU = (
    "no GPU is visible to JAX (check JAX_PLATFORMS, CUDA_VISIBLE_DEVICES and the installed jaxlib)"
)


class Route(enum.Enum):
    """The answer of :func:`decide`."""

    NONE = "none"  # leave placement alone
    CPU = "cpu"  # the first CPU device
    ACCELERATOR = "accelerator"  # the first visible GPU


NONE = Route.NONE
CPU = Route.CPU
ACCELERATOR = Route.ACCELERATOR


# --------------------------------------------------------------------------- routing policy


def _is_device(spec: object) -> bool:
    """True for a ``jax.Device``; never imports JAX (no Device exists before JAX is imported)."""
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(spec, jax.Device)


def _check_threshold(value: object, source: str) -> float:
    """``value`` (a number, or text from the environment) as a finite float ≥ 0, else ValueError
    naming ``source``."""
    number = math.nan
    if isinstance(value, str) and source == ENV_THRESHOLD:
        try:
            number = float(value.strip())
        except ValueError:
            pass
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{source} must be a finite number >= 0, got {value!r}")
    return number


def _check_score(score: object) -> float | None:
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        raise TypeError(f"score must be a number or None, got {type(score).__name__}")
    value = float(score)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"score must be a finite number >= 0, got {score!r}")
    return value


def _env_route(env_device: str | None) -> str:
    """``HPCFIT_DEVICE`` normalised to auto|cpu|gpu|none (``off`` is ``none``)."""
    value = (env_device or "").strip().lower() or "auto"
    if value not in _ENV_VALUES:
        allowed = ", ".join(_ENV_VALUES)
        raise ValueError(f"{ENV_DEVICE} must be one of {allowed}, got {env_device!r}")
    return "none" if value == "off" else value


def effective_threshold(threshold: object = None, env_threshold: str | None = None) -> float:
    """The threshold in force: argument > ``HPCFIT_DEVICE_THRESHOLD`` > :data:`DEFAULT_THRESHOLD`.

    An empty or blank variable counts as unset. Raises ValueError naming the source of a value
    that is not a finite number ≥ 0.
    """
    if threshold is not None:
        return _check_threshold(threshold, "threshold")
    if env_threshold is not None and env_threshold.strip():
        return _check_threshold(env_threshold, ENV_THRESHOLD)
    return float(DEFAULT_THRESHOLD)


def decide(
    spec: Any,
    env_device: str | None,
    env_threshold: str | None,
    score: float | None,
    threshold: float | None,
    has_gpu: bool,
) -> Route | Any:
    """The device routing table as a pure function.

    ``spec`` is the ``device`` argument, ``env_*`` the raw values of ``HPCFIT_DEVICE`` and
    ``HPCFIT_DEVICE_THRESHOLD`` (None when unset), ``score`` the dimensionless work score,
    ``has_gpu`` whether JAX sees a GPU. Returns :data:`NONE`, :data:`CPU` or :data:`ACCELERATOR`,
    or a ``jax.Device`` spec itself. Raises ValueError (unknown string, bad variable, threshold or
    score), TypeError (a spec of another type), RuntimeError (``gpu`` without a GPU).
    """
    if spec is None:
        return NONE
    if not isinstance(spec, str):
        if _is_device(spec):
            return spec
        raise TypeError(
            f"device must be None, a jax.Device or one of {', '.join(_SPECS)}; "
            f"got {type(spec).__name__}"
        )
    choice = spec.strip().lower()
    if choice not in _SPECS:
        raise ValueError(f"device must be one of {', '.join(_SPECS)}, got {spec!r}")
    score_value = _check_score(score)
    if threshold is not None:
        _check_threshold(threshold, "threshold")
    if choice == "auto":
        choice = _env_route(env_device)
    if choice == "none":
        return NONE
    if choice == "cpu":
        return CPU
    if choice == "gpu":
        if not has_gpu:
            raise RuntimeError(_NO_GPU)
        return ACCELERATOR
    limit = effective_threshold(threshold, env_threshold)  # validated even without a GPU
    if not has_gpu:
        return NONE
    if score_value is None or score_value < limit:
        return CPU
    return ACCELERATOR


def first_gpu() -> Any:
    """The first GPU ``jax.Device`` JAX sees, or None (also on a CPU-only jaxlib).

    Looked up once per process: JAX fixes its backends when it starts, and asking a CPU-only
    jaxlib for GPUs raises, which would cost microseconds on every routing call.
    """
    return _first_gpu_cached()


@functools.cache
def _first_gpu_cached() -> Any:
    import jax

    try:
        gpus = jax.devices("gpu")
    except RuntimeError:  # "Unknown backend: 'gpu' requested" on CPU-only installations
        return None
    return gpus[0] if gpus else None


def resolve_device(
    device: Any = "auto", *, score: float | None = None, threshold: float | None = None
) -> Any:
    """The device to run on (``jax.Device``) or None, per :func:`decide`.

    The environment is read on every call. GPU discovery goes through the module attribute
    :func:`first_gpu` at call time.
    """
    if device is None:
        return None
    if isinstance(device, str):
        gpu = first_gpu()
    elif _is_device(device):
        return device
    else:
        gpu = None  # decide() raises TypeError for this spec
    route = decide(
        device,
        os.environ.get(ENV_DEVICE),
        os.environ.get(ENV_THRESHOLD),
        score,
        threshold,
        gpu is not None,
    )
    if route is NONE:
        return None
    if route is ACCELERATOR:
        return gpu
    import jax

    return jax.devices("cpu")[0]


def resolve_entry_device(
    device: Any, *, score: float | None, arrays: Any = (), threshold: float | None = None
) -> Any:
    """:func:`resolve_device` for a public entry point, safe under ``jit``/``vmap``/``grad``.

    Returns None when any leaf of the pytree ``arrays`` is a tracer (placement is the caller's
    business there), ``device`` itself when it is already a ``jax.Device`` or None (so phases of
    a run never resolve again), else ``resolve_device(device, score=…, threshold=…)``.
    """
    import jax

    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(arrays)):
        return None
    if device is None or _is_device(device):
        return device
    return resolve_device(device, score=score, threshold=threshold)


def tree_device_put(tree: Any, device: Any) -> Any:
    """Commit the ``jax.Array`` leaves of ``tree`` to ``device``.

    ``device=None`` returns ``tree`` itself. When every concrete ``jax.Array`` leaf is already
    committed to exactly ``{device}``, ``tree`` itself is returned, so jit cache keys stay stable.
    Otherwise a new tree in which only the ``jax.Array`` leaves are moved; NumPy arrays, scalars,
    other objects and tracers keep their identity.
    """
    if device is None:
        return tree
    import jax

    leaves, treedef = jax.tree_util.tree_flatten(tree)

    def movable(leaf: object) -> bool:
        return isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer)

    if all(leaf.committed and leaf.devices() == {device} for leaf in leaves if movable(leaf)):
        return tree
    moved = [jax.device_put(leaf, device) if movable(leaf) else leaf for leaf in leaves]
    return jax.tree_util.tree_unflatten(treedef, moved)


# --------------------------------------------------------------------------- work scores


def _count(name: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def n_local(n_global: int, n_ranks: int) -> int:
    """⌈n_global / n_ranks⌉: the largest number of items any rank holds (block rule)."""
    n = _count("n_global", n_global)
    p = _count("n_ranks", n_ranks, 1)
    return -(-n // p)


def nrpt_score(n_local_chains: int, free_nodes: int) -> int:
    """NRPT work score: spins one explorer sweep updates, ``n_local_chains × free_nodes``."""
    return _count("n_local_chains", n_local_chains) * _count("free_nodes", free_nodes)


def kuramoto_score(n_local_members: int, n_oscillators: int) -> int:
    """Kuramoto work score: ``KURAMOTO_FACTOR × n_local_members × n_oscillators``."""
    members = _count("n_local_members", n_local_members)
    return KURAMOTO_FACTOR * members * _count("n_oscillators", n_oscillators)


# --------------------------------------------------------------------------- crossover rule


def crossover_bracket(rows: Iterable[Sequence[float]]) -> tuple[float, float] | None:
    """(low, high) around the CPU/GPU crossover of measured rows ``(score, t_cpu, t_gpu)``.

    A row is a CPU win when ``t_cpu <= t_gpu`` (times in any one unit). low = the largest
    CPU-win score, or half the smallest GPU-win score when the CPU never won; high = the smallest
    GPU-win score above low. None when no GPU win lies above low (the GPU never wins).
    """
    table = [tuple(row) for row in rows]
    if not table:
        raise ValueError("the crossover needs at least one (score, t_cpu, t_gpu) row")
    cpu_wins: list[float] = []
    gpu_wins: list[float] = []
    for row in table:
        if len(row) != 3:
            raise ValueError(f"a crossover row is (score, t_cpu, t_gpu), got {row!r}")
        score, t_cpu, t_gpu = (float(v) for v in row)
        if not all(math.isfinite(v) for v in (score, t_cpu, t_gpu)) or score <= 0:
            raise ValueError(f"crossover rows need a finite score > 0 and finite times: {row!r}")
        (cpu_wins if t_cpu <= t_gpu else gpu_wins).append(score)
    if not gpu_wins:
        return None
    low = max(cpu_wins) if cpu_wins else 0.5 * min(gpu_wins)
    above = [s for s in gpu_wins if s > low]
    return (low, min(above)) if above else None


def recommend_threshold(rows: Iterable[Sequence[float]]) -> int | None:
    """Threshold from a crossover sweep: 2^⌊log₂√(low·high) + ½⌋, or None if the GPU never wins.

    The geometric midpoint of :func:`crossover_bracket`'s (low, high), rounded to a power of two
    in log space; e.g. (2048, 4096) → √ = 2896 → 4096.
    """
    bracket = crossover_bracket(rows)
    if bracket is None:
        return None
    low, high = bracket
    exponent = math.floor(0.5 * (math.log2(low) + math.log2(high)) + 0.5)
    return 2**exponent
