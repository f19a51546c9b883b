"""The metadata index of a data file (no matrix read) and the flat-layout key names."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpcfit.xpcs.matrices import MatrixReader, MemoryMatrices


@dataclass(frozen=True)
class FlatKeys:
    """Dataset (HDF5 flat layout) or array (NPZ) names; configurable."""

    c2: str = "c2"
    t: str = "t"
    q: str = "q"
    phi: str = "phi"
    sigma: str = "sigma"


@dataclass(frozen=True)
class FileIndex:
    """What a file holds, from its metadata; no matrix has been read.

    Attributes
    ----------
    path : str  the file (or "embedded")
    layout : str  "aps_u" | "aps_legacy" | "nexus" | "exchange" | "flat" | "npz" | …
    n_frames : int  frames per matrix (every matrix is n_frames × n_frames)
    q : Float64[Array, "n"]  q per matrix (1/Å)
    phi : Float64[Array, "n"]  azimuth per matrix (deg), as stored (not normalised)
    origin : tuple[dict, ...]  per matrix: dataset, producer bin label, q/φ cell and the keys
        each value came from (JSON-ready)
    matrices : MatrixSource  reads selected matrices
    half : bool  matrices are stored as one triangle (rebuilt as M + Mᵀ − diag M)
    dtype : str  the stored matrix dtype
    t_file : Float64[Array, "n_t"] | None  a time axis, if the layout has one
    dt_file : float | None  frame interval the file states (s), None if it states none
    dt_source : str  the keys dt_file came from, or why there is none
    sigma : Float64[Array, "n"] | None  known noise level (flat / NPZ ``sigma``)
    warnings : tuple[str, ...]  warnings issued while indexing
    """

    path: str
    layout: str
    n_frames: int
    q: np.ndarray
    phi: np.ndarray
    origin: tuple[dict[str, Any], ...]
    matrices: Any
    half: bool = False
    dtype: str = "float64"
    t_file: np.ndarray | None = None
    dt_file: float | None = None
    dt_source: str = ""
    sigma: np.ndarray | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def n_bins(self) -> int:
        return int(self.q.size)

    def open(self) -> contextlib.AbstractContextManager[MatrixReader]:
        return self.matrices.open()

    def bins(self) -> list[dict[str, Any]]:
        """One JSON-ready row per matrix: position, producer bin, q, φ, shape and sources."""
        n = self.n_frames
        return [
            {"position": k, **o, "q": float(self.q[k]), "phi": float(self.phi[k]), "shape": [n, n]}
            for k, o in enumerate(self.origin)
        ]


def in_memory(
    c2: np.ndarray,
    q: np.ndarray,
    phi: np.ndarray,
    *,
    path: str = "memory",
    layout: str = "memory",
    t_file: np.ndarray | None = None,
    sigma: np.ndarray | None = None,
    dt_file: float | None = None,
    bins: list[int] | None = None,
) -> FileIndex:
    """An index over matrices already in memory (the embedded dataset, tests)."""
    c2 = np.asarray(c2)
    n = c2.shape[0]
    labels: list[int | None] = list(bins) if bins else [None] * n
    origin = tuple({"dataset": f"c2[{k}]", "bin": labels[k]} for k in range(n))
    return FileIndex(
        path=path,
        layout=layout,
        n_frames=int(c2.shape[-1]),
        q=np.asarray(q, dtype=np.float64),
        phi=np.asarray(phi, dtype=np.float64),
        origin=origin,
        matrices=MemoryMatrices(c2),
        dtype=str(c2.dtype),
        t_file=t_file,
        dt_file=dt_file,
        dt_source="" if dt_file is None else "memory",
        sigma=sigma,
    )
