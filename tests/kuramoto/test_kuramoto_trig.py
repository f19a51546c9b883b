"""The vectorisable sin/cos against libm (NumPy): accuracy, exact points, derivatives."""

from __future__ import annotations

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

from hpcfit.kuramoto.trig import HALF_PI_PARTS, sincos

_sincos = jax.jit(sincos)
# π/2 to 50 decimal places, independent of the module's own constant.
HALF_PI = Fraction("1.57079632679489661923132169163975144209858469968755")


def test_split_of_half_pi() -> None:
    assert abs(sum(Fraction(p) for p in HALF_PI_PARTS) - HALF_PI) < Fraction(1, 2**110)
    for p in HALF_PI_PARTS[:3]:  # odd numerator over 2^k: at most 26 significant bits
        assert 20 <= Fraction(p).numerator.bit_length() <= 26


def _max_ulps(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want) / np.spacing(np.maximum(np.abs(want), 1e-300))))


def test_within_one_ulp_of_libm() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.uniform(-4.0, 4.0, 200_000),
            rng.uniform(-1e4, 1e4, 200_000),
            rng.uniform(-1e6, 1e6, 100_000),
            np.arange(-400, 401) * (np.pi / 4),  # quadrant boundaries and octant midpoints
            np.array([1e-300, -1e-300, 5e-324, 1e-8, 2e8, -2e8]),
        ]
    )
    s, c = (np.asarray(v) for v in _sincos(x))
    assert np.max(np.abs(s - np.sin(x))) <= 2.3e-16 and np.max(np.abs(c - np.cos(x))) <= 2.3e-16
    away = np.abs(np.sin(x)) > 1e-3  # relative accuracy where the value is not a tiny remainder
    assert _max_ulps(s[away], np.sin(x[away])) <= 1.0
    away = np.abs(np.cos(x)) > 1e-3
    assert _max_ulps(c[away], np.cos(x[away])) <= 1.0


def test_exact_points_and_symmetry() -> None:
    s, c = _sincos(jnp.array([0.0, -0.0]))
    assert np.array_equal(np.asarray(s), [0.0, -0.0]) and np.array_equal(np.asarray(c), [1.0, 1.0])
    x = np.random.default_rng(1).uniform(0.0, 1e3, 10_000)
    sp, cp = _sincos(x)
    sm, cm = _sincos(-x)
    assert np.array_equal(np.asarray(sm), -np.asarray(sp))
    assert np.array_equal(np.asarray(cm), np.asarray(cp))
    assert np.max(np.abs(np.asarray(sp) ** 2 + np.asarray(cp) ** 2 - 1.0)) <= 4.5e-16


def test_derivatives_are_cos_and_minus_sin() -> None:
    x = jnp.asarray(np.random.default_rng(2).uniform(-20.0, 20.0, 64))
    ds = jax.vmap(jax.grad(lambda v: sincos(v)[0]))(x)
    dc = jax.vmap(jax.grad(lambda v: sincos(v)[1]))(x)
    s, c = sincos(x)
    assert np.array_equal(np.asarray(ds), np.asarray(c))
    assert np.array_equal(np.asarray(dc), -np.asarray(s))
