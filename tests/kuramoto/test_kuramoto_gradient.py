"""Reverse-mode gradients: finite differences, the hand
adjoint, linearity, the zero-step pass-through, the masked diagonal and checkpointing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kuramoto_reference import hand_adjoint, rk4_trajectory, spec_network

from hpcfit.kuramoto import final_state, gradient, order_parameter
from hpcfit.kuramoto.chunks import gradient as gradient_kernel

DT = 0.05
FD_STEP = 1e-6


def _fd_gradient(theta0, omega, K, n_steps):
    """Central differences of L = Σ sin θ_final for every entry of θ0, ω and K.

    All 2·(2N + N²) perturbed networks run as one batch through the NumPy direct-form RK4
    (independent of the code under test; it agrees with it to ~1e-14, far below the 1e-5 check).
    """
    n = theta0.size
    m = 2 * n + n * n
    eye = np.eye(m)
    d_theta, d_omega, d_K = eye[:, :n], eye[:, n : 2 * n], eye[:, 2 * n :].reshape(m, n, n)
    losses = []
    for sign in (1.0, -1.0):
        h = sign * FD_STEP
        final = rk4_trajectory(theta0 + h * d_theta, omega + h * d_omega, K + h * d_K, DT, n_steps)[
            -1
        ]
        losses.append(np.sin(final).sum(axis=-1))
    g = (losses[0] - losses[1]) / (2 * FD_STEP)
    return g[:n], g[n : 2 * n], g[2 * n :].reshape(n, n)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(2, 8),
    n_steps=st.integers(1, 10),
    seed=st.integers(0, 2**32 - 1),
    asymmetry=st.floats(0.0, 2.0),
)
def test_gradient_matches_central_differences(n, n_steps, seed, asymmetry) -> None:
    theta0, omega, K = spec_network(n, seed)
    K = K * (1.0 + asymmetry * np.random.default_rng(seed).uniform(-1.0, 1.0, K.shape))
    final = np.asarray(final_state(theta0, omega, K, dt=DT, n_steps=n_steps))
    ours = gradient(theta0, omega, K, dt=DT, n_steps=n_steps, cotangent=np.cos(final))
    for got, fd in zip(ours, _fd_gradient(theta0, omega, K, n_steps), strict=True):
        assert np.max(np.abs(np.asarray(got) - fd)) <= 1e-5


@pytest.mark.parametrize(("n", "seed"), [(6, 21), (32, 22), (64, 23)])
def test_gradient_matches_the_hand_adjoint(n: int, seed: int) -> None:
    theta0, omega, K = spec_network(n, seed)
    K = K * np.random.default_rng(seed).uniform(0.0, 2.0, K.shape)  # not symmetric
    lam = np.random.default_rng(seed + 1).normal(size=n)
    traj = rk4_trajectory(theta0, omega, K, DT, 40)
    ours = gradient(theta0, omega, K, dt=DT, n_steps=40, cotangent=lam)
    for got, ref in zip(ours, hand_adjoint(traj, omega, K, DT, lam), strict=True):
        assert np.max(np.abs(np.asarray(got) - ref)) <= 1e-9
    assert np.all(np.diag(np.asarray(ours[2])) == 0.0)  # the masked diagonal, exactly


def test_linear_in_the_cotangent_and_zero_steps_pass_through() -> None:
    theta0, omega, K = spec_network(16, seed=31)
    rng = np.random.default_rng(31)
    l1, l2 = rng.normal(size=16), rng.normal(size=16)
    a, b = 0.7, -2.3

    def grad(lam, n_steps=30):
        return [
            np.asarray(g) for g in gradient(theta0, omega, K, dt=DT, n_steps=n_steps, cotangent=lam)
        ]

    combined = grad(a * l1 + b * l2)
    for got, g1, g2 in zip(combined, grad(l1), grad(l2), strict=True):
        assert np.max(np.abs(got - (a * g1 + b * g2))) <= 1e-12
    g_theta, g_omega, g_K = grad(l1, n_steps=0)
    assert np.array_equal(g_theta, l1)
    assert np.array_equal(g_omega, np.zeros(16)) and np.array_equal(g_K, np.zeros((16, 16)))


def _loss_one_minus_r2(theta: np.ndarray) -> float:
    return 1.0 - float(np.abs(np.exp(1j * theta).mean())) ** 2


def test_one_gradient_step_on_one_minus_r2_lowers_it() -> None:
    theta0, omega, K = spec_network(32, seed=41)
    final = np.asarray(final_state(theta0, omega, K, dt=DT, n_steps=100))
    z = np.exp(1j * final).mean()
    lam = (2.0 / 32) * (z.real * np.sin(final) - z.imag * np.cos(final))  # ∂(1 − r²)/∂θ
    auto = jax.grad(lambda th: 1.0 - order_parameter(th) ** 2)(jnp.asarray(final))
    assert np.max(np.abs(np.asarray(auto) - lam)) <= 1e-15
    g_theta, g_omega, g_K = gradient(theta0, omega, K, dt=DT, n_steps=100, cotangent=lam)
    before = _loss_one_minus_r2(final)
    eta = 0.5
    after = _loss_one_minus_r2(
        np.asarray(
            final_state(
                theta0 - eta * np.asarray(g_theta),
                omega - eta * np.asarray(g_omega),
                K - eta * np.asarray(g_K),
                dt=DT,
                n_steps=100,
            )
        )
    )
    assert after < before - 1e-3


def test_autodiff_through_final_state_equals_gradient() -> None:
    theta0, omega, K = spec_network(8, seed=51)
    lam = np.random.default_rng(51).normal(size=8)

    def loss(th, om, k):
        return jnp.dot(final_state(th, om, k, dt=DT, n_steps=20), lam)

    auto = jax.grad(loss, argnums=(0, 1, 2))(*(jnp.asarray(x) for x in (theta0, omega, K)))
    ours = gradient(theta0, omega, K, dt=DT, n_steps=20, cotangent=lam)
    for a, b in zip(auto, ours, strict=True):
        assert np.max(np.abs(np.asarray(a) - np.asarray(b))) <= 1e-13


@pytest.mark.parametrize("checkpoint_steps", [1, 7, 50, 200])
def test_checkpointed_gradient_equals_the_plain_one(checkpoint_steps: int) -> None:
    theta0, omega, K = spec_network(16, seed=61)
    lam = np.random.default_rng(61).normal(size=16)
    plain = gradient(theta0, omega, K, dt=DT, n_steps=100, cotangent=lam)
    ckpt = gradient(
        theta0, omega, K, dt=DT, n_steps=100, cotangent=lam, checkpoint_steps=checkpoint_steps
    )
    for a, b in zip(plain, ckpt, strict=True):
        assert np.max(np.abs(np.asarray(a) - np.asarray(b))) <= 1e-13
    fwd = final_state(theta0, omega, K, dt=DT, n_steps=100, checkpoint_steps=checkpoint_steps)
    assert (
        np.max(
            np.abs(np.asarray(fwd) - np.asarray(final_state(theta0, omega, K, dt=DT, n_steps=100)))
        )
        <= 1e-13
    )


def test_checkpointing_bounds_the_stored_residuals() -> None:
    n, n_steps = 64, 2000
    theta0, omega, K = spec_network(n, seed=71)
    args = (theta0, omega, K, np.float64(DT), np.ones(n))

    def temp_bytes(checkpoint_steps):
        lowered = gradient_kernel.lower(
            *args, n_steps=n_steps, chunk=1, checkpoint_steps=checkpoint_steps
        )
        return lowered.compile().memory_analysis().temp_size_in_bytes

    plain, blocked = temp_bytes(None), temp_bytes(50)
    # Without checkpoints the residuals grow with n_steps (several N-vectors per step).
    assert plain > 4 * n_steps * n * 8
    assert blocked < plain / 4
