"""``run.json``: resolved configuration, versions, seeds, data fingerprint and exit status."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hpcfit.io.atomic import write_json

PACKAGES = (
    "hpcfit",
    "jax",
    "jaxlib",
    "numpyro",
    "nlsq",
    "numpy",
    "scipy",
    "h5py",
    "hydra-core",
    "omegaconf",
    "arviz",
    "matplotlib",
    "mpi4py",
    "mpich",
)


def versions() -> dict[str, str | None]:
    """Installed versions of hpcfit's stack (None if absent) and Python's."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git_revision() -> dict[str, Any]:
    """The source tree's commit and dirty flag when running from a git checkout, else nulls."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            != ""
        )
        return {"sha": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}


class RunRecord:
    """Accumulates the facts of one run and writes ``run.json`` atomically."""

    def __init__(self, run_dir: Path, resolved_config: dict[str, Any], seeds: dict[str, Any]):
        self.run_dir = Path(run_dir)
        self.started = time.time()
        self.facts: dict[str, Any] = {
            "hpcfit_run": 1,
            "status": "running",
            "exit_code": None,
            "message": None,
            "run_dir": str(self.run_dir),
            "argv": list(sys.argv),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "ranks": 1,
            "started_unix": self.started,
            "versions": versions(),
            "git": git_revision(),
            "seeds": seeds,
            "data": None,
            "config": resolved_config,
        }

    def set(self, **facts: Any) -> None:
        self.facts.update(facts)

    def start(self, n_ranks: int) -> Path:
        """Write ``run.json`` now, state ``running``: a run that dies leaves this, never an
        earlier run's record. ``launcher`` says who started the ranks (and with which pid)."""
        from hpcfit.io.run_dir import OWNER_ENV

        if os.environ.get(OWNER_ENV):
            launcher = f"hpcfit (pid {os.getppid()})"
        elif n_ranks > 1:
            launcher = "mpiexec/srun"
        else:
            launcher = "none (one process)"
        self.facts.update(ranks=n_ranks, launcher=launcher)
        return write_json(self.run_dir / "run.json", self.facts)

    def finish(self, status: str, exit_code: int, message: str | None = None) -> Path:
        self.facts.update(
            status=status, exit_code=exit_code, message=message, wall_s=time.time() - self.started
        )
        return write_json(self.run_dir / "run.json", self.facts)
