"""Selection, frame slicing, reading and validation of XPCS data.

``load`` = ``index_file`` (:mod:`hpcfit.xpcs.layouts`, metadata only) + ``select``: q selection,
then angle selection, then the frame window and stride — all on metadata — then only the selected
matrices are read (float64, one at a time), empty frames are dropped per slot, and ``validate``.
Every failure is a one-line :class:`~hpcfit.errors.DataError` naming the file, the field and
what was expected; warnings go through :func:`warnings.warn` (UserWarning) and are recorded in
``provenance["warnings"]``.

Choices made here:

- q *nearest* keeps every bin whose q is exactly equal to the bin q closest to the target
  (non-finite q never count as closest); a target farther than ``q_max_rel_distance`` (default
  0.25, relative to that bin's q; None: no limit) is an error listing the available q, so a
  mistyped q (0.054 for 0.0054) never fits another bin silently. With ``q = None`` it needs
  exactly one distinct q. *tolerance* needs a target. Negative tolerances are errors.
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
- ``frame_stride`` k keeps frames s, s + k, … ≤ e of the window [s, e]; the grid step is k·dt.
- A frame whose row in a slot is all zero or non-finite caught no photons: it is dropped from
  that slot's points (``XpcsData.frame_mask``) with one warning per slot. The diagonal is never
  fitted, so its value (zero, negative) is not checked; any other non-finite value is an error.
- Validation (:mod:`hpcfit.xpcs.checks`) runs on the selected, read data.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.errors import AdviceWarning, DataError
from hpcfit.xpcs.arrays import rebuild_half
from hpcfit.xpcs.checks import require_enough_points, validate
from hpcfit.xpcs.dataset import XpcsData, normalise_phi
from hpcfit.xpcs.layouts import FileIndex, FlatKeys, index_file

Q_SELECT = ("nearest", "tolerance", "all")


@dataclass(frozen=True)
class Selection:
    """Which bins and frames to keep (config ``data.*``)."""

    q: float | None = None
    q_select: str = "nearest"
    q_tolerance: float = 0.0
    q_max_rel_distance: float | None = 0.25
    phi: tuple[float, ...] | None = None
    phi_ranges: tuple[tuple[float, float], ...] | None = None
    phi_tolerance: float = 5.0
    start_frame: int = 1
    end_frame: int | None = None
    frame_stride: int = 1


DEFAULT_SELECTION = Selection()
DEFAULT_KEYS = FlatKeys()


def _warn(msg: str, sink: list[str]) -> None:
    sink.append(msg)
    warnings.warn(msg, AdviceWarning, stacklevel=3)


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


def _select_q(q: np.ndarray, sel: Selection, src: str) -> np.ndarray:
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
        best = q[int(np.argmin(dist))]
        limit = sel.q_max_rel_distance
        if limit is not None and abs(best - sel.q) > limit * abs(best):
            raise DataError(
                f"{src}: data.q: {sel.q:g} is {abs(best - sel.q) / abs(best):.3g} (relative) from "
                f"the nearest bin q = {best:g}, beyond data.q_max_rel_distance = {limit:g}; "
                f"{available}"
            )
        return idx[q == best]
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


def _frame_window(n_file: int, sel: Selection, src: str) -> tuple[int, int, int]:
    s, e, k = sel.start_frame, sel.end_frame, sel.frame_stride
    for name, v in (("start_frame", s), ("end_frame", e), ("frame_stride", k)):
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
    if k < 1:
        raise DataError(f"{src}: data.frame_stride: got {k}, expected an integer ≥ 1")
    return int(s), e, int(k)


BYTES_PER_POINT = 128
"""Rank 0's memory per pooled point (i < j) through the warm start: the pooled arrays, the
residual chunks and the model's intermediates (about 116 B measured at 1.5–6 M points)."""


def selection_mb(n_slots: int, n_frames: int) -> float:
    """Memory the selected data needs on rank 0, in MB: the float64 matrices plus
    :data:`BYTES_PER_POINT` for each of the n_slots·N(N−1)/2 pooled points."""
    points = n_slots * n_frames * (n_frames - 1) // 2
    return (8.0 * n_slots * n_frames**2 + BYTES_PER_POINT * points) / 2**20


def read_slots(
    index: FileIndex, positions: np.ndarray, frames: slice, sink: list[str]
) -> np.ndarray:
    """The matrices at ``positions``, restricted to ``frames``, as float64 (n, N, N).

    One stored matrix is in memory at a time besides the result; half-stored matrices are
    rebuilt after the window is cut (a principal sub-matrix of a triangle is a triangle).
    """
    n = len(range(index.n_frames)[frames])
    out = np.empty((positions.size, n, n), dtype=np.float64)
    n_full = 0
    with index.open() as reader:
        for k, pos in enumerate(positions):
            m = np.asarray(reader.read(int(pos), frames), dtype=np.float64)
            if index.half:
                m, rebuilt = rebuild_half(m)
                n_full += not rebuilt
            out[k] = m
    if n_full:
        _warn(
            f"{index.path}: {n_full} of {positions.size} half-stored matrices have both strict "
            "triangles non-zero; used as stored",
            sink,
        )
    return out


def empty_frames(c2: np.ndarray) -> np.ndarray:
    """(n_phi, N) bool: frames whose whole row is zero or non-finite (no photons)."""
    out = np.empty(c2.shape[:2], dtype=bool)
    for a in range(c2.shape[0]):
        row = c2[a]
        out[a] = np.all((row == 0) | ~np.isfinite(row), axis=1)
    return out


def select(
    index: FileIndex,
    sel: Selection,
    *,
    dt: float,
    source: str,
    check_size: Callable[[int, int], None] | None = None,
) -> XpcsData:
    """q selection → angle selection → frame window, on metadata; then read the selected
    matrices only, drop empty frames per slot and :func:`validate`.

    ``check_size(n_slots, n_frames)`` runs on the selection before any matrix is read (it
    raises when the selection would not fit in memory)."""
    src = source
    sink: list[str] = list(index.warnings)
    n_file = index.n_frames
    if index.t_file is not None and index.t_file.size != n_file:
        raise DataError(
            f"{src}: t: has {index.t_file.size} values, expected {n_file} (one per frame of c2)"
        )
    phi_norm = normalise_phi(index.phi)
    idx = _select_q(index.q, sel, src)
    idx = _select_phi(phi_norm, idx, sel, src, sink)
    s, e, k = _frame_window(n_file, sel, src)
    frames = slice(s - 1, e, k)
    if check_size is not None:
        check_size(int(idx.size), len(range(n_file)[frames]))
    c2 = read_slots(index, idx, frames, sink)
    empty = empty_frames(c2)
    frame_mask = None
    if empty.any():
        frame_mask = ~empty
        for a in np.flatnonzero(empty.any(axis=1)):
            _warn(
                f"{src}: slot {int(a)} ({index.origin[idx[a]].get('dataset')}): "
                f"{int(empty[a].sum())} of {c2.shape[-1]} frames have an all-zero or non-finite "
                "row (no photons); dropped from this slot's points",
                sink,
            )
    t_file = None if index.t_file is None else np.array(index.t_file[frames], dtype=np.float64)
    sigma = None if index.sigma is None else np.array(index.sigma[idx], dtype=np.float64)
    labels = [index.origin[i].get("bin") for i in idx]
    slots = [
        {
            "slot": a,
            "position": int(p),
            **index.origin[p],
            "q": float(index.q[p]),
            "phi": float(phi_norm[p]),
            "frames_dropped": int(empty[a].sum()),
        }
        for a, p in enumerate(idx)
    ]
    provenance: dict[str, Any] = {
        "file": src,
        "layout": index.layout,
        "bin_indices": [int(i) for i in idx],
        "bins": None if all(b is None for b in labels) else labels,
        "q": [float(v) for v in index.q[idx]],
        "phi": [float(v) for v in phi_norm[idx]],
        "slots": slots,
        "frame_window": [s, e],
        "frame_stride": k,
        "n_frames_file": n_file,
        "selection": asdict(sel),
    }
    data = XpcsData(
        c2=c2,
        q=np.array(index.q[idx], dtype=np.float64),
        phi=np.array(phi_norm[idx], dtype=np.float64),
        dt=float(dt),
        start_frame=s,
        sigma=sigma,
        t_file=t_file,
        provenance=provenance,
        frame_stride=k,
        frame_mask=frame_mask,
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
    """Index ``path`` (format by extension, layout auto-detected or forced), then select."""
    return select(index_file(path, layout=layout, keys=keys), selection, dt=dt, source=str(path))


__all__ = [
    "Selection",
    "circular_distance",
    "empty_frames",
    "in_phi_range",
    "load",
    "read_slots",
    "require_enough_points",
    "select",
    "validate",
]
