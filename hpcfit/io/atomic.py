"""Atomic file writes: a temporary file in the target directory, flush + fsync, ``os.replace``.

A write the file system refuses for lack of room (a full disk, a quota, a file-size limit, a
read-only mount) becomes a one-line :class:`~hpcfit.errors.RunDirError` naming the file: the job
ends with exit 2 instead of a traceback, and the file it would have replaced is intact.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from hpcfit.errors import RunDirError

NO_ROOM = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system's limit",
    errno.EROFS: "read-only file system",
}
# HDF5 reports the system error only in its message text
_NO_ROOM_TEXT = {
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "File too large": errno.EFBIG,
    "Read-only file system": errno.EROFS,
}


def no_room(path: Path, exc: BaseException) -> RunDirError | None:
    """The one-line error for ``exc`` when it is the file system refusing room, else None."""
    if not isinstance(exc, OSError):
        return None
    code = exc.errno if exc.errno in NO_ROOM else None
    if code is None:
        code = next((c for text, c in _NO_ROOM_TEXT.items() if text in str(exc)), None)
    if code is None:
        return None
    return RunDirError(
        f"{path}: cannot write: {NO_ROOM[code]} ({errno.errorcode[code]}); free space (or set "
        "hydra.run.dir elsewhere) and run again: a re-run in this directory reuses the "
        "checkpoints already written"
    )


def _temporary(path: Path) -> tuple[int, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, file_mode())  # mkstemp creates 0600; results are shared like any new file
    return fd, Path(tmp)


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Create ``path`` atomically from ``write(fileobj)``; a crash leaves the old file intact."""

    def fill(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            write(fh)

    return write_atomic_path(path, fill)


def write_atomic_path(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Create ``path`` atomically from ``write(tmp_path)`` (a temporary file in the same
    folder, filled, fsynced, then moved over ``path``), for writers that need a file name (HDF5,
    netCDF); on any error the temporary is removed and ``path`` left as it was."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = _temporary(path)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise (no_room(path, exc) or exc) from None
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
