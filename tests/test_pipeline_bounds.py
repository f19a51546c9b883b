"""A warm start that ends with a quantity at a bound.

Two cases, told apart by whether the data identify the quantity:

* held by the bound: D0_ref is capped at 2000 while the data say 3000 (σ_k below its prior sd). The
  best fit lies outside the box, so the warm start is flagged ``bound_active``, is unusable, and
  the job stops with exit 4 naming D0_ref, before any sampling;
* left at the bound: on a single φ = 90° map with φ0 fixed at 0 the velocity v0 does not enter
  c2, so a start at its lower bound stays there, with a spread far wider than its prior. The data
  say nothing about v0: the warm start is flagged ``at_bounds`` but stays
  usable, and the job goes on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers import compose
from test_pipeline_unidentified import UNSEEN_JOB

from hpcfit.pipelines import xpcs

HELD = (
    "model.bounds={D0_ref:[1000.0,2000.0]}",
    "model.start={D0_ref:1500.0,D0_sample:20000.0}",
)
UNSEEN_AT_BOUND = UNSEEN_JOB  # v0 starts at its lower bound, and no data see it


def run(run_dir: Path, *overrides: str) -> int:
    cfg, resolved = compose(*overrides)
    return xpcs.run(cfg, run_dir, resolved)


def warm_start_record(run_dir: Path) -> dict:
    return json.loads((run_dir / "nlsq" / "result.json").read_text())


def test_an_identified_quantity_held_by_a_bound_stops_the_job(tmp_path: Path) -> None:
    assert run(tmp_path, *HELD) == 4
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "warm_start_unusable" and record["exit_code"] == 4
    assert "bound_active" in record["message"]
    assert "held by a bound: D0_ref" in record["message"]
    assert not (tmp_path / "cmc").exists()  # stopped before any sampling
    warm = warm_start_record(tmp_path)
    k = warm["theta_names"].index("D0_ref")
    assert np.isclose(warm["theta"][k], 2000.0, rtol=1e-6)
    assert warm["bound_active"] == ["D0_ref"]
    assert "at_bounds" in warm["flags"] and "bound_active" in warm["flags"]
    assert "converged" not in warm["flags"]


def test_the_same_warm_start_stops_a_job_without_sampling(tmp_path: Path) -> None:
    assert run(tmp_path, *HELD, "cmc.enabled=false") == 4
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "warm_start_unusable"
    assert "held by a bound: D0_ref" in record["message"]


def test_a_quantity_the_data_do_not_see_may_stay_at_its_bound(tmp_path: Path) -> None:
    assert run(tmp_path, *UNSEEN_AT_BOUND, "cmc.enabled=false") == 0
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "ok"
    warm = warm_start_record(tmp_path)
    assert warm["pinned"] == ["v0"]
    assert warm["bound_active"] == []
    k = warm["theta_names"].index("v0")  # its spread at the bound is far wider than its prior
    assert warm["cov"][k][k] is None or warm["cov"][k][k] > 500.0**2  # sd (500 Å/s^(1+β))
    assert "at_bounds" in warm["flags"] and "bound_active" not in warm["flags"]
    assert warm["usable"]
