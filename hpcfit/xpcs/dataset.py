"""The in-memory XPCS dataset (model spec §7.1) and its pooled upper-triangle view (§6.2)."""

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
    """

    start_frame: int
    n_frames: int
    dt: float
    q: np.ndarray
    phi: np.ndarray

    @property
    def n_phi(self) -> int:
        return int(np.size(self.q))

    @property
    def t(self) -> np.ndarray:
        return production_grid(self.start_frame, self.n_frames, self.dt)


@dataclass(frozen=True)
class XpcsData:
    """Validated two-time correlation data of the selected slots, float64.

    Attributes
    ----------
    c2 : Float64[Array, "n_phi N N"]  two-time correlation maps
    q : Float64[Array, "n_phi"]  wave vector per slot (1/Å)
    phi : Float64[Array, "n_phi"]  azimuth per slot, normalised to [-180, 180) (deg)
    dt : float  frame interval (s)
    start_frame : int  1-based number of the first frame in the window
    sigma : Float64[Array, "n_phi"] | None  known noise level per slot, if any
    t_file : Float64[Array, "N"] | None  the file's time axis in the window (labels only)
    provenance : dict  file, layout, selected bins, frame window, generator truth
    """

    c2: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    dt: float
    start_frame: int = 1
    sigma: np.ndarray | None = None
    t_file: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def n_phi(self) -> int:
        return int(self.c2.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.c2.shape[-1])

    @property
    def t(self) -> np.ndarray:
        """Production grid t_k = (start_frame + k)·dt (integer first, one float multiply)."""
        return production_grid(self.start_frame, self.n_frames, self.dt)

    def grid(self) -> SlotGrid:
        return SlotGrid(self.start_frame, self.n_frames, float(self.dt), self.q, self.phi)

    def pooled(self) -> Pooled:
        """Strict upper-triangle points of every slot (the diagonal is never fitted)."""
        n = self.n_frames
        iu, ju = np.triu_indices(n, k=1)
        a = np.repeat(np.arange(self.n_phi, dtype=np.int32), iu.size)
        i = np.tile(iu.astype(np.int32), self.n_phi)
        j = np.tile(ju.astype(np.int32), self.n_phi)
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
        return h.hexdigest()


def production_grid(start_frame: int, n_frames: int, dt: float) -> np.ndarray:
    """t_k = (start_frame + k)·dt, k = 0…N−1, in s (model spec §1)."""
    frames = start_frame + np.arange(n_frames, dtype=np.int64)
    return frames.astype(np.float64) * np.float64(dt)


def normalise_phi(phi: np.ndarray) -> np.ndarray:
    """Map angles (deg) to [-180, 180)."""
    return (np.asarray(phi, dtype=np.float64) + 180.0) % 360.0 - 180.0
