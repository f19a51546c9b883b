"""The crossover benchmark on a host without an accelerator: one line,
exit status 0, no record written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_crossover_benchmark_exits_0_without_a_gpu(tmp_path: Path) -> None:
    import jax

    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("a GPU is visible: the sweep would run")
    env = {**os.environ, "HPCFIT_BENCH_RESULTS": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "device_crossover.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines() == [
        "device_crossover: no GPU is visible to JAX on this host; nothing to compare"
    ]
    assert list(tmp_path.iterdir()) == []
