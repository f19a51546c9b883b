"""Strict test environment.

* float64 and four virtual host devices, set in the environment *before* JAX is imported (the
  device count is read once, when the backend starts);
* implicit rank promotion raises, so a silent broadcast in library code fails a test;
* warnings are errors (``filterwarnings = ["error"]`` in pyproject.toml);
* under ``--with-mpi`` every rank has its own base temporary directory, and the first failed
  report aborts the whole MPI job, so a failing rank can neither deadlock the others nor pair
  its next barrier with another test's.
"""

from __future__ import annotations

from hpcfit.runtime.process import configure

configure(device_count=4)

import os  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Under ``--with-mpi`` each rank gets its own base temporary directory: ranks sharing
    pytest's numbered ``pytest-of-<user>`` root delete each other's directories while cleaning
    up (seen as an unclosed-scandir ResourceWarning at exit)."""
    if not config.getoption("with_mpi", default=False) or config.option.basetemp is not None:
        return
    rank = next(
        (
            os.environ[v]
            for v in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
            if v in os.environ
        ),
        "0",
    )
    root = Path(tempfile.gettempdir()) / f"pytest-mpi-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)  # pytest creates basetemp itself, not its parent
    config.option.basetemp = root / f"job{os.getppid()}-rank{rank}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and item.config.getoption("with_mpi", default=False):
        try:
            from hpcfit.parallel.comm import abort_world_if_parallel  # no-op when size == 1
        except ImportError:
            return report
        abort_world_if_parallel(f"{item.nodeid} failed ({report.when})", report.longreprtext)
    return report
