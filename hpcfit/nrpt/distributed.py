"""Path B: a round over MPI ranks, Pigeons.jl's "entangled" replicas.

Replicas are split into contiguous blocks by ``load_balance`` (a block may be empty); states never
leave their rank. Each scan:

1. every rank runs the jitted explore-and-record kernel on its block (one vmapped batch);
2. **one fixed-shape all-gather** (``Comm.allgather_rows``) of (E_1, v), two float64 per replica,
   in replica order, replaces the three point-to-point phases of Syed et al. (2022, Alg. 5);
3. every rank applies the same deterministic DEO update
   (:func:`hpcfit.nrpt.swap.deo_swap_host`) to its copy of the full replica → chain map.

The all-gather moves 16·N bytes per scan (N ≤ ~100), needs no lookup or update phases, no tags
and no partner bookkeeping, and gives every rank identical operands in identical order, so the
chain map stays identical on all ranks and equal to path A's. At the round's end the per-replica
records that only the owner has (Σ site values, site accumulators and, when checkpointing, the
states) are gathered to rank 0 in replica order with ``gatherv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hpcfit.nrpt.engine import Engine, batch_layout
from hpcfit.nrpt.swap import deo_swap_host
from hpcfit.parallel.comm import Comm


def run_round_host(
    engine: Engine,
    comm: Comm,
    states: Any,
    keys_r: jax.Array,
    chains: np.ndarray,
    betas: np.ndarray,
    t0: int,
    n_scans: int,
    block: tuple[int, int],
    counts: Sequence[int],
) -> tuple[Any, np.ndarray, dict[str, np.ndarray] | None]:
    """Path B: one round, one kernel call and one all-gather per scan.

    Parameters
    ----------
    states, keys_r : the local block's states and keys k_r (replicas ``block[0]…block[1]−1``)
    chains : Int32[(N,)]  the full replica → chain map (identical on every rank)
    betas : Float64[(N,)]  the round's ladder;  t0 : first global scan counter of the round
    counts : replicas per rank (the load balance)

    Returns
    -------
    (states, chains, records): the local states, the full new chain map, and on rank 0 the
    round's records in replica order (as :func:`hpcfit.nrpt.engine.run_round_scan`), else None.
    """
    n = engine.n_chains
    lo, hi = block
    n_local = hi - lo
    chain_list = [int(c) for c in chains]
    at_chain = [0] * n
    for r, c in enumerate(chain_list):
        at_chain[c] = r
    beta_list = [float(b) for b in betas]
    rec_c = np.empty((n, n_scans), dtype=np.int32)
    rec_e = np.empty((n, n_scans), dtype=np.float64)
    rec_v = np.empty((n, n_scans), dtype=np.float64)
    local_sum = np.empty((n_local, n_scans), dtype=np.float64)
    acc = jnp.zeros(engine.acc_shape(n_local), dtype=engine.target.site_dtype)
    betas_dev = jnp.asarray(betas, dtype=jnp.float64)
    _, batch_len = batch_layout(n_scans)
    empty = np.zeros((0, 2), dtype=np.float64)
    for j in range(n_scans):
        t = t0 + j
        rec_c[:, j] = chain_list
        if n_local:
            mine_chains = np.asarray(chain_list[lo:hi], dtype=np.int32)
            states, rows, acc = engine.scan_fn(
                states, keys_r, mine_chains, acc, betas_dev, np.int64(t), np.int64(j // batch_len)
            )
            rows = np.asarray(rows)
            local_sum[:, j] = rows[:, 2]
            mine = rows[:, :2]
        else:
            mine = empty
        full = comm.allgather_rows(mine, counts)
        rec_e[:, j] = full[:, 0]
        rec_v[:, j] = full[:, 1]
        deo_swap_host(chain_list, at_chain, full[:, 0].tolist(), full[:, 1].tolist(), beta_list, t)
    chains = np.asarray(chain_list, dtype=np.int32)
    site_sum = comm.gatherv(local_sum)
    acc_all = comm.gatherv(np.asarray(acc))
    if comm.rank != 0:
        return states, chains, None
    records: dict[str, Any] = {
        "chain": rec_c,
        "e1": rec_e,
        "v": rec_v,
        "site_sum": site_sum,
        "acc": acc_all,
    }
    return states, chains, records


def gather_states(comm: Comm, states: Any, template: np.ndarray) -> np.ndarray | None:
    """Every replica's state on rank 0 in replica order (None elsewhere).

    ``template`` (one state as NumPy) gives the row shape and dtype for an empty block.
    """
    local = np.asarray(jax.device_get(states)) if states is not None else None
    if local is None or local.shape[0] == 0:
        local = np.zeros((0, *template.shape), dtype=template.dtype)
    return comm.gatherv(np.ascontiguousarray(local))
