"""How much memory a rank may use: the cgroup's room (v1 and v2 layouts written as the kernel
shows them), a configured limit, and the one-line clause of a size check."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hpcfit.runtime import memory


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_room_is_limit_minus_usage(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "job_7" / "step_0" / "memory.max", "4294967296\n")
    write(root / "job_7" / "step_0" / "memory.current", "1073741824\n")
    write(tmp_path / "self", "0::/job_7/step_0\n")
    assert memory._cgroup_room_bytes(tmp_path / "self", root) == 3 * 2**30


def test_cgroup_v2_without_limit_and_namespaced_root(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "memory.max", "max\n")
    write(tmp_path / "self", "0::/\n")
    assert memory._cgroup_room_bytes(tmp_path / "self", root) == math.inf
    # a namespaced view names a group that is not mounted here: the nearest parent decides
    write(root / "memory.max", "2147483648\n")
    write(root / "memory.current", "0\n")
    write(tmp_path / "self", "0::/not/mounted\n")
    assert memory._cgroup_room_bytes(tmp_path / "self", root) == 2**31


def test_cgroup_v1_memory_controller(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "memory" / "slurm" / "memory.limit_in_bytes", "1000\n")
    write(root / "memory" / "slurm" / "memory.usage_in_bytes", "400\n")
    write(tmp_path / "self", "5:cpu,cpuacct:/slurm\n4:memory:/slurm\n0::/\n")
    assert memory._cgroup_room_bytes(tmp_path / "self", root) == 600
    write(root / "memory" / "slurm" / "memory.limit_in_bytes", "9223372036854771712\n")
    assert memory._cgroup_room_bytes(tmp_path / "self", root) == math.inf  # v1's "no limit"


def test_configured_limit_wins_and_the_clause_names_it() -> None:
    assert memory.limit_mb(512.0) == (512.0, "mpi.memory_limit_mb")
    held = memory.current_mb()  # the estimate adds what the process holds already
    assert memory.over_limit(1.0, held + 100.0) is None
    clause = memory.over_limit(2048.0, 512.0)
    assert clause == (
        f"about {held + 2048.0:,.0f} MB, more than the 512 MB this rank can have "
        "(mpi.memory_limit_mb)"
    )


def test_measured_limit_holds_what_the_process_has() -> None:
    limit, source = memory.limit_mb()
    if math.isnan(limit):
        pytest.skip("no /proc/meminfo or cgroup here (not Linux)")
    assert limit >= memory.current_mb() and source in {
        "available memory",
        "the cgroup's memory limit",
    }
