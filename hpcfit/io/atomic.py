"""Atomic file writes: a temporary file in the target directory, flush + fsync, ``os.replace``."""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Create ``path`` atomically from ``write(fileobj)``; a crash leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, file_mode())  # mkstemp creates 0600; results are shared like any new file
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@functools.cache
def file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 minus the process umask (read once)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomic JSON with full float precision (Python's shortest round-trip repr)."""
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    return write_atomic(path, lambda fh: fh.write(text.encode()))


def write_npz(path: str | Path, **arrays: Any) -> Path:
    """Atomic ``numpy.savez``."""
    import numpy as np

    return write_atomic(path, lambda fh: np.savez(fh, **arrays))
