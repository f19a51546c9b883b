"""Peer driver: the ``hamon`` package (0.12.0, or 0.4.0), run by the peer venv's python.

Started by ``benchmarks/nrpt_bench.py`` through ``peers/client.py`` as a long-lived subprocess of
``.peers/hamon/bin/python``, so hpcfit and hamon runs alternate while both stay warm. Protocol:
one JSON object per line, a command on stdin and one reply on stdout (the package's own output
goes to stderr). Commands:

``info``                                versions, x64 flag and devices of this process
``setup L J h betas n_expl dtype``      build an open L×L Ising grid (J, field h) as a hamon
                                        ``IsingEBM`` + ``IsingSamplingProgram`` with hamon's own
                                        graph colouring, at β_t = 1, on the given ladder
``run seed n_scans``                    one ``hamon.nrpt`` call on that ladder: ``n_scans``
                                        hamon "rounds" (each = ``n_expl`` Gibbs sweeps + one DEO
                                        swap pass, i.e. one hpcfit scan), a ``ColdChainObserver``
                                        recording the target chain's energy; returns the wall
                                        time of the call, hamon's round-trip diagnostics and the
                                        energy series
``quit``

hamon's conventions differ from hpcfit's: a swap exchanges *states* (the observer
sees chain positions), acceptance counts 0/1 outcomes, and round trips are counted per machine by
hamon's index process (``round_trips_per_chain``), reset per call. The caller compares rates.
Imports nothing from hpcfit; the protocol is ``peers/_driver.py`` (stdlib only).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_ENABLE_X64", "1")  # hpcfit runs float64; "dtype" picks per setup

# first: puts benchmarks/ on sys.path and sends the package's prints to stderr
from _driver import serve, version  # noqa: E402

# isort: split
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

STATE: dict[str, Any] = {}


def _grid_edges(L: int) -> np.ndarray:
    """Open L×L grid, spin row·L + col, right then lower neighbour (as hpcfit's grid_model)."""
    edges = []
    for r in range(L):
        for c in range(L):
            i = r * L + c
            if c + 1 < L:
                edges.append((i, i + 1))
            if r + 1 < L:
                edges.append((i, i + L))
    return np.asarray(edges, dtype=np.int64)


def cmd_info() -> dict[str, Any]:
    return {
        "hamon": version("hamon"),
        "jax": version("jax"),
        "jaxlib": version("jaxlib"),
        "numpy": version("numpy"),
        "python": sys.version.split()[0],
        "x64": bool(jax.config.jax_enable_x64),
        "devices": [str(d) for d in jax.devices()],
        "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
    }


def cmd_setup(L: int, J: float, h: float, betas: list[float], n_expl: int, dtype: str) -> dict:
    from hamon.models.ising import IsingEBM, IsingSamplingProgram, _ising_graph

    dt = jnp.float64 if dtype == "float64" else jnp.float32
    edges = _grid_edges(int(L))
    n = int(L) * int(L)
    nodes, node_edges, free_blocks = _ising_graph(n, edges)
    ebm = IsingEBM(
        nodes,
        node_edges,
        jnp.full((n,), h, dtype=dt),
        jnp.full((edges.shape[0],), J, dtype=dt),
        jnp.asarray(1.0, dtype=dt),
    )
    program = IsingSamplingProgram(ebm, free_blocks, [])
    STATE.update(
        ebm=ebm,
        program=program,
        free_blocks=free_blocks,
        betas=jnp.asarray(np.asarray(betas, dtype=np.float64), dtype=dt),
        n_expl=int(n_expl),
    )
    return {"n": n, "n_edges": int(edges.shape[0]), "n_blocks": len(free_blocks)}


def cmd_run(seed: int, n_scans: int) -> dict[str, Any]:
    from hamon import nrpt
    from hamon.models.ising import hinton_init
    from hamon.observers import ColdChainObserver

    ebm, program, betas = STATE["ebm"], STATE["program"], STATE["betas"]
    n_chains = int(betas.shape[0])
    k_init, k_run = jax.random.split(jax.random.PRNGKey(int(seed)))
    init = hinton_init(k_init, ebm, STATE["free_blocks"], (n_chains,))
    t0 = time.perf_counter()
    _, stats = nrpt(
        k_run,
        ebm,
        program,
        init,
        [],
        int(n_scans),
        STATE["n_expl"],
        betas=betas,
        observer=ColdChainObserver(),
        device="cpu",
    )
    stats = jax.block_until_ready(stats)
    wall = time.perf_counter() - t0
    diag = stats["round_trip_diagnostics"]
    return {
        "wall_s": wall,
        "n_chains": n_chains,
        "n_scans": int(n_scans),
        "round_trips": int(np.asarray(diag["round_trips_per_chain"]).sum()),
        "restarts": int(np.asarray(diag["restarts_per_chain"]).sum()),
        "tau_observed": float(diag["tau_observed"]),
        "tau_predicted": float(diag["tau_predicted"]),
        "efficiency": float(diag["efficiency"]),
        "Lambda": float(diag["Lambda"]),
        "rejection_rates": np.asarray(stats["rejection_rates"], dtype=np.float64),
        "energy": np.asarray(stats["observations"]["energy"], dtype=np.float64),
    }


COMMANDS = {
    name: (lambda msg, fn=fn: fn(**{k: v for k, v in msg.items() if k != "cmd"}))
    for name, fn in (("info", cmd_info), ("setup", cmd_setup), ("run", cmd_run))
}


if __name__ == "__main__":
    sys.exit(serve(COMMANDS))
