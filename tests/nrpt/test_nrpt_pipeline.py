"""The NRPT job's exit status when the run itself fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import compose
from nrpt_helpers import BlowUpTarget

import hpcfit.nrpt
from hpcfit.parallel.comm import SerialComm
from hpcfit.pipelines import nrpt as nrpt_job


def test_a_non_finite_energy_exits_3_naming_replica_and_scan(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(hpcfit.nrpt, "IsingTarget", lambda model: BlowUpTarget())
    cfg, resolved = compose("workload=nrpt", "nrpt.n_chains=4", "nrpt.n_rounds=8")
    assert nrpt_job.run(cfg, tmp_path, resolved, SerialComm()) == 3
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "non_finite_energy" and record["exit_code"] == 3
    assert "replica" in record["message"] and "scan" in record["message"]
    assert not (tmp_path / "nrpt" / "summary.json").exists()


def test_an_exception_on_a_rank_exits_70_naming_the_rank(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args, **kwargs):
        raise FloatingPointError("kernel blew up")

    monkeypatch.setattr(hpcfit.nrpt, "run", broken)
    cfg, resolved = compose("workload=nrpt", "nrpt.L=3", "nrpt.n_chains=3", "nrpt.n_rounds=2")
    assert nrpt_job.run(cfg, tmp_path, resolved, SerialComm()) == 70
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "internal_error" and record["exit_code"] == 70
    assert record["message"] == "rank 0: FloatingPointError: kernel blew up"
