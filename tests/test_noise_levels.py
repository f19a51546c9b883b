"""Where the shard likelihood's σ_a comes from when there is no usable warm start.

It must follow the warm start's own precedence (``nlsq.sigma`` over the file's σ), so a cold
CMC run and the NLSQ fit never use different noise levels for the same data.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hpcfit.pipelines.xpcs_job import noise_levels
from hpcfit.xpcs.nlsq import known_sigma
from hpcfit.xpcs.synthetic import embedded
from tests.helpers import compose


def test_configured_sigma_wins_over_the_files_as_in_the_warm_start():
    data = replace(embedded(), sigma=np.array([0.01, 0.02, 0.03]))
    cfg, _ = compose("nlsq.sigma=[0.005]")
    sigma, source = noise_levels(cfg, data, None)
    assert source == "known"
    np.testing.assert_array_equal(sigma, [0.005, 0.005, 0.005])
    np.testing.assert_array_equal(sigma, known_sigma(data, cfg.nlsq))


def test_files_sigma_then_mad_without_configuration():
    data = replace(embedded(), sigma=np.array([0.01, 0.02, 0.03]))
    sigma, source = noise_levels(compose()[0], data, None)
    assert source == "known" and np.array_equal(sigma, [0.01, 0.02, 0.03])
    sigma, source = noise_levels(compose()[0], replace(data, sigma=None), None)
    assert source == "mad" and sigma.shape == (3,) and np.all(sigma > 0)
