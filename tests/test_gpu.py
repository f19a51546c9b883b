"""GPU checks of the routed workloads (marker ``gpu``): skipped where JAX sees no GPU.

On a GPU host, with the ``gpu`` extra installed::

    JAX_PLATFORMS=cuda,cpu .venv/bin/python -m pytest -m gpu tests/test_gpu.py

(``hpcfit.runtime.process.configure`` defaults JAX to the CPU platform, so the variable must
name CUDA explicitly.) Float64 on both devices: the GPU's results agree with the CPU's to
rounding, and a routed run is reproducible bit for bit on one GPU with deterministic ops.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hpcfit import device, kuramoto, nrpt

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu() -> jax.Device:
    found = device.first_gpu()
    if found is None:
        pytest.skip("no GPU visible to JAX (on a GPU host set JAX_PLATFORMS=cuda,cpu)")
    return found


def bench_network(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20260703)
    omega = rng.normal(0.0, 0.7, n)
    theta0 = rng.uniform(0.0, 2.0 * math.pi, n)
    K = np.full((n, n), 1.8 / n)
    np.fill_diagonal(K, 0.0)
    return theta0, omega, K


def test_routing_sends_work_at_the_threshold_to_the_gpu(gpu, monkeypatch) -> None:
    monkeypatch.delenv("HPCFIT_DEVICE", raising=False)
    monkeypatch.delenv("HPCFIT_DEVICE_THRESHOLD", raising=False)
    assert device.resolve_device("auto", score=4096) == gpu
    assert device.resolve_device("auto", score=4095) == jax.devices("cpu")[0]
    assert device.resolve_device("gpu") == gpu
    monkeypatch.setenv("HPCFIT_DEVICE", "cpu")
    assert device.resolve_device("auto", score=10**9) == jax.devices("cpu")[0]


def test_tree_device_put_moves_once_then_returns_the_same_tree(gpu) -> None:
    tree = {"a": jnp.arange(3.0), "b": np.ones(2)}
    moved = device.tree_device_put(tree, gpu)
    assert moved["a"].devices() == {gpu} and moved["b"] is tree["b"]
    assert device.tree_device_put(moved, gpu) is moved


def test_kuramoto_trajectory_and_gradient_match_the_cpu(gpu) -> None:
    theta0, omega, K = bench_network(128)
    kw = {"dt": 0.05, "n_steps": 100}
    cpu_traj = kuramoto.trajectory(theta0, omega, K, device="cpu", **kw)
    gpu_traj = kuramoto.trajectory(theta0, omega, K, device=gpu, **kw)
    assert gpu_traj.devices() == {gpu} and gpu_traj.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(gpu_traj), np.asarray(cpu_traj), rtol=0, atol=1e-11)
    lam = np.cos(np.arange(128.0))
    grads_cpu = kuramoto.gradient(theta0, omega, K, cotangent=lam, device="cpu", **kw)
    grads_gpu = kuramoto.gradient(theta0, omega, K, cotangent=lam, device=gpu, **kw)
    for a, b in zip(grads_cpu, grads_gpu, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-9, atol=1e-11)


def test_nrpt_on_the_gpu_is_reproducible_and_exact_on_4x4(gpu) -> None:
    target = nrpt.IsingTarget(nrpt.grid_model(4))
    a = nrpt.run(target, n_chains=8, n_rounds=11, seed=5, device=gpu)
    b = nrpt.run(target, n_chains=8, n_rounds=11, seed=5, device=gpu)
    assert a.ok and b.ok
    assert np.array_equal(a.energy_series, b.energy_series)
    assert np.array_equal(a.betas, b.betas) and a.round_trips == b.round_trips
    # open 4×4 grid, J = 1, h = 0 at β = 1 (exact enumeration)
    assert abs(a.mean_energy - (-23.37283199)) < 4 * a.mean_energy_se
    assert abs(a.log_Z - 24.81764441) < 0.5
