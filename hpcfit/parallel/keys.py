"""Random keys for work indexed by global ids.

Every key is a pure function of the integer seed and a global id, built with
``jax.random.fold_in``. Keys never come from the rank, the owner, the clock or the process id, so
a shard draws the same numbers on any rank and on any rank count.

Layout of the data folded into the root key (all below 2³²):

* ``0 ≤ s < 2³¹ − 1``: shard s, ``k_s = fold_in(root, s)``;
* ``2³¹ − 1``: the combination key;
* ``2³¹ … 2³² − 1``: :func:`member_key` streams of other kinds (a crc32 tag of the kind's name),
  so they never coincide with a shard or the combination key.

Keys are raw ``uint32`` arrays of shape (2,) as returned by ``jax.random.PRNGKey``.
"""

from __future__ import annotations

import zlib

import jax
import numpy as np

COMBINATION_ID = 2**31 - 1
"""Folded into the root for the combination key; shard ids stay strictly below it."""

_KIND_BASE = 2**31
_UINT32_END = 2**32
_SEED_END = 2**63


def _as_int(name: str, value: object, lo: int, hi: int) -> int:
    """``value`` as a Python int in [lo, hi), else ValueError (bools are rejected)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    out = int(value)
    if not lo <= out < hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}), got {out}")
    return out


def root_key(seed: int) -> jax.Array:
    """``PRNGKey(seed)``: the root of every key of a run.

    Parameters
    ----------
    seed : int  the run's seed (``cmc.seed``), 0 ≤ seed < 2⁶³

    Returns
    -------
    UInt32[Array, "2"]  raw threefry key
    """
    return jax.random.PRNGKey(_as_int("seed", seed, 0, _SEED_END))


def shard_key(seed: int, shard_id: int) -> jax.Array:
    """``k_s = fold_in(PRNGKey(seed), s)``, the same on every rank.

    Parameters
    ----------
    seed : int  the run's seed
    shard_id : int  global shard id s, 0 ≤ s < 2³¹ − 1

    Returns
    -------
    UInt32[Array, "2"]  raw key
    """
    s = _as_int("shard_id", shard_id, 0, COMBINATION_ID)
    return jax.random.fold_in(root_key(seed), s)


def attempt_keys(seed: int, shard_id: int, attempt: int) -> tuple[jax.Array, jax.Array]:
    """Keys of attempt r of shard s: ``split(k_{s,r})``, k_{s,0} = k_s, k_{s,r} = fold_in(k_s, r).

    Parameters
    ----------
    seed : int  the run's seed
    shard_id : int  global shard id s, 0 ≤ s < 2³¹ − 1
    attempt : int  attempt number r ≥ 0 (0 is the first run, r > 0 the r-th retry), r < 2³²

    Returns
    -------
    (k_init, k_mcmc) : two UInt32[Array, "2"]  for the initial values and for NUTS
    """
    r = _as_int("attempt", attempt, 0, _UINT32_END)
    k = shard_key(seed, shard_id)
    if r > 0:
        k = jax.random.fold_in(k, r)
    k_init, k_mcmc = jax.random.split(k)
    return k_init, k_mcmc


def combination_key(seed: int) -> jax.Array:
    """``fold_in(PRNGKey(seed), 2³¹ − 1)``: the key of the combination step on rank 0."""
    return jax.random.fold_in(root_key(seed), COMBINATION_ID)


def kind_tag(kind: str) -> int:
    """The root-level id of a stream kind: 2³¹ + (crc32(kind) mod 2³¹), in [2³¹, 2³²)."""
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string, got {kind!r}")
    return _KIND_BASE + (zlib.crc32(kind.encode("utf-8")) & (_KIND_BASE - 1))


def member_key(seed: int, kind: str, item_id: int) -> jax.Array:
    """``fold_in(fold_in(PRNGKey(seed), kind_tag(kind)), id)`` for other id-indexed work.

    Ensemble members, tempering replicas and the like get their own stream per kind; the tag lies
    above every shard id and the combination id, so these keys are distinct from theirs.

    Parameters
    ----------
    seed : int  the run's seed
    kind : str  name of the stream, e.g. ``"member"`` or ``"replica"``
    item_id : int  global id, 0 ≤ id < 2³²

    Returns
    -------
    UInt32[Array, "2"]  raw key
    """
    i = _as_int("item_id", item_id, 0, _UINT32_END)
    return jax.random.fold_in(jax.random.fold_in(root_key(seed), kind_tag(kind)), i)
