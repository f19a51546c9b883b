"""Selection, frame slicing and validation of XPCS data (model spec §7.3–7.5).

``load`` = ``read_file`` (:mod:`hpcfit.xpcs.layouts`) + ``select``: q selection, then angle
selection, then frame slicing, then ``validate``. Every failure is a one-line
:class:`~hpcfit.errors.DataError` naming the file, the field and what was expected; warnings go
through :func:`warnings.warn` (UserWarning) and are recorded in ``provenance["warnings"]``.

Decisions where the spec is silent:

- q *nearest* keeps every bin whose q is exactly equal to the bin q closest to the target
  (non-finite q never count as closest). With ``q = None`` it needs exactly one distinct q.
  *tolerance* needs a target. Negative tolerances are errors.
- Angles are compared after normalising to [−180, 180); the circular distance is
  ``|((φ − target + 180) mod 360) − 180|``. A target picks the nearest *angle* among the bins
  left by q selection and keeps every bin at that angle (with q_select tolerance/all that is one
  bin per q). A target whose angle was already picked is dropped with a warning. Ties go to the
  angle that comes first in file order.
- A φ range [lo, hi] runs counter-clockwise from lo to hi: φ is kept if
  ``(φ − lo) mod 360 ≤ (hi − lo) mod 360``; ``hi − lo ≥ 360`` means the full circle. So
  [350, 10] spans 20° across 0°, and [10, 350] spans 340°. Ranges are united.
- Selected slots keep file order (not target order), for targets and ranges alike.
- The file's time axis must have one value per frame of the file (checked before slicing) and is
  then sliced with the frames.
- ``sigma``, when present, must be finite and > 0 per slot; φ must be finite.
- The symmetry check is per slot: max|c2_a − c2_aᵀ| ≤ 1e-6·max|c2_a|; one warning names the
  worst slot.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.errors import DataError
from hpcfit.xpcs.dataset import XpcsData, normalise_phi
from hpcfit.xpcs.layouts import FlatKeys, RawData, read_file

Q_SELECT = ("nearest", "tolerance", "all")
SYMMETRY_RTOL = 1e-6
T_SPACING_RTOL = 1e-6


@dataclass(frozen=True)
class Selection:
    """Which bins and frames to keep (config ``data.*``)."""

    q: float | None = None
    q_select: str = "nearest"
    q_tolerance: float = 0.0
    phi: tuple[float, ...] | None = None
    phi_ranges: tuple[tuple[float, float], ...] | None = None
    phi_tolerance: float = 5.0
    start_frame: int = 1
    end_frame: int | None = None


DEFAULT_SELECTION = Selection()
DEFAULT_KEYS = FlatKeys()


def _warn(msg: str, sink: list[str]) -> None:
    sink.append(msg)
    warnings.warn(msg, UserWarning, stacklevel=3)


def _fmt(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


def _unique_in_order(values: np.ndarray) -> np.ndarray:
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]


def circular_distance(phi: np.ndarray, target: float) -> np.ndarray:
    """|φ − target| on the circle, in [0, 180] (deg)."""
    return np.abs((np.asarray(phi, dtype=np.float64) - target + 180.0) % 360.0 - 180.0)


def in_phi_range(phi: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Wrap-aware membership of φ in the arc from ``lo`` counter-clockwise to ``hi`` (deg)."""
    phi = np.asarray(phi, dtype=np.float64)
    if hi - lo >= 360.0:
        return np.ones(phi.shape, dtype=bool)
    width = (hi - lo) % 360.0
    return (phi - lo) % 360.0 <= width


# --------------------------------------------------------------------------------------------
# selection steps


def _select_q(raw: RawData, sel: Selection, src: str) -> np.ndarray:
    q = raw.q
    idx = np.arange(q.size)
    available = f"available q values (1/Å): {_fmt(np.unique(q))}"
    if sel.q_select not in Q_SELECT:
        raise DataError(
            f"{src}: data.q_select: got {sel.q_select!r}, expected one of {', '.join(Q_SELECT)}"
        )
    if sel.q_select == "all":
        return idx
    if sel.q is not None and not np.isfinite(sel.q):
        raise DataError(f"{src}: data.q: got {sel.q}, expected a finite q (1/Å)")
    if sel.q_select == "nearest":
        if sel.q is None:
            distinct = np.unique(q)
            if distinct.size != 1:
                raise DataError(
                    f"{src}: data.q: required with q_select=nearest when the file holds "
                    f"{distinct.size} distinct q values; {available}"
                )
            return idx
        dist = np.abs(q - sel.q)
        dist[~np.isfinite(dist)] = np.inf
        if not np.isfinite(dist).any():
            raise DataError(f"{src}: data.q: no finite q in the file; {available}")
        return idx[q == q[int(np.argmin(dist))]]
    # tolerance
    if sel.q is None:
        raise DataError(f"{src}: data.q: required with q_select=tolerance; {available}")
    if not (sel.q_tolerance >= 0):
        raise DataError(f"{src}: data.q_tolerance: got {sel.q_tolerance}, expected ≥ 0")
    kept = idx[np.abs(q - sel.q) <= sel.q_tolerance]
    if kept.size == 0:
        raise DataError(
            f"{src}: data.q: no bin within {sel.q_tolerance:g} of q = {sel.q:g}; {available}"
        )
    return kept


def _select_phi(
    phi_norm: np.ndarray, idx: np.ndarray, sel: Selection, src: str, sink: list[str]
) -> np.ndarray:
    cand = phi_norm[idx]
    available = f"available angles (deg): {_fmt(np.unique(cand))}"
    if sel.phi is not None and sel.phi_ranges is not None:
        raise DataError(
            f"{src}: data.phi and data.phi_ranges: both set; they are mutually exclusive"
        )
    if sel.phi_ranges is not None:
        keep = np.zeros(cand.shape, dtype=bool)
        for pair in sel.phi_ranges:
            if len(pair) != 2 or not all(np.isfinite(v) for v in pair):
                raise DataError(
                    f"{src}: data.phi_ranges: got {pair!r}, expected a finite [lo, hi] pair (deg)"
                )
            lo, hi = (float(v) for v in pair)
            keep |= in_phi_range(cand, lo, hi)
        if not keep.any():
            raise DataError(
                f"{src}: data.phi_ranges: {[list(p) for p in sel.phi_ranges]} select no bin; "
                f"{available}"
            )
        return idx[keep]
    if sel.phi is None:
        return idx
    if not (sel.phi_tolerance >= 0):
        raise DataError(f"{src}: data.phi_tolerance: got {sel.phi_tolerance}, expected ≥ 0")
    if len(sel.phi) == 0:
        raise DataError(f"{src}: data.phi: empty list selects no bin; {available}")
    angles = _unique_in_order(cand)
    chosen: list[float] = []
    for target in sel.phi:
        if not np.isfinite(target):
            raise DataError(f"{src}: data.phi: got {target}, expected finite angles (deg)")
        dist = circular_distance(angles, float(target))
        k = int(np.argmin(dist))
        if not dist[k] <= sel.phi_tolerance:
            raise DataError(
                f"{src}: data.phi: no bin within phi_tolerance = {sel.phi_tolerance:g} deg of "
                f"{target:g} deg (nearest {angles[k]:g} deg); {available}"
            )
        if angles[k] in chosen:
            _warn(
                f"{src}: data.phi: target {target:g} deg picks {angles[k]:g} deg again; "
                "duplicate dropped",
                sink,
            )
            continue
        chosen.append(float(angles[k]))
    return idx[np.isin(cand, chosen)]


def _frame_window(n_file: int, sel: Selection, src: str) -> tuple[int, int]:
    s, e = sel.start_frame, sel.end_frame
    for name, v in (("start_frame", s), ("end_frame", e)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | np.integer)):
            raise DataError(f"{src}: data.{name}: got {v!r}, expected an integer frame number")
    if s < 1:
        raise DataError(f"{src}: data.start_frame: got {s}, expected ≥ 1 (frames are 1-based)")
    e = n_file if e is None else int(e)
    if e > n_file:
        raise DataError(
            f"{src}: data.end_frame: got {e}, but the file has {n_file} frames (1…{n_file})"
        )
    if s > e:
        raise DataError(
            f"{src}: data.start_frame: {s} > end_frame {e}; the file has {n_file} frames"
        )
    return int(s), e


def select(raw: RawData, sel: Selection, *, dt: float, source: str) -> XpcsData:
    """q selection → angle selection → frame slicing, then :func:`validate` (model spec §7.3)."""
    src = source
    sink: list[str] = list(raw.warnings)
    n_file = raw.n_frames
    if raw.t_file is not None and raw.t_file.size != n_file:
        raise DataError(
            f"{src}: t: has {raw.t_file.size} values, expected {n_file} (one per frame of c2)"
        )
    phi_norm = normalise_phi(raw.phi)
    idx = _select_q(raw, sel, src)
    idx = _select_phi(phi_norm, idx, sel, src, sink)
    s, e = _frame_window(n_file, sel, src)
    c2 = np.ascontiguousarray(raw.c2[idx][:, s - 1 : e, s - 1 : e], dtype=np.float64)
    t_file = None if raw.t_file is None else np.array(raw.t_file[s - 1 : e], dtype=np.float64)
    sigma = None if raw.sigma is None else np.array(raw.sigma[idx], dtype=np.float64)
    selection = asdict(sel)
    provenance: dict[str, Any] = {
        "file": src,
        "layout": raw.layout,
        "bin_indices": [int(i) for i in idx],
        "bins": None if raw.bins is None else [int(raw.bins[i]) for i in idx],
        "q": [float(v) for v in raw.q[idx]],
        "phi": [float(v) for v in phi_norm[idx]],
        "frame_window": [s, e],
        "n_frames_file": n_file,
        "selection": selection,
    }
    data = XpcsData(
        c2=c2,
        q=np.array(raw.q[idx], dtype=np.float64),
        phi=np.array(phi_norm[idx], dtype=np.float64),
        dt=float(dt),
        start_frame=s,
        sigma=sigma,
        t_file=t_file,
        provenance=provenance,
    )
    sink.extend(validate(data, source=src))
    provenance["warnings"] = sink
    return data


def load(
    path: str | Path,
    *,
    dt: float,
    layout: str = "auto",
    selection: Selection = DEFAULT_SELECTION,
    keys: FlatKeys = DEFAULT_KEYS,
) -> XpcsData:
    """Read ``path`` (format by extension, layout auto-detected or forced) and select."""
    raw = read_file(path, layout=layout, keys=keys)
    return select(raw, selection, dt=dt, source=str(path))


# --------------------------------------------------------------------------------------------
# validation


def validate(data: XpcsData, *, source: str) -> list[str]:
    """Check ``data`` (model spec §7.5); raise :class:`DataError`, return the warnings issued.

    The "enough data" rule needs the free-parameter count and is checked at fit time.
    """
    src = source
    sink: list[str] = []
    c2 = np.asarray(data.c2)
    if c2.ndim != 3 or c2.shape[1] != c2.shape[2]:
        raise DataError(f"{src}: c2: expected n_phi×N×N square matrices, got shape {c2.shape}")
    if c2.dtype != np.float64:
        raise DataError(f"{src}: c2: expected float64, got {c2.dtype}")
    n_phi, n = c2.shape[0], c2.shape[-1]
    if n_phi < 1:
        raise DataError(f"{src}: c2: no slots selected")
    for name in ("q", "phi", "sigma"):
        v = getattr(data, name)
        if v is None and name == "sigma":
            continue
        v = np.asarray(v)
        if v.shape != (n_phi,):
            raise DataError(
                f"{src}: {name}: shape {v.shape}, expected ({n_phi},) (one per slot of c2)"
            )
    if n < 2:
        raise DataError(f"{src}: c2: {n} frame(s) in the window, expected at least 2")
    bad = ~np.isfinite(c2)
    if bad.any():
        a, i, j = (int(x) for x in np.argwhere(bad)[0])
        raise DataError(
            f"{src}: c2: {int(bad.sum())} non-finite values (NaN/inf), first at "
            f"(a, i, j) = ({a}, {i}, {j})"
        )
    dt = data.dt
    if not (np.isfinite(dt) and dt > 0):
        raise DataError(f"{src}: dt: got {dt}, expected a finite frame interval > 0 s")
    q = np.asarray(data.q, dtype=np.float64)
    bad_q = np.flatnonzero(~(np.isfinite(q) & (q > 0)))
    if bad_q.size:
        a = int(bad_q[0])
        raise DataError(f"{src}: q: slot {a} has q = {q[a]:g}, expected a finite q > 0 (1/Å)")
    phi = np.asarray(data.phi, dtype=np.float64)
    bad_phi = np.flatnonzero(~np.isfinite(phi))
    if bad_phi.size:
        a = int(bad_phi[0])
        raise DataError(f"{src}: phi: slot {a} has phi = {phi[a]}, expected a finite angle (deg)")
    if data.sigma is not None:
        sigma = np.asarray(data.sigma, dtype=np.float64)
        bad_s = np.flatnonzero(~(np.isfinite(sigma) & (sigma > 0)))
        if bad_s.size:
            a = int(bad_s[0])
            raise DataError(
                f"{src}: sigma: slot {a} has sigma = {sigma[a]:g}, expected a finite value > 0"
            )
    if data.t_file is not None:
        _validate_time(np.asarray(data.t_file, dtype=np.float64), n, float(dt), src, sink)
    diag = np.diagonal(c2, axis1=1, axis2=2)
    bad_d = diag <= 0
    if bad_d.any():
        a, i = (int(x) for x in np.argwhere(bad_d)[0])
        raise DataError(
            f"{src}: c2: {int(bad_d.sum())} non-positive diagonal values, first at "
            f"(a, i) = ({a}, {i}) with c2_ii = {c2[a, i, i]:g}; expected c2_ii > 0"
        )
    asym = np.max(np.abs(c2 - np.swapaxes(c2, 1, 2)), axis=(1, 2))
    scale = np.max(np.abs(c2), axis=(1, 2))
    over = asym > SYMMETRY_RTOL * scale
    if over.any():
        a = int(np.argmax(np.where(over, asym / np.where(scale > 0, scale, 1.0), -1.0)))
        _warn(
            f"{src}: c2: slot {a} is not symmetric: max|c2 - c2^T| = {asym[a]:.3g} > "
            f"{SYMMETRY_RTOL:g}·max|c2| = {SYMMETRY_RTOL * scale[a]:.3g} "
            f"({int(over.sum())} slot(s) affected); the upper triangle is used",
            sink,
        )
    return sink


def _validate_time(t: np.ndarray, n: int, dt: float, src: str, sink: list[str]) -> None:
    if t.shape != (n,):
        raise DataError(f"{src}: t: shape {t.shape}, expected ({n},) (one per frame in window)")
    steps = np.diff(t)
    bad = np.flatnonzero(~(steps > 0))
    if bad.size:
        k = int(bad[0])
        raise DataError(
            f"{src}: t: not strictly increasing at index {k + 1} "
            f"(t[{k}] = {t[k]:g}, t[{k + 1}] = {t[k + 1]:g})"
        )
    spacing = float(np.median(steps))
    if abs(spacing - dt) > T_SPACING_RTOL * dt:
        _warn(
            f"{src}: t: median spacing {spacing:.9g} s differs from dt = {dt:.9g} s by more than "
            f"{T_SPACING_RTOL:g}·dt; the model uses dt",
            sink,
        )
