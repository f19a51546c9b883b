"""``hpcfit workload=kuramoto|nrpt`` from the command line, on 1 and 2 ranks, and its bad input.

Bad input exits 2 with one ``hpcfit: error: …`` line naming the key or file, before any work.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

KURAMOTO = (
    "workload=kuramoto",
    "kuramoto.n_oscillators=16",
    "kuramoto.n_members=3",
    "kuramoto.n_steps=20",
)
NRPT = ("workload=nrpt", "nrpt.L=3", "nrpt.n_chains=4", "nrpt.n_rounds=4")


def hpcfit(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HPCFIT_RUN_ID": "test-run", "PYTHONUNBUFFERED": "1"}
    env.pop("XLA_FLAGS", None)  # as a user's shell: the test session's device count stays here
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return subprocess.run(
        [sys.executable, "-m", "hpcfit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def h5_arrays(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as h5:
        return {k: h5[k][()] for k in h5 if isinstance(h5[k], h5py.Dataset)}


@pytest.mark.timeout(600)
def test_kuramoto_runs_on_one_and_two_ranks_with_identical_output(tmp_path: Path) -> None:
    one = hpcfit(*KURAMOTO, "hydra.run.dir=one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = hpcfit(*KURAMOTO, "mpi.ranks=2", "hydra.run.dir=two", cwd=tmp_path)
    assert two.returncode == 0, two.stdout + two.stderr
    a = h5_arrays(tmp_path / "one" / "kuramoto" / "ensemble.h5")
    b = h5_arrays(tmp_path / "two" / "kuramoto" / "ensemble.h5")
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    summary = json.loads((tmp_path / "two" / "kuramoto" / "summary.json").read_text())
    assert summary["ranks"] == 2 and len(summary["device_per_rank"]) == 2
    record = json.loads((tmp_path / "two" / "run.json").read_text())
    assert [r["role"] for r in record["rank_setup"]] == ["cpu", "cpu"]


@pytest.mark.timeout(600)
def test_nrpt_runs_and_writes_its_outputs(tmp_path: Path) -> None:
    proc = hpcfit(*NRPT, "hydra.run.dir=out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "nrpt round  4" in proc.stdout + proc.stderr
    summary = json.loads((tmp_path / "out" / "nrpt" / "summary.json").read_text())
    for key in (
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
    ):
        assert key in summary, key
    assert len(summary["marginals"]) == 9 and summary["n_chains"] == 4
    assert summary["betas"][0] == 0.0 and summary["betas"][-1] == 1.0
    assert (tmp_path / "out" / "nrpt" / "rounds.h5").is_file()
    assert (tmp_path / "out" / "nrpt" / "barrier.png").is_file()


@pytest.mark.timeout(600)
def test_nrpt_schedule_and_target_acceptance_reach_the_run(tmp_path: Path) -> None:
    """nrpt.schedule is the first round's ladder; nrpt.target_acceptance sets
    N_rec = ⌈Λ̂/(1 − a*)⌉ + 1 (Syed et al. 2022, Sec. 5.3)."""
    ladder = [0.0, 0.2, 0.45, 1.0]
    proc = hpcfit(
        *NRPT,
        f"nrpt.schedule=[{','.join(map(str, ladder))}]",
        "nrpt.target_acceptance=0.8",
        "hydra.run.dir=out",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "out" / "nrpt" / "rounds.h5", "r") as h5:
        first = h5["rounds/betas"][0]
    assert np.array_equal(first, np.array(ladder))
    summary = json.loads((tmp_path / "out" / "nrpt" / "summary.json").read_text())
    last = summary["history"][-1]
    assert last["n_chains_recommended"] == math.ceil(last["Lambda"] / (1 - 0.8)) + 1


def _model_file(tmp: Path, **fields) -> Path:
    doc = {"n": 3, "edges": [[0, 1], [1, 2]], "J": [1.0, 0.5], "h": [0.0, 0.1, -0.1]}
    doc.update(fields)
    path = tmp / "model.json"
    path.write_text(json.dumps(doc))
    return path


BAD = {
    "kuramoto dt": ([*KURAMOTO, "kuramoto.dt=0"], "kuramoto.dt"),
    "kuramoto steps": ([*KURAMOTO, "kuramoto.n_steps=0"], "kuramoto.n_steps"),
    # 4 coupling-sized N×N float64 arrays of N = 100 000: ~300 GB, refused before any is made
    "kuramoto memory": (
        [*KURAMOTO, "kuramoto.n_oscillators=100000"],
        "kuramoto.n_oscillators: N = 100000 with",
    ),
    "kuramoto memory limit": (
        [
            *KURAMOTO,
            "kuramoto.record=trajectory",
            "kuramoto.n_steps=1000000",
            "mpi.memory_limit_mb=400",
        ],
        "more than the 400 MB this rank can have (mpi.memory_limit_mb)",
    ),
    "device spec": ([*KURAMOTO, "device.spec=tpu"], "device.spec"),
    "no gpu": ([*KURAMOTO, "device.spec=gpu"], "device.spec=gpu"),
    "nrpt chains": ([*NRPT, "nrpt.n_chains=1"], "nrpt.n_chains"),
    "nrpt schedule": ([*NRPT, "nrpt.schedule=[0.0,0.6,0.3,1.0]"], "nrpt.schedule"),
    "nrpt schedule length": ([*NRPT, "nrpt.schedule=[0.0,1.0]"], "nrpt.schedule"),
    "nrpt file missing": (["workload=nrpt", "nrpt.model=file"], "nrpt.model_file"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_workload_input_exits_2_with_one_line(case: str, tmp_path: Path) -> None:
    args, needle = BAD[case]
    proc = hpcfit(*args, "hydra.run.dir=out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcfit: error: "), proc.stderr
    assert needle in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr


MODEL_FILES = {
    "spin out of range": ({"edges": [[0, 3], [1, 2]]}, "edges"),
    "self loop": ({"edges": [[1, 1], [1, 2]]}, "edges"),
    "duplicate edge": ({"edges": [[0, 1], [1, 0]]}, "edges"),
    "J length": ({"J": [1.0]}, "J"),
    "h length": ({"h": [0.0, 0.1]}, "h"),
    "non-finite": ({"J": [1.0, float("nan")]}, "J"),
}


@pytest.mark.parametrize("ranks", [1, 2])
@pytest.mark.parametrize("case", sorted(MODEL_FILES))
def test_bad_model_file_exits_2_naming_file_and_field(case: str, ranks: int, tmp_path: Path):
    fields, field = MODEL_FILES[case]
    path = _model_file(tmp_path, **fields)
    proc = hpcfit(
        "workload=nrpt",
        "nrpt.model=file",
        f"nrpt.model_file={path}",
        f"mpi.ranks={ranks}",
        "hydra.run.dir=out",
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcfit: error: "), proc.stderr
    assert "model.json" in lines[0] and field in lines[0], lines[0]
    assert not (tmp_path / "out" / "nrpt").exists()
