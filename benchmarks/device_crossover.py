"""CPU-versus-GPU crossover of the routed workloads, and the routing threshold it recommends.

Sweeps, each point on ``"cpu"`` and on ``"gpu"`` (steady = minimum of 3 repeats after a warm-up;
compile = first call − steady):

* **NRPT:** open L×L grids, L ∈ {8, 16, 32, 64, 128} × chains {4, 8, 16, 32}; fields
  b ~ N(0, 0.1²), couplings J ~ N(0, 0.5²) (NumPy seed 0); one round of 100 scans with
  n_expl = 2 on the fixed ladder linspace(0.1, 1). Score = chains × spins.
* **Kuramoto:** N ∈ {32, …, 2048} (powers of 2) × members {1, 4, 16, 64}, 100 RK4 steps of
  dt = 0.05 on the bench network. Score = members × N.

The recommendation (:func:`hpcfit.device.recommend_threshold`) is printed as
``export HPCFIT_DEVICE_THRESHOLD=<t>`` per workload, or that the GPU never wins; the JSON record
holds every row, the compile times and the GPU model. With no accelerator visible to JAX the
script prints one line and exits 0.

Usage: ``python benchmarks/device_crossover.py [--quick]`` (``--quick``: the two smallest sizes
of each axis, to check the script itself). Run it on the GPU node itself; ``JAX_PLATFORMS`` must
allow ``cuda`` (hpcfit's default for a plain process is ``cpu``, so this script clears it).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if os.environ.get("JAX_PLATFORMS", "") in ("", "cpu"):
    os.environ["JAX_PLATFORMS"] = "cuda,cpu"  # see the GPU if there is one; CPU stays available
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_gpu_deterministic_ops=true")

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NRPT_L = (8, 16, 32, 64, 128)
NRPT_CHAINS = (4, 8, 16, 32)
KURAMOTO_N = (32, 64, 128, 256, 512, 1024, 2048)
KURAMOTO_MEMBERS = (1, 4, 16, 64)
REPEATS = 3


def gpu_or_none() -> Any:
    """The first GPU JAX can see, or None (a CPU-only jaxlib or no device)."""
    try:
        import jax
    except Exception:  # noqa: BLE001 - no JAX at all: no accelerator either
        return None
    from hpcfit import device

    try:
        return device.first_gpu()
    except Exception:  # noqa: BLE001
        jax.config.update("jax_platforms", "cpu")
        return None


def time_point(call: Callable[[], Any]) -> dict[str, float]:
    """First call (compile included), then the minimum of REPEATS steady calls, in µs."""
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(call())
    first = time.perf_counter() - t0
    steady = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        jax.block_until_ready(call())
        steady.append(time.perf_counter() - t0)
    best = min(steady)
    return {"first_us": first * 1e6, "steady_us": best * 1e6, "compile_us": (first - best) * 1e6}


def nrpt_call(L: int, chains: int, dev: Any) -> Callable[[], Any]:
    """One round of 100 scans of NRPT on the hamon-style random open grid, placed on ``dev``."""
    import jax
    import numpy as np

    from hpcfit import device
    from hpcfit.nrpt import IsingModel, IsingTarget, grid_model
    from hpcfit.nrpt.engine import get_engine, replica_keys, run_round_scan

    rng = np.random.default_rng(0)
    grid = grid_model(L)
    model = IsingModel(
        n=grid.n,
        edges=grid.edges,
        J=rng.normal(0.0, 0.5, grid.n_edges),
        h=rng.normal(0.0, 0.1, grid.n),
        grid=grid.grid,
    )
    target = IsingTarget(model)
    engine = get_engine(target, chains, 2, 128)
    betas = np.linspace(0.1, 1.0, chains)
    ids = np.arange(chains)
    with jax.default_device(dev):
        keys = device.tree_device_put(replica_keys(0, ids), dev)
        states = engine.init_fn(keys)

    def call():
        with jax.default_device(dev):
            return run_round_scan(engine, states, keys, ids.astype(np.int32), betas, 0, 100)[0]

    return call


def kuramoto_call(n: int, members: int, dev: Any) -> Callable[[], Any]:
    """100 RK4 steps of ``members`` copies of the bench network of size n on ``dev``."""
    import numpy as np

    from hpcfit.kuramoto import ensemble
    from hpcfit.kuramoto.network import all_to_all, bench_network

    omega, theta0 = bench_network(n)[:2]
    k = all_to_all(n, 1.8)
    theta = np.tile(np.asarray(theta0), (members, 1))

    def call():
        return ensemble(theta, omega, k, dt=0.05, n_steps=100, record="final", device=dev)

    return call


def sweep(
    name: str, points: list[tuple[int, ...]], make: Callable, score: Callable, cpu: Any, gpu: Any
) -> list[dict[str, Any]]:
    rows = []
    for p in points:
        row: dict[str, Any] = {"workload": name, "point": list(p), "score": score(*p)}
        for label, dev in (("cpu", cpu), ("gpu", gpu)):
            row[label] = time_point(make(*p, dev))
        row["cpu_wins"] = row["cpu"]["steady_us"] <= row["gpu"]["steady_us"]
        rows.append(row)
        print(
            f"{name:9s} {str(p):>12s} score {row['score']:>8d}  "
            f"cpu {row['cpu']['steady_us'] / 1e3:9.2f} ms  "
            f"gpu {row['gpu']['steady_us'] / 1e3:9.2f} ms  {'CPU' if row['cpu_wins'] else 'GPU'}",
            flush=True,
        )
    return rows


def recommendation(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from hpcfit import device

    table = [(r["score"], r["cpu"]["steady_us"], r["gpu"]["steady_us"]) for r in rows]
    bracket = device.crossover_bracket(table)
    return {
        "threshold": device.recommend_threshold(table),
        "bracket": list(bracket) if bracket else None,
    }


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    gpu = gpu_or_none()
    if gpu is None:
        print("device_crossover: no GPU is visible to JAX on this host; nothing to compare")
        return 0
    import _record
    import jax

    cpu = jax.devices("cpu")[0]
    ls, cs = (NRPT_L[:2], NRPT_CHAINS[:2]) if quick else (NRPT_L, NRPT_CHAINS)
    ns, bs = (KURAMOTO_N[:2], KURAMOTO_MEMBERS[:2]) if quick else (KURAMOTO_N, KURAMOTO_MEMBERS)
    nrpt_rows = sweep(
        "nrpt", [(L, c) for L in ls for c in cs], nrpt_call, lambda L, c: c * L * L, cpu, gpu
    )
    kur_rows = sweep(
        "kuramoto", [(n, b) for n in ns for b in bs], kuramoto_call, lambda n, b: n * b, cpu, gpu
    )
    advice = {"nrpt": recommendation(nrpt_rows), "kuramoto": recommendation(kur_rows)}
    for name, rec in advice.items():
        if rec["threshold"] is None:
            print(f"{name}: the GPU never won on this host; keep routing on the CPU")
        else:
            print(f"{name}: export HPCFIT_DEVICE_THRESHOLD={rec['threshold']}  ({rec['bracket']})")
    path = _record.write_record(
        "device_crossover",
        {
            "workload": "routing",
            "params": {
                "quick": quick,
                "repeats": REPEATS,
                "nrpt_scans": 100,
                "kuramoto_steps": 100,
            },
            "results": {"rows": nrpt_rows + kur_rows, "recommendation": advice},
            "gpu_model": getattr(gpu, "device_kind", "unknown"),
        },
        mpi={"P": 1, "ranks_per_node": 1, "gpu_ranks": 1},
    )
    print(f"record: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
