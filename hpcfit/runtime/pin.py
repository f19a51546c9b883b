"""CPU pinning of node-local ranks, part of the rank setup in :mod:`hpcfit.rank`.

Node-local ranks exchange their allowed CPU sets. **Disjoint** sets mean Slurm or the user
already bound the ranks: keep them (warn if a set has fewer than C CPUs). An **identical** shared
set (``mpiexec``, ``--cpu-bind=none``) is split into blocks: node-local rank l takes CPUs
l·C … (l+1)·C−1 of the sorted set; if the set is too small, affinity is left alone with a
warning. Partly overlapping sets are left alone with a warning. The planner is pure; only
:func:`apply` touches the process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PinDecision:
    """The CPUs this rank should run on (None: leave affinity alone) and why."""

    cpus: tuple[int, ...] | None
    reason: str
    warning: str | None = None


def plan(node_sets: Sequence[frozenset[int]], local_rank: int, cores_per_rank: int) -> PinDecision:
    """Decide the CPU block of ``local_rank`` from every node-local rank's allowed CPU set.

    Parameters
    ----------
    node_sets : the allowed CPU sets of the node-local ranks, indexed by node-local rank
    local_rank : this rank's node-local index
    cores_per_rank : C, the cores a rank should own (normally its chain count)
    """
    if cores_per_rank < 1:
        raise ValueError(f"cores_per_rank must be >= 1, got {cores_per_rank}")
    mine = node_sets[local_rank]
    if len(node_sets) == 1:
        return PinDecision(None, "single rank on the node: not pinned")
    if all(s == mine for s in node_sets):
        need = len(node_sets) * cores_per_rank
        cpus = sorted(mine)
        if len(cpus) < need:
            return PinDecision(
                None,
                "shared CPU set too small to split",
                f"{len(node_sets)} ranks × {cores_per_rank} cores need {need} CPUs, "
                f"{len(cpus)} allowed: affinity left alone (ranks share cores)",
            )
        block = cpus[local_rank * cores_per_rank : (local_rank + 1) * cores_per_rank]
        return PinDecision(tuple(block), "shared CPU set split into blocks")
    disjoint = all(not (a & b) for k, a in enumerate(node_sets) for b in node_sets[k + 1 :])
    if disjoint:
        warning = None
        if len(mine) < cores_per_rank:
            warning = (
                f"bound to {len(mine)} CPUs but {cores_per_rank} cores per rank were asked for"
            )
        return PinDecision(tuple(sorted(mine)), "already bound by the launcher: kept", warning)
    return PinDecision(
        None,
        "partly overlapping CPU sets",
        "node-local ranks have partly overlapping CPU sets: affinity left alone",
    )


def allowed_cpus() -> frozenset[int]:
    """This process's allowed CPUs."""
    return frozenset(os.sched_getaffinity(0))


def apply(decision: PinDecision) -> tuple[int, ...]:
    """Pin this process as decided; returns the final affinity (sorted CPU ids)."""
    if decision.cpus is not None:
        os.sched_setaffinity(0, decision.cpus)
    return tuple(sorted(os.sched_getaffinity(0)))
