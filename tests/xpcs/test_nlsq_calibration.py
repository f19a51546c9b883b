"""Covariance calibration of the warm start.

Across 50 noise seeds of the embedded dataset, the spread of θ̂ must match the reported σ_k: the
sd of each free quantity across seeds lies within 20% of its median σ_k. Counting both triangles
(the heterodyne package's defect) would make σ_k √2 too small, a ratio of 1.41, and fails here.
The start is the truth: this tests the covariance, not global convergence. With 50 seeds the sd
itself carries ~10% sampling error, so 20% is a two-sigma band on each ratio; the seeds are fixed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hpcfit.config import NlsqConfig
from hpcfit.xpcs.nlsq import fit
from hpcfit.xpcs.params import NAMES, make_space
from hpcfit.xpcs.synthetic import EMBEDDED, EMBEDDED_FIXED, generate

N_SEEDS = 50


@pytest.fixture(scope="module")
def ensemble() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    space = make_space(fixed=EMBEDDED_FIXED, start=dict(zip(NAMES, EMBEDDED.truth, strict=True)))
    estimates, errors = [], []
    for seed in range(N_SEEDS):
        result = fit(generate(dataclasses.replace(EMBEDDED, seed=seed)), space, NlsqConfig())
        assert result.usable, (seed, result.flags)
        estimates.append(result.theta)
        errors.append(result.sigma_k)
    return result.theta_names, np.array(estimates), np.array(errors)


def test_spread_across_noise_seeds_matches_sigma_k(ensemble) -> None:
    names, estimates, errors = ensemble
    ratio = estimates.std(axis=0, ddof=1) / np.median(errors, axis=0)
    bad = {n: round(float(r), 3) for n, r in zip(names, ratio, strict=True) if abs(r - 1) > 0.2}
    assert not bad, f"sd across seeds / median σ_k outside 1 ± 0.2: {bad}"


def test_estimates_are_unbiased_within_their_standard_error(ensemble) -> None:
    names, estimates, errors = ensemble
    truth = dict(zip(NAMES, EMBEDDED.truth, strict=True))
    truth |= {f"contrast_{a}": c for a, c in enumerate(EMBEDDED.contrast)}
    truth |= {f"offset_{a}": b for a, b in enumerate(EMBEDDED.offset)}
    expected = np.array([truth[n] for n in names])
    z = (estimates.mean(axis=0) - expected) / (np.median(errors, axis=0) / np.sqrt(N_SEEDS))
    assert np.all(np.abs(z) < 4), dict(zip(names, np.round(z, 2), strict=True))
