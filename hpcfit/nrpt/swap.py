"""Deterministic even-odd (DEO) swaps on the replica → chain map.

Replica r holds chain c(r); a swap exchanges chain indices, never states. At scan t the pairs
(i, i+1) with i ≡ t (mod 2) are proposed (t = 0: (0,1), (2,3), …). With lo at chain i and hi at
chain i+1, Δ = (β_i − β_{i+1})·(E_1(x_lo) − E_1(x_hi)), and the swap is accepted iff v_lo < Δ,
v = log U the uniform of the replica at the **lower** chain index (≡ U < min(1, e^Δ)). Both
partners evaluate the same expression on the same float64 operands in the same order (one
subtract, one subtract, one multiply, one compare), so the decision is bit-identical in NumPy on
the host and in XLA on a device, and on both sides of a rank boundary.

The functions take an array module ``xp`` (``numpy`` or ``jax.numpy``); path A runs them inside
the jitted round, path B on the host after the per-scan all-gather. See Syed et al., JRSS-B
2022, Sec. 3.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def chain_to_replica(chains: Any, xp: Any = np) -> Any:
    """The inverse permutation: entry c is the replica at chain c."""
    return xp.argsort(chains)


def partner_chains(chains: Any, t: Any, n_chains: int, xp: Any = np) -> tuple[Any, Any]:
    """DEO partner chain of each replica at scan t, and whether that partner exists.

    Returns
    -------
    partner : Int[(N,)]  c + 1 if c ≡ t (mod 2), else c − 1 (clipped into [0, N−1])
    valid : Bool[(N,)]  partner inside [0, N−1]
    """
    is_lo = (chains % 2) == (t % 2)
    partner = xp.where(is_lo, chains + 1, chains - 1)
    valid = (partner >= 0) & (partner < n_chains)
    return xp.clip(partner, 0, n_chains - 1), valid


def deo_swap(
    chains: Any, at_chain: Any, e1: Any, v: Any, betas: Any, t: Any, xp: Any = np
) -> tuple[Any, Any]:
    """The DEO swaps of scan t, on the map and its inverse (gathers only, no sort).

    Parameters
    ----------
    chains : Int[(N,)]  c(r), a permutation of 0…N−1 (every replica, global order)
    at_chain : Int[(N,)]  its inverse: the replica at chain c
    e1 : Float64[(N,)]  E_1(x_r) after exploration (replica order)
    v : Float64[(N,)]  log U_r of each replica for this scan
    betas : Float64[(N,)]  the ladder β_0 = 0 < … < β_{N−1} = 1
    t : int  global scan counter

    Returns
    -------
    (chains, at_chain) after the swaps, same dtypes
    """
    n = chains.shape[0]
    c = xp.arange(n)
    is_lo = (c % 2) == (t % 2)
    partner = xp.where(is_lo, c + 1, c - 1)
    valid = (partner >= 0) & (partner < n)
    lo = xp.clip(xp.minimum(c, partner), 0, max(n - 2, 0))
    hi = xp.minimum(lo + 1, n - 1)
    r_lo = at_chain[lo]
    r_hi = at_chain[hi]
    delta = (betas[lo] - betas[hi]) * (e1[r_lo] - e1[r_hi])
    accept = valid & (v[r_lo] < delta)  # per chain; both chains of a pair agree
    partner = xp.clip(partner, 0, n - 1)
    new_at = xp.where(accept, at_chain[partner], at_chain).astype(at_chain.dtype)
    new_chains = xp.where(accept[chains], partner[chains], chains).astype(chains.dtype)
    return new_chains, new_at


def swap_chains(chains: Any, e1: Any, v: Any, betas: Any, t: Any, xp: Any = np) -> Any:
    """The replica → chain map after the DEO swaps of scan t (see :func:`deo_swap`)."""
    return deo_swap(chains, chain_to_replica(chains, xp), e1, v, betas, t, xp)[0]


def deo_swap_host(
    chains: list[int],
    at_chain: list[int],
    e1: list[float],
    v: list[float],
    betas: list[float],
    t: int,
) -> None:
    """:func:`deo_swap` on Python lists, in place (path B's host update; N is small).

    Python floats are IEEE binary64 with the same two subtractions, one multiplication and one
    comparison as :func:`deo_swap`, so the decisions are bit-identical to the jitted version.
    """
    for i in range(t % 2, len(chains) - 1, 2):
        lo, hi = at_chain[i], at_chain[i + 1]
        if v[lo] < (betas[i] - betas[i + 1]) * (e1[lo] - e1[hi]):
            at_chain[i], at_chain[i + 1] = hi, lo
            chains[lo], chains[hi] = i + 1, i
