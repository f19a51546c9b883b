"""The shard plan: how many shards and which points each holds.

The assignment is angle-balanced and random and depends only on (seed, K) and the pooled slot
labels; it never reads the rank count R. Pure NumPy, no JAX.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

MIN_SLOT_POINTS_WARN = 100
"""A shard holding fewer points of some slot than this is reported."""

_MAX_SHARDS = 2**31 - 1  # shard ids stay below the combination key's id 2³¹ − 1


def _positive(name: str, value: int, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def resolve_n_shards(
    n_shards: int | Literal["auto"],
    n_points: int,
    n_ranks: int,
    max_points_per_shard: int = 20000,
    min_points_per_shard: int = 2000,
    min_shards_per_rank: int = 1,
) -> int:
    """The shard count K: a pinned integer, or the ``auto`` rule below.

    ``auto``::

        K0 = max(R·min_shards_per_rank, ceil(M / max_points_per_shard))
        K1 = R·ceil(K0/R)  if M / (R·ceil(K0/R)) ≥ min_points_per_shard,  else K0
        K  = min(K1, max(1, floor(M / min_points_per_shard)))

    Parameters
    ----------
    n_shards : int | "auto"  ``cmc.n_shards``
    n_points : int  M, the pooled point count (≥ 1)
    n_ranks : int  R, the MPI rank count (≥ 1); read by ``auto`` only
    max_points_per_shard, min_points_per_shard, min_shards_per_rank : int  (≥ 1)

    Returns
    -------
    int  K with 1 ≤ K ≤ M (a pinned K outside that range raises ValueError)
    """
    m = _positive("the number of points M", n_points)
    r = _positive("the number of ranks R", n_ranks)
    if n_shards != "auto":
        k = _positive("cmc.n_shards", n_shards)
        if k > m or k >= _MAX_SHARDS:
            raise ValueError(f"cmc.n_shards = {k} exceeds the {m} pooled points (or 2^31 - 2)")
        return k
    max_pts = _positive("cmc.max_points_per_shard", max_points_per_shard)
    min_pts = _positive("cmc.min_points_per_shard", min_points_per_shard)
    per_rank = _positive("cmc.min_shards_per_rank", min_shards_per_rank)
    k0 = max(r * per_rank, -(-m // max_pts))
    rounded = r * -(-k0 // r)
    k1 = rounded if m >= min_pts * rounded else k0  # M / rounded ≥ min_pts, in integers
    return min(k1, max(1, m // min_pts))


def idle_rank_note(n_shards: int, n_ranks: int) -> str | None:
    """The warning text when K is not a multiple of R (some ranks idle), else None."""
    if n_shards % n_ranks == 0:
        return None
    return f"{n_shards} shards on {n_ranks} ranks: K is not a multiple of R, so some ranks idle"


def padded_size(n_points: int, n_shards: int) -> int:
    """⌈M/K⌉: the common shard length when shards are padded with masked points."""
    if n_points < 0:
        raise ValueError(f"the number of points must be >= 0, got {n_points}")
    return -(-n_points // _positive("the number of shards K", n_shards))


def points_sha256(a: np.ndarray, i: np.ndarray, j: np.ndarray) -> str:
    """sha256 over the bytes of a, then i, then j, each as little-endian int32."""
    h = hashlib.sha256()
    for arr in (a, i, j):
        h.update(np.ascontiguousarray(arr, dtype="<i4").tobytes())
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class ShardPlan:
    """Assignment of the M pooled points to K shards.

    Attributes
    ----------
    seed : int  ``cmc.seed``
    n_shards : int  K
    n_phi : int  number of slots
    shard_of_point : Int32[Array, "M"]  shard id of each pooled point (canonical order), read-only
    slot_counts : Int64[Array, "K n_phi"]  points of slot a in shard s, read-only
    """

    seed: int
    n_shards: int
    n_phi: int
    shard_of_point: np.ndarray
    slot_counts: np.ndarray

    @property
    def n_points(self) -> int:
        return int(self.shard_of_point.size)

    @property
    def counts(self) -> np.ndarray:
        """Int64[Array, "K"]  points per shard."""
        return self.slot_counts.sum(axis=1)

    def indices(self, shard_id: int) -> np.ndarray:
        """Int64[Array, "M_s"]  increasing positions of shard s's points, i.e. (a, i, j) order."""
        if not 0 <= shard_id < self.n_shards:
            raise ValueError(f"shard id must lie in [0, {self.n_shards}), got {shard_id}")
        return np.flatnonzero(self.shard_of_point == shard_id)

    def warnings(self) -> list[str]:
        """One line per (shard, slot) with fewer than 100 points of the slot."""
        return [
            f"shard {s} holds {int(self.slot_counts[s, a])} points of slot {a} "
            f"(< {MIN_SLOT_POINTS_WARN})"
            for s, a in zip(*np.nonzero(self.slot_counts < MIN_SLOT_POINTS_WARN), strict=True)
        ]

    def to_json(self, pooled: Any) -> dict[str, Any]:
        """The ``cmc/plan.json`` record; ``pooled`` has int arrays a, i, j in canonical order."""
        if np.asarray(pooled.a).size != self.n_points:
            raise ValueError(
                f"pooled has {np.asarray(pooled.a).size} points, the plan {self.n_points}"
            )
        a, i, j = (np.asarray(x) for x in (pooled.a, pooled.i, pooled.j))
        idx = [self.indices(s) for s in range(self.n_shards)]
        hashes = [points_sha256(a[m], i[m], j[m]) for m in idx]
        return {
            "seed": int(self.seed),
            "n_shards": int(self.n_shards),
            "n_points": self.n_points,
            "n_phi": int(self.n_phi),
            "padded_size": padded_size(self.n_points, self.n_shards),
            "counts": [int(c) for c in self.counts],
            "slot_counts": [[int(c) for c in row] for row in self.slot_counts],
            "sha256": hashes,
            "warnings": self.warnings(),
        }


def plan_shards(a: np.ndarray, n_phi: int, seed: int, n_shards: int) -> ShardPlan:
    """Assign pooled points to shards, angle-balanced and random.

    For each slot a in turn, its points are visited in the order of a permutation drawn with
    ``Generator(PCG64(SeedSequence([seed, a])))``; the g-th point visited (g counting across
    slots) goes to shard g mod K. Points inside a shard keep canonical order.

    Parameters
    ----------
    a : Int[Array, "M"]  slot of each pooled point, canonical (non-decreasing) order
    n_phi : int  number of slots; every entry of ``a`` lies in [0, n_phi)
    seed : int  ``cmc.seed`` (≥ 0)
    n_shards : int  K (≥ 1)

    Returns
    -------
    ShardPlan  every shard holds ⌊M_a/K⌋ or ⌈M_a/K⌉ points of every slot a
    """
    slots = np.asarray(a)
    if slots.ndim != 1 or not np.issubdtype(slots.dtype, np.integer):
        raise ValueError(f"a must be a 1-d integer array, got {slots.dtype} of shape {slots.shape}")
    n_phi, seed = _positive("n_phi", n_phi), _positive("seed", seed, lo=0)
    k = _positive("the number of shards K", n_shards)
    if k >= _MAX_SHARDS:
        raise ValueError(f"K must stay below 2^31 - 1, got {k}")
    if slots.size and (slots.min() < 0 or slots.max() >= n_phi):
        raise ValueError(f"slot labels must lie in [0, {n_phi})")
    if np.any(np.diff(slots) < 0):
        raise ValueError("a must be in canonical (slot-major, non-decreasing) order")
    shard = np.empty(slots.size, dtype=np.int32)
    g = 0
    for slot in range(n_phi):
        members = np.flatnonzero(slots == slot)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, slot])))
        order = members[rng.permutation(members.size)]
        shard[order] = (g + np.arange(members.size, dtype=np.int64)) % k
        g += members.size
    flat = shard.astype(np.int64) * n_phi + slots
    slot_counts = np.bincount(flat, minlength=k * n_phi).reshape(k, n_phi)
    shard.setflags(write=False)
    slot_counts.setflags(write=False)
    return ShardPlan(seed, k, n_phi, shard_of_point=shard, slot_counts=slot_counts)
