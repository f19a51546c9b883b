"""The whole XPCS job on one process (SerialComm): warm start → plan → NUTS per shard →
consensus → outputs, plus resume, failure policy and exit codes.

The pipeline runs in this process so that every test shares one set of compiled kernels.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_CMC, combined_arrays, compose

from hpcfit.pipelines import xpcs

pytestmark = pytest.mark.slow  # one module fixture runs the whole pipeline (~90 s)


def run(run_dir: Path, *overrides: str) -> int:
    cfg, resolved = compose(*TINY_CMC, *overrides)
    return xpcs.run(cfg, run_dir, resolved)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("reference")
    assert run(run_dir) == 0
    return run_dir


def log_lines(run_dir: Path, text: str) -> list[str]:
    return [ln for ln in (run_dir / "rank-0.log").read_text().splitlines() if text in ln]


def test_outputs_are_complete_and_consistent(reference: Path) -> None:
    import arviz as az

    from hpcfit.io.results import read_results_h5

    record = json.loads((reference / "run.json").read_text())
    assert record["status"] == "ok" and record["exit_code"] == 0
    assert record["cmc"]["n_shards"] == 4 and record["ranks"] == 1
    arrays = combined_arrays(reference)
    theta, names = arrays["draws_theta"], list(arrays["names"])
    assert theta.shape == (2, 40, 8) and arrays["draws_u"].shape == theta.shape
    summary = json.loads((reference / "cmc" / "summary.json").read_text())
    flat = theta.reshape(-1, theta.shape[-1])
    for p, name in enumerate(names):  # statistics come from the draws, unrounded
        stats = summary["parameters"][name]
        assert stats["mean"] == np.mean(flat[:, p])
        assert stats["sd"] == np.std(flat[:, p], ddof=1)
        assert stats["q2.5"] == np.quantile(flat[:, p], 0.025)
    assert {row["name"] for row in summary["nlsq_vs_cmc"]} == set(names)
    assert summary["fixed"]["alpha_ref"] == 0.2
    diagnostics = json.loads((reference / "cmc" / "diagnostics.json").read_text())
    assert [s["shard_id"] for s in diagnostics["shards"]] == [0, 1, 2, 3]
    # one compiled sampler per rank: the first shard compiles it, the other three reuse it
    compiles = [s["attempts"][0]["n_compiles"] for s in diagnostics["shards"]]
    assert compiles[0] > 0 and compiles[1:] == [0, 0, 0], compiles
    assert set(diagnostics["combined"]) == set(names)
    plan = json.loads((reference / "cmc" / "plan.json").read_text())
    assert plan["n_shards"] == 4
    tree = read_results_h5(reference / "results.h5")
    assert np.array_equal(tree["combined"]["draws_theta"], theta)
    assert set(tree["shards"]) == {"00000", "00001", "00002", "00003"}
    assert tree["data_fingerprint"] == record["data"]["fingerprint"]
    post = az.from_netcdf(reference / "posterior.nc")
    try:
        for p, name in enumerate(names):
            assert np.array_equal(post.posterior[name].values, theta[:, :, p])
    finally:
        post.close()
    for png in ("trace.png", "corner.png", "ppc.png"):
        assert (reference / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    assert len(log_lines(reference, "done on rank 0")) == 4  # one progress line per shard


def test_combined_draws_lie_inside_the_bounds(reference: Path) -> None:
    cfg, _ = compose(*TINY_CMC)
    theta = combined_arrays(reference)["draws_theta"]
    space = cfg.model.space()
    phys = theta[..., : len(space.free_index)]
    assert np.all(phys > space.lo[space.free_index]) and np.all(phys < space.hi[space.free_index])


def test_resume_runs_only_missing_shards_bitwise(reference: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "resume"
    shutil.copytree(reference, run_dir)
    for s in (1, 3):
        (run_dir / "cmc" / "shards" / f"shard_{s:05d}.json").unlink()
    (run_dir / "rank-0.log").unlink()
    assert run(run_dir) == 0
    assert len(log_lines(run_dir, "reused from its checkpoint")) == 3  # warm start + 2 shards
    started = log_lines(run_dir, "start shard")
    assert [ln.split("start shard ")[1] for ln in started] == ["1 attempt 0", "3 attempt 0"]
    for key, value in combined_arrays(reference).items():
        assert np.array_equal(combined_arrays(run_dir)[key], value), key


def test_corrupt_or_foreign_checkpoint_is_recomputed(reference: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "corrupt"
    shutil.copytree(reference, run_dir)
    (run_dir / "cmc" / "shards" / "shard_00002.json").write_text("{ truncated")
    (run_dir / "rank-0.log").unlink()
    assert run(run_dir) == 0
    assert log_lines(run_dir, "shard 2 checkpoint not used (corrupt")
    assert np.array_equal(
        combined_arrays(run_dir)["draws_u"], combined_arrays(reference)["draws_u"]
    )
    # another seed changes every fingerprint: nothing is reused, nothing is mixed in
    (run_dir / "rank-0.log").unlink()
    assert run(run_dir, "cmc.seed=1") == 0
    assert len(log_lines(run_dir, "fingerprint mismatch")) == 4


def test_only_the_combiner_changed_reuses_every_shard(reference: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "parametric"
    shutil.copytree(reference, run_dir)
    (run_dir / "rank-0.log").unlink()
    assert run(run_dir, "cmc.combine=parametric") == 0
    assert not log_lines(run_dir, "start shard")
    summary = json.loads((run_dir / "cmc" / "summary.json").read_text())
    assert summary["combine"]["method"] == "parametric" and summary["combine"]["mu_u"]


def test_single_shard_is_the_combined_posterior(tmp_path: Path) -> None:
    assert run(tmp_path, "cmc.n_shards=1") == 0
    with np.load(tmp_path / "cmc" / "shards" / "shard_00000.npz") as shard:
        shard_u = shard["draws_u"]
    assert np.array_equal(combined_arrays(tmp_path)["draws_u"], shard_u)


def test_raising_shard_is_excluded_by_policy(tmp_path: Path, monkeypatch) -> None:
    from hpcfit.pipelines import shards as driver

    real = driver.run_attempt

    def flaky(*args, shard_id, **kwargs):
        if shard_id == 2:
            raise FloatingPointError("injected failure")
        return real(*args, shard_id=shard_id, **kwargs)

    monkeypatch.setattr(driver, "run_attempt", flaky)
    assert run(tmp_path, "cmc.on_shard_failure=exclude", "cmc.checkpoint.enabled=false") == 0
    diagnostics = json.loads((tmp_path / "cmc" / "diagnostics.json").read_text())
    exclusions = diagnostics["exclusions"]
    assert exclusions["excluded_ids"] == [2] and exclusions["prior_exponent"] == 0.75
    assert "FloatingPointError: injected failure" in exclusions["reasons"]["2"]
    shard2 = diagnostics["shards"][2]
    assert shard2["status"] == "excluded" and len(shard2["attempts"]) == 1
    assert "FloatingPointError" in shard2["attempts"][0]["traceback"]
    assert json.loads((tmp_path / "cmc" / "summary.json").read_text())["combine"][
        "used_shards"
    ] == [0, 1, 3]


def test_a_checkpoint_without_room_costs_only_the_resume(
    tmp_path: Path, reference: Path, monkeypatch
) -> None:
    """A full disk while a shard is checkpointed: a warning naming the shard, the job goes on
    and its draws are those of the reference run."""
    import errno

    from hpcfit.io import atomic

    real = atomic.write_atomic

    def full_for_shard_1(path, write):
        if "shard_00001" in str(path):
            raise atomic.no_room(Path(path), OSError(errno.ENOSPC, "No space left on device"))
        return real(path, write)

    monkeypatch.setattr(atomic, "write_atomic", full_for_shard_1)
    assert run(tmp_path) == 0
    lines = log_lines(tmp_path, "shard 1 checkpoint not written")
    assert len(lines) == 1 and "no space left on the device (ENOSPC)" in lines[0]
    assert not (tmp_path / "cmc" / "shards" / "shard_00001.json").exists()
    assert (tmp_path / "cmc" / "shards" / "shard_00002.json").exists()
    for key, value in combined_arrays(reference).items():
        assert np.array_equal(combined_arrays(tmp_path)[key], value), key


def test_too_many_exclusions_exit_3(tmp_path: Path, monkeypatch) -> None:
    from hpcfit.pipelines import shards as driver

    def broken(*args, **kwargs):
        raise RuntimeError("every shard fails")

    monkeypatch.setattr(driver, "run_attempt", broken)
    code = run(tmp_path, "cmc.on_shard_failure=retry", "cmc.max_retries=1")
    assert code == 3
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["exit_code"] == 3 and "no shard is left" in record["message"]
    shard0 = json.loads((tmp_path / "cmc" / "shards" / "shard_00000.json").read_text())
    attempts = shard0["attempts"]
    assert [a["num_warmup"] for a in attempts] == [60, 120]
    assert [a["target_accept"] for a in attempts] == [0.9, 0.9450000000000001]
    assert not (tmp_path / "cmc" / "combined.npz").exists()


def test_abort_policy_stops_at_the_first_failure(tmp_path: Path, monkeypatch) -> None:
    from hpcfit.pipelines import shards as driver

    monkeypatch.setattr(driver, "run_attempt", lambda *a, **k: 1 / 0)
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, "cmc.on_shard_failure=abort")
    assert exc.value.code == 3
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["exit_code"] == 3 and record["message"].startswith("shard 0:")
    assert (tmp_path / "cmc" / "shards" / "shard_00000.json").exists()
    assert not (tmp_path / "cmc" / "shards" / "shard_00001.json").exists()


def test_unusable_warm_start_stops_before_sampling(tmp_path: Path, monkeypatch) -> None:
    import hpcfit.xpcs.nlsq as nlsq
    from hpcfit.records import WarmStartFlag

    real = nlsq.fit

    def stuck(*args, **kwargs):
        result = real(*args, **kwargs)
        return type(result)(**{**result.__dict__, "flags": (WarmStartFlag.no_progress,)})

    monkeypatch.setattr(nlsq, "fit", stuck)
    assert run(tmp_path, "cmc.checkpoint.enabled=false") == 4
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "warm_start_unusable" and "no_progress" in record["message"]
    assert not (tmp_path / "cmc").exists()
    # without the requirement, CMC starts cold from the configured values
    assert run(tmp_path / "cold", "cmc.require_warm_start=false", "cmc.n_shards=2") == 0
    record = json.loads((tmp_path / "cold" / "run.json").read_text())
    assert record["cmc"]["preconditioner"] == "cold"


def test_quantities_the_warm_start_does_not_identify_are_named() -> None:
    from hpcfit.pipelines.xpcs_job import identification_note

    assert identification_note(()) is None
    note = identification_note(("D0_sample", "alpha_sample"))
    assert note is not None and note.startswith("CMC: the warm start does not identify D0_sample")
    assert "prior width" in note and "model.fixed" in note
