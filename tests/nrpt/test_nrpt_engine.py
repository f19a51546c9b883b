"""Engine invariants: β = 0 exactness, batch independence, path A = path B, failures, arguments."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from nrpt_helpers import BlowUpTarget, assert_results_equal
from scipy.stats import chi2_contingency, chisquare

from hpcfit import device as device_mod
from hpcfit.errors import ConfigError
from hpcfit.nrpt import GaussianPathTarget, IsingModel, IsingTarget, grid_model, run
from hpcfit.nrpt.engine import explore_and_record, replica_keys
from hpcfit.parallel.comm import SerialComm


@pytest.fixture(scope="module")
def small_target():
    return IsingTarget(grid_model(4, J=0.7, h=0.1))


def test_beta_zero_sweep_ignores_the_previous_state():
    """One sweep at β = 0 is an exact iid uniform draw, whatever the state before it."""
    model = IsingModel(
        n=4, edges=np.array([[0, 1], [1, 2], [2, 3], [0, 3]]), J=np.full(4, 2.0), h=np.full(4, 0.5)
    )
    target = IsingTarget(model)
    starts = np.array(list(itertools.product((-1, 1), repeat=4)), dtype=np.int8)
    per_start = 400
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(11), i))(
        np.arange(16 * per_start, dtype=np.uint32)
    )
    x0 = np.repeat(starts, per_start, axis=0)
    sweep = jax.jit(jax.vmap(lambda k, x: target.explore(k, x, 0.0, 1)))
    out = np.asarray(sweep(keys, x0))
    code = ((out + 1) // 2) @ (1 << np.arange(4))
    table = np.zeros((16, 16), dtype=np.int64)
    np.add.at(table, (np.repeat(np.arange(16), per_start), code), 1)
    assert chi2_contingency(table).pvalue > 1e-3  # independent of the previous state
    assert chisquare(table.sum(axis=0)).pvalue > 1e-3  # uniform over the 2⁴ states
    # stronger: with the same key the outcome is bitwise the same from any start
    same_key = np.asarray(sweep(np.repeat(keys[:1], 16, axis=0), starts))
    assert np.all(same_key == same_key[0])


def test_batch_independence(small_target):
    """A replica's scan does not depend on the batch size or its position in the batch."""
    n = 6
    keys = replica_keys(5, np.arange(n))
    states = jax.vmap(lambda k: small_target.sample_reference(k))(keys)
    chains = np.array([3, 0, 5, 1, 4, 2], dtype=np.int32)
    betas = jnp.linspace(0.0, 1.0, n)
    step = jax.jit(lambda s, k, c, t: explore_and_record(small_target, 2, s, k, c, betas, t))
    full = [np.asarray(a) for a in step(states, keys, chains, 7)]
    for r in range(n):
        single = [
            np.asarray(a) for a in step(states[r : r + 1], keys[r : r + 1], chains[r : r + 1], 7)
        ]
        for a, b in zip(full, single, strict=True):
            np.testing.assert_array_equal(a[r], b[0])
    order = np.array([4, 1, 5, 0, 3, 2])
    permuted = [np.asarray(a) for a in step(states[order], keys[order], chains[order], 7)]
    for a, b in zip(full, permuted, strict=True):
        np.testing.assert_array_equal(a[order], b)


def test_same_seed_equal_other_seed_different(small_target):
    a = run(small_target, n_chains=5, n_rounds=5, seed=1)
    b = run(small_target, n_chains=5, n_rounds=5, seed=1)
    c = run(small_target, n_chains=5, n_rounds=5, seed=2)
    assert_results_equal(a, b)
    assert not np.array_equal(a.records["e1"], c.records["e1"])
    assert not np.array_equal(a.betas, c.betas)


@pytest.mark.parametrize("n_expl", [1, 3])
def test_path_a_equals_path_b_on_one_rank(small_target, n_expl):
    """The jitted round loop and the per-scan host path agree bitwise at P = 1."""
    a = run(small_target, n_chains=7, n_rounds=6, n_expl=n_expl, seed=3)
    b = run(small_target, n_chains=7, n_rounds=6, n_expl=n_expl, seed=3, comm=SerialComm())
    c = run(
        small_target, n_chains=7, n_rounds=6, n_expl=n_expl, seed=3, comm=SerialComm(), path="host"
    )
    assert_results_equal(a, b)
    assert_results_equal(a, c)


def test_path_b_gaussian_matches_path_a():
    target = GaussianPathTarget(3)
    a = run(target, n_chains=5, n_rounds=5, seed=4)
    b = run(target, n_chains=5, n_rounds=5, seed=4, comm=SerialComm(), path="host")
    assert_results_equal(a, b)


def test_non_finite_energy_stops_at_the_round_boundary_with_exit_code_3():
    target = BlowUpTarget()
    res = run(target, n_chains=4, n_rounds=8, seed=0)
    assert res.status == "non_finite_energy" and res.exit_code == 3 and not res.ok
    f = res.failure
    r = f["round"]
    assert 2**r - 2 <= f["scan"] < 2 ** (r + 1) - 2
    assert 0 <= f["replica"] < 4 and 0 <= f["chain"] < 4
    assert len(res.history) == r - 1
    assert f"replica {f['replica']}" in res.message and f"scan {f['scan']}" in res.message
    assert np.isnan(res.mean_energy) and res.betas.size == 0
    host = run(target, n_chains=4, n_rounds=8, seed=0, comm=SerialComm(), path="host")
    assert host.failure == f
    # the rounds before the failure are complete and valid
    before = run(target, n_chains=4, n_rounds=r - 1, seed=0)
    assert before.ok and before.exit_code == 0


class _FakeComm(SerialComm):
    size = 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_chains": 1}, "nrpt.n_chains must be >= 2"),
        ({"n_rounds": 0}, r"nrpt.n_rounds must be in \[1, 24\]"),
        ({"n_expl": -1}, "nrpt.n_expl must be >= 0"),
        ({"seed": -1}, "nrpt.seed"),
        ({"n_chains": 2.0}, "nrpt.n_chains must be an integer"),
        ({"path": "gpu"}, "path must be one of"),
        ({"target_acceptance": 1.0}, r"nrpt.target_acceptance must lie in \(0, 1\)"),
        ({"path": "scan", "comm": _FakeComm()}, "path='scan' runs on one rank"),
    ],
)
def test_bad_arguments_raise_config_errors(small_target, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        run(small_target, **kwargs)


def test_bad_target_raises():
    with pytest.raises(ConfigError, match="target must be an NRPT target"):
        run(grid_model(3))


def test_device_is_resolved_once_and_reported(small_target, monkeypatch):
    calls = []
    real = device_mod.resolve_device

    def spy(*args, **kwargs):
        calls.append(kwargs.get("score"))
        return real(*args, **kwargs)

    monkeypatch.setattr(device_mod, "resolve_device", spy)
    res = run(small_target, n_chains=5, n_rounds=4, device="cpu")
    assert calls == [5 * 16]
    assert res.device.startswith("cpu:")
    ref = run(small_target, n_chains=5, n_rounds=4, device=None)
    assert_results_equal(res, ref)


def test_on_round_reports_every_round(small_target):
    seen = []
    res = run(small_target, n_chains=5, n_rounds=4, on_round=seen.append)
    assert [i["round"] for i in seen] == [1, 2, 3, 4]
    assert [i["scans"] for i in seen] == [2, 4, 8, 16]
    for info in seen:
        for key in ("Lambda", "tau_observed", "efficiency", "round_trips", "wall_s", "betas"):
            assert key in info
    assert seen[-1]["Lambda"] == res.Lambda and seen[-1]["round_trips"] == res.round_trips


def test_an_error_while_closing_a_round_becomes_exit_code_70(small_target, tmp_path):
    """Rank 0's exceptions at a round boundary become a broadcast status, never a raise."""
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    res = run(small_target, n_chains=4, n_rounds=3, checkpoint_dir=not_a_directory)
    assert res.status == "internal_error" and res.exit_code == 70
    assert "Error" in res.message and res.history == [] and res.failure is None


def test_round_kernel_is_compiled_once_per_run():
    """Rounds of 2, 4, …, 2^R scans share one traced kernel (fixed shapes, traced counters)."""
    from hpcfit.nrpt.engine import get_engine

    target = IsingTarget(grid_model(3))
    run(target, n_chains=4, n_rounds=6, seed=0)
    engine = get_engine(target, 4, 1, 2**6)
    assert engine.round_fn._cache_size() == 1
    run(target, n_chains=4, n_rounds=6, seed=1)  # a second run reuses it
    assert engine.round_fn._cache_size() == 1


def test_batched_ising_kernels_equal_the_per_replica_ones():
    """explore_batch / energy_batch (gathers on the batched array) = vmap of the single forms."""
    from nrpt_helpers import random_graph

    edges = random_graph(20, 0.25, seed=6)
    rng = np.random.default_rng(6)
    model = IsingModel(
        n=20, edges=edges, J=rng.normal(size=len(edges)), h=rng.normal(size=20), beta_t=0.8
    )
    target = IsingTarget(model)
    keys = replica_keys(3, np.arange(5))
    xs = jax.vmap(target.sample_reference)(keys)
    betas = jnp.asarray([0.0, 0.2, 0.5, 0.9, 1.0])
    batched = jax.jit(lambda k, x, b: target.explore_batch(k, x, b, 2))(keys, xs, betas)
    single = jax.jit(jax.vmap(lambda k, x, b: target.explore(k, x, b, 2)))(keys, xs, betas)
    np.testing.assert_array_equal(np.asarray(batched), np.asarray(single))
    e_batch = np.asarray(jax.jit(target.energy_batch)(batched))
    e_single = np.asarray(jax.jit(jax.vmap(target.energy))(batched))
    np.testing.assert_array_equal(e_batch, e_single)
    spins = target.to_node_order(np.asarray(batched))
    np.testing.assert_allclose(e_batch, 0.8 * model.energy(spins), rtol=1e-13)


def test_initial_schedule_is_used_and_validated(small_target):
    ladder = [0.0, 0.1, 0.3, 0.6, 1.0]
    res = run(small_target, n_chains=5, n_rounds=3, schedule=ladder)
    np.testing.assert_array_equal(res.history[0]["betas"], ladder)
    assert not np.array_equal(res.history[0]["betas"], np.linspace(0, 1, 5))
    with pytest.raises(ConfigError, match="nrpt.schedule must hold n_chains = 5"):
        run(small_target, n_chains=5, n_rounds=3, schedule=[0.0, 0.5, 1.0])
    with pytest.raises(ConfigError, match="nrpt.schedule: a ladder must increase strictly"):
        run(small_target, n_chains=3, n_rounds=3, schedule=[0.0, 0.7, 0.5])
