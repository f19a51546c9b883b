"""The in-memory XPCS dataset and its pooled upper-triangle view (the fitting path: no N×N
model array is built)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Pooled:
    """Pooled points in canonical order: slot-major, then ``triu_indices(N, k=1)`` order.

    ``a``, ``i``, ``j`` are int32 (0-based slot and frame positions, i < j); ``y`` float64 c2.
    """

    a: np.ndarray
    i: np.ndarray
    j: np.ndarray
    y: np.ndarray

    @property
    def size(self) -> int:
        return int(self.y.size)


@dataclass(frozen=True)
class SlotGrid:
    """The time grid and slot geometry of a dataset, without its values (small; sent to ranks).

    start_frame : int  1-based first frame;  n_frames : int  N;  dt : float  frame interval (s)
    q : Float64[Array, "n_phi"]  1/Å;  phi : Float64[Array, "n_phi"]  deg
    frame_stride : int  k: the grid keeps every k-th frame, so its step is k·dt
    """

    start_frame: int
    n_frames: int
    dt: float
    q: np.ndarray
    phi: np.ndarray
    frame_stride: int = 1

    @property
    def n_phi(self) -> int:
        return int(np.size(self.q))

    @property
    def step(self) -> float:
        """Grid step = trapezoid step of the model (s)."""
        return grid_step(self.dt, self.frame_stride)

    @property
    def t(self) -> np.ndarray:
        return production_grid(self.start_frame, self.n_frames, self.dt, self.frame_stride)


@dataclass(frozen=True)
class XpcsData:
    """Validated two-time correlation data of the selected slots, float64.

    Attributes
    ----------
    c2 : Float64[Array, "n_phi N N"]  two-time correlation maps
    q : Float64[Array, "n_phi"]  wave vector per slot (1/Å)
    phi : Float64[Array, "n_phi"]  azimuth per slot, normalised to [-180, 180) (deg)
    dt : float  frame interval of the file (s)
    start_frame : int  1-based number of the first frame in the window
    sigma : Float64[Array, "n_phi"] | None  known noise level per slot, if any
    t_file : Float64[Array, "N"] | None  the file's time axis in the window (labels only)
    provenance : dict  file, layout, selected bins, frame window, generator truth
    frame_stride : int  k: every k-th frame of the window is kept; the grid step is k·dt
    frame_mask : Bool[Array, "n_phi N"] | None  frames with photons per slot (None: all); a
        point (a, i, j) is fitted only when frames i and j of slot a both have photons
    """

    c2: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    dt: float
    start_frame: int = 1
    sigma: np.ndarray | None = None
    t_file: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    frame_stride: int = 1
    frame_mask: np.ndarray | None = None

    @property
    def n_phi(self) -> int:
        return int(self.c2.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.c2.shape[-1])

    @property
    def step(self) -> float:
        """Grid step = trapezoid step of the model (s): frame_stride·dt."""
        return grid_step(self.dt, self.frame_stride)

    @property
    def t(self) -> np.ndarray:
        """Production grid t_k = (start_frame + k·stride)·dt (integer first, one multiply)."""
        return production_grid(self.start_frame, self.n_frames, self.dt, self.frame_stride)

    def grid(self) -> SlotGrid:
        return SlotGrid(
            self.start_frame, self.n_frames, float(self.dt), self.q, self.phi, self.frame_stride
        )

    def slot_sizes(self) -> np.ndarray:
        """Frames with photons per slot (N where nothing was dropped)."""
        if self.frame_mask is None:
            return np.full(self.n_phi, self.n_frames, dtype=np.int64)
        return self.frame_mask.sum(axis=1).astype(np.int64)

    @property
    def n_points(self) -> int:
        """Pooled points: Σ_a n_a(n_a − 1)/2 over the frames with photons."""
        n = self.slot_sizes()
        return int(np.sum(n * (n - 1) // 2))

    def pooled(self) -> Pooled:
        """Strict upper-triangle points of every slot (the diagonal is never fitted), without
        the frames that ``frame_mask`` drops."""
        n = self.n_frames
        iu, ju = np.triu_indices(n, k=1)
        iu, ju = iu.astype(np.int32), ju.astype(np.int32)
        if self.frame_mask is None:
            a = np.repeat(np.arange(self.n_phi, dtype=np.int32), iu.size)
            i, j = np.tile(iu, self.n_phi), np.tile(ju, self.n_phi)
        else:
            parts = []
            for s, ok in enumerate(self.frame_mask):
                keep = ok[iu] & ok[ju]
                parts.append((np.full(int(keep.sum()), s, np.int32), iu[keep], ju[keep]))
            a, i, j = (np.concatenate(x) for x in zip(*parts, strict=True))
        return Pooled(a=a, i=i, j=j, y=np.ascontiguousarray(self.c2[a, i, j], dtype=np.float64))

    def fingerprint(self) -> str:
        """sha256 over the arrays and grid that define the fit (not the provenance)."""
        h = hashlib.sha256()
        for arr in (self.c2, self.q, self.phi):
            h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
        h.update(np.float64(self.dt).tobytes())
        h.update(np.int64(self.start_frame).tobytes())
        if self.sigma is not None:
            h.update(np.ascontiguousarray(self.sigma, dtype=np.float64).tobytes())
        if self.frame_stride != 1:
            h.update(b"stride" + np.int64(self.frame_stride).tobytes())
        if self.frame_mask is not None:
            h.update(b"mask" + np.ascontiguousarray(self.frame_mask).tobytes())
        return h.hexdigest()


def production_grid(start_frame: int, n_frames: int, dt: float, stride: int = 1) -> np.ndarray:
    """t_k = (start_frame + k·stride)·dt, k = 0…N−1, in s: frame f sits at absolute time f·dt,
    and a strided grid keeps every stride-th frame from start_frame."""
    frames = start_frame + stride * np.arange(n_frames, dtype=np.int64)
    return frames.astype(np.float64) * np.float64(dt)


def grid_step(dt: float, stride: int) -> float:
    """The grid step stride·dt (s); exactly dt when stride = 1."""
    return float(dt) if stride == 1 else float(np.float64(stride) * np.float64(dt))


def normalise_phi(phi: np.ndarray) -> np.ndarray:
    """Map angles (deg) to [-180, 180)."""
    return (np.asarray(phi, dtype=np.float64) + 180.0) % 360.0 - 180.0
