"""The bijection T: u → θ of the shard sampler.

Truths: the closed forms lo + (hi − lo)·sigmoid(u), lo + exp(u), hi − exp(u), u; the inverse
undoes the forward map; log|T′| equals the log of the autodiff derivative and agrees with the
bijection NumPyro itself uses for a TruncatedNormal site; G = 1/T′ is the delta-method
factor; images stay inside the box; float64 survives jit and batching.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro.distributions.transforms import biject_to
from scipy.special import expit

from hpcfit.cmc.transform import BoxTransform

LO = np.array([0.0, -2.0, 100.0, 0.0, -np.inf, -np.inf])
HI = np.array([1.0, 2.0, 1e6, np.inf, 5.0, np.inf])


@pytest.fixture
def box() -> BoxTransform:
    return BoxTransform(LO, HI)


def closed_form(u: np.ndarray) -> np.ndarray:
    return np.array(
        [
            0.0 + 1.0 * expit(u[0]),
            -2.0 + 4.0 * expit(u[1]),
            100.0 + (1e6 - 100.0) * expit(u[2]),
            0.0 + np.exp(u[3]),
            5.0 - np.exp(u[4]),
            u[5],
        ]
    )


def test_kinds(box):
    assert box.kinds == ("interval",) * 3 + ("greater_than", "less_than", "real")


def test_forward_matches_closed_form(box):
    rng = np.random.default_rng(0)
    for u in rng.normal(scale=3.0, size=(20, LO.size)):
        np.testing.assert_allclose(np.asarray(box.forward(u)), closed_form(u), rtol=1e-13)


def test_inverse_round_trip(box):
    rng = np.random.default_rng(1)
    u = rng.normal(scale=2.0, size=(50, LO.size))
    back = np.asarray(box.inverse(box.forward(u)))
    np.testing.assert_allclose(back, u, rtol=1e-9, atol=1e-9)


def test_log_jacobian_is_log_of_autodiff_derivative(box):
    rng = np.random.default_rng(2)
    for u in rng.normal(scale=2.0, size=(10, LO.size)):
        jac = jax.jacfwd(box.forward)(jnp.asarray(u))
        np.testing.assert_allclose(np.abs(np.diag(jac)), np.exp(box.log_abs_det_jacobian(u)))
        off = np.asarray(jac) - np.diag(np.diag(np.asarray(jac)))
        assert np.all(off == 0.0)  # T acts coordinate-wise


def test_interval_log_jacobian_closed_form(box):
    u = np.linspace(-6.0, 6.0, 13)
    t = BoxTransform(np.full(13, -2.0), np.full(13, 2.0))
    expected = np.log(4.0) + np.log(expit(u)) + np.log(expit(-u))
    np.testing.assert_allclose(np.asarray(t.log_abs_det_jacobian(u)), expected, rtol=1e-12)


def test_same_bijection_as_numpyro_site(box):
    """Mass mode relies on NumPyro's unconstraining of a TruncatedNormal site being T."""
    u = np.array([0.3, -1.2, 2.0, 0.7, -0.4, 1.5])
    for p in range(LO.size):
        low = LO[p] if np.isfinite(LO[p]) else None
        high = HI[p] if np.isfinite(HI[p]) else None
        site = dist.TruncatedNormal(0.5, 1.0, low=low, high=high)
        t = biject_to(site.support)
        assert float(t(u[p])) == pytest.approx(float(box.forward(u)[p]), rel=1e-14)
        ladj = float(t.log_abs_det_jacobian(u[p], t(u[p])))
        assert ladj == pytest.approx(float(box.log_abs_det_jacobian(u)[p]), rel=1e-12, abs=1e-14)


def test_inverse_derivative_is_spec_g(box):
    theta = np.array([0.2, 1.5, 5e4, 3.0, 1.0, -7.0])
    g = box.inverse_derivative(theta)
    expected = [
        1.0 / (0.2 * 0.8),
        4.0 / (3.5 * 0.5),
        (1e6 - 100.0) / ((5e4 - 100.0) * (1e6 - 5e4)),
        1.0 / 3.0,
        1.0 / 4.0,
        1.0,
    ]
    np.testing.assert_allclose(g, expected, rtol=1e-14)
    u = box.inverse(theta)
    np.testing.assert_allclose(g, np.exp(-np.asarray(box.log_abs_det_jacobian(u))), rtol=1e-9)


def test_extreme_u_stays_in_box(box):
    u = np.array([[-800.0] * 6, [800.0] * 6, [-40.0] * 6, [40.0] * 6])
    th = np.asarray(box.forward(u))
    fin = np.isfinite(th)
    assert np.all(th[fin] >= np.broadcast_to(LO, th.shape)[fin])
    assert np.all(th[fin] <= np.broadcast_to(HI, th.shape)[fin])
    assert np.all(fin[:, :3])  # interval coordinates never overflow


def test_batched_jit_float64(box):
    u = jnp.asarray(np.random.default_rng(3).normal(size=(2, 7, LO.size)))
    out = jax.jit(box.forward)(u)
    assert out.dtype == jnp.float64 and out.shape == u.shape
    np.testing.assert_array_equal(np.asarray(out[1, 3]), np.asarray(box.forward(u[1, 3])))
    vm = jax.vmap(box.log_abs_det_jacobian)(u.reshape(-1, LO.size))
    np.testing.assert_allclose(np.asarray(vm).reshape(u.shape), box.log_abs_det_jacobian(u))


@pytest.mark.parametrize(
    ("lo", "hi"),
    [([0.0, 1.0], [1.0, 1.0]), ([0.0], [np.nan]), ([np.inf], [np.inf]), ([0.0, 1.0], [2.0])],
)
def test_rejects_bad_bounds(lo, hi):
    with pytest.raises(ValueError):
        BoxTransform(np.array(lo), np.array(hi))


def test_rejects_wrong_length(box):
    with pytest.raises(ValueError, match="trailing axis"):
        box.forward(jnp.zeros(5))
