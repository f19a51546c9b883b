"""Variable projection of the per-slot scaling."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import lsq_linear

from hpcfit.xpcs.model import c2_pooled_bracket
from hpcfit.xpcs.params import CONTRAST, make_space
from hpcfit.xpcs.problem import Problem
from hpcfit.xpcs.profile import ScalingBox, slot_moments, solve_scaling, ssr
from hpcfit.xpcs.synthetic import EMBEDDED, EMBEDDED_FIXED, generate

C_LO, C_HI, B_LO, B_HI = 0.0, 1.0, 0.5, 1.5


def box(n: int, *, vary_c=True, vary_b=True, c0=0.5, b0=1.0) -> ScalingBox:
    full = lambda v: jnp.full(n, v, dtype=jnp.float64)  # noqa: E731
    return ScalingBox(
        full(C_LO), full(C_HI), full(B_LO), full(B_HI), full(c0), full(b0), vary_c, vary_b
    )


def random_slots(seed: int):
    """Slots whose unconstrained optimum lies inside, beyond each edge, or beyond each corner.

    Each slot: 40 points, G in a random sub-interval of [0, 1] (so the G and 1 columns range from
    well separated to strongly correlated), y = b_t + c_t·G + noise with (c_t, b_t) from the
    3×3 regions {below, inside, above}² of the box.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    c_targets, b_targets = (-0.4, 0.5, 1.7), (0.1, 1.0, 2.0)
    gs, ys = [], []
    for c_t in c_targets:
        for b_t in b_targets:
            lo = rng.uniform(0.0, 0.6)
            g = rng.uniform(lo, lo + rng.uniform(0.05, 0.4), size=40)
            ys.append(b_t + c_t * g + rng.normal(scale=0.05, size=40))
            gs.append(g)
    n_phi = len(gs)
    a = np.repeat(np.arange(n_phi, dtype=np.int32), 40)
    return np.concatenate(gs), np.concatenate(ys), a, n_phi


def brute_force(g, y, *, c=None, b=None):
    """scipy's bounded least squares (BVLS active set) of the same 2-, or 1-parameter problem."""
    if c is None and b is None:
        res = lsq_linear(np.stack([g, np.ones_like(g)], 1), y, ([C_LO, B_LO], [C_HI, B_HI]),
                         method="bvls", tol=1e-14)  # fmt: skip
        return res.x
    if c is not None:  # contrast held: solve the offset
        return c, lsq_linear(np.ones((g.size, 1)), y - c * g, ([B_LO], [B_HI]), method="bvls").x[0]
    return lsq_linear(g[:, None], y - b, ([C_LO], [C_HI]), method="bvls").x[0], b


@pytest.mark.parametrize("seed", range(6))
def test_bounded_solver_matches_brute_force(seed):
    g, y, a, n_phi = random_slots(seed)
    m = slot_moments(jnp.asarray(g), jnp.asarray(y), jnp.asarray(a), n_phi)
    c, b, degenerate = (np.asarray(x) for x in solve_scaling(m, box(n_phi)))
    assert not degenerate.any()
    active = []
    for s in range(n_phi):
        ref_c, ref_b = brute_force(g[a == s], y[a == s])
        assert abs(c[s] - ref_c) <= 1e-10 and abs(b[s] - ref_b) <= 1e-10, (s, c[s], b[s])
        on = lambda v, lo, hi: min(abs(v - lo), abs(v - hi)) < 1e-12  # noqa: E731
        active.append(int(on(ref_c, C_LO, C_HI)) + int(on(ref_b, B_LO, B_HI)))
    # the cases cover an interior optimum, an edge and a corner of the box
    assert {0, 1, 2} <= set(active), active


def test_ssr_identity_matches_direct_sum():
    g, y, a, n_phi = random_slots(11)
    m = slot_moments(jnp.asarray(g), jnp.asarray(y), jnp.asarray(a), n_phi)
    c, b = np.linspace(0.1, 0.9, n_phi), np.linspace(0.6, 1.4, n_phi)
    direct = np.bincount(a, weights=(y - b[a] - c[a] * g) ** 2, minlength=n_phi)
    got = np.asarray(ssr(m, jnp.asarray(c), jnp.asarray(b)))
    np.testing.assert_allclose(got, direct, rtol=1e-12)


def test_degenerate_slot_holds_contrast_and_sets_flag():
    g, y, a, n_phi = random_slots(3)
    g = np.where(a == 4, 0.7, g)  # slot 4: constant G, no dynamics
    m = slot_moments(jnp.asarray(g), jnp.asarray(y), jnp.asarray(a), n_phi)
    c, b, degenerate = (np.asarray(x) for x in solve_scaling(m, box(n_phi, c0=0.35)))
    assert np.array_equal(degenerate, np.arange(n_phi) == 4)
    assert c[4] == 0.35
    assert b[4] == pytest.approx(np.clip(y[a == 4].mean() - 0.35 * 0.7, B_LO, B_HI), rel=1e-14)
    # the other slots are untouched by the degenerate one
    for s in (0, 8):
        ref_c, ref_b = brute_force(g[a == s], y[a == s])
        assert abs(c[s] - ref_c) <= 1e-10 and abs(b[s] - ref_b) <= 1e-10


@pytest.mark.parametrize("held", ["contrast", "offset", "both"])
def test_fixed_scaling_solves_the_one_dimensional_problem(held):
    g, y, a, n_phi = random_slots(5)
    m = slot_moments(jnp.asarray(g), jnp.asarray(y), jnp.asarray(a), n_phi)
    c0, b0 = 0.4, 1.1
    sc = box(n_phi, vary_c=held == "offset", vary_b=held == "contrast", c0=c0, b0=b0)
    c, b, _ = (np.broadcast_to(np.asarray(x), (n_phi,)) for x in solve_scaling(m, sc))
    for s in range(n_phi):
        if held == "both":
            ref_c, ref_b = c0, b0
        elif held == "contrast":
            ref_c, ref_b = brute_force(g[a == s], y[a == s], c=c0)
        else:
            ref_c, ref_b = brute_force(g[a == s], y[a == s], b=b0)
        assert abs(c[s] - ref_c) <= 1e-10 and abs(b[s] - ref_b) <= 1e-10, s


# --------------------------------------------------------------------------------------------
# the profiled residual inside Problem: autodiff through the selects

SMALL = dataclasses.replace(EMBEDDED, n_frames=24)
X_PHYS = np.array([3300.0, 0.25, 27000.0, 0.45, 1450.0, 0.32, 0.42, -0.7, 0.11, 2.5])


@functools.cache
def small_data():
    return generate(SMALL)


def profiled_problem(data=None, **space_kwargs):
    data = small_data() if data is None else data
    space = make_space(fixed=EMBEDDED_FIXED, **space_kwargs)
    return data, space, Problem.from_data(data, space)


def scaling_at(data, space, x):
    """(contrast, offset, degenerate) per slot at the free physics x, straight from the kernels."""
    pooled = data.pooled()
    params = space.full(x)
    g = c2_pooled_bracket(params, data.t, data.q, data.dt, data.phi, pooled.a, pooled.i, pooled.j)
    m = slot_moments(g, jnp.asarray(pooled.y), jnp.asarray(pooled.a), data.n_phi)
    c, b = space.contrast, space.offset
    full = lambda v: jnp.full(data.n_phi, v, dtype=jnp.float64)  # noqa: E731
    sc = ScalingBox(full(c.lo), full(c.hi), full(b.lo), full(b.hi), full(c.default),
                    full(b.default), space.vary_contrast, space.vary_offset)  # fmt: skip
    return tuple(np.asarray(v) for v in solve_scaling(m, sc))


CASES = {
    "interior": {},
    # truth contrasts 0.26–0.30 lie above the box: every slot sits on the edge c = c_hi
    "contrast-at-bound": {"contrast": dataclasses.replace(CONTRAST, default=0.1, hi=0.2)},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_profiled_jacobian_matches_finite_differences(name):
    data, space, problem = profiled_problem(**CASES[name])
    c, _, _ = scaling_at(data, space, X_PHYS)
    on_edge = np.array_equal(c, np.full(3, 0.2))
    assert on_edge == (name == "contrast-at-bound")
    residual = jax.jit(problem.residual_function(1.0 / data.sigma, fit_mode=False))
    jac = np.asarray(jax.jacfwd(residual)(jnp.asarray(X_PHYS)))
    for k in range(X_PHYS.size):
        h = 1e-6 * max(abs(X_PHYS[k]), 1.0)
        up, down = X_PHYS.copy(), X_PHYS.copy()
        up[k] += h
        down[k] -= h
        fd = (np.asarray(residual(up)) - np.asarray(residual(down))) / (up[k] - down[k])
        scale = np.max(np.abs(fd))
        assert np.max(np.abs(jac[:, k] - fd)) <= 1e-5 * scale, k


def test_profiled_gradient_is_finite_and_obeys_the_envelope_theorem():
    """d/dx min_{c,b} F(x, c, b) = ∂F/∂x at (c*, b*): the scaling derivative drops out."""
    data, space, problem = profiled_problem()
    weights = 1.0 / data.sigma
    profiled = problem.residual_function(weights, fit_mode=False)
    full = problem.residual_function(weights, fit_mode=True)
    loss_p = jax.jit(jax.grad(lambda x: 0.5 * jnp.sum(profiled(x) ** 2)))
    loss_f = jax.jit(jax.grad(lambda th: 0.5 * jnp.sum(full(th) ** 2)))
    c, b, _ = scaling_at(data, space, X_PHYS)
    grad_p = np.asarray(loss_p(jnp.asarray(X_PHYS)))
    grad_f = np.asarray(loss_f(jnp.concatenate([jnp.asarray(X_PHYS), c, b])))
    assert np.all(np.isfinite(grad_p))
    np.testing.assert_allclose(grad_p, grad_f[: X_PHYS.size], rtol=1e-7, atol=0)
    assert np.max(np.abs(grad_f[X_PHYS.size :])) <= 1e-6 * np.max(np.abs(grad_f))


def test_degenerate_slot_gradient_is_finite():
    """A slot at vanishing q with a constant fraction has G ≡ const: flagged, gradient finite."""
    data = dataclasses.replace(small_data(), q=np.array([0.0054, 0.0054, 1e-9]))
    data, space, problem = profiled_problem(data)
    x = X_PHYS.copy()
    x[7] = 0.0  # f1 = 0: f_s constant in time
    c, _, degenerate = scaling_at(data, space, x)
    assert np.array_equal(degenerate, [False, False, True])
    assert c[2] == space.contrast.default
    residual = problem.residual_function(1.0 / data.sigma, fit_mode=False)
    grad = jax.jit(jax.grad(lambda v: 0.5 * jnp.sum(residual(v) ** 2)))(jnp.asarray(x))
    jac = jax.jit(jax.jacfwd(residual))(jnp.asarray(x))
    assert np.all(np.isfinite(np.asarray(grad))) and np.all(np.isfinite(np.asarray(jac)))
