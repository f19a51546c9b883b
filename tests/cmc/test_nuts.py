"""One shard attempt and the retry schedule.

Truths: the default settings and the retry schedule; draws are keyed only by (seed, shard,
attempt) — bitwise repeatable, different for another attempt; θ draws are T(u draws) and lie in
the box; the per-chain start rule (jitter, redraws from fold_in keys, bad_init after 10);
failures — too few devices, an exception in the model, no finite start — come back as records;
the sampling loop equals NumPyro's own ``MCMC`` with parallel chains; and a second shard of the
same shape reuses the compiled program (0 backend compiles) with results equal to a fresh one.
"""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import potential_energy

from hpcfit.cmc.diagnostics import shard_diagnostics
from hpcfit.cmc.nuts import (
    EXTRA_FIELDS,
    NutsSettings,
    initial_params,
    program,
    retry_settings,
    run_attempt,
)
from hpcfit.cmc.precondition import from_warm_start
from hpcfit.cmc.target import ShardTarget, numpyro_model
from hpcfit.parallel.keys import attempt_keys

NAMES = ("mu", "scale")
LO, HI = np.array([-5.0, 0.1]), np.array([5.0, 10.0])
Y = np.random.default_rng(7).normal(1.0, 2.0, size=60)
DATA = {"y": jnp.asarray(Y)}
SMALL = NutsSettings(num_warmup=150, num_samples=200)
MASS = NutsSettings(num_warmup=150, num_samples=200, precondition="mass")


def loglik(theta, data):
    r = (data["y"] - theta[0]) / theta[1]
    return -0.5 * jnp.sum(r**2) - data["y"].size * jnp.log(theta[1])


def make_target(ll=loglik) -> ShardTarget:
    return ShardTarget(NAMES, LO, HI, np.array([0.0, 2.0]), np.array([3.0, 3.0]), ll)


PRECOND = from_warm_start(
    NAMES, np.array([1.0, 2.0]), np.diag([0.07, 0.035]), LO, HI, np.array([3.0, 3.0]), 2
)


def run(settings=SMALL, target=None, attempt=0, seed=3, data=DATA):
    return run_attempt(
        target or make_target(),
        data,
        PRECOND,
        n_shards=2,
        seed=seed,
        shard_id=1,
        attempt=attempt,
        settings=settings,
    )


@pytest.fixture(scope="module")
def base():
    return run()


def test_defaults_are_spec():
    s = NutsSettings()
    assert (s.num_warmup, s.num_samples, s.num_chains, s.target_accept) == (500, 1000, 4, 0.9)
    assert (s.max_tree_depth, s.dense_mass, s.init_jitter, s.precondition) == (
        10,
        False,
        0.5,
        "whiten",
    )


def test_retry_schedule():
    """Any failure but low ESS: warmup × 2 and target acceptance halfway to 0.99; low ESS alone:
    twice the iterations thinned by 2, nothing else changed."""
    s = NutsSettings()
    r1 = retry_settings(s, {"max_rhat", "min_ess_bulk_per_chain"})
    r2 = retry_settings(r1)
    assert r1.target_accept == pytest.approx(0.945, abs=1e-15)
    assert r2.target_accept == pytest.approx(0.9675, abs=1e-15)
    assert (r1.num_warmup, r2.num_warmup) == (1000, 2000) and r2.thin == 1
    assert r2.num_samples == s.num_samples and r2.max_tree_depth == s.max_tree_depth
    e1 = retry_settings(s, {"min_ess_tail_per_chain"})
    e2 = retry_settings(e1, {"min_ess_bulk_per_chain", "min_ess_tail_per_chain"})
    assert (e1.thin, e2.thin) == (2, 4)
    assert e2 == NutsSettings(thin=4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_chains": 1},
        {"target_accept": 1.0},
        {"precondition": "diag"},
        {"num_samples": 2.5},
        {"thin": 0},
    ],
)
def test_settings_validation(kwargs):
    with pytest.raises(ValueError):
        NutsSettings(**kwargs)


def test_ok_attempt(base):
    assert base.status == "ok", base.message
    assert base.draws_u.shape == (4, 200, 2) and base.draws_u.dtype == np.float64
    assert base.draws_theta.shape == (4, 200, 2)
    for k, v in base.extra.items():
        assert v.shape == (4, 200), k
    theta = np.asarray(make_target().transform.forward(base.draws_u))
    np.testing.assert_allclose(base.draws_theta, theta, rtol=1e-12, atol=1e-14)
    assert np.all((base.draws_theta > LO) & (base.draws_theta < HI))
    assert (base.target_accept, base.num_warmup, base.num_chains) == (0.9, 150, 4)
    assert base.wall_s > 0.0 and base.traceback is None
    # one adapted step size per chain, finite and positive
    assert base.step_size.shape == (4,) and np.all(
        np.isfinite(base.step_size) & (base.step_size > 0)
    )
    diag = shard_diagnostics(base.draws_theta, base.extra, 10, names=NAMES)  # consumes the record
    assert diag.mean_steps == np.mean(base.num_steps) and diag.median_steps >= 1


def test_keyed_by_seed_shard_attempt(base):
    again = run()
    np.testing.assert_array_equal(again.draws_u, base.draws_u)
    np.testing.assert_array_equal(again.energy, base.energy)
    retry = run(retry_settings(SMALL), attempt=1)
    assert retry.status == "ok"
    assert retry.target_accept == pytest.approx(0.945) and retry.num_warmup == 300
    assert not np.array_equal(retry.draws_u, base.draws_u)


def test_thinned_draws_are_every_thin_th_iteration(base):
    """thin = 2 runs twice the sampling iterations with the same keys and keeps the second of
    each pair: its draws and NUTS fields are exactly the odd rows of the unthinned run of
    2·num_samples draws (one scan, so the warmup and the chains' paths are the same)."""
    long = run(replace(SMALL, num_samples=2 * SMALL.num_samples))
    thinned = run(replace(SMALL, thin=2))
    assert thinned.status == "ok" and thinned.thin == 2
    assert thinned.draws_u.shape == base.draws_u.shape
    np.testing.assert_array_equal(thinned.draws_u, long.draws_u[:, 1::2])
    np.testing.assert_array_equal(thinned.draws_theta, long.draws_theta[:, 1::2])
    for k in EXTRA_FIELDS:
        np.testing.assert_array_equal(getattr(thinned, k), getattr(long, k)[:, 1::2])


def test_mass_mode_dense():
    res = run(NutsSettings(num_warmup=150, num_samples=200, precondition="mass", dense_mass=True))
    assert res.status == "ok", res.message
    assert np.all((res.draws_theta > LO) & (res.draws_theta < HI))
    u_back = np.asarray(make_target().transform.inverse(res.draws_theta))
    # Absolute floor: a draw near u = 0 carries a round-off of a few ulps of O(1) (the logit
    # of θ ≈ midpoint), which no relative tolerance bounds (4.4e-16 on 2.4e-4 seen on AMD EPYC).
    np.testing.assert_allclose(res.draws_u, u_back, rtol=1e-12, atol=1e-13)


def test_starts_follow_jitter_rule():
    target = make_target()
    energy = program(target, PRECOND, 2, SMALL).energy
    k_init, _ = attempt_keys(3, 1, 0)
    params, redraws = initial_params(target, DATA, PRECOND, energy, SMALL, k_init)
    assert redraws == 0
    expected = 0.5 * jax.random.normal(k_init, (4, 2), dtype=jnp.float64)
    np.testing.assert_array_equal(np.asarray(params["z"]), np.asarray(expected))
    mass = program(target, PRECOND, 2, MASS).energy
    p_mass, _ = initial_params(target, DATA, PRECOND, mass, MASS, k_init)
    u0 = PRECOND.u_hat + np.asarray(expected) @ PRECOND.chol.T
    np.testing.assert_allclose(
        np.stack([p_mass[n] for n in NAMES], axis=1), u0, rtol=1e-14, atol=1e-15
    )


def test_non_finite_starts_are_redrawn():
    """ℓ = −inf for mu > 1 = T(û)_mu, i.e. z_mu > 0: with seed 4, chains 0 and 1 start there."""

    def half(theta, data):
        return jnp.where(theta[0] > 1.0, -jnp.inf, loglik(theta, data))

    target = make_target(half)
    model = numpyro_model(target, PRECOND, 2, "whiten")
    k_init, _ = attempt_keys(4, 1, 0)
    first = 0.5 * np.asarray(jax.random.normal(k_init, (4, 2), dtype=jnp.float64))
    energy = program(target, PRECOND, 2, SMALL).energy
    params, redraws = initial_params(target, DATA, PRECOND, energy, SMALL, k_init)
    assert 1 <= redraws <= 10
    z = np.asarray(params["z"])
    for c in range(4):
        e = potential_energy(model, (DATA,), {}, {"z": jnp.asarray(z[c])})
        assert np.isfinite(float(e))
    kept = first[:, 0] <= 0.0  # u_mu = û_mu + L_00·z_mu with L_00 > 0
    np.testing.assert_array_equal(kept, [False, False, True, True])
    assert np.all(z[:, 0] <= 0.0)
    np.testing.assert_array_equal(z[kept], first[kept])  # finite starts are not redrawn


def test_bad_init_after_ten_redraws():
    res = run(target=make_target(lambda theta, data: -jnp.inf + 0.0 * theta[0]))
    assert res.status == "bad_init" and res.init_redraws == 10
    assert res.draws_u is None and "10 redraws" in res.message


def test_too_few_devices_is_a_status_not_a_warning():
    res = run(NutsSettings(num_warmup=10, num_samples=10, num_chains=jax.local_device_count() + 1))
    assert res.status == "failed" and "devices" in res.message and res.draws_u is None


def test_exception_becomes_record():
    def broken(theta, data):
        raise ValueError("no likelihood today")

    res = run(target=make_target(broken))
    assert res.status == "failed" and res.error_type == "ValueError"
    assert "no likelihood today" in res.message and "ValueError" in res.traceback


@pytest.mark.parametrize("settings", [SMALL, MASS], ids=["whiten", "mass"])
def test_loop_equals_numpyro_mcmc(settings):
    """The same kernel, keys and starts through NumPyro's ``MCMC`` (parallel chains) give the
    same draws, step counts and adapted step sizes."""
    target = make_target()
    res = run(settings)
    assert res.status == "ok", res.message
    k_init, k_mcmc = attempt_keys(3, 1, 0)
    prog = program(target, PRECOND, 2, settings)
    start, _ = initial_params(target, DATA, PRECOND, prog.energy, settings, k_init)
    model = numpyro_model(target, PRECOND, 2, settings.precondition)
    names = ("z",) if settings.precondition == "whiten" else NAMES
    inverse_mass = None
    if settings.precondition == "mass":
        inverse_mass = {names: jnp.diag(jnp.asarray(PRECOND.cov_w))}
    kernel = NUTS(model, target_accept_prob=0.9, dense_mass=[], inverse_mass_matrix=inverse_mass)
    mcmc = MCMC(kernel, num_warmup=150, num_samples=200, num_chains=4, progress_bar=False,
                chain_method="parallel")  # fmt: skip
    mcmc.run(k_mcmc, DATA, init_params=start, extra_fields=EXTRA_FIELDS)
    draws = mcmc.get_samples(group_by_chain=True)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    np.testing.assert_allclose(res.draws_u, np.asarray(draws["u"]), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(res.num_steps, np.asarray(extra["num_steps"]))
    np.testing.assert_array_equal(res.diverging, np.asarray(extra["diverging"]))
    np.testing.assert_allclose(
        res.step_size, np.asarray(mcmc.last_state.adapt_state.step_size), rtol=1e-10
    )


def test_second_shard_of_one_shape_compiles_nothing():
    """Another shard's data of the same shape runs on the program the first compiled: no
    backend compile, and the same draws as a program built afresh for it."""
    target = make_target()
    first = run(target=target)
    other = {"y": jnp.asarray(np.random.default_rng(8).normal(1.2, 2.0, size=Y.size))}
    second = run(target=target, data=other)
    assert first.status == second.status == "ok"
    assert first.n_compiles > 0 and second.n_compiles == 0
    fresh = run(target=make_target(), data=other)
    assert fresh.n_compiles > 0
    np.testing.assert_array_equal(second.draws_u, fresh.draws_u)
    assert not np.array_equal(second.draws_u, first.draws_u)
