"""Validation of selected XPCS data, and the size check a fit needs.

Every failure is a one-line :class:`~hpcfit.errors.DataError` naming the source, the field and
what was expected. Rules:

- c2 is float64 n_phi × N × N; q, φ (and σ if given) one per slot; N ≥ 2 and every slot at least
  2 frames with photons (``frame_mask``).
- Non-finite values among frames with photons are an error; the diagonal is never fitted, so its
  value is not checked.
- dt > 0, q > 0, φ finite, σ > 0; a file time axis must increase strictly and is compared with
  the grid step (a warning if its median spacing differs by more than 1e-6 relative).
- Symmetry is checked per slot over frames with photons: max|c2_a − c2_aᵀ| ≤ 1e-6·max|c2_a|,
  else one warning names the worst slot.
"""

from __future__ import annotations

import warnings

import numpy as np

from hpcfit.errors import AdviceWarning, DataError
from hpcfit.xpcs.dataset import XpcsData

SYMMETRY_RTOL = 1e-6
T_SPACING_RTOL = 1e-6
MIN_POINTS_PER_FREE = 10
"""Pooled points a fit needs per free quantity (and each slot more than its own two)."""


def _warn(msg: str, sink: list[str]) -> None:
    sink.append(msg)
    warnings.warn(msg, AdviceWarning, stacklevel=3)


def validate(data: XpcsData, *, source: str) -> list[str]:
    """Check ``data``; raise :class:`DataError`, return the warnings issued.

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
    kept = np.ones((n_phi, n), dtype=bool) if data.frame_mask is None else data.frame_mask
    if kept.shape != (n_phi, n):
        raise DataError(f"{src}: frame_mask: shape {kept.shape}, expected ({n_phi}, {n})")
    few = np.flatnonzero(kept.sum(axis=1) < 2)
    if few.size:
        a = int(few[0])
        raise DataError(
            f"{src}: c2: slot {a} has {int(kept[a].sum())} frame(s) with photons in the window "
            "(the others are all-zero rows); expected at least 2"
        )
    n_bad, first = 0, None
    for a in range(n_phi):  # one slot at a time: no N×N×n_phi temporaries
        bad = ~np.isfinite(c2[a]) & kept[a][:, None] & kept[a][None, :]
        if bad.any():
            n_bad += int(bad.sum())
            first = first or (a, *(int(x) for x in np.argwhere(bad)[0]))
    if first is not None:
        raise DataError(
            f"{src}: c2: {n_bad} non-finite values (NaN/inf) among frames with photons, first "
            f"at (a, i, j) = {first}"
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
        _validate_time(np.asarray(data.t_file, dtype=np.float64), n, data.step, src, sink)
    asym, scale = np.zeros(n_phi), np.zeros(n_phi)
    for a in range(n_phi):  # over the frames with photons, one slot at a time
        both = kept[a][:, None] & kept[a][None, :]
        asym[a] = np.max(np.abs(c2[a] - c2[a].T), where=both, initial=0.0)
        scale[a] = np.max(np.abs(c2[a]), where=both, initial=0.0)
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


def require_enough_points(data: XpcsData, n_free: int, *, source: str) -> None:
    """At least :data:`MIN_POINTS_PER_FREE` pooled points per free quantity, and each slot more
    points than its own contrast and offset; a :class:`DataError` otherwise (before any fit)."""
    n = data.slot_sizes()
    per_slot = n * (n - 1) // 2
    need = MIN_POINTS_PER_FREE * n_free
    if data.n_points < need:
        raise DataError(
            f"{source}: {data.n_points} pooled points ({data.n_phi} slot(s) of "
            f"{data.n_frames} frames) for {n_free} free quantities; expected at least "
            f"{MIN_POINTS_PER_FREE} per free quantity ({need}): select more frames or angles, "
            "or fix parameters (model.fixed)"
        )
    thin = np.flatnonzero(per_slot <= 2)
    if thin.size:
        a = int(thin[0])
        raise DataError(
            f"{source}: slot {a} has {int(per_slot[a])} pooled points; expected more than its "
            "contrast and offset (2)"
        )
