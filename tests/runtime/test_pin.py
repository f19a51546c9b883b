"""The CPU block planner: blocks of a shared set, kept launcher bindings, refusals."""

from __future__ import annotations

import itertools
import os

import pytest

from hpcfit.runtime.pin import allowed_cpus, apply, plan


@pytest.mark.parametrize(
    ("n_cpus", "ranks", "cores"), [(8, 2, 4), (8, 4, 2), (16, 3, 5), (2, 2, 1)]
)
def test_shared_set_is_split_into_disjoint_blocks(n_cpus: int, ranks: int, cores: int) -> None:
    shared = frozenset(range(10, 10 + n_cpus))  # ids need not start at 0
    blocks = [plan([shared] * ranks, r, cores).cpus for r in range(ranks)]
    assert all(b is not None and len(b) == cores for b in blocks)
    assert all(not set(a) & set(b) for a, b in itertools.combinations(blocks, 2))
    assert blocks[0] == tuple(range(10, 10 + cores))  # l·C … (l+1)·C−1 of the sorted set
    assert set().union(*blocks) <= shared


def test_too_small_shared_set_is_left_alone_with_the_numbers() -> None:
    decision = plan([frozenset({0, 1})] * 2, 1, 4)
    assert decision.cpus is None
    assert "need 8 CPUs, 2 allowed" in decision.warning


def test_disjoint_bindings_are_kept_and_short_ones_warned() -> None:
    sets = [frozenset({0, 1}), frozenset({2})]
    assert plan(sets, 0, 2).cpus == (0, 1) and plan(sets, 0, 2).warning is None
    short = plan(sets, 1, 2)
    assert short.cpus == (2,) and "bound to 1 CPUs" in short.warning


def test_partial_overlap_and_single_rank_are_not_pinned() -> None:
    assert plan([frozenset({0, 1}), frozenset({1, 2})], 0, 1).cpus is None
    assert plan([frozenset({0, 1, 2, 3})], 0, 2).cpus is None


def test_apply_without_cpus_changes_nothing() -> None:
    before = allowed_cpus()
    assert set(apply(plan([before], 0, 1))) == set(before)


def test_apply_pins_this_process() -> None:
    before = allowed_cpus()
    try:
        assert apply(plan([before, before], 0, 1)) == (min(before),)
    finally:
        os.sched_setaffinity(0, before)
