"""Coarse-to-fine warm start: the strided stage, the label-swapped start, and the χ²_red flag."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hpcfit.config import CoarseConfig, NlsqConfig
from hpcfit.records import WarmStartFlag
from hpcfit.xpcs.coarse import coarse_stride, fit_warm_start, strided, swapped_start
from hpcfit.xpcs.dataset import production_grid
from hpcfit.xpcs.nlsq import chi2_band
from hpcfit.xpcs.params import INDEX, make_space
from hpcfit.xpcs.synthetic import EMBEDDED, EMBEDDED_FIXED, generate

SIXTY = dataclasses.replace(EMBEDDED, n_frames=60)


@pytest.mark.parametrize(
    ("n", "target", "k"), [(100, 128, 1), (255, 128, 1), (256, 128, 2), (1000, 128, 8), (999, 0, 1)]
)
def test_coarse_stride_rule(n, target, k):
    assert coarse_stride(n, target) == k


def test_strided_data_keeps_exact_values_and_absolute_times():
    data = generate(SIXTY)
    coarse = strided(data, 4)
    np.testing.assert_array_equal(coarse.c2, data.c2[:, ::4, ::4])
    np.testing.assert_array_equal(coarse.t, production_grid(1, 60, data.dt)[::4])
    assert coarse.step == pytest.approx(4 * data.dt, rel=1e-15)
    assert coarse.n_points == 3 * 15 * 14 // 2


def test_swapped_start_exchanges_the_components():
    space = make_space(
        fixed=("f2",),
        start={"D0_ref": 2000.0, "alpha_ref": 0.1, "D0_sample": 40000.0, "alpha_sample": -0.3,
               "f0": 0.25, "f1": 0.0, "f3": 0.05},
    )  # fmt: skip
    t = production_grid(1, 100, 0.01)
    p = swapped_start(space, t)
    assert p[INDEX["D0_ref"]] == 40000.0 and p[INDEX["D0_sample"]] == 2000.0
    assert p[INDEX["alpha_ref"]] == -0.3 and p[INDEX["alpha_sample"]] == 0.1
    # a constant fraction 0.3 has the exact complement 0.7
    fs = p[INDEX["f0"]] * np.exp(p[INDEX["f1"]] * t) + p[INDEX["f3"]]
    np.testing.assert_allclose(fs, 0.7, atol=1e-6)
    assert np.all((p >= space.lo) & (p <= space.hi))


@pytest.fixture(scope="module")
def coarse_fit():
    data = generate(SIXTY)
    space = make_space(fixed=EMBEDDED_FIXED)
    cfg = NlsqConfig(coarse=CoarseConfig(frames=20, starts=4))
    return data, fit_warm_start(data, space, cfg)


def test_coarse_to_fine_recovers_the_truth(coarse_fit):
    data, res = coarse_fit
    assert res.usable and WarmStartFlag.converged in res.flags
    assert res.extra["coarse"]["stride"] == 3 and res.extra["coarse"]["n_frames"] == 20
    assert len(res.starts) == 4  # configured, swapped, 2 Latin-hypercube starts
    assert res.extra["n_points"] == data.n_points  # the fine stage fits every point
    assert abs(res.chi2_red - 1.0) <= chi2_band(res.dof)
    truth = {"D0_ref": 3000.0, "alpha_ref": 0.2, "D0_sample": 3e4, "alpha_sample": 0.5}
    for name, value in truth.items():
        k = res.theta_names.index(name)
        assert abs(res.theta[k] - value) < 5 * res.sigma_k[k], name


def test_known_sigma_too_small_flags_the_fit_unusable():
    """With σ known, χ²_red far from 1 (here σ given as half the truth: χ²_red ≈ 4) is a flag
    that stops a job, not a normal table."""
    data = generate(dataclasses.replace(EMBEDDED, n_frames=30))
    space = make_space(fixed=EMBEDDED_FIXED)
    res = fit_warm_start(data, space, NlsqConfig(sigma=[0.001, 0.001, 0.0015]))
    assert res.chi2_red == pytest.approx(4.0, rel=0.15)
    assert WarmStartFlag.chi2_out_of_range in res.flags and not res.usable
    assert WarmStartFlag.converged not in res.flags
