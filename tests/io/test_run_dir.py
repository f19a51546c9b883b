"""One owner per run directory and the run record's final state: the lock, the clean start,
``mark_ended`` and stale ``running`` records; the console script where users meet them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY_CMC

from hpcfit.io.run_dir import (
    LOCK_NAME,
    claim,
    mark_ended,
    read_record,
    stale_running,
)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_claim_fails_naming_the_holder(tmp_path: Path) -> None:
    owner = claim(tmp_path)
    script = (
        "import sys; from hpcfit.io.run_dir import claim, RunDirBusy\n"
        "try:\n    claim(sys.argv[1])\nexcept RunDirBusy as e:\n    print(e); sys.exit(2)\n"
    )
    other = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True)
    assert other.returncode == 2
    assert f"in use by pid {os.getpid()} on {socket.gethostname()}" in other.stdout.decode()
    owner.release()
    assert subprocess.run([sys.executable, "-c", script, str(tmp_path)]).returncode == 0


def test_claim_moves_an_earlier_runs_outputs_and_keeps_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(
        json.dumps({"status": "ok", "started_unix": 1_700_000_000.0, "pid": 1})
    )
    (tmp_path / "results.h5").write_bytes(b"old")
    (tmp_path / "cmc" / "shards").mkdir(parents=True)
    (tmp_path / "cmc" / "shards" / "shard_00000.json").write_text("{}")
    (tmp_path / "cmc" / "diagnostics.json").write_text("{}")
    (tmp_path / "rank-0.log").write_text("old log\n")
    (tmp_path / ".results.h5.x1y2.tmp").write_bytes(b"partial")
    owner = claim(tmp_path)
    owner.release()
    moved = list((tmp_path / "previous").iterdir())
    assert len(moved) == 1 and moved[0].name.endswith("-ok")
    assert (moved[0] / "results.h5").read_bytes() == b"old"
    assert (moved[0] / "cmc" / "diagnostics.json").exists()
    assert not (tmp_path / "run.json").exists() and not (tmp_path / "results.h5").exists()
    assert (tmp_path / "cmc" / "shards" / "shard_00000.json").exists()  # resumable
    assert (tmp_path / "rank-0.log").exists() and (tmp_path / LOCK_NAME).exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_mark_ended_finishes_only_a_running_record(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"status": "running", "started_unix": 1.0}))
    assert mark_ended(tmp_path, "killed", 137, "rank 1 died")
    record = read_record(tmp_path)
    assert (record["status"], record["exit_code"], record["message"]) == (
        "killed",
        137,
        "rank 1 died",
    )
    assert not mark_ended(tmp_path, "failed", 1, "later")  # a final state stays
    assert read_record(tmp_path)["status"] == "killed"


def test_a_running_record_of_a_dead_process_is_stale() -> None:
    host = socket.gethostname()
    assert stale_running({"status": "running", "pid": dead_pid(), "host": host})
    assert not stale_running({"status": "running", "pid": os.getpid(), "host": host})
    assert not stale_running({"status": "ok", "pid": dead_pid(), "host": host})
    assert not stale_running({"status": "running", "pid": dead_pid(), "host": "elsewhere"})


def hpcfit(cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HPCFIT_RUN_ID": "t", "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "hpcfit", *args]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kw)


WARM_ONLY = ("data=synthetic", "data.n_frames=24", "cmc.enabled=false", "hydra.run.dir=out")


@pytest.mark.timeout(600)
def test_a_run_in_a_busy_directory_stops_at_once(tmp_path: Path) -> None:
    owner = claim(tmp_path / "out")
    try:
        t0 = time.monotonic()
        proc = hpcfit(tmp_path, *WARM_ONLY)
        assert time.monotonic() - t0 < 60
    finally:
        owner.release()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"hpcfit: error: {tmp_path / 'out'}: run directory in use by pid {os.getpid()} on "
        f"{socket.gethostname()} since "
        + proc.stderr.split(" since ")[1].split(";")[0]
        + "; wait for it to end or choose another hydra.run.dir"
    ]
    assert not (tmp_path / "out" / "run.json").exists()


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_a_rerun_with_other_settings_does_not_mix_outputs(tmp_path: Path) -> None:
    first = hpcfit(tmp_path, *WARM_ONLY)
    assert first.returncode == 0, first.stderr
    second = hpcfit(tmp_path, *WARM_ONLY, "nlsq.scaling=fit")
    assert second.returncode == 0, second.stderr
    out = tmp_path / "out"
    assert read_record(out)["config"]["nlsq"]["scaling"] == "fit"
    (previous,) = (out / "previous").iterdir()
    assert json.loads((previous / "run.json").read_text())["config"]["nlsq"]["scaling"] == "profile"
    assert (previous / "plots").is_dir()


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_sigterm_leaves_a_killed_record_not_the_previous_success(tmp_path: Path) -> None:
    """A finished run, then a CMC re-run in the same directory stopped by SIGTERM while it
    samples: exit 143, and run.json says killed (the finished run's record is in previous/)."""
    args = (*TINY_CMC, "hydra.run.dir=out")
    assert hpcfit(tmp_path, *WARM_ONLY).returncode == 0
    env = {**os.environ, "HPCFIT_RUN_ID": "t", "PYTHONUNBUFFERED": "1"}
    job = subprocess.Popen(
        [sys.executable, "-m", "hpcfit", *args, "cmc.target_accept=0.8"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    log_path = tmp_path / "out" / "rank-0.log"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and "start shard 0" not in (
        log_path.read_text() if log_path.exists() else ""
    ):
        time.sleep(0.2)
    assert read_record(tmp_path / "out")["status"] == "running"
    job.send_signal(signal.SIGTERM)
    out, _ = job.communicate(timeout=300)
    assert job.returncode == 143, out
    record = read_record(tmp_path / "out")
    assert (record["status"], record["exit_code"]) == ("killed", 143), record
    assert record["config"]["cmc"]["target_accept"] == 0.8
    assert "Traceback" not in out and "stopped by SIGTERM" in out


@pytest.mark.parametrize("ranks", ["1", "2"])
def test_a_shard_past_its_time_limit_stops_the_job_with_a_record(tmp_path: Path, ranks) -> None:
    """A frozen rank cannot hang the job: ``cmc.shard_time_limit_s`` ends it with status 3, a
    line naming rank and shard, and ``run.json`` saying which shard ran out of time."""
    t0 = time.monotonic()
    limit = ("cmc.shard_time_limit_s=0.5", "cmc.checkpoint.enabled=false")
    proc = hpcfit(tmp_path, *TINY_CMC, *limit, f"mpi.ranks={ranks}", "hydra.run.dir=out")
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert time.monotonic() - t0 < 240
    logs = "".join(p.read_text() for p in sorted((tmp_path / "out").glob("rank-*.log")))
    said = proc.stdout + proc.stderr + logs
    assert "stage sample, shard" in said and "cmc.shard_time_limit_s = 0.5 s" in said, said
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["status"] == "shard_failed" and record["exit_code"] == 3, record
    assert "exceeded cmc.shard_time_limit_s" in record["message"], record
