"""Ensembles: members equal single calls bitwise, whatever the
batch, its size or the member's position; records; device routing at the entry points."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from kuramoto_reference import order_parameter as np_order_parameter
from kuramoto_reference import spec_network

from hpcfit import device as routing
from hpcfit.kuramoto import (
    chunks,
    ensemble,
    ensemble_gradient,
    final_state,
    gradient,
    order_parameter,
    trajectory,
)

DT = 0.05
N_STEPS = 25


def _members(b: int, n: int, seed: int):
    theta0, omega, K = spec_network(n, seed)
    rng = np.random.default_rng(seed)
    thetas = rng.uniform(0.0, 2 * np.pi, (b, n))
    omegas = rng.normal(0.0, 0.7, (b, n))
    Ks = K[None] * rng.uniform(0.0, 2.0, (b, n, n))
    lams = rng.normal(size=(b, n))
    return thetas, omega, K, omegas, Ks, lams


@pytest.mark.parametrize("n", [6, 33])
@pytest.mark.parametrize("b", [1, 3, 8])
@pytest.mark.parametrize("per_member", [False, True])
def test_members_equal_single_calls_bitwise(n: int, b: int, per_member: bool) -> None:
    thetas, omega, K, omegas, Ks, lams = _members(b, n, seed=100 + b + n)
    om, k = (omegas, Ks) if per_member else (omega, K)
    traj = ensemble(thetas, om, k, dt=DT, n_steps=N_STEPS, record="trajectory")
    rec_r = ensemble(thetas, om, k, dt=DT, n_steps=N_STEPS, record="order_parameter")
    fin = ensemble(thetas, om, k, dt=DT, n_steps=N_STEPS, record="final")
    grads = ensemble_gradient(thetas, om, k, dt=DT, n_steps=N_STEPS, cotangent=lams)
    assert set(traj) == {"trajectory", "final"} and set(fin) == {"final"}
    assert set(rec_r) == {"order_parameter", "final"}
    for m in range(b):
        om_m, k_m = (omegas[m], Ks[m]) if per_member else (omega, K)
        single_traj = np.asarray(trajectory(thetas[m], om_m, k_m, dt=DT, n_steps=N_STEPS))
        single_fin = np.asarray(final_state(thetas[m], om_m, k_m, dt=DT, n_steps=N_STEPS))
        assert np.array_equal(np.asarray(traj["trajectory"][m]), single_traj)
        for out in (traj, rec_r, fin):
            assert np.array_equal(np.asarray(out["final"][m]), single_fin)
        single_grad = gradient(thetas[m], om_m, k_m, dt=DT, n_steps=N_STEPS, cotangent=lams[m])
        for got, want in zip(grads, single_grad, strict=True):
            assert np.array_equal(np.asarray(got[m]), np.asarray(want))
    r = np.asarray(rec_r["order_parameter"])
    assert r.shape == (b, N_STEPS + 1)
    assert np.max(np.abs(r - np_order_parameter(np.asarray(traj["trajectory"])))) <= 1e-14
    assert np.asarray(grads[2]).shape == (b, n, n)


def test_batch_independence_across_sizes_and_positions() -> None:
    thetas, omega, K, omegas, Ks, _ = _members(7, 10, seed=7)
    whole = np.asarray(
        ensemble(thetas, omegas, Ks, dt=DT, n_steps=N_STEPS, record="final")["final"]
    )
    for lo, hi in ((0, 1), (2, 5), (3, 7), (6, 7)):
        part = ensemble(
            thetas[lo:hi], omegas[lo:hi], Ks[lo:hi], dt=DT, n_steps=N_STEPS, record="final"
        )
        assert np.array_equal(np.asarray(part["final"]), whole[lo:hi])
    # The same members in another order come out permuted, bit for bit.
    perm = np.array([4, 0, 6, 2, 1, 5, 3])
    shuffled = ensemble(
        thetas[perm], omegas[perm], Ks[perm], dt=DT, n_steps=N_STEPS, record="final"
    )
    assert np.array_equal(np.asarray(shuffled["final"]), whole[perm])


@pytest.mark.parametrize("chunk", [4, 8])
def test_explicit_chunks_are_batch_independent(chunk: int) -> None:
    thetas, omega, K, omegas, Ks, lams = _members(9, 20, seed=11)
    kw = {"dt": DT, "n_steps": N_STEPS, "chunk": chunk}
    whole = ensemble(thetas, omega, K, record="trajectory", **kw)
    grads = ensemble_gradient(thetas, omega, K, cotangent=lams, **kw)
    for m in (0, 3, 8):
        one = trajectory(thetas[m], omega, K, **kw)
        assert np.array_equal(np.asarray(whole["trajectory"][m]), np.asarray(one))
        g = gradient(thetas[m], omega, K, cotangent=lams[m], **kw)
        for got, want in zip(grads, g, strict=True):
            assert np.array_equal(np.asarray(got[m]), np.asarray(want))
    sub = ensemble(thetas[2:7], omega, K, record="trajectory", **kw)
    assert np.array_equal(np.asarray(sub["trajectory"]), np.asarray(whole["trajectory"][2:7]))
    # Different chunk sizes agree to rounding (padding and matrix products change the last bits).
    plain = ensemble(thetas, omega, K, dt=DT, n_steps=N_STEPS, record="trajectory")
    diff = np.asarray(plain["trajectory"]) - np.asarray(whole["trajectory"])
    assert np.max(np.abs(diff)) <= 1e-12


def test_repeated_calls_are_bitwise_equal() -> None:
    thetas, omega, K, _, _, lams = _members(3, 16, seed=13)
    first = ensemble(thetas, omega, K, dt=DT, n_steps=N_STEPS)
    g_first = ensemble_gradient(thetas, omega, K, dt=DT, n_steps=N_STEPS, cotangent=lams)
    for _ in range(2):
        again = ensemble(thetas, omega, K, dt=DT, n_steps=N_STEPS)
        assert all(np.array_equal(np.asarray(again[k]), np.asarray(first[k])) for k in first)
        g = ensemble_gradient(thetas, omega, K, dt=DT, n_steps=N_STEPS, cotangent=lams)
        assert all(
            np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(g, g_first, strict=True)
        )
    # n_steps = 0: r(θ0) and θ0 itself.
    zero = ensemble(thetas, omega, K, dt=DT, n_steps=0)
    assert np.array_equal(np.asarray(zero["final"]), thetas)
    assert (
        np.max(np.abs(np.asarray(zero["order_parameter"])[:, 0] - np_order_parameter(thetas)))
        <= 1e-15
    )


def test_entry_points_vmap_and_jit() -> None:
    thetas, omega, K, _, _, _ = _members(4, 12, seed=17)
    vmapped = jax.vmap(lambda th: final_state(th, omega, K, dt=DT, n_steps=N_STEPS))(
        jnp.asarray(thetas)
    )
    ens = ensemble(thetas, omega, K, dt=DT, n_steps=N_STEPS, record="final")["final"]
    assert np.max(np.abs(np.asarray(vmapped) - np.asarray(ens))) <= 1e-13
    jitted = jax.jit(lambda th, dt: trajectory(th, omega, K, dt=dt, n_steps=N_STEPS))
    assert (
        np.max(
            np.abs(
                np.asarray(jitted(thetas[0], DT))
                - np.asarray(trajectory(thetas[0], omega, K, dt=DT, n_steps=N_STEPS))
            )
        )
        <= 1e-13
    )


def _committed_to(x: jax.Array, dev) -> bool:
    return x.committed and x.devices() == {dev}


def test_device_none_auto_and_cpu() -> None:
    thetas, omega, K, _, _, lams = _members(2, 8, seed=19)
    plain = ensemble(thetas, omega, K, dt=DT, n_steps=5, device=None)
    assert not any(v.committed for v in plain.values())
    auto = ensemble(thetas, omega, K, dt=DT, n_steps=5)  # CPU-only JAX: routing is a no-op
    assert not any(v.committed for v in auto.values())
    cpu = jax.devices("cpu")[0]
    placed = ensemble(thetas, omega, K, dt=DT, n_steps=5, device="cpu")
    assert all(_committed_to(v, cpu) for v in placed.values())
    assert all(np.array_equal(np.asarray(placed[k]), np.asarray(plain[k])) for k in plain)
    g = gradient(thetas[0], omega, K, dt=DT, n_steps=5, cotangent=lams[0], device=cpu)
    assert all(_committed_to(x, cpu) for x in g)
    other = jax.devices("cpu")[1]  # conftest: four virtual CPU devices
    moved = final_state(jax.device_put(thetas[0], cpu), omega, K, dt=DT, n_steps=5, device=other)
    assert _committed_to(moved, other)


def test_each_entry_resolves_its_device_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = routing.resolve_entry_device

    def spy(device, *, score, arrays=(), threshold=None):
        calls.append(score)
        return real(device, score=score, arrays=arrays, threshold=threshold)

    monkeypatch.setattr(routing, "resolve_entry_device", spy)
    thetas, omega, K, _, _, lams = _members(5, 12, seed=23)
    ensemble(thetas, omega, K, dt=DT, n_steps=5, device="cpu")
    ensemble_gradient(thetas, omega, K, dt=DT, n_steps=5, cotangent=lams, device="cpu")
    trajectory(thetas[0], omega, K, dt=DT, n_steps=5)
    assert calls == [routing.kuramoto_score(5, 12)] * 2 + [routing.kuramoto_score(1, 12)]


def test_order_parameter_record_is_r_of_the_trajectory() -> None:
    thetas, omega, K, _, _, _ = _members(3, 40, seed=29)
    r = ensemble(thetas, omega, K, dt=DT, n_steps=60)["order_parameter"]
    traj = ensemble(thetas, omega, K, dt=DT, n_steps=60, record="trajectory")["trajectory"]
    assert np.max(np.abs(np.asarray(r) - np.asarray(order_parameter(traj)))) <= 1e-15


def test_dt_and_values_are_traced_n_steps_is_static() -> None:
    theta0, omega, K = spec_network(5, seed=31)
    final_state(theta0, omega, K, dt=0.1, n_steps=3)
    size = chunks.forward._cache_size()
    final_state(theta0 + 1.0, omega, K, dt=0.2, n_steps=3)
    final_state(list(theta0), omega.astype(np.float32), K, dt=np.float32(0.3), n_steps=np.int64(3))
    assert chunks.forward._cache_size() == size  # one compilation serves every dt and value
    final_state(theta0, omega, K, dt=0.1, n_steps=4)
    assert chunks.forward._cache_size() == size + 1
