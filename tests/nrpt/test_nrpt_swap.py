"""DEO swaps on the replica → chain map."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from hpcfit.nrpt import GaussianPathTarget, run
from hpcfit.nrpt.stats import pair_attempts
from hpcfit.nrpt.swap import deo_swap, deo_swap_host, partner_chains, swap_chains


def test_deo_pairs_alternate_with_the_scan_parity():
    chains = np.arange(6)
    partner, valid = partner_chains(chains, 0, 6)
    assert partner.tolist() == [1, 0, 3, 2, 5, 4] and valid.all()  # (0,1) (2,3) (4,5)
    partner, valid = partner_chains(chains, 1, 6)
    assert valid.tolist() == [False, True, True, True, True, False]  # (1,2) (3,4)
    assert partner[1:5].tolist() == [2, 1, 4, 3]


@pytest.mark.parametrize("t", [0, 1, 2, 7])
def test_partner_map_is_an_involution(t):
    rng = np.random.default_rng(t)
    chains = rng.permutation(9)
    partner, valid = partner_chains(chains, t, 9)
    at = np.argsort(chains)
    for r in np.flatnonzero(valid):
        q = at[partner[r]]
        assert partner[q] == chains[r]


def test_swap_uses_the_lower_chain_uniform():
    betas = np.array([0.0, 1.0])
    e1 = np.array([0.0, 1.0])  # replica 0 at chain 0 (lo), replica 1 at chain 1 (hi)
    delta = (0.0 - 1.0) * (0.0 - 1.0)  # = +1 → always accepted
    assert swap_chains(np.array([0, 1]), e1, np.array([0.5, -5.0]), betas, 0).tolist() == [1, 0]
    e1 = np.array([1.0, 0.0])  # Δ = −1: accept iff v_lo < −1
    v_lo_rejects = np.array([-0.5, -5.0])  # the hi uniform would accept; the lo one decides
    assert swap_chains(np.array([0, 1]), e1, v_lo_rejects, betas, 0).tolist() == [0, 1]
    v_lo_accepts = np.array([-1.5, 0.0])
    assert swap_chains(np.array([0, 1]), e1, v_lo_accepts, betas, 0).tolist() == [1, 0]
    assert delta > 0
    # t odd: no pair exists for N = 2
    assert swap_chains(np.array([0, 1]), e1, v_lo_accepts, betas, 1).tolist() == [0, 1]


@pytest.mark.parametrize("seed", range(5))
def test_numpy_and_jax_swaps_agree_bitwise_and_keep_a_permutation(seed):
    rng = np.random.default_rng(seed)
    n = 11
    betas = np.sort(np.concatenate(([0.0, 1.0], rng.uniform(size=n - 2))))
    chains = rng.permutation(n).astype(np.int32)
    at_chain = np.argsort(chains).astype(np.int32)
    for t in range(40):
        e1 = rng.normal(scale=3.0, size=n)
        e1[rng.integers(n)] = np.nan if t % 5 == 0 else e1[0]  # NaN: its swaps are rejected
        v = np.log(rng.uniform(size=n))
        new = swap_chains(chains, e1, v, betas, t)
        via_jax = swap_chains(
            jnp.asarray(chains), jnp.asarray(e1), jnp.asarray(v), jnp.asarray(betas), t, xp=jnp
        )
        np.testing.assert_array_equal(new, np.asarray(via_jax))
        assert sorted(new.tolist()) == list(range(n))
        carried, inverse = deo_swap(chains, at_chain, e1, v, betas, t)  # the in-loop form
        np.testing.assert_array_equal(carried, new)
        np.testing.assert_array_equal(inverse, np.argsort(new))
        host_c, host_at = chains.tolist(), at_chain.tolist()  # path B's host form
        deo_swap_host(host_c, host_at, e1.tolist(), v.tolist(), betas.tolist(), t)
        assert host_c == new.tolist() and host_at == inverse.tolist()
        chains, at_chain = new, inverse


def test_attempt_counts():
    """T scans from t = 0 attempt pair i ⌈T/2⌉ times (i even) or ⌊T/2⌋ (i odd)."""
    counts = pair_attempts(4, 0, 50).sum(axis=1)
    assert counts.tolist() == [25, 25, 25]
    counts = pair_attempts(5, 0, 51).sum(axis=1)
    assert counts.tolist() == [26, 25, 26, 25]


def test_round_r_attempts_each_pair_two_to_the_r_minus_one_times():
    res = run(GaussianPathTarget(1), n_chains=5, n_rounds=5, n_expl=1, seed=1)
    for row in res.history:
        assert row["attempts"].tolist() == [2 ** (row["round"] - 1)] * 4


def _frozen_pair(seed: int, n_rounds: int):
    # precision 2: E_1 = x²/2, so |Δ| between two reference draws is of order one
    target = GaussianPathTarget(1, precision=2.0)
    return run(target, n_chains=2, n_rounds=n_rounds, n_expl=0, seed=seed)


def test_frozen_states_non_negative_delta_is_accepted():
    """n_expl = 0, N = 2, Δ ≥ 0: a 2-scan round has one attempt, and it is accepted."""
    for seed in range(20):
        res = _frozen_pair(seed, 1)
        e = res.records["e1"][:, 0]
        if e[1] >= e[0]:  # replica 1 sits at the target chain with the higher energy
            break
    else:
        pytest.fail("no seed gave Δ ≥ 0")
    assert res.history[0]["attempts"].tolist() == [1]
    assert res.records["chain"][:, 1].tolist() == [1, 0]
    assert res.rejection.tolist() == [0.0]


def test_frozen_states_acceptance_matches_the_two_state_chain():
    """Δ < 0 side with α = e^{−|Δ|}: acceptance → 2α/(1 + α) over 2048 attempts."""
    res = _frozen_pair(3, 12)
    e = res.records["e1"]
    assert np.all(e == e[:, :1])  # frozen states
    alpha = math.exp(-abs(e[0, 0] - e[1, 0]))
    assert 0.1 < alpha < 0.9  # the seed gives a non-trivial test
    expected = 2 * alpha / (1 + alpha)
    chain = res.records["chain"]
    attempts = np.arange(chain.shape[1] - 1)[::2]  # pair 0 at even scans
    accepted = chain[0, attempts + 1] != chain[0, attempts]
    assert attempts.size == 2048
    assert abs(accepted.mean() - expected) < 0.04
    assert abs((1.0 - res.rejection[0]) - expected) < 0.04
