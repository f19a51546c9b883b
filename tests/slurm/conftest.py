"""A real one-node Slurm cluster for the tests in this folder.

``slurm/local/start.sh DIR`` brings it up once per test session (munged, slurmctld and slurmd
daemonised, state, spool, logs and pid files in DIR, the node line from ``slurmd -C``) and
``slurm/local/stop.sh DIR`` ends it by those pid files in teardown, also after a failure.

Without root or without Slurm installed the tests skip with the reason (``pytest -rs`` shows
it); ``HPCFIT_REQUIRE_SLURM=1`` (CI) turns that skip into a failure. ``make test`` installs
``slurm-wlm`` and ``munge`` first where it runs as root with apt (``make slurm-deps``).

Every wait has a deadline; a job that fails or overruns fails its test with
``scontrol show job`` and the job's output in the assertion message, and is cancelled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TERMINAL = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
}
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "sinfo")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.slurm)


def _which(name: str) -> str | None:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    return found


def unavailable_reason() -> str | None:
    """Why this machine cannot run the cluster, or None."""
    if os.geteuid() != 0:
        return "needs root to start slurmd"
    missing = [name for name in DAEMONS if _which(name) is None]
    if missing:
        return (
            f"Slurm is not installed ({', '.join(missing)} not found); as root, "
            "`make slurm-deps` installs Debian's slurm-wlm and munge"
        )
    return None


def skip_or_fail(reason: str) -> None:
    if os.environ.get("HPCFIT_REQUIRE_SLURM") == "1":
        pytest.fail(f"HPCFIT_REQUIRE_SLURM=1 but the Slurm tests cannot run: {reason}")
    pytest.skip(reason)


def _tail(path: Path, lines: int = 80) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"({path}: {exc})"
    return "\n".join(text[-lines:])


@dataclass
class Cluster:
    """The running test cluster: environment for client commands and job helpers."""

    directory: Path
    env: dict[str, str]

    def run(self, *argv: str, timeout: float = 30, check: bool = True, **kw):
        proc = subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True, timeout=timeout, **kw
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def sbatch(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
        """Submit (``sbatch --parsable`` + args) from ``cwd``; returns the job id."""
        proc = subprocess.run(
            ["sbatch", "--parsable", *args],
            cwd=cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, f"sbatch {' '.join(args)} failed:\n{proc.stderr}"
        return proc.stdout.strip().split(";")[0]

    def jobs(self, job_id: str) -> list[dict[str, str]]:
        """``scontrol show job -o`` as one dict per job (several for an array)."""
        out = self.run("scontrol", "show", "job", "-o", job_id, check=False).stdout
        records = []
        for line in out.splitlines():
            fields = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
            if fields:
                records.append(fields)
        return records

    def report(self, job_id: str) -> str:
        """``scontrol show job`` plus the tail of every job's output files (for messages)."""
        parts = [self.run("scontrol", "show", "job", job_id, check=False).stdout]
        seen = set()
        for rec in self.jobs(job_id):
            for key in ("StdOut", "StdErr"):
                path = rec.get(key)
                if path and path not in seen:
                    seen.add(path)
                    parts.append(f"--- {key} {path}\n{_tail(Path(path))}")
        parts.append(f"--- slurmd log\n{_tail(self.directory / 'log' / 'slurmd.log', 15)}")
        return "\n".join(parts)

    def wait(self, job_id: str, timeout: float, until=None) -> list[dict[str, str]]:
        """Poll every 0.5 s until ``until(records)`` (default: every job terminal); on timeout
        cancel the job and fail with its report."""
        until = until or (lambda recs: recs and all(r["JobState"] in TERMINAL for r in recs))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = self.jobs(job_id)
            if until(records):
                return records
            time.sleep(0.5)
        report = self.report(job_id)
        self.run("scancel", job_id, check=False)
        raise AssertionError(f"job {job_id} did not get there within {timeout:.0f} s\n{report}")

    def assert_completed(self, job_id: str, timeout: float) -> list[dict[str, str]]:
        records = self.wait(job_id, timeout)
        bad = [r for r in records if (r["JobState"], r["ExitCode"]) != ("COMPLETED", "0:0")]
        assert not bad, f"job {job_id} did not complete cleanly\n{self.report(job_id)}"
        return records


def job_env(directory: Path) -> dict[str, str]:
    """The submitting shell's environment: the venv's bin/ first (sbatch exports it), this
    cluster's slurm.conf, and none of the test process's JAX settings or run id."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "PMI_", "XLA_", "JAX_", "PYTEST_")) and k != "HPCFIT_RUN_ID"
    }
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/sbin:{env.get('PATH', '/usr/bin:/bin')}"
    env["SLURM_CONF"] = str(directory / "slurm.conf")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session")
def slurm_cluster() -> Cluster:
    reason = unavailable_reason()
    if reason:
        skip_or_fail(reason)
    directory = Path(tempfile.mkdtemp(prefix="hpcfit-slurm-"))
    env = job_env(directory)
    start = subprocess.run(
        ["bash", str(REPO / "slurm/local/start.sh"), str(directory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    cluster = Cluster(directory, env)
    try:
        if start.returncode != 0:
            pytest.fail(f"slurm/local/start.sh failed:\n{start.stdout}\n{start.stderr}")
        yield cluster
    finally:
        subprocess.run(
            ["bash", str(REPO / "slurm/local/stop.sh"), str(directory)],
            env=env,
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(directory, ignore_errors=True)
