"""A job whose data do not identify a quantity: the run names it, NUTS scales it by its prior
width, and the posterior of that quantity is its prior.

The map has one angle, φ = 90°, with φ0 fixed at 0: the drift phase q·cos(φ + φ0)·Δv is then
zero (to 1e-17), so the velocity v0 does not enter c2 at all and its exact posterior is its
truncated-normal prior. This is the limit of the short maps whose warm start ends with a
quantity at a bound or with an infinite σ_k: v0 starts at its lower bound and stays there, the
warm start flags it ``at_bounds`` (not ``bound_active``: the data do not identify it) and has
nothing to whiten it with, and the chains start next to that bound.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import combined_arrays, compose
from scipy import stats

from hpcfit.pipelines import xpcs
from hpcfit.xpcs.params import INDEX, REGISTRY

pytestmark = pytest.mark.slow  # one job, about a minute

TRUTH = [3000.0, 0.2, 0.0, 30000.0, 0.5, 0.0, 1500.0, 0.3, 0.0, 0.4, -0.8, 0.0, 0.1, 0.0]
UNSEEN_JOB = (
    "data=synthetic",
    "data.n_frames=30",
    "data.dt=0.05",
    "data.phi=[90.0]",
    "data.contrast=[0.30]",
    "data.seed=2024",
    "data.truth=[" + ",".join(str(x) for x in TRUTH) + "]",
    "model.fixed=[f2,D_offset_ref,D_offset_sample,v_offset,alpha_ref,alpha_sample,beta,f1,f3,phi0]",
    "model.start={D0_ref:5000.0,D0_sample:20000.0,alpha_ref:0.2,alpha_sample:0.5,beta:0.3,"
    "f1:-0.8,f3:0.1,phi0:0.0,v0:1e-6}",  # v0 at its lower bound
    "cmc.n_shards=1",
    "cmc.num_chains=2",
    "cmc.num_warmup=300",
    "cmc.num_samples=1000",
)


@pytest.fixture(scope="module")
def unseen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("unseen")
    cfg, resolved = compose(*UNSEEN_JOB)
    assert xpcs.run(cfg, run_dir, resolved) == 0
    return run_dir


def test_the_run_names_the_quantity_the_data_do_not_identify(unseen: Path) -> None:
    record = json.loads((unseen / "run.json").read_text())
    assert record["cmc"]["not_identified_by_warm_start"] == ["v0"]
    warm = json.loads((unseen / "nlsq" / "result.json").read_text())
    assert warm["pinned"] == ["v0"] and warm["bound_active"] == []
    assert "at_bounds" in warm["flags"] and warm["usable"]
    log = (unseen / "rank-0.log").read_text()
    assert "CMC: the warm start does not identify v0" in log


def test_the_unseen_quantity_is_sampled_from_its_prior(unseen: Path) -> None:
    """Every default gate passed at the first attempt, and the v0 draws follow the prior
    TruncatedNormal(mean, sd; lo, hi) of the registry: Kolmogorov–Smirnov on draws thinned to
    about one per effective sample."""
    diag = json.loads((unseen / "cmc" / "diagnostics.json").read_text())
    (shard,) = diag["shards"]
    assert shard["status"] == "ok" and len(shard["attempts"]) == 1
    arrays = combined_arrays(unseen)
    names = [str(n) for n in arrays["names"]]
    k = names.index("v0")
    draws = np.asarray(arrays["draws_theta"])[..., k].ravel()
    ess = shard["diagnostics"]["ess_bulk"][shard["diagnostics"]["names"].index("v0")]
    thinned = draws[:: max(1, int(draws.size // ess))]
    prior = REGISTRY[INDEX["v0"]]
    a = (prior.lo - prior.prior_mean) / prior.prior_sd
    b = (prior.hi - prior.prior_mean) / prior.prior_sd
    law = stats.truncnorm(a, b, loc=prior.prior_mean, scale=prior.prior_sd)
    assert stats.kstest(thinned, law.cdf).pvalue > 1e-3
    assert abs(np.mean(draws) - law.mean()) < 4.0 * law.std() / np.sqrt(ess)


def test_the_identified_quantities_stay_near_the_truth(unseen: Path) -> None:
    arrays = combined_arrays(unseen)
    names = [str(n) for n in arrays["names"]]
    theta = np.asarray(arrays["draws_theta"]).reshape(-1, len(names))
    for name in ("D0_ref", "D0_sample", "f0"):
        x = theta[:, names.index(name)]
        assert abs(x.mean() - TRUTH[INDEX[name]]) < 5.0 * x.std(), name
