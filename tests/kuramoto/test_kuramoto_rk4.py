"""RK4 forward integration against independent references and invariants."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from kuramoto_reference import order_parameter as np_order_parameter
from kuramoto_reference import rhs, rk4_step, rk4_trajectory, spec_network

from hpcfit.kuramoto import (
    final_state,
    init,
    order_parameter,
    step,
    trajectory,
    vector_field,
)
from hpcfit.kuramoto.network import bench_network

DT = 0.05


def test_one_step_matches_a_hand_written_rk4_step() -> None:
    theta0, omega, K = spec_network(6, seed=1)
    K[np.diag_indices(6)] = 3.0  # the diagonal must not matter
    expected = rk4_step(theta0, omega, K, DT)
    carry, row = step(init(jnp.asarray(theta0), jnp.asarray(omega), jnp.asarray(K)), DT)
    assert np.max(np.abs(np.asarray(row) - expected)) <= 1e-13
    assert np.array_equal(np.asarray(carry.theta), np.asarray(row))
    one = trajectory(theta0, omega, K, dt=DT, n_steps=1)
    assert np.array_equal(np.asarray(one[0]), theta0)
    assert np.max(np.abs(np.asarray(one[1]) - expected)) <= 1e-13


def test_fourth_order_convergence() -> None:
    theta0, omega, K = spec_network(16, seed=2)
    finals = [
        np.asarray(final_state(theta0, omega, K, dt=1.0 / n, n_steps=n)) for n in (40, 80, 160)
    ]
    d1 = np.max(np.abs(finals[0] - finals[1]))
    d2 = np.max(np.abs(finals[1] - finals[2]))
    assert 12.0 < d1 / d2 < 20.0  # 2⁴ = 16 for a fourth-order method


@pytest.mark.parametrize(("n", "n_steps", "seed"), [(6, 40, 3), (32, 40, 4), (64, 40, 5)])
def test_forward_matches_numpy_direct_form(n: int, n_steps: int, seed: int) -> None:
    theta0, omega, K = spec_network(n, seed)
    ours = np.asarray(trajectory(theta0, omega, K, dt=DT, n_steps=n_steps))
    ref = rk4_trajectory(theta0, omega, K, DT, n_steps)
    assert ours.shape == (n_steps + 1, n)
    assert np.max(np.abs(ours - ref)) <= 1e-11


def test_bench_network_256_by_200_steps() -> None:
    omega, theta0, K = bench_network(256)
    ours = np.asarray(trajectory(theta0, omega, K, dt=DT, n_steps=200))
    ref = rk4_trajectory(theta0, omega, K, DT, 200)
    assert np.max(np.abs(ours - ref)) <= 1e-11
    r = np_order_parameter(ref)
    assert r[0] == pytest.approx(0.097, abs=5e-4) and r[-1] == pytest.approx(0.853, abs=5e-4)


def test_expanded_and_direct_forms_agree() -> None:
    theta0, omega, K = spec_network(32, seed=6)
    K = K * np.random.default_rng(6).uniform(0.0, 2.0, K.shape)  # not symmetric
    fields = [np.asarray(vector_field(theta0, omega, K, form=f)) for f in ("expanded", "direct")]
    assert np.max(np.abs(fields[0] - fields[1])) <= 1e-15
    assert np.max(np.abs(fields[0] - rhs(theta0, omega, K))) <= 1e-15

    def run(form: str) -> np.ndarray:
        body = jax.jit(lambda c: jax.lax.scan(lambda c, _: step(c, DT, form=form), c, None, 200))
        return np.asarray(body(init(theta0, omega, K))[0].theta)

    assert np.max(np.abs(run("expanded") - run("direct"))) <= 5e-14


def test_rows_steps_and_final_state() -> None:
    theta0, omega, K = spec_network(12, seed=7)
    traj = np.asarray(trajectory(theta0, omega, K, dt=DT, n_steps=30))
    assert traj.shape == (31, 12) and np.array_equal(traj[0], theta0)
    assert np.array_equal(traj[-1], np.asarray(final_state(theta0, omega, K, dt=DT, n_steps=30)))
    zero = np.asarray(trajectory(theta0, omega, K, dt=DT, n_steps=0))
    assert zero.shape == (1, 12) and np.array_equal(zero[0], theta0)
    assert np.array_equal(np.asarray(final_state(theta0, omega, K, dt=DT, n_steps=0)), theta0)
    # Phases are not wrapped: a fast oscillator runs far beyond 2π.
    fast = np.asarray(final_state(theta0, omega + 50.0, K, dt=DT, n_steps=30))
    assert np.min(fast - theta0) > 70.0


def test_zero_coupling_gives_exact_linear_phases() -> None:
    theta0, omega, _ = spec_network(32, seed=8)
    traj = np.asarray(trajectory(theta0, omega, np.zeros((32, 32)), dt=DT, n_steps=1000))
    t = DT * np.arange(1001)[:, None]
    assert np.max(np.abs(traj - (theta0 + t * omega))) <= 1e-10


def test_symmetric_coupling_conserves_the_phase_sum() -> None:
    theta0, omega, _ = spec_network(32, seed=9)
    a = np.random.default_rng(9).uniform(0.0, 0.2, (32, 32))
    K = a + a.T  # Σ_jk K_jk sin(θ_k − θ_j) = 0 for symmetric K
    traj = np.asarray(trajectory(theta0, omega, K, dt=DT, n_steps=1000))
    t = DT * np.arange(1001)
    drift = traj.sum(axis=1) - theta0.sum() - t * omega.sum()
    assert np.max(np.abs(drift)) <= 1e-10
    # A non-symmetric K does not conserve it (the check can fail).
    skew = np.asarray(trajectory(theta0, omega, K + np.triu(a), dt=DT, n_steps=1000))
    assert np.max(np.abs(skew.sum(axis=1) - theta0.sum() - t * omega.sum())) > 1e-3


def test_frequency_shift_is_a_rotating_frame() -> None:
    theta0, omega, K = spec_network(32, seed=10)
    c = 1.7
    base = np.asarray(trajectory(theta0, omega, K, dt=DT, n_steps=200))
    shifted = np.asarray(trajectory(theta0, omega + c, K, dt=DT, n_steps=200))
    t = DT * np.arange(201)[:, None]
    assert np.max(np.abs(shifted - base - c * t)) <= 1e-10
    r_base, r_shift = np.asarray(order_parameter(base)), np.asarray(order_parameter(shifted))
    assert np.max(np.abs(r_base - r_shift)) <= 1e-12


def test_order_parameter_bounds_and_values() -> None:
    omega, theta0, K = bench_network(256)
    r = np.asarray(order_parameter(trajectory(theta0, omega, K, dt=DT, n_steps=200)))
    assert np.all((r >= 0.0) & (r <= 1.0))
    rng = np.random.default_rng(11)
    for n in (1, 3, 7, 1000):
        equal = np.asarray(order_parameter(np.repeat([[0.1], [1.0], [-2.5], [1e4 + 0.3]], n, 1)))
        assert np.all((equal >= 0.0) & (equal <= 1.0))
        phases = rng.uniform(-50.0, 50.0, (20, n))
        ours = np.asarray(order_parameter(phases))
        assert np.all((ours >= 0.0) & (ours <= 1.0))
        assert np.max(np.abs(ours - np_order_parameter(phases))) <= 1e-14
    assert float(order_parameter(np.array([0.0, np.pi]))) <= 1e-16  # antiphase pair
    assert float(order_parameter(np.full(5, 0.4))) == pytest.approx(1.0, abs=1e-15)
