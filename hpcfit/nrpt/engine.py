"""Per-scan NRPT kernels and the two ways of running a round.

Keys: k_r = fold_in(PRNGKey(seed), r) for global replica id r; the initial state is
``sample_reference(fold_in(k_r, 0))``; scan t uses fold_in(k_r, t + 1), split into (explore,
swap); the swap key gives v_r = log U_r, drawn by every replica every scan.

One scan for a block of replicas (:func:`explore_and_record`): explore each replica at β_{c(r)}
(one batched call, ``target.explore_batch``), then record the row (c(r), E_1(x_r), v_r, Σ site
values) **before** the swap, and add the site values of the replica at the target chain N−1 to
its accumulator slot for the current batch (:data:`N_BATCHES` equal batches per round, for
batch-means standard errors).

* **Path A** (:meth:`Engine.round_fn`): a whole round is one jitted loop over the scans with the
  DEO swap (:func:`hpcfit.nrpt.swap.deo_swap` on ``jax.numpy``) inside. It is a
  ``lax.fori_loop`` with a traced trip count rather than a ``lax.scan`` (whose length is static):
  the number of scans and the first counter are traced and the records go into a buffer sized
  for the last round, so one trace and one compile serve every round of a run. The loop carries
  the chain → replica map as well, so no sort runs inside it (an ``argsort`` per scan cost
  more than the whole sweep on small grids).
* **Path B** (:meth:`Engine.scan_fn`): a jitted explore-and-record kernel for the local block, one
  call per scan; the swap runs on the host after the exchange of (E_1, v) (``distributed.py``,
  :func:`hpcfit.nrpt.swap.deo_swap_host`).

Both paths call the same functions, so path B on one rank is bitwise equal to path A.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hpcfit.nrpt.swap import deo_swap
from hpcfit.nrpt.targets import AbstractTarget, materialise

N_BATCHES = 32
"""Site accumulators are kept per batch: the round's scans in this many equal batches."""


def replica_keys(seed: int, replica_ids: np.ndarray) -> jax.Array:
    """UInt32[(n, 2)] k_r = fold_in(PRNGKey(seed), r) for each global replica id."""
    root = jax.random.PRNGKey(seed)
    ids = jnp.asarray(np.asarray(replica_ids, dtype=np.uint32))
    return jax.vmap(lambda r: jax.random.fold_in(root, r))(ids)


def batch_layout(n_scans: int) -> tuple[int, int]:
    """(number of batches, scans per batch) of a round: min(32, T) batches of T // batches."""
    n_batches = min(N_BATCHES, n_scans)
    return n_batches, n_scans // n_batches


def explore_and_record(
    target: AbstractTarget,
    n_expl: int,
    states: jax.Array,
    keys_r: jax.Array,
    chains: jax.Array,
    betas: jax.Array,
    t: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """Explore a block of replicas at scan t and compute their record rows.

    Parameters
    ----------
    states : (n, …) one state per replica;  keys_r : UInt32[(n, 2)] the replicas' k_r
    chains : Int32[(n,)] c(r) of each replica;  betas : Float64[(N,)] the ladder
    t : int scalar  global scan counter

    Returns
    -------
    states, e1 Float64[(n,)], v Float64[(n,)] (log U), site_sum Float64[(n,)], sites (n, n_sites)
    """
    ks = jax.vmap(lambda k_r: jax.random.split(jax.random.fold_in(k_r, t + 1)))(keys_r)
    k_explore, k_swap = ks[:, 0], ks[:, 1]
    x = target.explore_batch(k_explore, states, betas[chains], n_expl)
    e1 = materialise(target.energy_batch(x))  # the swap's Δ must not contract with E_1's product
    u = jax.vmap(lambda k: jax.random.uniform(k, (), dtype=jnp.float64))(k_swap)
    ssum = jax.vmap(target.site_sum)(x)
    sites = jax.vmap(target.site_values)(x)
    return x, e1, jnp.log(u), ssum, sites


def accumulate(
    acc: jax.Array, sites: jax.Array, chains: jax.Array, n_chains: int, batch: jax.Array
) -> jax.Array:
    """Add the sites of the replica at chain N−1 to slot ``batch`` of ``acc`` (n, B, n_sites)."""
    at_target = (chains == n_chains - 1)[:, None]
    add = jnp.where(at_target, sites, jnp.zeros_like(sites))
    row = jax.lax.dynamic_index_in_dim(acc, batch, axis=1, keepdims=False)
    return jax.lax.dynamic_update_index_in_dim(acc, row + add, batch, axis=1)


class Engine:
    """The jitted kernels of one run (target, N, n_expl, longest round), built once and cached."""

    def __init__(self, target: AbstractTarget, n_chains: int, n_expl: int, t_max: int) -> None:
        self.target = target
        self.n_chains = int(n_chains)
        self.n_expl = int(n_expl)
        self.t_max = int(t_max)
        self.round_fn = jax.jit(self._round)
        self.scan_fn = jax.jit(self._scan_packed, donate_argnums=(0, 3))  # states, acc in place
        self.init_fn = jax.jit(self._init)

    def acc_shape(self, n_local: int) -> tuple[int, int, int]:
        return (n_local, N_BATCHES, self.target.n_sites)

    def _init(self, keys_r: jax.Array) -> jax.Array:
        return jax.vmap(lambda k: self.target.sample_reference(jax.random.fold_in(k, 0)))(keys_r)

    def _scan(self, states, keys_r, chains, acc, betas, t, batch):
        states, e1, v, ssum, sites = explore_and_record(
            self.target, self.n_expl, states, keys_r, chains, betas, t
        )
        acc = accumulate(acc, sites, chains, self.n_chains, batch)
        return states, e1, v, ssum, acc

    def _scan_packed(self, states, keys_r, chains, acc, betas, t, batch):
        """Path B's kernel: as :meth:`_scan` with (E_1, v, Σ sites) packed as one (n, 3) array,
        so the host fetches one buffer per scan."""
        states, e1, v, ssum, acc = self._scan(states, keys_r, chains, acc, betas, t, batch)
        return states, jnp.stack([e1, v, ssum], axis=1), acc

    def _round(self, states, keys_r, chains, at_chain, betas, t0, n_scans, batch_len):
        n = self.n_chains
        acc = jnp.zeros(self.acc_shape(n), dtype=self.target.site_dtype)
        rec_c = jnp.zeros((self.t_max, n), dtype=chains.dtype)
        rec_e = jnp.zeros((self.t_max, n), dtype=jnp.float64)
        rec_v = jnp.zeros((self.t_max, n), dtype=jnp.float64)
        rec_s = jnp.zeros((self.t_max, n), dtype=jnp.float64)

        def body(j, carry):
            states, chains, at_chain, acc, rec_c, rec_e, rec_v, rec_s = carry
            t = t0 + j
            states, e1, v, ssum, acc = self._scan(
                states, keys_r, chains, acc, betas, t, j // batch_len
            )
            rec_c = jax.lax.dynamic_update_index_in_dim(rec_c, chains, j, 0)
            rec_e = jax.lax.dynamic_update_index_in_dim(rec_e, e1, j, 0)
            rec_v = jax.lax.dynamic_update_index_in_dim(rec_v, v, j, 0)
            rec_s = jax.lax.dynamic_update_index_in_dim(rec_s, ssum, j, 0)
            chains, at_chain = deo_swap(chains, at_chain, e1, v, betas, t, xp=jnp)
            return states, chains, at_chain, acc, rec_c, rec_e, rec_v, rec_s

        carry = (states, chains, at_chain, acc, rec_c, rec_e, rec_v, rec_s)
        return jax.lax.fori_loop(0, n_scans, body, carry)


@functools.lru_cache(maxsize=8)
def get_engine(target: AbstractTarget, n_chains: int, n_expl: int, t_max: int) -> Engine:
    """The cached :class:`Engine` (targets hash by identity)."""
    return Engine(target, n_chains, n_expl, t_max)


def run_round_scan(
    engine: Engine,
    states: Any,
    keys_r: jax.Array,
    chains: np.ndarray,
    betas: np.ndarray,
    t0: int,
    n_scans: int,
) -> tuple[Any, np.ndarray, dict[str, np.ndarray]]:
    """Path A: one round on every replica in one jitted call.

    Returns the new states, the new chain map and the round's records in replica order:
    ``chain`` Int32[(N, T)], ``e1``/``v``/``site_sum`` Float64[(N, T)], ``acc`` (N, B, n_sites).
    """
    _, batch_len = batch_layout(n_scans)
    out = engine.round_fn(
        states,
        keys_r,
        jnp.asarray(chains, dtype=jnp.int32),
        jnp.asarray(np.argsort(chains), dtype=jnp.int32),
        jnp.asarray(betas, dtype=jnp.float64),
        jnp.asarray(t0, dtype=jnp.int64),
        jnp.asarray(n_scans, dtype=jnp.int64),
        jnp.asarray(batch_len, dtype=jnp.int64),
    )
    states, new_chains, _, acc, rec_c, rec_e, rec_v, rec_s = out
    records = {
        "chain": np.asarray(rec_c)[:n_scans].T.copy(),
        "e1": np.asarray(rec_e)[:n_scans].T.copy(),
        "v": np.asarray(rec_v)[:n_scans].T.copy(),
        "site_sum": np.asarray(rec_s)[:n_scans].T.copy(),
        "acc": np.asarray(acc),
    }
    return states, np.asarray(new_chains).astype(np.int32), records
