"""Round statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nrpt_helpers import FlatTarget

from hpcfit.nrpt import run
from hpcfit.nrpt.stats import (
    batch_means_se,
    energies_by_chain,
    first_nonfinite,
    recommended_chains,
    rejection_rates,
    round_trips,
    stepping_stone,
    tau_predicted,
)


def test_conveyor_round_trips_and_restarts():
    """Always-accept conveyor, N = 4, rounds 1…5 → 13 round trips and 15 restarts in round 5."""
    res = run(FlatTarget(), n_chains=4, n_rounds=5, n_expl=0)
    assert res.round_trips == 13 and res.restarts == 15
    assert res.round_trips == sum(max(32 - i, 0) // 8 for i in range(4))  # Pigeons' closed form
    assert np.all(res.rejection == 0.0)
    np.testing.assert_array_equal(res.betas, np.linspace(0, 1, 4))  # zero guard: unchanged


@pytest.mark.parametrize(
    ("sequence", "n_chains", "trips", "restarts"),
    [
        ([0, 1, 2, 1, 0, 1, 2, 1, 0], 3, 2, 2),  # 0→1, 1→2, 2→1, 1→2, 2→1
        ([1, 2, 2, 1, 0], 3, 0, 0),  # target before the reference counts nothing
        ([2, 1, 0, 1, 2], 3, 0, 1),  # starting mid-ladder: only after touching the reference
        ([0, 0, 0, 0], 3, 0, 0),  # staying at the reference
        ([0, 2, 2, 2, 0, 0], 3, 1, 1),  # repeated target and reference visits count once
        ([0, 1, 0, 1, 0], 3, 0, 0),  # reference ↔ middle without the target
        ([0, 1, 1, 0, 1, 1, 0], 2, 2, 2),  # N = 2: chain 1 is the target
    ],
)
def test_recorder_transitions(sequence, n_chains, trips, restarts):
    t, r = round_trips(np.array([sequence]), n_chains)
    assert (int(t[0]), int(r[0])) == (trips, restarts)


def test_tau_bar_values():
    assert tau_predicted(0.0) == 0.5
    assert tau_predicted(1.0) == 0.25
    assert tau_predicted(3.0) == 0.125


def test_recommended_chains():
    assert recommended_chains(2.41) == 6
    assert recommended_chains(0.0) == 1
    assert recommended_chains(3.0) == 7
    assert recommended_chains(2.0, target_acceptance=0.75) == 9  # ⌈Λ/(1 − a*)⌉ + 1


def test_energies_by_chain_follows_the_chain_map():
    chain = np.array([[1, 0], [0, 1]])
    e1 = np.array([[10.0, 11.0], [20.0, 21.0]])
    np.testing.assert_array_equal(energies_by_chain(chain, e1), [[20.0, 11.0], [10.0, 21.0]])


def test_rejection_rates_are_rao_blackwellised_over_the_attempts():
    betas = np.array([0.0, 0.5, 1.0])
    e_chain = np.array([[1.0, 0.0, 3.0, 0.0], [2.0, 5.0, 1.0, 1.0], [0.0, 1.0, 0.0, 2.0]])
    r, n = rejection_rates(e_chain, betas, t0=0)
    # pair 0 at scans 0, 2: Δ = −0.5·(1 − 2) = 0.5 → a = 1; Δ = −0.5·(3 − 1) = −1 → a = e^{−1}
    # pair 1 at scans 1, 3: Δ = −0.5·(5 − 1) = −2; Δ = −0.5·(1 − 2) = 0.5
    assert n.tolist() == [2, 2]
    assert r[0] == pytest.approx(1 - (1 + math.exp(-1)) / 2)
    assert r[1] == pytest.approx(1 - (math.exp(-2) + 1) / 2)
    r_odd, _ = rejection_rates(e_chain, betas, t0=1)  # parity follows the global counter
    assert r_odd[0] == 0.0  # scans 1, 3: Δ = 2.5 and 0.5
    assert r_odd[1] == pytest.approx(1 - (math.exp(-1) + math.exp(-0.5)) / 2)


def test_rejection_without_attempts_is_one_half():
    r, n = rejection_rates(np.zeros((3, 1)), np.array([0.0, 0.5, 1.0]), t0=0)
    assert n.tolist() == [1, 0] and r[1] == 0.5


def test_stepping_stone_is_exact_for_a_constant_energy():
    """E_1 ≡ c: Z_1/Z_0 = e^{−c} exactly, whatever the ladder."""
    c = 2.5
    betas = np.array([0.0, 0.3, 1.0])
    log_z, forward, backward = stepping_stone(np.full((3, 8), c), betas, 0, log_z0=1.0)
    assert forward == pytest.approx(-c) and backward == pytest.approx(-c)
    assert log_z == pytest.approx(1.0 - c)


def test_batch_means_se_on_iid_data():
    rng = np.random.default_rng(0)
    ses = [batch_means_se(rng.normal(size=4096)) for _ in range(200)]
    assert np.mean(ses) == pytest.approx(1 / 64, rel=0.05)
    assert math.isnan(batch_means_se(np.ones(1)))


def test_first_nonfinite_names_the_earliest_scan():
    records = {"e1": np.zeros((4, 10)), "chain": np.tile(np.arange(4)[::-1, None], (1, 10))}
    records["e1"][3, 7] = np.inf
    records["e1"][2, 5] = np.nan
    records["e1"][1, 5] = np.nan
    assert first_nonfinite(records, t0=14) == {"replica": 1, "chain": 2, "scan": 19}
    records["e1"][:] = 0.0
    assert first_nonfinite(records, t0=14) is None
