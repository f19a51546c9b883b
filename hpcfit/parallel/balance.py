"""Which rank owns which global id (``cmc.shard_owner``).

Two rules map ids 0…n−1 onto ranks 0…P−1:

* ``"modulo"``: id s belongs to rank s mod P;
* ``"block"``: contiguous blocks whose sizes differ by at most 1, the first n mod P ranks holding
  one more (Pigeons.jl's load balancer).

Ownership only decides *where* work runs; results and random keys depend on the id alone, so the
output does not depend on the rule or on P. Pure Python, no JAX, no MPI.
"""

from __future__ import annotations

from typing import Literal

OwnerRule = Literal["modulo", "block"]
RULES: tuple[str, ...] = ("modulo", "block")


def _check(n: int, n_ranks: int) -> None:
    if n < 0:
        raise ValueError(f"the number of ids must be >= 0, got {n}")
    if n_ranks < 1:
        raise ValueError(f"the number of ranks must be >= 1, got {n_ranks}")


def _check_rank(rank: int, n_ranks: int) -> None:
    if not 0 <= rank < n_ranks:
        raise ValueError(f"rank must lie in [0, {n_ranks}), got {rank}")


def load_balance(n: int, n_ranks: int, rank: int) -> tuple[int, int]:
    """The contiguous block [start, stop) of ids 0…n−1 owned by ``rank`` under the block rule.

    Blocks are in rank order and partition range(n); sizes are ⌊n/P⌋ or ⌈n/P⌉, the first n mod P
    ranks getting the larger size.

    Parameters
    ----------
    n : int  number of ids (≥ 0)
    n_ranks : int  number of ranks P (≥ 1)
    rank : int  0 ≤ rank < P

    Returns
    -------
    (start, stop) : tuple[int, int]  half-open range of ids
    """
    _check(n, n_ranks)
    _check_rank(rank, n_ranks)
    base, extra = divmod(n, n_ranks)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def owner_modulo(item_id: int, n_ranks: int) -> int:
    """The owner of ``item_id`` under the modulo rule: item_id mod P."""
    if item_id < 0:
        raise ValueError(f"ids are >= 0, got {item_id}")
    _check(0, n_ranks)
    return item_id % n_ranks


def owner_block(item_id: int, n: int, n_ranks: int) -> int:
    """The owner of ``item_id`` (0 ≤ id < n) under the block rule of :func:`load_balance`."""
    _check(n, n_ranks)
    if not 0 <= item_id < n:
        raise ValueError(f"id must lie in [0, {n}), got {item_id}")
    base, extra = divmod(n, n_ranks)
    big = extra * (base + 1)  # ids held by the first `extra` ranks (blocks of base + 1)
    if item_id < big:
        return item_id // (base + 1)
    return extra + (item_id - big) // base


def owner(item_id: int, n: int, n_ranks: int, rule: OwnerRule = "modulo") -> int:
    """The rank that owns ``item_id`` of ids 0…n−1 under ``rule``."""
    if rule == "modulo":
        if not 0 <= item_id < n:
            raise ValueError(f"id must lie in [0, {n}), got {item_id}")
        return owner_modulo(item_id, n_ranks)
    if rule == "block":
        return owner_block(item_id, n, n_ranks)
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


def owned_ids(n: int, n_ranks: int, rank: int, rule: OwnerRule = "modulo") -> list[int]:
    """The ids of 0…n−1 owned by ``rank``, in increasing order.

    Parameters
    ----------
    n : int  number of ids (≥ 0)
    n_ranks : int  number of ranks P (≥ 1)
    rank : int  0 ≤ rank < P
    rule : ``"modulo"`` | ``"block"``

    Returns
    -------
    list[int]  sorted ids (possibly empty when n < P)
    """
    _check(n, n_ranks)
    _check_rank(rank, n_ranks)
    if rule == "modulo":
        return list(range(rank, n, n_ranks))
    if rule == "block":
        return list(range(*load_balance(n, n_ranks, rank)))
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


def ids_by_rank(n: int, n_ranks: int, rule: OwnerRule = "modulo") -> list[list[int]]:
    """``owned_ids`` of every rank, indexed by rank (the list rank 0 scatters)."""
    return [owned_ids(n, n_ranks, r, rule) for r in range(n_ranks)]
