"""The chunked fine stage: chunk-invariant normal equations, parity with ``nlsq.curve_fit`` on
the same problem, and bounds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hpcfit.config import CoarseConfig, NlsqConfig, Scaling
from hpcfit.records import WarmStartFlag
from hpcfit.xpcs.coarse import fit_warm_start
from hpcfit.xpcs.nlsq import fit
from hpcfit.xpcs.params import NAMES, make_space
from hpcfit.xpcs.problem import Problem
from hpcfit.xpcs.refine import refine
from hpcfit.xpcs.synthetic import EMBEDDED, EMBEDDED_FIXED, generate

SIXTY = dataclasses.replace(EMBEDDED, n_frames=60)
TOL = {"max_steps": 500}


@pytest.fixture(scope="module")
def reference():
    """A dataset, its space and the fit-mode ``nlsq.curve_fit`` optimum started at the truth
    (the reference)."""
    data = generate(SIXTY)
    space = make_space(fixed=EMBEDDED_FIXED, start=dict(zip(NAMES, EMBEDDED.truth, strict=True)))
    cfg = NlsqConfig(scaling=Scaling.fit, ftol=1e-12, xtol=1e-12, gtol=1e-12)
    return data, space, fit(data, space, cfg)


def test_normal_equations_do_not_depend_on_the_chunking(reference):
    """Chunks of 7 rows (the last one padded with zero-weight points) give the sums of one chunk."""
    data, space, ref = reference
    problem = Problem.from_data(data, space)
    weights = 1.0 / np.asarray(data.sigma)
    theta = ref.theta * (1.0 + 1e-3)
    p = theta.size
    whole = problem.normal_equations(theta, weights, chunk_bytes=8 * p * problem.size)
    pieces = problem.normal_equations(theta, weights, chunk_bytes=8 * p * 7)
    assert problem.size % 7 != 0
    assert pieces[0] == pytest.approx(whole[0], rel=1e-12)
    np.testing.assert_allclose(pieces[1], whole[1], rtol=1e-9, atol=1e-9 * np.abs(whole[1]).max())
    np.testing.assert_allclose(pieces[2], whole[2], rtol=1e-9, atol=1e-12 * np.abs(whole[2]).max())
    # ½Σr² is the residual-only cost at the same point
    assert whole[0] == pytest.approx(problem.cost(theta, weights, fit_mode=True), rel=1e-12)


def test_refine_reaches_the_curve_fit_optimum(reference):
    """From a start one σ_k off in every quantity (alternating signs), the chunked LM ends at
    nlsq's optimum: within 0.005 σ_k, and the same cost to 1e-8."""
    data, space, ref = reference
    problem = Problem.from_data(data, space)
    weights = 1.0 / np.asarray(data.sigma)
    signs = np.where(np.arange(ref.theta.size) % 2, 1.0, -1.0)
    start = np.clip(ref.theta + signs * ref.sigma_k, *problem.unknown_bounds(fit_mode=True))
    out = refine(problem, start, weights, chunk_bytes=2**16, **TOL)
    assert out.converged and out.cost < out.start_cost
    np.testing.assert_array_less(np.abs(out.theta - ref.theta), 5e-3 * ref.sigma_k)
    assert out.cost == pytest.approx(ref.cost, rel=1e-8)


def test_refine_holds_a_quantity_at_its_bound(reference):
    """An upper bound 5 σ_k below the optimum of v0: the refinement ends on the bound with the
    cost still falling outward there, inside the box, and stationary in the quantities not held
    at a bound (the Karush–Kuhn–Tucker conditions)."""
    data, space, ref = reference
    k = ref.theta_names.index("v0")
    cap = float(ref.theta[k] - 5 * ref.sigma_k[k])
    tight = make_space(fixed=EMBEDDED_FIXED, bounds={"v0": (100.0, cap)}, start={"v0": cap})
    problem = Problem.from_data(data, tight)
    lo, hi = problem.unknown_bounds(fit_mode=True)
    weights = 1.0 / np.asarray(data.sigma)
    out = refine(problem, np.clip(ref.theta, lo, hi), weights, chunk_bytes=2**16, **TOL)
    assert out.converged and out.theta[k] == cap
    assert np.all((out.theta >= lo) & (out.theta <= hi))
    _, grad, jtj = problem.normal_equations(out.theta, weights, 2**20)
    scaled = grad / np.sqrt(np.diag(jtj))  # cost change per one-σ step of each quantity
    assert scaled[k] < -0.1  # the bound is active: the cost falls beyond it
    # KKT: the quantities at a bound with the cost falling outward are held (v0 among them);
    # in the others the Gauss-Newton step would lower the cost by < 1e-6 (0.0015 σ away)
    held = ((out.theta <= lo) & (grad > 0)) | ((out.theta >= hi) & (grad < 0))
    assert held[k]
    free = ~held
    g, h = grad[free], jtj[np.ix_(free, free)]
    assert 0.5 * g @ np.linalg.solve(h, g) < 1e-6


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_chunked_fine_stage_matches_one_fit_on_all_points():
    """150 frames (33 525 points), the chunked fine stage forced: from the default start, coarse
    to fine lands where one nlsq fit on all points started at the truth lands (within 0.01
    σ_k), with the same χ²_red and σ_k, and converged."""
    data = generate(dataclasses.replace(EMBEDDED, n_frames=150))
    truth = dict(zip(NAMES, EMBEDDED.truth, strict=True))
    ref = fit(data, make_space(fixed=EMBEDDED_FIXED, start=truth), NlsqConfig(scaling=Scaling.fit))
    coarse = CoarseConfig(frames=40, starts=4, chunked_above=0)
    cfg = NlsqConfig(coarse=coarse, jac_chunk_bytes=2**20)
    res = fit_warm_start(data, make_space(fixed=EMBEDDED_FIXED), cfg)
    assert res.extra["coarse"]["stride"] == 4 and res.nit is not None and res.nit < 20
    assert res.theta_names == ref.theta_names
    np.testing.assert_array_less(np.abs(res.theta - ref.theta), 1e-2 * ref.sigma_k)
    assert res.chi2_red == pytest.approx(ref.chi2_red, rel=1e-7)
    np.testing.assert_allclose(res.sigma_k, ref.sigma_k, rtol=1e-2)
    assert WarmStartFlag.converged in res.flags and res.usable
