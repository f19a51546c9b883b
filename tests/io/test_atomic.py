"""Atomic writes when the file system refuses room: a one-line RunDirError naming the file, the
file it would replace intact and no temporary left; through the console script, exit 2."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpcfit.errors import RunDirError
from hpcfit.io.atomic import no_room, write_atomic, write_atomic_path


@pytest.mark.parametrize(
    ("exc", "name"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "ENOSPC"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "EDQUOT"),
        (OSError(errno.EROFS, "Read-only file system"), "EROFS"),
        # HDF5's message carries the system error as text only
        (
            OSError(
                "Can't write data (file write failed: errno = 28, error message = 'No space "
                "left on device')"
            ),
            "ENOSPC",
        ),  # fmt: skip
    ],
)
def test_no_room_names_the_file_and_the_reason(exc: OSError, name: str) -> None:
    err = no_room(Path("/d/results.h5"), exc)
    assert isinstance(err, RunDirError)
    assert str(err).startswith("/d/results.h5: cannot write: ") and f"({name})" in str(err)


def test_other_errors_are_not_about_room() -> None:
    assert no_room(Path("x"), OSError(errno.EIO, "Input/output error")) is None
    assert no_room(Path("x"), ValueError("No space left on device")) is None


@pytest.mark.parametrize("writer", ["fileobj", "path"])
def test_a_refused_write_keeps_the_old_file(tmp_path: Path, writer: str) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")

    def full(_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(RunDirError, match="out.json: cannot write: no space left"):
        (write_atomic if writer == "fileobj" else write_atomic_path)(target, full)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def _under_file_size_limit(limit: int, argv: list[str]) -> list[str]:
    """``argv`` run by a small Python that first limits file sizes to ``limit`` bytes (writes
    past it fail with EFBIG: SIGXFSZ is ignored, which exec keeps) and then execs it; no
    ``preexec_fn``, so the test process (which has JAX threads) never forks Python code."""
    setup = (
        "import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    return [sys.executable, "-c", setup, *argv]


@pytest.mark.timeout(300)
def test_an_output_without_room_exits_2_with_one_line(tmp_path: Path) -> None:
    """Files above 40 kB cannot be written (RLIMIT_FSIZE, as a full disk would refuse them):
    the first c2 plot fails; one line names it, run.json says failed/2, no temporary remains."""
    argv = [sys.executable, "-m", "hpcfit", "data=synthetic", "data.n_frames=30",
            "cmc.enabled=false", "hydra.run.dir=out"]  # fmt: skip
    env = {**os.environ, "HPCFIT_RUN_ID": "room"}
    proc = subprocess.run(_under_file_size_limit(40_000, argv), cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=280)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"hpcfit: error: {tmp_path / 'out' / 'plots'}/c2_slot0.png: ")
    assert "cannot write: file too large for the file system's limit (EFBIG)" in lines[0]
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["status"] == "failed" and record["exit_code"] == 2
    assert not list((tmp_path / "out").rglob("*.tmp"))
