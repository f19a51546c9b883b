"""Keys are pure functions of (seed, id) built with fold_in."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from hpcfit.parallel import keys
from hpcfit.parallel.keys import (
    COMBINATION_ID,
    attempt_keys,
    combination_key,
    kind_tag,
    member_key,
    root_key,
    shard_key,
)


def _raw(key: jax.Array) -> tuple[int, ...]:
    """Key bits as a hashable tuple (typed keys are unwrapped with key_data)."""
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    arr = np.asarray(key)
    assert arr.dtype == np.uint32 and arr.shape == (2,)
    return tuple(int(x) for x in arr)


def test_root_and_shard_keys_are_the_spec_formula() -> None:
    for seed in (0, 1, 12345, 2**40 + 3):
        root = jax.random.PRNGKey(seed)
        assert _raw(root_key(seed)) == _raw(root)
        for s in (0, 1, 7, 1000, COMBINATION_ID - 1):
            assert _raw(shard_key(seed, s)) == _raw(jax.random.fold_in(root, s))
    assert _raw(combination_key(5)) == _raw(jax.random.fold_in(jax.random.PRNGKey(5), 2**31 - 1))


def test_shard_keys_do_not_depend_on_call_order() -> None:
    ids = list(range(12))
    forward = {s: _raw(shard_key(3, s)) for s in ids}
    backward = {s: _raw(shard_key(3, s)) for s in reversed(ids)}
    rng = np.random.default_rng(0)
    shuffled = {int(s): _raw(shard_key(3, int(s))) for s in rng.permutation(ids)}
    # interleave other key work between calls: no hidden state may shift the stream
    interleaved = {}
    for s in ids:
        attempt_keys(9, s, 2)
        combination_key(3)
        interleaved[s] = _raw(shard_key(3, s))
    assert forward == backward == shuffled == interleaved


def test_attempt_zero_is_split_of_the_shard_key_and_retries_fold_in() -> None:
    for s in (0, 3):
        k_s = shard_key(11, s)
        k_init, k_mcmc = attempt_keys(11, s, 0)
        expected = jax.random.split(k_s)
        assert (_raw(k_init), _raw(k_mcmc)) == (_raw(expected[0]), _raw(expected[1]))
        for r in (1, 2, 5):
            k_init, k_mcmc = attempt_keys(11, s, r)
            expected = jax.random.split(jax.random.fold_in(k_s, r))
            assert (_raw(k_init), _raw(k_mcmc)) == (_raw(expected[0]), _raw(expected[1]))


def test_distinct_shards_attempts_seeds_and_streams_give_distinct_keys() -> None:
    seen: dict[tuple[int, ...], str] = {}

    def add(key: jax.Array, label: str) -> None:
        bits = _raw(key)
        assert bits not in seen, f"{label} repeats {seen.get(bits)}"
        seen[bits] = label

    for seed in (0, 1, 2):
        add(root_key(seed), f"root {seed}")
        add(combination_key(seed), f"combination {seed}")
        for s in range(40):
            add(shard_key(seed, s), f"shard {seed}/{s}")
            for r in range(3):
                k_init, k_mcmc = attempt_keys(seed, s, r)
                add(k_init, f"init {seed}/{s}/{r}")
                add(k_mcmc, f"mcmc {seed}/{s}/{r}")
        for kind in ("member", "replica"):
            for i in range(40):
                add(member_key(seed, kind, i), f"{kind} {seed}/{i}")
    assert len(seen) == 3 * (2 + 40 * 7 + 80)


def test_member_key_formula_and_tag_range() -> None:
    tag = kind_tag("member")
    assert COMBINATION_ID < tag < 2**32 and tag != kind_tag("replica")
    assert tag == kind_tag("member")  # crc32 is stable across processes, unlike hash()
    expected = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(4), tag), 17)
    assert _raw(member_key(4, "member", 17)) == _raw(expected)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: shard_key(0, COMBINATION_ID), "shard_id"),
        (lambda: shard_key(0, -1), "shard_id"),
        (lambda: shard_key(-1, 0), "seed"),
        (lambda: shard_key(0, True), "shard_id"),
        (lambda: shard_key(0, 1.0), "shard_id"),
        (lambda: root_key(2**63), "seed"),
        (lambda: attempt_keys(0, 0, -1), "attempt"),
        (lambda: member_key(0, "", 0), "kind"),
        (lambda: member_key(0, "member", 2**32), "item_id"),
    ],
)
def test_invalid_ids_raise(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_keys_module_never_reads_the_rank() -> None:
    # keys take (seed, id) only: no argument of any public function names a rank or owner
    import inspect

    for name in ("root_key", "shard_key", "attempt_keys", "combination_key", "member_key"):
        params = inspect.signature(getattr(keys, name)).parameters
        assert not {"rank", "n_ranks", "owner", "comm"} & set(params), name
