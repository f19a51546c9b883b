"""The ``hpcfit`` command line, run as users run it (a subprocess of the console entry point).

Contract: ``hpcfit`` alone fits the embedded dataset; bad input exits 2 with one line
``hpcfit: error: …`` naming the file or key, no traceback, and nothing written to an existing run
directory except the failed ``run.json`` (and the run's lock file ``.hpcfit.lock``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpcfit.cli import default_run_id
from hpcfit.xpcs.synthetic import SyntheticSpec, generate, write_npz

SMALL = SyntheticSpec(
    truth=(3000.0, 0.2, 0.0, 30000.0, 0.5, 0.0, 1500.0, 0.3, 0.0, 0.4, -0.8, 0.0, 0.1, 3.0),
    phi=(0.0, 60.0),
    contrast=(0.3, 0.3),
    offset=(1.0, 1.0),
    sigma=(0.002, 0.002),
    n_frames=24,
)


def hpcfit(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HPCFIT_RUN_ID": "test-run", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "hpcfit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def default_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess]:
    cwd = tmp_path_factory.mktemp("default")
    return cwd / "out", hpcfit("hydra.run.dir=out", "cmc.enabled=false", cwd=cwd)


def test_default_run_fits_embedded_dataset(default_run) -> None:
    run_dir, proc = default_run
    assert proc.returncode == 0, proc.stderr
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "ok" and record["exit_code"] == 0
    assert record["config"]["data"] == {"start_frame": 1, "end_frame": None}
    assert record["data"]["n_phi"] == 3 and record["data"]["n_frames"] == 100
    assert len(record["data"]["fingerprint"]) == 64
    assert record["versions"]["nlsq"] and record["versions"]["jax"]
    assert set(record["seeds"]) == {"nlsq.multistart.seed", "cmc.seed"}
    result = json.loads((run_dir / "nlsq" / "result.json").read_text())
    assert result["usable"] and "converged" in result["flags"]
    truth = result["truth"]
    for name, value, err in zip(
        result["theta_names"], result["theta"], result["sigma_k"], strict=False
    ):
        if name in truth:
            assert abs(value - truth[name]) < 4 * err, name
    assert result["nfev"] > 0
    for a in range(3):
        png = run_dir / "plots" / f"c2_slot{a}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run_dir / "rank-0.log").stat().st_size > 0
    assert not (run_dir / ".hydra").exists()


def test_result_json_is_unrounded(default_run) -> None:
    run_dir, _ = default_run
    result = json.loads((run_dir / "nlsq" / "result.json").read_text())
    npz = np.load(run_dir / "nlsq" / "result.npz")
    np.testing.assert_array_equal(np.asarray(result["theta"]), npz["theta"])


def _npz(tmp: Path, name: str = "data.npz", **changes) -> Path:
    data = generate(SMALL)
    path = write_npz(data, tmp / name)
    if changes:
        arrays = dict(np.load(path))
        arrays.update(changes)
        np.savez(path, **arrays)
    return path


def _bad_c2(kind: str) -> np.ndarray:
    c2 = generate(SMALL).c2.copy()
    if kind == "nan":
        c2[1, 3, 7] = np.nan
    elif kind == "inf":
        c2[0, 2, 5] = np.inf
    return c2


DATA_CASES = {
    "missing file": (lambda tmp: tmp / "absent.h5", [], "absent.h5"),
    "no dt and no time axis": (lambda tmp: _without_time_axis(tmp), ["data.dt=null"], "data.dt"),
    "unknown layout": (lambda tmp: _unknown_layout(tmp), [], "layout"),
    "nan values": (lambda tmp: _npz(tmp, c2=_bad_c2("nan")), [], "non-finite"),
    "inf values": (lambda tmp: _npz(tmp, c2=_bad_c2("inf")), [], "non-finite"),
    "non-square": (lambda tmp: _npz(tmp, c2=np.ones((2, 24, 23))), [], "c2"),
    "mismatched q": (lambda tmp: _npz(tmp, q=np.array([0.0054, 0.0054, 0.0054])), [], "q"),
    "non-increasing t": (lambda tmp: _npz(tmp, t=np.ones(24)), [], "t"),
    "q <= 0": (lambda tmp: _npz(tmp, q=np.array([0.0054, -1.0])), [], "q"),
    "one frame": (lambda tmp: _npz(tmp), ["data.start_frame=24"], "frame"),
    "angle selects nothing": (lambda tmp: _npz(tmp), ["data.phi=[30.0]"], "phi"),
    "q selects nothing": (
        lambda tmp: _npz(tmp),
        ["data.q=0.01", "data.q_select=tolerance", "data.q_tolerance=0.001"],
        "q",
    ),
    "a directory": (lambda tmp: _folder(tmp), [], "is a directory"),
    "symbolic link loop": (lambda tmp: _link_loop(tmp), [], "symbolic link loop"),
    "hdf5 named .npz": (lambda tmp: _hdf5_named_npz(tmp), [], "the file is hdf5"),
    "boolean c2": (
        lambda tmp: _npz(tmp, c2=generate(SMALL).c2 > 1.0),
        [],
        "expected real numeric correlation values, got dtype bool",
    ),
}


def _folder(tmp: Path) -> Path:
    path = tmp / "scan_0042.h5"
    path.mkdir()
    return path


def _link_loop(tmp: Path) -> Path:
    a, b = tmp / "a.h5", tmp / "b.h5"
    a.symlink_to(b)
    b.symlink_to(a)
    return a


def _hdf5_named_npz(tmp: Path) -> Path:
    path = tmp / "export.npz"
    data = generate(SMALL)
    with h5py.File(path, "w") as h5:
        h5["c2"], h5["q"], h5["phi"] = data.c2, data.q, data.phi
    return path


def _without_time_axis(tmp: Path) -> Path:
    path = tmp / "no_t.npz"
    data = generate(SMALL)
    np.savez(path, c2=data.c2, q=data.q, phi=data.phi)
    return path


def _unknown_layout(tmp: Path) -> Path:
    path = tmp / "odd.h5"
    with h5py.File(path, "w") as h5:
        h5["something/else"] = np.ones((4, 4))
    return path


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_data_exits_2_and_keeps_run_dir(case: str, tmp_path: Path) -> None:
    make, extra, needle = DATA_CASES[case]
    path = make(tmp_path)
    run_dir = tmp_path / "existing"
    run_dir.mkdir()
    (run_dir / "keep.txt").write_text("earlier work")
    dt = [] if any(e.startswith("data.dt") for e in extra) else ["data.dt=0.01"]
    proc = hpcfit(
        "data=file",
        f"data.path={path}",
        *dt,
        *extra,
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcfit: error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert path.name in lines[0] and needle in lines[0].lower(), lines[0]
    # the run's lock file is the only other entry (no rank log: nothing was logged)
    assert sorted(p.name for p in run_dir.iterdir()) == [".hpcfit.lock", "keep.txt", "run.json"]
    assert (run_dir / "keep.txt").read_text() == "earlier work"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and record["exit_code"] == 2
    assert record["message"] == lines[0].removeprefix("hpcfit: error: ")


CONFIG_CASES = {
    "unknown key": (["nlsq.tolerance=1"], "nlsq.tolerance"),
    "unknown group option": (["data=remote"], "data"),
    "out of range": (["nlsq.max_nfev=0"], "nlsq.max_nfev"),
    "wrong type": (["nlsq.ftol=abc"], "nlsq.ftol"),
    "bad enum": (["nlsq.loss=cauchy"], "nlsq.loss"),
    "dt <= 0": (["data=file", "data.path=x.npz", "data.dt=0"], "data.dt"),
    "missing path": (["data=file", "data.dt=0.01"], "data.path"),
    "unknown parameter": (["model.fixed=[D1]"], "model.fixed"),
    "start outside bounds": (["model.start.v0=1e5"], "model.start.v0"),
    "too few synthetic frames": (["data=synthetic", "data.n_frames=1"], "data.n_frames"),
    "bad sweep point": (["-m", "nlsq.max_nfev=10,0"], "nlsq.max_nfev"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config_exits_2_before_any_write(case: str, tmp_path: Path) -> None:
    args, key = CONFIG_CASES[case]
    run_dir = tmp_path / "existing"
    run_dir.mkdir()
    proc = hpcfit(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hpcfit: error: {key}"), proc.stderr
    assert list(run_dir.iterdir()) == []
    assert not (tmp_path / "runs").exists() and not (tmp_path / "multirun").exists()


def test_path_split_at_a_space_gets_a_quoting_hint(tmp_path: Path) -> None:
    """An unquoted path with a space reaches hpcfit as two words: one line that says so and how
    to quote it; quoted, the same path loads."""
    folder = tmp_path / "beam time"
    folder.mkdir()
    path = _npz(folder)
    head, tail = str(path).split(" ", 1)
    proc = hpcfit("data=file", f"data.path={head}", tail, "hydra.run.dir=out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"'{tail}' is not a key=value override: if it belongs to data.path" in lines[0]
    assert f'quote the override for the shell: "data.path={path}"' in lines[0]
    quoted = hpcfit("data=file", f"data.path={path}", "nlsq.max_nfev=3", "cmc.enabled=false",
                    "hydra.run.dir=ok", cwd=tmp_path)  # fmt: skip
    assert quoted.returncode in (0, 4), quoted.stderr


def test_synthetic_overrides_make_another_dataset(tmp_path: Path) -> None:
    proc = hpcfit(
        "data=synthetic",
        "data.n_frames=30",
        "data.seed=7",
        "data.phi=[10.0,100.0]",
        "nlsq.enabled=false",
        "cmc.enabled=false",
        "hydra.run.dir=out",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["data"]["n_frames"] == 30 and record["data"]["phi"] == [10.0, 100.0]
    assert record["seeds"]["data.seed"] == 7
    assert sorted(p.name for p in (tmp_path / "out" / "plots").iterdir()) == [
        "c2_slot0.png",
        "c2_slot1.png",
    ]


def test_file_run_uses_default_run_directory(tmp_path: Path) -> None:
    path = _npz(tmp_path)
    proc = hpcfit(
        "data=file", f"data.path={path}", "nlsq.max_nfev=3", "cmc.enabled=false", cwd=tmp_path
    )
    assert proc.returncode in (0, 4), proc.stderr
    record = json.loads((tmp_path / "runs" / "test-run" / "run.json").read_text())
    assert record["data"]["provenance"]["layout"] == "npz"
    assert (
        record["data"]["provenance"]["dt_source"] == "t (median spacing)"
    )  # data.dt unset: the file axis
    assert record["data"]["dt"] == pytest.approx(SMALL.dt, rel=1e-12)
    assert record["exit_code"] == proc.returncode


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HPCFIT_RUN_ID": "abc"}, "abc"),
        ({"SLURM_JOB_ID": "17"}, "17"),
        ({"SLURM_JOB_ID": "18", "SLURM_ARRAY_JOB_ID": "12", "SLURM_ARRAY_TASK_ID": "3"}, "12_3"),
    ],
)
def test_run_id_rule(env: dict[str, str], expected: str) -> None:
    assert default_run_id(env) == expected


def test_run_id_without_environment_is_unique() -> None:
    assert default_run_id({}) != default_run_id({})


SIZE_CASES = {
    # 3 angles × 5 frames = 30 pooled points for 10 free physics + 6 scaling quantities
    "too few points per free quantity": (
        ["data.n_frames=5", "cmc.enabled=false"],
        "30 pooled points (3 slot(s) of 5 frames) for 16 free quantities",
    ),
    "more shards than points": (
        ["data.n_frames=12", "cmc.n_shards=100000"],
        "cmc.n_shards: cmc.n_shards = 100000 exceeds the 198 pooled points",
    ),
    # 3 × 2000 × 2000 float64 maps and 6 M pooled points: ~780 MB before any is made
    "selection above the memory limit": (
        ["data.n_frames=2000", "mpi.memory_limit_mb=300", "cmc.enabled=false"],
        "synthetic data: the selection of 3 bin(s) × 2000 frames (5,997,000 points) needs about",
    ),
    "draws above the memory": (
        ["data.n_frames=12", "cmc.num_samples=1000000000"],
        "cmc.num_samples: the draws of 1 shard(s) × 4 chains × 1000000000 samples",
    ),
}


def test_declared_size_beyond_memory_exits_2_before_reading(tmp_path: Path) -> None:
    """A small HDF5 file declaring 100 000 frames (chunked, never written): the selection's
    estimate (80 GB of maps, 5·10⁹ points) is refused before any matrix is read."""
    path = tmp_path / "declared.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("c2", shape=(1, 100_000, 100_000), dtype="f4", chunks=(1, 1000, 1000),
                         compression="gzip", fillvalue=1.0)  # fmt: skip
        f["q"], f["phi"], f["t"] = [0.005], [0.0], np.arange(100_000) * 0.01
    assert path.stat().st_size < 2**20
    proc = hpcfit("data=file", f"data.path={path}", "hydra.run.dir=out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "selection of 1 bin(s) × 100000 frames (4,999,950,000 points) needs about" in lines[0]
    assert "MB this rank can have" in lines[0] and "data.frame_stride" in lines[0]
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["status"] == "failed" and record["exit_code"] == 2


@pytest.mark.parametrize("case", sorted(SIZE_CASES))
def test_size_checks_fail_before_the_warm_start(case: str, tmp_path: Path) -> None:
    """Data too small for the fit, or more shards than points: exit 2 before any NLSQ work."""
    extra, needle = SIZE_CASES[case]
    proc = hpcfit("data=synthetic", *extra, "hydra.run.dir=out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert not (tmp_path / "out" / "nlsq").exists()
    log = tmp_path / "out" / "rank-0.log"
    assert not log.exists() or "NLSQ" not in log.read_text()
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["status"] == "failed" and record["exit_code"] == 2


@pytest.mark.timeout(600)
def test_input_error_on_two_ranks_is_one_line(tmp_path: Path) -> None:
    """Found by rank 0 after the ranks started: the one-line error only, without MPICH's note
    of the MPI_Abort that ends the other rank or a second line from the launcher."""
    proc = hpcfit("data=synthetic", "data.n_frames=5", "mpi.ranks=2", "hydra.run.dir=out",
                  cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "starting 2 ranks" in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcfit: error: synthetic: 30 pooled points")
    assert "MPI_Abort" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("cmc", ["cmc.enabled=false", "cmc.enabled=true"])
def test_absurd_chi2_with_known_sigma_exits_4_with_a_reason(cmc: str, tmp_path: Path) -> None:
    """σ given as half the truth: χ²_red ≈ 4 is no normal result; the job stops with exit 4."""
    proc = hpcfit(
        "data=synthetic", "data.n_frames=30", cmc, "nlsq.sigma=[0.001]", "hydra.run.dir=out",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 4, proc.stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["status"] == "warm_start_unusable" and record["exit_code"] == 4
    assert "chi2_out_of_range; χ²_red = " in record["message"]
    assert "try more starts" in record["message"]
    assert "chi2_out_of_range" in proc.stdout + proc.stderr
    assert not (tmp_path / "out" / "cmc" / "shards").exists()


@pytest.mark.slow
def test_library_warnings_go_to_the_rank_log_with_a_console_summary(tmp_path: Path) -> None:
    """nlsq's OptimizeWarning (an evaluation budget of 2) is not printed raw with a source line:
    it is in rank-0.log with its location, and the console says how many there were and where.
    A second run in the same directory appends below its own begin line."""
    args = ("data=synthetic", "data.n_frames=24", "cmc.enabled=false", "nlsq.max_nfev=2",
            "hydra.run.dir=out")  # fmt: skip
    proc = hpcfit(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "OptimizeWarning" not in proc.stderr and "OptimizeWarning" not in proc.stdout
    assert "warning(s) from libraries" in proc.stdout + proc.stderr
    log_text = (tmp_path / "out" / "rank-0.log").read_text()
    assert re.search(r"OptimizeWarning: .+ \(\S+\.py:\d+\)", log_text)
    hpcfit(*args, cwd=tmp_path)
    from hpcfit.pipelines.status import RUN_BEGINS

    assert (tmp_path / "out" / "rank-0.log").read_text().count(RUN_BEGINS) == 2


@pytest.mark.parametrize("case", ["file_in_place", "parent_is_a_file"])
def test_unusable_run_directory_exits_2_with_one_line(case: str, tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a directory\n")
    run_dir = blocker if case == "file_in_place" else blocker / "run"
    proc = hpcfit("cmc.enabled=false", f"hydra.run.dir={run_dir}", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("hpcfit: error: "), proc.stderr
    assert str(blocker) in lines[0] and "Traceback" not in proc.stderr
    assert blocker.read_text() == "not a directory\n"
