"""Output files: summary.json, rounds.h5, barrier.png."""

from __future__ import annotations

import json

import numpy as np
import pytest
from nrpt_helpers import BlowUpTarget

from hpcfit.io.nrpt_out import write_outputs
from hpcfit.io.results import read_results_h5
from hpcfit.nrpt import IsingTarget, grid_model, run

REQUIRED = (
    "mean_energy",
    "mean_energy_se",
    "var_energy",
    "mean_abs_magnetisation",
    "mean_abs_magnetisation_se",
    "marginals",
    "log_Z",
    "Lambda",
    "round_trips",
    "tau_observed",
    "tau_predicted",
    "betas",
    "n_chains",
    "ranks",
)


@pytest.fixture(scope="module")
def result():
    return run(IsingTarget(grid_model(3, h=0.2)), n_chains=5, n_rounds=6, n_expl=1, seed=1)


def test_files_and_summary_keys(result, tmp_path):
    paths = write_outputs(result, tmp_path)
    assert paths["summary"] == tmp_path / "nrpt" / "summary.json"
    doc = json.loads(paths["summary"].read_text())
    for key in REQUIRED:
        assert key in doc, key
    assert doc["mean_energy"] == result.mean_energy
    assert doc["betas"] == result.betas.tolist() and len(doc["marginals"]) == 9
    assert doc["status"] == "ok" and doc["exit_code"] == 0 and doc["ranks"] == 1
    assert len(doc["history"]) == 6 and doc["history"][-1]["betas"] == result.betas.tolist()
    png = paths["barrier"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "nrpt").glob(".*.tmp"))  # no temporary files left behind


def test_rounds_h5_traces(result, tmp_path):
    tree = read_results_h5(write_outputs(result, tmp_path)["rounds"])
    rounds = tree["rounds"]
    assert rounds["betas"].shape == (6, 5) and rounds["rejection"].shape == (6, 4)
    np.testing.assert_array_equal(rounds["scans"], 2 ** np.arange(1, 7))
    np.testing.assert_array_equal(rounds["betas"][-1], result.betas)
    assert rounds["Lambda"][-1] == result.Lambda
    assert rounds["round_trips"][-1] == result.round_trips
    np.testing.assert_array_equal(tree["final"]["energy"], result.energy_series)
    assert tree["final"]["energy"].shape == (64,)
    np.testing.assert_array_equal(
        tree["final"]["abs_magnetisation"], result.abs_magnetisation_series
    )


def test_failed_run_writes_a_summary_with_its_status(tmp_path):
    res = run(BlowUpTarget(), n_chains=4, n_rounds=8, seed=0)
    doc = json.loads(write_outputs(res, tmp_path)["summary"].read_text())
    assert doc["status"] == "non_finite_energy" and doc["exit_code"] == 3
    assert doc["mean_energy"] is None and doc["failure"] == res.failure
