"""The heterodyne c2 kernel: reference values, properties, parity."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    REF_C2_0_LAST,
    REF_C2_00,
    REF_CONTRAST,
    REF_DT,
    REF_N,
    REF_OFFSET,
    REF_PARAMS,
    REF_PHI,
    REF_Q,
    assert_rel,
    box_corners,
    max_rel_err,
    reference_grid,
    registry_bounds,
)

from hpcfit.xpcs.dataset import production_grid
from hpcfit.xpcs.model import c2_meshgrid, c2_pooled, c2_slots, grid_stage, pair_values
from hpcfit.xpcs.params import INDEX
from hpcfit.xpcs.synthetic import EMBEDDED

EMBEDDED_TRUTH = np.asarray(EMBEDDED.truth, dtype=np.float64)

# A generic point: every exponent nonzero, every offset nonzero, f_s strictly inside (0, 1),
# J > 0 at every t ≥ 0, a visible cross-term phase. No max/clip kink is active on the grids
# below, so autodiff and finite differences must agree everywhere.
GENERIC = np.array(
    [2000.0, -0.5, 10.0, 30000.0, 0.6, 20.0, 3000.0, 0.5, 5.0, 0.3, -0.5, 0.2, 0.1, 3.0]
)


def ref_c2(params=REF_PARAMS, phi=REF_PHI) -> np.ndarray:
    return np.asarray(
        c2_meshgrid(params, reference_grid(), REF_Q, REF_DT, phi, REF_CONTRAST, REF_OFFSET)
    )


def prod_grid(n: int, dt: float = 0.01) -> np.ndarray:
    return production_grid(1, n, dt)


# --------------------------------------------------------------------------------------------
# reference example


def test_reference_example_values():
    c2 = ref_c2()
    assert_rel(c2[0, 0], REF_C2_00, 1e-12, "c2[0,0]")
    assert_rel(c2[0, REF_N - 1], REF_C2_0_LAST, 1e-12, "c2[0,49]")
    assert_rel(c2[REF_N - 1, 0], REF_C2_0_LAST, 1e-12, "c2[49,0]")
    # In this example c2[0,0] is every diagonal element and the max; c2[0,49] is the min.
    assert_rel(np.diag(c2), np.full(REF_N, REF_C2_00), 1e-12, "diagonal")
    assert_rel(c2.max(), REF_C2_00, 1e-12, "max")
    assert_rel(c2.min(), REF_C2_0_LAST, 1e-12, "min")
    assert np.max(np.abs(c2 - c2.T)) == 0.0


def test_reference_example_pooled_equals_meshgrid():
    c2 = ref_c2()
    iu, ju = np.triu_indices(REF_N, k=1)
    assert iu.size == 1225
    pooled = c2_pooled(
        REF_PARAMS,
        reference_grid(),
        REF_Q,
        REF_DT,
        np.array([REF_PHI]),
        np.array([REF_CONTRAST]),
        np.array([REF_OFFSET]),
        np.zeros(iu.size, dtype=np.int32),
        iu.astype(np.int32),
        ju.astype(np.int32),
    )
    assert_rel(pooled, c2[iu, ju], 1e-12, "pooled vs meshgrid")


def test_reference_example_sign_regression():
    """cos(φ − φ0) instead of cos(φ + φ0) gives c2[0,49] ≈ 1.25564 and must be rejected.

    φ = 30 − 2·φ0 = 24 makes cos(deg2rad(φ + φ0)) equal to cos(deg2rad(30 − φ0)).
    """
    phi0 = REF_PARAMS[INDEX["phi0"]]
    wrong = ref_c2(phi=REF_PHI - 2.0 * phi0)[0, REF_N - 1]
    assert abs(wrong - 1.25564) < 5e-6  # the quoted wrong value, to 6 significant digits
    assert abs(wrong - REF_C2_0_LAST) > 1e-4
    assert abs(wrong - REF_C2_0_LAST) / REF_C2_0_LAST > 1e-12  # the reference test would fail


# --------------------------------------------------------------------------------------------
# properties

PROPERTY_CASES = {
    "reference": (REF_PARAMS, reference_grid(), REF_DT, REF_Q),
    "embedded-truth": (EMBEDDED_TRUTH, prod_grid(60), 0.01, 0.0054),
    "generic-large-q": (GENERIC, prod_grid(40), 0.01, 0.02),
}


@pytest.fixture(params=sorted(PROPERTY_CASES))
def case(request):
    return PROPERTY_CASES[request.param]


@pytest.mark.parametrize("phi", [0.0, 30.0, 87.0, -135.0])
def test_symmetry_is_bitwise(case, phi):
    params, t, dt, q = case
    c2 = np.asarray(c2_meshgrid(params, t, q, dt, phi, 0.3, 1.0))
    assert np.array_equal(c2, c2.T)


@pytest.mark.parametrize(("contrast", "offset"), [(0.3, 1.0), (1.0, 0.5), (0.0, 1.5)])
def test_diagonal_exact_form(case, contrast, offset):
    """c2_ii = offset + contrast·exp(−q²·1e-6): the smooth-abs bias, and nothing else."""
    params, t, dt, q = case
    c2 = np.asarray(c2_meshgrid(params, t, q, dt, 30.0, contrast, offset))
    expected = offset + contrast * np.exp(-(q**2) * 1e-6)
    assert np.max(np.abs(np.diag(c2) - expected)) <= 1e-14


@pytest.mark.parametrize("period", [360.0, 180.0, -360.0, 540.0])
@pytest.mark.parametrize("phi", [0.0, 30.0, 72.5])
def test_phi_periodicity(case, period, phi):
    """cos Φ is even in the phase, so c2 is 180°-periodic in φ (hence also 360°)."""
    params, t, dt, q = case
    base = c2_meshgrid(params, t, q, dt, phi, 0.3, 1.0)
    shifted = c2_meshgrid(params, t, q, dt, phi + period, 0.3, 1.0)
    assert_rel(shifted, base, 1e-12, f"φ + {period}")


@pytest.mark.parametrize("angle", [90.0, -90.0])
def test_no_oscillation_perpendicular_to_flow(case, angle):
    params, t, dt, q = case
    phi = angle - params[INDEX["phi0"]]
    assert phi + params[INDEX["phi0"]] == angle  # exactly ±90° in float64
    still = params.copy()
    still[[INDEX["v0"], INDEX["v_offset"]]] = 0.0
    moving = c2_meshgrid(params, t, q, dt, phi, 0.3, 1.0)
    assert_rel(moving, c2_meshgrid(still, t, q, dt, phi, 0.3, 1.0), 1e-15, "φ+φ0 = ±90°")


@pytest.mark.parametrize("phi", [0.0, 30.0, -60.0])
def test_velocity_sign_is_not_identifiable(case, phi):
    params, t, dt, q = case
    flipped = params.copy()
    flipped[[INDEX["v0"], INDEX["v_offset"]]] *= -1.0
    a = np.asarray(c2_meshgrid(params, t, q, dt, phi, 0.3, 1.0))
    b = np.asarray(c2_meshgrid(flipped, t, q, dt, phi, 0.3, 1.0))
    assert np.array_equal(a, b)


def one_time_c2(params, t, q, phi, contrast, offset) -> np.ndarray:
    """The one-time closed form for constant rates and fraction (α = β = f1 = 0, all t > 0)."""
    p = dict(zip(INDEX, params, strict=True))
    j_ref = max(p["D0_ref"] + p["D_offset_ref"], 0.0)
    j_smp = max(p["D0_sample"] + p["D_offset_sample"], 0.0)
    v = p["v0"] + p["v_offset"]
    f_s = np.clip(p["f0"] + p["f3"], 0.0, 1.0)
    x = f_s**2 / (f_s**2 + (1.0 - f_s) ** 2)
    tau = t[None, :] - t[:, None]
    phase = q * np.cos(np.deg2rad(phi + p["phi0"])) * v * tau
    # J·|τ| via the kernel's smooth |x|: identical to 1e-18 where J > 0; where the floor makes J = 0
    # it leaves the documented bias exp(−q²·1e-6) instead of 1.
    a_ref, a_smp = np.sqrt((j_ref * tau) ** 2 + 1e-12), np.sqrt((j_smp * tau) ** 2 + 1e-12)
    bracket = (
        (1 - x) ** 2 * np.exp(-(q**2) * a_ref)
        + x**2 * np.exp(-(q**2) * a_smp)
        + 2 * x * (1 - x) * np.exp(-(q**2) * (a_ref + a_smp) / 2) * np.cos(phase)
    )
    return offset + contrast * bracket


ONE_TIME = {
    # D0 + D_offset > 0 for both fields
    "positive-rates": [2000.0, 0.0, 100.0, 30000.0, 0.0, -500.0, 3000.0, 0.0, 5.0]
    + [0.3, 0.0, 7.0, 0.1, 3.0],
    # J_smp = max(D0 + D_offset, 0) = 0 (the floor binds); f0 + f3 > 1 (the fraction clips)
    "floored-rate": [5000.0, 0.0, 0.0, 100.0, 0.0, -500.0, 200.0, 0.0, -50.0]
    + [0.9, 0.0, 0.0, 0.3, -7.0],
}


@pytest.mark.parametrize("name", sorted(ONE_TIME))
@pytest.mark.parametrize("q", [0.0054, 0.02])
def test_one_time_limit(name, q):
    params = np.asarray(ONE_TIME[name])
    t = prod_grid(50)
    c2 = np.asarray(c2_meshgrid(params, t, q, 0.01, 20.0, 0.4, 1.1))
    expected = one_time_c2(params, t, q, 20.0, 0.4, 1.1)
    off = ~np.eye(t.size, dtype=bool)
    assert np.max(np.abs(c2 - expected)[off]) <= 1e-14


def _antiderivative(d0: float, a: float, d_off: float, t: float) -> float:
    return d0 * t ** (1.0 + a) / (1.0 + a) + d_off * t


@pytest.mark.parametrize("quantity", ["ref", "smp", "v", "c2"])
def test_trapezoid_convergence_order(quantity):
    """Pair integrals over (t_i, t_j) = (0.1 s, 0.5 s) converge at order 2 in dt."""
    p = GENERIC
    q, cos_angle = 0.02, np.cos(np.deg2rad(30.0 + p[INDEX["phi0"]]))
    errors = []
    for m in range(6):
        dt = 0.01 / 2**m
        t = prod_grid(50 * 2**m, dt)
        i, j = 10 * 2**m - 1, 50 * 2**m - 1
        assert abs(t[i] - 0.1) < 1e-15 and abs(t[j] - 0.5) < 1e-15
        g = grid_stage(p, t, dt)
        exact = {  # closed-form ∫ g dt over [t_i, t_j] for g = D0·t^α + D_offset (J > 0 here)
            key: _antiderivative(*p[k : k + 3], t[j]) - _antiderivative(*p[k : k + 3], t[i])
            for key, k in (("ref", 0), ("smp", 3), ("v", 6))
        }
        approx = {
            "ref": float(g.c_ref[j] - g.c_ref[i]),
            "smp": float(g.c_smp[j] - g.c_smp[i]),
            "v": float(g.c_v[j] - g.c_v[i]),
        }
        if quantity == "c2":
            fs, fr = g.f_s, g.f_r

            def c2_of(d, fs=fs, fr=fr, i=i, j=j):
                fractions = (fs[i], fr[i], fs[j], fr[j])
                return float(
                    pair_values(d["ref"], d["smp"], d["v"], *fractions, q, cos_angle, 0.3, 1.0)
                )

            errors.append(abs(c2_of(approx) - c2_of(exact)))
        else:
            errors.append(abs(approx[quantity] - exact[quantity]))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders >= 1.9) & (orders <= 2.1)), f"observed orders {orders}"


# --------------------------------------------------------------------------------------------
# finiteness over the parameter box and gradients


@pytest.mark.parametrize("t0", [0.01, 0.0], ids=["production", "t0=0"])
def test_finite_at_all_box_corners(t0):
    """c2 and its autodiff gradients are finite at the 2¹⁴ corners × contrast × offset."""
    n, dt = 8, 0.01
    t = t0 + np.arange(n, dtype=np.float64) * dt
    lo, hi = registry_bounds()
    corners = jnp.asarray(box_corners(lo, hi))

    def total(p, c, b):
        return jnp.sum(c2_meshgrid(p, t, 0.0054, dt, 30.0, c, b))

    def one(p, c, b):
        val = c2_meshgrid(p, t, 0.0054, dt, 30.0, c, b)
        grads = jax.grad(total, argnums=(0, 1, 2))(p, c, b)
        return jnp.all(jnp.isfinite(val)), jnp.all(jnp.isfinite(grads[0])) & jnp.isfinite(
            grads[1]
        ) & jnp.isfinite(grads[2])

    batched = jax.jit(jax.vmap(one, in_axes=(0, None, None)))
    for contrast in (0.0, 1.0):
        for offset in (0.5, 1.5):
            ok_val, ok_grad = batched(corners, contrast, offset)
            bad_v = np.flatnonzero(~np.asarray(ok_val))
            bad_g = np.flatnonzero(~np.asarray(ok_grad))
            assert bad_v.size == 0, f"non-finite c2 at corners {bad_v[:5]} ({contrast}, {offset})"
            assert bad_g.size == 0, f"non-finite grad at corners {bad_g[:5]} ({contrast}, {offset})"


GRADIENT_CASES = {
    # t_0 = 0 with alpha_ref < 0: the pole of t^α is dropped at t = 0
    "t0=0,alpha<0": (GENERIC, np.arange(12, dtype=np.float64) * 0.01),
    "production": (GENERIC, prod_grid(12)),
    "embedded-truth": (EMBEDDED_TRUTH, prod_grid(12)),
}


@pytest.mark.parametrize("name", sorted(GRADIENT_CASES))
def test_autodiff_matches_central_differences(name):
    params, t = GRADIENT_CASES[name]
    dt, q = 0.01, 0.02

    def f(p):
        return c2_meshgrid(p, t, q, dt, 30.0, 0.3, 1.0)

    jac = np.asarray(jax.jacfwd(f)(jnp.asarray(params)))  # (N, N, 14)
    for k in range(params.size):
        h = 1e-5 * max(abs(params[k]), 1.0)
        up, down = params.copy(), params.copy()
        up[k] += h
        down[k] -= h
        fd = (np.asarray(f(up)) - np.asarray(f(down))) / (up[k] - down[k])
        err = np.abs(jac[..., k] - fd)
        ok = (err <= 1e-5 * np.abs(fd)) | (err <= 1e-9)
        assert ok.all(), f"d c2 / d p[{k}]: worst error {err.max():.3e}"


# --------------------------------------------------------------------------------------------
# pooled vs meshgrid

SLOTS_Q = np.array([0.0054, 0.0061, 0.0047])
SLOTS_PHI = np.array([0.0, 45.0, -100.0])
SLOTS_C = np.array([0.30, 0.28, 0.26])
SLOTS_B = np.array([1.0, 0.99, 1.02])


def all_points(n_phi: int, n: int):
    iu, ju = np.triu_indices(n, k=1)
    a = np.repeat(np.arange(n_phi, dtype=np.int32), iu.size)
    return a, np.tile(iu, n_phi).astype(np.int32), np.tile(ju, n_phi).astype(np.int32)


def pooled(params, t, idx):
    a, i, j = idx
    return np.asarray(c2_pooled(params, t, SLOTS_Q, 0.01, SLOTS_PHI, SLOTS_C, SLOTS_B, a, i, j))


@pytest.mark.parametrize("params", [GENERIC, EMBEDDED_TRUTH], ids=["generic", "embedded"])
def test_pooled_matches_meshgrid_per_slot_q(params):
    t = prod_grid(40)
    maps = np.asarray(c2_slots(params, t, SLOTS_Q, 0.01, SLOTS_PHI, SLOTS_C, SLOTS_B))
    for s in range(SLOTS_Q.size):  # c2_slots is the vmap of independent per-slot meshgrids
        single = c2_meshgrid(params, t, SLOTS_Q[s], 0.01, SLOTS_PHI[s], SLOTS_C[s], SLOTS_B[s])
        assert np.array_equal(maps[s], np.asarray(single)) or max_rel_err(maps[s], single) < 1e-15
    a, i, j = all_points(SLOTS_Q.size, t.size)
    assert_rel(pooled(params, t, (a, i, j)), maps[a, i, j], 1e-12, "full pooled set")

    rng = np.random.Generator(np.random.PCG64(7))
    subset = rng.choice(a.size, size=500, replace=False)
    assert_rel(pooled(params, t, (a[subset], i[subset], j[subset])), maps[a, i, j][subset], 1e-12)

    order = rng.permutation(a.size)
    out = np.empty(a.size)
    for shard in np.array_split(order, 4):  # any partition of the points (an MPI shard plan)
        out[shard] = pooled(params, t, (a[shard], i[shard], j[shard]))
    assert_rel(out, maps[a, i, j], 1e-12, "sharded")


# --------------------------------------------------------------------------------------------
# dtype and transformation safety


def test_float64_preserved_even_from_float32_inputs():
    t = prod_grid(10)
    p32 = GENERIC.astype(np.float32)
    assert c2_meshgrid(p32, t.astype(np.float32), 0.0054, 0.01, 30.0).dtype == jnp.float64
    stage = grid_stage(p32, t, 0.01)
    assert all(x.dtype == jnp.float64 for x in stage)
    a, i, j = all_points(3, 10)
    assert pooled(p32, t, (a, i, j)).dtype == np.float64
    grad = jax.grad(lambda p: jnp.sum(c2_meshgrid(p, t, 0.0054, 0.01, 30.0)))(jnp.asarray(GENERIC))
    assert grad.dtype == jnp.float64


def test_jit_vmap_grad_agree_with_eager():
    t = prod_grid(20)
    idx = all_points(3, 20)

    def f(p):
        return c2_pooled(p, t, SLOTS_Q, 0.01, SLOTS_PHI, SLOTS_C, SLOTS_B, *idx)

    eager = pooled(GENERIC, t, idx)
    assert_rel(jax.jit(f)(GENERIC), eager, 1e-14, "jit")

    batch = np.stack([GENERIC, EMBEDDED_TRUTH, 1.01 * GENERIC])
    vm = np.asarray(jax.vmap(f)(jnp.asarray(batch)))
    for k in range(batch.shape[0]):
        assert_rel(vm[k], pooled(batch[k], t, idx), 1e-14, f"vmap row {k}")

    def loss(p):
        return jnp.sum(f(p) ** 2)

    rev = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(GENERIC)))
    fwd = np.asarray(jax.jacfwd(loss)(jnp.asarray(GENERIC)))
    assert np.all(np.isfinite(rev))
    assert np.all(np.abs(rev - fwd) <= 1e-12 * np.abs(fwd) + 1e-300)
