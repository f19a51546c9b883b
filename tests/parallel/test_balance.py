"""Ownership of global ids: both rules partition 0…n−1 exactly, checked for every small (n, P)."""

from __future__ import annotations

import pytest

from hpcfit.parallel.balance import (
    ids_by_rank,
    load_balance,
    owned_ids,
    owner,
    owner_block,
    owner_modulo,
)

CASES = [(n, p) for n in range(31) for p in range(1, 9)]


@pytest.mark.parametrize(("n", "p"), CASES)
def test_load_balance_partitions_with_sizes_within_one(n: int, p: int) -> None:
    blocks = [load_balance(n, p, r) for r in range(p)]
    # contiguous, in rank order, covering exactly range(n)
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(blocks[r][1] == blocks[r + 1][0] for r in range(p - 1))
    sizes = [stop - start for start, stop in blocks]
    assert min(sizes) >= 0 and max(sizes) - min(sizes) <= 1 and sum(sizes) == n
    # the first n mod P ranks hold the larger blocks
    assert sizes == [n // p + (1 if r < n % p else 0) for r in range(p)]


@pytest.mark.parametrize("rule", ["modulo", "block"])
@pytest.mark.parametrize(("n", "p"), CASES)
def test_owned_ids_partition_and_agree_with_owner(n: int, p: int, rule: str) -> None:
    per_rank = ids_by_rank(n, p, rule)
    flat = sorted(i for ids in per_rank for i in ids)
    assert flat == list(range(n))  # each id exactly once
    for r, ids in enumerate(per_rank):
        assert ids == sorted(ids) and ids == owned_ids(n, p, r, rule)
        assert all(owner(i, n, p, rule) == r for i in ids)
    sizes = [len(ids) for ids in per_rank]
    assert max(sizes) - min(sizes) <= 1


def test_owner_rules_by_hand() -> None:
    # 7 ids on 3 ranks: modulo 0,3,6 | 1,4 | 2,5; block 0-2 | 3-4 | 5-6
    assert ids_by_rank(7, 3, "modulo") == [[0, 3, 6], [1, 4], [2, 5]]
    assert ids_by_rank(7, 3, "block") == [[0, 1, 2], [3, 4], [5, 6]]
    assert [owner_block(i, 7, 3) for i in range(7)] == [0, 0, 0, 1, 1, 2, 2]
    assert [owner_modulo(i, 3) for i in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    # fewer ids than ranks: the trailing ranks are empty under both rules
    assert ids_by_rank(2, 4, "block") == [[0], [1], [], []]
    assert ids_by_rank(2, 4, "modulo") == [[0], [1], [], []]


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError, match="rule"):
        owned_ids(4, 2, 0, "round-robin")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rule"):
        owner(1, 4, 2, "round-robin")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rank"):
        load_balance(4, 2, 2)
    with pytest.raises(ValueError, match="ranks"):
        load_balance(4, 0, 0)
    with pytest.raises(ValueError, match="ids"):
        load_balance(-1, 2, 0)
    with pytest.raises(ValueError, match="id"):
        owner(4, 4, 2, "modulo")
    with pytest.raises(ValueError, match="id"):
        owner_block(-1, 4, 2)
    with pytest.raises(ValueError, match="ids"):
        owner_modulo(-1, 2)
