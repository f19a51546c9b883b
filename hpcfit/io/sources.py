"""From the ``data`` configuration group to a validated :class:`XpcsData` (pipeline stage 4)."""

from __future__ import annotations

import errno
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from hpcfit.config import EmbeddedData, FileData, SyntheticData
from hpcfit.errors import AdviceWarning, DataError
from hpcfit.runtime.memory import over_limit
from hpcfit.xpcs.data import Selection, select, selection_mb
from hpcfit.xpcs.dataset import XpcsData
from hpcfit.xpcs.layouts import FileIndex, in_memory, index_file
from hpcfit.xpcs.synthetic import SyntheticSpec, embedded, generate


def require_file(cfg: EmbeddedData | FileData | SyntheticData) -> Path | None:
    """The data file of a ``file`` configuration (None otherwise); DataError if it is missing.

    Cheap: the launcher calls it before starting ranks.
    """
    if not isinstance(cfg, FileData):
        return None
    path = Path(cfg.path).expanduser()
    if path.is_dir():
        raise DataError(f"{path}: data.path: is a directory (expected an .h5/.npz file in it)")
    if path.is_symlink() and not path.exists():
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python < 3.13
            reason = "a symbolic link loop"
        except OSError as exc:
            loop = exc.errno == errno.ELOOP or "loop" in str(exc).lower()
            reason = "a symbolic link loop" if loop else "a broken link"
        else:
            reason = "a broken link"
        raise DataError(f"{path}: data.path: {reason} (expected an existing .h5/.npz file)")
    if not path.is_file():
        raise DataError(f"{path}: data.path: file not found (expected an existing .h5/.npz)")
    return path


DT_AGREE_RTOL = 1e-6


def size_check(source: str, memory_limit_mb: float | None, hint: str):
    """``check(n_slots, n_frames)``: a DataError before the data is made when the selection
    would need more memory than this rank can have (:func:`hpcfit.runtime.memory.limit_mb`)."""

    def check(n_slots: int, n_frames: int) -> None:
        need = over_limit(selection_mb(n_slots, n_frames), memory_limit_mb)
        if need is not None:
            points = n_slots * n_frames * (n_frames - 1) // 2
            raise DataError(
                f"{source}: the selection of {n_slots} bin(s) × {n_frames} frames "
                f"({points:,} points) needs {need}; {hint}, or set mpi.memory_limit_mb"
            )

    return check


def load_configured(
    cfg: EmbeddedData | FileData | SyntheticData, memory_limit_mb: float | None = None
) -> XpcsData:
    """Load, select and validate the configured dataset; raises :class:`DataError`.

    The selection's size is checked against ``memory_limit_mb`` (None: what this rank can
    have, measured) before any matrix is read or generated.
    """
    path = require_file(cfg)
    if isinstance(cfg, FileData):
        assert path is not None
        index = index_file(path, layout=cfg.layout.value, keys=cfg.keys)
        sink: list[str] = []
        dt, dt_source = resolve_dt(cfg.dt, index, sink)
        data = select(
            replace(index, warnings=index.warnings + tuple(sink)),
            Selection(
                q=cfg.q,
                q_select=cfg.q_select.value,
                q_tolerance=cfg.q_tolerance,
                q_max_rel_distance=cfg.q_max_rel_distance,
                phi=None if cfg.phi is None else tuple(cfg.phi),
                phi_ranges=None if cfg.phi_ranges is None else tuple(map(tuple, cfg.phi_ranges)),
                phi_tolerance=cfg.phi_tolerance,
                start_frame=cfg.start_frame,
                end_frame=cfg.end_frame,
                frame_stride=cfg.frame_stride,
            ),
            dt=dt,
            source=str(path),
            check_size=size_check(
                str(path),
                memory_limit_mb,
                "select fewer bins or frames (data.q, data.phi, data.end_frame, data.frame_stride)",
            ),
        )
        data.provenance["dt_source"] = dt_source
        data.provenance["dt_file"] = index.dt_file
        return data
    if isinstance(cfg, SyntheticData):
        n_phi = len(cfg.phi)
        hint = "lower data.n_frames or the angles in data.phi"
        size_check("synthetic data", memory_limit_mb, hint)(n_phi, cfg.n_frames)
        per_slot = lambda v: tuple(np.broadcast_to(np.asarray(v, float), (n_phi,)))  # noqa: E731
        return generate(
            SyntheticSpec(
                truth=tuple(cfg.truth),
                phi=tuple(cfg.phi),
                contrast=per_slot(cfg.contrast),
                offset=per_slot(cfg.offset),
                sigma=per_slot(cfg.sigma),
                q=cfg.q,
                n_frames=cfg.n_frames,
                dt=cfg.dt,
                start_frame=cfg.start_frame,
                seed=cfg.seed,
            )
        )
    full = embedded()
    if cfg.start_frame == 1 and cfg.end_frame is None:
        return full
    index = in_memory(
        full.c2, full.q, full.phi, path="embedded", layout="embedded", sigma=full.sigma
    )
    window = select(
        index,
        Selection(start_frame=cfg.start_frame, end_frame=cfg.end_frame),
        dt=full.dt,
        source="embedded",
    )
    return XpcsData(**{**window.__dict__, "provenance": {**full.provenance, **window.provenance}})


def resolve_dt(configured: float | None, index: FileIndex, sink: list[str]) -> tuple[float, str]:
    """The frame interval and where it came from: ``data.dt`` when given (a warning when the
    file states another value), else the file's own (see :func:`hpcfit.xpcs.layouts.index_file`).
    """
    src = index.path
    if configured is not None:
        file_dt = index.dt_file
        if file_dt is not None and abs(configured - file_dt) > DT_AGREE_RTOL * file_dt:
            msg = (
                f"{src}: data.dt = {configured:.9g} s differs from the file's {file_dt:.9g} s "
                f"({index.dt_source}); data.dt is used"
            )
            sink.append(msg)
            warnings.warn(msg, AdviceWarning, stacklevel=2)
        return float(configured), "data.dt"
    if index.dt_file is None:
        raise DataError(
            f"{src}: data.dt: not set and the file states no frame interval "
            f"({index.dt_source}); expected data.dt=<frame interval in s>"
        )
    return index.dt_file, index.dt_source
