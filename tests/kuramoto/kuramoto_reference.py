"""Independent NumPy references for the Kuramoto tests.

Written from the formulas, sharing no code with ``hpcfit.kuramoto``: the vector field in its
direct form (N² sines of phase differences, NumPy's libm sine), classic RK4, the hand-written
adjoint of RK4, and the mean-field theory of the synchronised state.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq


def spec_network(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The test network: ω ~ N(0, 0.7²), then θ0 ~ U(0, 2π); K_jk = 1.8/N off the diagonal."""
    rng = np.random.default_rng(seed)
    omega = rng.normal(0.0, 0.7, n)
    theta0 = rng.uniform(0.0, 2.0 * np.pi, n)
    K = np.full((n, n), 1.8 / n)
    np.fill_diagonal(K, 0.0)
    return theta0, omega, K


def rhs(theta: np.ndarray, omega: np.ndarray, K: np.ndarray) -> np.ndarray:
    """ω_j + Σ_{k≠j} K_jk sin(θ_k − θ_j), batched over leading axes of θ (direct form)."""
    diff = theta[..., None, :] - theta[..., :, None]  # [..., j, k] = θ_k − θ_j
    off = K * (1.0 - np.eye(K.shape[-1]))
    return omega + np.sum(off * np.sin(diff), axis=-1)


def rk4_step(theta, omega, K, dt):
    k1 = rhs(theta, omega, K)
    k2 = rhs(theta + 0.5 * dt * k1, omega, K)
    k3 = rhs(theta + 0.5 * dt * k2, omega, K)
    k4 = rhs(theta + dt * k3, omega, K)
    return theta + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def rk4_trajectory(theta0, omega, K, dt, n_steps) -> np.ndarray:
    """(n_steps + 1, …, N) phases; row 0 is θ0 (θ0 may carry leading batch axes)."""
    rows = [np.asarray(theta0, dtype=np.float64)]
    for _ in range(n_steps):
        rows.append(rk4_step(rows[-1], omega, K, dt))
    return np.stack(rows)


def jacobian(theta: np.ndarray, K: np.ndarray) -> np.ndarray:
    """J_jl = K_jl cos(θ_l − θ_j) for l ≠ j, J_jj = −Σ_{l≠j} J_jl."""
    off = K * (1.0 - np.eye(K.shape[0])) * np.cos(theta[None, :] - theta[:, None])
    return off - np.diag(off.sum(axis=1))


def hand_adjoint(traj, omega, K, dt, lam):
    """(∂L/∂θ0, ∂L/∂ω, ∂L/∂K) by the RK4 backward recursion over a stored trajectory."""
    lam = np.array(lam, dtype=np.float64)
    g_omega = np.zeros_like(lam)
    g_K = np.zeros_like(K)
    for theta in traj[-2::-1]:
        s1 = theta
        k1 = rhs(s1, omega, K)
        s2 = theta + 0.5 * dt * k1
        k2 = rhs(s2, omega, K)
        s3 = theta + 0.5 * dt * k2
        k3 = rhs(s3, omega, K)
        s4 = theta + dt * k3
        a1, a2, a3, a4 = (dt / 6.0 * lam, dt / 3.0 * lam, dt / 3.0 * lam, dt / 6.0 * lam)
        b4 = jacobian(s4, K).T @ a4
        a3 = a3 + dt * b4
        b3 = jacobian(s3, K).T @ a3
        a2 = a2 + 0.5 * dt * b3
        b2 = jacobian(s2, K).T @ a2
        a1 = a1 + 0.5 * dt * b2
        b1 = jacobian(s1, K).T @ a1
        lam = lam + b1 + b2 + b3 + b4
        for a, s in ((a1, s1), (a2, s2), (a3, s3), (a4, s4)):
            g_omega += a
            g_K += a[:, None] * np.sin(s[None, :] - s[:, None])
    np.fill_diagonal(g_K, 0.0)
    return lam, g_omega, g_K


def order_parameter(theta: np.ndarray) -> np.ndarray:
    """r = |mean_j e^{iθ_j}| over the last axis."""
    return np.abs(np.exp(1j * np.asarray(theta)).mean(axis=-1))


def r_inf_lorentzian(coupling: float, gamma: float) -> float:
    """√(1 − K_c/K), K_c = 2γ (Ott & Antonsen, Chaos 18, 037113, 2008); 0 below K_c."""
    return float(np.sqrt(max(0.0, 1.0 - 2.0 * gamma / coupling)))


def r_inf_gaussian(coupling: float, sigma: float) -> float:
    """The r > 0 root of r = K r ∫_{−π/2}^{π/2} cos²φ g(K r sin φ) dφ, g = N(0, σ²) density."""

    def g(w: float) -> float:
        return np.exp(-0.5 * (w / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))

    def excess(r: float) -> float:
        integral = quad(
            lambda p: np.cos(p) ** 2 * g(coupling * r * np.sin(p)), -np.pi / 2, np.pi / 2
        )
        return coupling * integral[0] - 1.0

    return float(brentq(excess, 1e-9, 1.0 - 1e-12, xtol=1e-14))
