"""The generic shard target and its NumPyro model.

Truths: the prior equals SciPy's truncated normal; the potential energy NumPyro computes for
each mode equals the tempered u-density written out by hand with SciPy and closed-form
Jacobians, −[(1/K)·Σ_p(log p_p(θ_p) + log|T_p′(u_p)|) + ℓ(θ)] — in whiten mode at
u = û + L z, in mass / none mode at the site's unconstrained value (so NumPyro does scale its
own log-Jacobian by 1/K); the likelihood is not tempered.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro import handlers
from numpyro.infer.util import potential_energy
from scipy.special import expit, log_expit
from scipy.stats import norm, truncnorm

from hpcfit.cmc.precondition import from_cold_start, from_warm_start
from hpcfit.cmc.target import ShardTarget, numpyro_model

NAMES = ("a", "b", "c")
LO = np.array([0.0, 0.0, -np.inf])
HI = np.array([1.0, np.inf, np.inf])
MEAN = np.array([0.3, 1.0, -0.5])
SD = np.array([0.2, 2.0, 3.0])
X = np.linspace(-1.0, 1.0, 7)
Y = 0.4 + 0.8 * X + 0.1 * np.sin(5.0 * X)


def loglik(theta, data):
    resid = (data["y"] - theta[2] * data["x"] - theta[0]) / (0.1 + theta[1])
    return -0.5 * jnp.sum(resid**2) - data["y"].size * jnp.log(0.1 + theta[1])


def loglik_np(theta):
    resid = (Y - theta[2] * X - theta[0]) / (0.1 + theta[1])
    return -0.5 * np.sum(resid**2) - Y.size * np.log(0.1 + theta[1])


DATA = {"x": jnp.asarray(X), "y": jnp.asarray(Y)}


@pytest.fixture
def target() -> ShardTarget:
    return ShardTarget(NAMES, LO, HI, MEAN, SD, loglik)


@pytest.fixture
def precond():
    cov = np.array([[0.01, 0.002, 0.0], [0.002, 0.04, 0.01], [0.0, 0.01, 0.09]])
    return from_warm_start(NAMES, np.array([0.4, 0.5, 0.8]), cov, LO, HI, SD, 4)


def scipy_log_prior(theta):
    return np.array(
        [
            truncnorm.logpdf(theta[0], (0 - 0.3) / 0.2, (1 - 0.3) / 0.2, loc=0.3, scale=0.2),
            truncnorm.logpdf(theta[1], (0 - 1.0) / 2.0, np.inf, loc=1.0, scale=2.0),
            norm.logpdf(theta[2], loc=-0.5, scale=3.0),
        ]
    )


def by_hand(u, k):
    """(θ, −[(1/K)Σ(log p + log|T′|) + ℓ]) with T in closed form."""
    theta = np.array([expit(u[0]), np.exp(u[1]), u[2]])
    log_jac = np.array([log_expit(u[0]) + log_expit(-u[0]), u[1], 0.0])
    return theta, -(np.sum(scipy_log_prior(theta) + log_jac) / k + loglik_np(theta))


def test_log_prior_is_truncated_normal(target):
    for theta in ([0.1, 0.2, 3.0], [0.95, 7.0, -2.0]):
        got = np.asarray(target.log_prior(jnp.asarray(theta)))
        np.testing.assert_allclose(got, scipy_log_prior(np.array(theta)), rtol=1e-12)


@pytest.mark.parametrize("k", [1, 4])
def test_whiten_potential_is_tempered_u_density(target, precond, k):
    model = numpyro_model(target, precond, k, "whiten")
    rng = np.random.default_rng(0)
    for z in rng.normal(size=(5, 3)):
        u = precond.u_hat + precond.chol @ z
        _, expected = by_hand(u, k)
        got = float(potential_energy(model, (DATA,), {}, {"z": jnp.asarray(z)}))
        assert got == pytest.approx(expected, rel=1e-11)


@pytest.mark.parametrize(("mode", "k"), [("mass", 4), ("none", 4), ("mass", 1)])
def test_site_potential_is_tempered_u_density(target, precond, mode, k):
    """NumPyro scales the log-Jacobian of its own unconstraining bijection by 1/K as well."""
    model = numpyro_model(target, precond, k, mode)
    rng = np.random.default_rng(1)
    for u in rng.normal(size=(5, 3)):
        _, expected = by_hand(u, k)
        params = {n: jnp.asarray(u[p]) for p, n in enumerate(NAMES)}
        assert float(potential_energy(model, (DATA,), {}, params)) == pytest.approx(
            expected, rel=1e-11
        )


@pytest.mark.parametrize("mode", ["whiten", "mass"])
def test_deterministic_sites(target, precond, mode):
    model = numpyro_model(target, precond, 4, mode)
    z = np.array([0.3, -1.0, 0.5])
    u = precond.u_hat + precond.chol @ z
    theta = np.array([expit(u[0]), np.exp(u[1]), u[2]])
    values = {"z": jnp.asarray(z)} if mode == "whiten" else dict(zip(NAMES, theta, strict=True))
    trace = handlers.trace(handlers.substitute(model, data=values)).get_trace(DATA)
    np.testing.assert_allclose(np.asarray(trace["theta"]["value"]), theta, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(trace["u"]["value"]), u, rtol=1e-9, atol=1e-12)
    assert trace["loglik"]["scale"] is None  # the likelihood is never tempered
    tempered = ("prior",) if mode == "whiten" else NAMES  # the flat base z carries no density
    assert all(trace[n]["scale"] == 0.25 for n in tempered)


def test_model_is_jittable(target, precond):
    model = numpyro_model(target, precond, 4, "whiten")
    f = jax.jit(lambda z, d: potential_energy(model, (d,), {}, {"z": z}))
    z = jnp.asarray([0.1, 0.2, 0.3])
    assert float(f(z, DATA)) == float(potential_energy(model, (DATA,), {}, {"z": z}))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"names": ("a", "a", "c")}, "unique"),
        ({"names": ("a", "theta", "c")}, "reserved"),
        ({"lo": np.array([0.0, 0.0])}, "shape"),
        ({"hi": np.array([0.0, np.inf, np.inf])}, "lo < hi"),
        ({"prior_sd": np.array([0.2, -1.0, 1.0])}, "prior sds"),
        ({"loglik": 3.0}, "callable"),
    ],
)
def test_target_validation(change, match):
    args = dict(names=NAMES, lo=LO, hi=HI, prior_mean=MEAN, prior_sd=SD, loglik=loglik)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        ShardTarget(**args)


def test_model_validation(target, precond):
    with pytest.raises(ValueError, match="mode"):
        numpyro_model(target, precond, 4, "diagonal")
    with pytest.raises(ValueError, match="n_shards"):
        numpyro_model(target, precond, 0, "whiten")
    other = from_cold_start(("x", "y", "z"), MEAN, LO, HI, SD, 4)
    with pytest.raises(ValueError, match="names"):
        numpyro_model(target, other, 4, "whiten")
