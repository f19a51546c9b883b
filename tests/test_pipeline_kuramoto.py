"""The Kuramoto job in one process: outputs, member keys, chunking and
resume. Rank-count invariance is in ``tests/mpi/test_workloads_mpi.py``."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import jax
import numpy as np
import pytest
from helpers import compose

from hpcfit.kuramoto import final_state, order_parameter
from hpcfit.parallel.comm import SerialComm
from hpcfit.pipelines import kuramoto

SMALL = (
    "workload=kuramoto",
    "kuramoto.n_oscillators=12",
    "kuramoto.n_members=5",
    "kuramoto.n_steps=30",
    "kuramoto.dt=0.05",
)


def run(tmp: Path, *overrides: str) -> Path:
    cfg, resolved = compose(*SMALL, *overrides)
    assert kuramoto.run(cfg, tmp, resolved, SerialComm()) == 0
    return tmp


def arrays(run_dir: Path) -> dict[str, np.ndarray]:
    with h5py.File(run_dir / "kuramoto" / "ensemble.h5", "r") as h5:
        return {k: h5[k][()] for k in h5}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(tmp_path_factory.mktemp("kuramoto"))


def test_outputs_and_summary(small_run: Path) -> None:
    a = arrays(small_run)
    assert a["final_phases"].shape == (5, 12) and a["order_parameter"].shape == (5, 31)
    assert a["theta0"].shape == (5, 12) and a["omega"].shape == (12,)
    assert np.array_equal(a["time"], 0.05 * np.arange(31))
    assert np.all((a["order_parameter"] >= 0) & (a["order_parameter"] <= 1))
    summary = json.loads((small_run / "kuramoto" / "summary.json").read_text())
    assert (summary["N"], summary["members"], summary["steps"], summary["dt"]) == (12, 5, 30, 0.05)
    assert summary["ranks"] == 1 and len(summary["device_per_rank"]) == 1
    r_final = np.abs(np.exp(1j * a["final_phases"]).mean(axis=1))
    assert summary["r_final"]["mean"] == pytest.approx(r_final.mean(), abs=1e-15)
    assert (small_run / "kuramoto" / "order_parameter.png").stat().st_size > 0
    record = json.loads((small_run / "run.json").read_text())
    assert record["status"] == "ok" and record["exit_code"] == 0


def test_members_use_their_global_keys_and_match_single_calls(small_run: Path) -> None:
    a = arrays(small_run)
    root = jax.random.PRNGKey(0)
    for m in (0, 4):
        k_theta, _ = jax.random.split(jax.random.fold_in(root, m))
        theta0 = np.asarray(jax.random.uniform(k_theta, (12,), minval=0.0, maxval=2 * np.pi))
        assert np.array_equal(a["theta0"][m], theta0)
        single = np.asarray(
            final_state(theta0, a["omega"], a["coupling_matrix"], dt=0.05, n_steps=30)
        )
        assert np.array_equal(a["final_phases"][m], single)
    assert np.allclose(a["order_parameter"][:, -1], order_parameter(a["final_phases"]), atol=1e-15)
    k = a["coupling_matrix"]
    assert np.all(np.diag(k) == 0) and np.allclose(k[~np.eye(12, dtype=bool)], 1.8 / 12)


def test_chunked_batches_are_bitwise_equal(small_run: Path, tmp_path: Path) -> None:
    chunked = arrays(run(tmp_path, "device.batch_chunk=2"))
    for key, value in arrays(small_run).items():
        assert np.array_equal(value, chunked[key]), key


def test_resume_recomputes_only_missing_chunks(tmp_path: Path) -> None:
    first = arrays(run(tmp_path, "device.batch_chunk=2"))
    chunks = sorted((tmp_path / "kuramoto" / "chunks").glob("members-*.npz"))
    assert [p.name for p in chunks] == [
        "members-0000000-0000002.npz",
        "members-0000002-0000004.npz",
        "members-0000004-0000005.npz",
    ]
    chunks[1].unlink()
    kept = chunks[0].stat().st_mtime_ns
    again = arrays(run(tmp_path, "device.batch_chunk=2"))
    for key, value in first.items():
        assert np.array_equal(value, again[key]), key
    assert chunks[1].exists() and chunks[0].stat().st_mtime_ns == kept
    # a different setting invalidates the chunks instead of reusing them
    other = arrays(run(tmp_path, "device.batch_chunk=2", "kuramoto.coupling=3.0"))
    assert not np.array_equal(other["final_phases"], first["final_phases"])


def test_per_member_frequencies_and_trajectory_record(tmp_path: Path) -> None:
    a = arrays(run(tmp_path, "kuramoto.omega=per_member", "kuramoto.record=trajectory"))
    assert a["omega"].shape == (5, 12) and a["trajectory"].shape == (5, 31, 12)
    assert not np.array_equal(a["omega"][0], a["omega"][1])
    assert np.array_equal(a["trajectory"][:, 0], a["theta0"])
    assert np.array_equal(a["trajectory"][:, -1], a["final_phases"])
    assert np.array_equal(a["order_parameter"], np.asarray(order_parameter(a["trajectory"])))
