"""From the ``data`` configuration group to a validated :class:`XpcsData` (pipeline stage 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpcfit.config import EmbeddedData, FileData, SyntheticData
from hpcfit.errors import DataError
from hpcfit.xpcs.data import Selection, select
from hpcfit.xpcs.dataset import XpcsData
from hpcfit.xpcs.layouts import RawData, read_file
from hpcfit.xpcs.synthetic import SyntheticSpec, embedded, generate


def require_file(cfg: EmbeddedData | FileData | SyntheticData) -> Path | None:
    """The data file of a ``file`` configuration (None otherwise); DataError if it is missing.

    Cheap: the launcher calls it before starting ranks.
    """
    if not isinstance(cfg, FileData):
        return None
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: data.path: file not found (expected an existing .h5/.npz)")
    return path


def load_configured(cfg: EmbeddedData | FileData | SyntheticData) -> XpcsData:
    """Load, select and validate the configured dataset; raises :class:`DataError`."""
    path = require_file(cfg)
    if isinstance(cfg, FileData):
        assert path is not None
        raw = read_file(path, layout=cfg.layout.value, keys=cfg.keys)
        dt, dt_source = (cfg.dt, "data.dt") if cfg.dt is not None else (_file_dt(raw, path), "t")
        data = select(
            raw,
            Selection(
                q=cfg.q,
                q_select=cfg.q_select.value,
                q_tolerance=cfg.q_tolerance,
                phi=None if cfg.phi is None else tuple(cfg.phi),
                phi_ranges=None if cfg.phi_ranges is None else tuple(map(tuple, cfg.phi_ranges)),
                phi_tolerance=cfg.phi_tolerance,
                start_frame=cfg.start_frame,
                end_frame=cfg.end_frame,
            ),
            dt=dt,
            source=str(path),
        )
        data.provenance["dt_source"] = dt_source
        return data
    if isinstance(cfg, SyntheticData):
        n_phi = len(cfg.phi)
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
    raw = RawData(full.c2, full.q, full.phi, None, full.sigma, "embedded", None)
    window = select(
        raw,
        Selection(start_frame=cfg.start_frame, end_frame=cfg.end_frame),
        dt=full.dt,
        source="embedded",
    )
    return XpcsData(**{**window.__dict__, "provenance": {**full.provenance, **window.provenance}})


def _file_dt(raw: RawData, path: Path) -> float:
    """The frame interval from the file's time axis (median spacing), when data.dt is unset."""
    t = raw.t_file
    if t is None or t.size < 2:
        raise DataError(
            f"{path}: data.dt: not set and the file has no time axis; "
            "expected data.dt=<frame interval in s>"
        )
    dt = float(np.median(np.diff(t)))
    if not (np.isfinite(dt) and dt > 0):
        raise DataError(f"{path}: t: median spacing is {dt}; expected a strictly increasing axis")
    return dt
