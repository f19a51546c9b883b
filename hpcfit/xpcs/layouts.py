"""Data files: format by extension, HDF5 layout detection and the file index.

:func:`index_file` reads a file's *metadata* only — which matrices it holds, their producer bin
labels, q, φ and shape, the frame interval — and returns a :class:`FileIndex`. Matrices are read
later, only those that the selection keeps (:mod:`hpcfit.xpcs.data`), through
:meth:`FileIndex.open`. Peak memory therefore follows the selection, not the file.

How each producer writes its file (the layouts are documented for users in ``docs/data.md``):

- **aps_u** (boost_corr for APS-U, read by pyXpcsViewer): matrices ``c2_NNNNN`` in
  ``xpcs/twotime/correlation_map`` (float32, upper triangle with the diagonal, lzf), paired in
  natural name order with ``xpcs/twotime/processed_bins``. Those are 1-based labels of the
  *compressed* dynamic partition: the partition tool numbers only the non-empty (q, φ) cells, so
  label b sits in cell ``c = xpcs/qmap/dynamic_index_mapping[b − 1]`` (q-major:
  q index ``c // n_φ``, φ index ``c % n_φ``) of the lists ``dynamic_v_list_dim0`` (q) and
  ``dynamic_v_list_dim1`` (φ). ``xpcs/qmap/map_names`` must name a (q, phi) partition.
  No time axis; dt = ``entry/instrument/detector_1/frame_time`` × ``xpcs/twotime/config/
  avg_frame`` × ``xpcs/twotime/config/stride_frame``.
- **aps_legacy** (xpcs-eigen; boost_corr before 2025): matrices in ``exchange/C2T_all``
  (``g2_<bin>`` or ``g2_<position>``); ``xpcs/dqlist``/``xpcs/dphilist`` (1, n_bins) hold one
  value per dynamic bin and ``xpcs/qphi_bin_to_process`` the 1-based bins actually stored, so
  the k-th matrix in natural order is bin ``qphi_bin_to_process[k]``. dt =
  ``measurement/instrument/detector/exposure_period`` × ``xpcs/avg_frames`` ×
  ``xpcs/stride_frames``; ``exchange/tau`` is the multi-tau lag list, not a time axis.
- **nexus** (boost_corr's NXxpcs result): see :mod:`hpcfit.xpcs.nexus`.
- **exchange** and **flat** (and NPZ): hpcfit's generic layouts; q, φ, an optional time axis
  (dt = its median spacing) and, for flat/NPZ, an optional known σ.

Decisions where the producers leave a choice:

- Matrix datasets of a group are paired with their labels in natural name order (digit runs
  compare as integers; ties by name). Subgroups there are ignored.
- Several layouts matching one HDF5 file is an error unless ``data.layout`` chooses.
- (1, n)/(n, 1) vectors are flattened; (1, 1) scalars are scalars.
- A boolean or non-numeric matrix dataset is an error.
"""

from __future__ import annotations

import contextlib
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hpcfit.errors import DataError
from hpcfit.xpcs.arrays import (
    _h5name,
    _has,
    _is_dataset,
    _is_group,
    _per_bin,
    _phi_or_default,
    _read,
    _vector,
    natural_key,
)

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs")
NPZ_SUFFIXES = (".npz",)
SUPPORTED_FORMATS = "HDF5 (.h5, .hdf5, .hdf, .nxs) or NPZ (.npz)"

LAYOUTS = ("aps_u", "aps_legacy", "nexus", "exchange", "flat")
"""HDF5 layouts in detection order."""

# APS-U twotime (boost_corr)
APSU_CMAP = "xpcs/twotime/correlation_map"
APSU_BINS = "xpcs/twotime/processed_bins"
APSU_QLIST = "xpcs/qmap/dynamic_v_list_dim0"
APSU_PHILIST = "xpcs/qmap/dynamic_v_list_dim1"
APSU_MAPPING = "xpcs/qmap/dynamic_index_mapping"
APSU_MAP_NAMES = "xpcs/qmap/map_names"
APSU_DT = (
    "entry/instrument/detector_1/frame_time",
    "xpcs/twotime/config/avg_frame",
    "xpcs/twotime/config/stride_frame",
)
# APS legacy (xpcs-eigen, boost_corr before 2025)
LEGACY_C2 = "exchange/C2T_all"
LEGACY_DQ = "xpcs/dqlist"
LEGACY_DPHI = "xpcs/dphilist"
LEGACY_BINS = "xpcs/qphi_bin_to_process"
LEGACY_DT = (
    "measurement/instrument/detector/exposure_period",
    "xpcs/avg_frames",
    "xpcs/stride_frames",
)
# "exchange" group
EXCHANGE = "exchange"
EXCHANGE_C2 = ("twotime_corr", "twotime", "c2", "corr")
EXCHANGE_T = ("tau", "t", "times", "delay_time")
EXCHANGE_Q = ("q_val", "q_values", "q", "qval")
EXCHANGE_PHI = ("phi", "phi_angles", "azimuth")


@dataclass(frozen=True)
class FlatKeys:
    """Dataset (HDF5 flat layout) or array (NPZ) names; configurable."""

    c2: str = "c2"
    t: str = "t"
    q: str = "q"
    phi: str = "phi"
    sigma: str = "sigma"


# --------------------------------------------------------------------------------------------
# matrix sources: read one selected matrix at a time


class MatrixReader(Protocol):
    def read(self, position: int, frames: slice) -> np.ndarray:
        """Matrix ``position`` restricted to ``frames`` × ``frames`` (the stored dtype)."""
        ...


class MatrixSource(Protocol):
    def open(self) -> contextlib.AbstractContextManager[MatrixReader]: ...


@dataclass(frozen=True)
class MemoryMatrices:
    """Matrices already in memory, (n, N, N)."""

    c2: np.ndarray

    @contextlib.contextmanager
    def open(self) -> Iterator[MatrixReader]:
        yield self

    def read(self, position: int, frames: slice) -> np.ndarray:
        return self.c2[position, frames, frames]


@dataclass(frozen=True)
class H5Matrices:
    """Matrices stored as HDF5 datasets: ``refs[k] = (dataset path, index)``; a 2-D dataset is
    one matrix (index None), a 3-D dataset a stack (index k on its first axis, or
    ``("last", k)`` on its last)."""

    path: str
    refs: tuple[tuple[str, Any], ...]

    @contextlib.contextmanager
    def open(self) -> Iterator[MatrixReader]:
        import h5py

        try:
            h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise DataError(f"{self.path}: not a readable HDF5 file ({exc})") from None
        with h5:
            yield _H5Reader(h5, self)


@dataclass(frozen=True)
class _H5Reader:
    h5: Any
    source: H5Matrices

    def read(self, position: int, frames: slice) -> np.ndarray:
        name, index = self.source.refs[position]
        if index is None:
            key: tuple[Any, ...] = (frames, frames)
        elif isinstance(index, tuple):  # ("last", k): a stack with the matrix index last
            key = (frames, frames, index[1])
        else:
            key = (index, frames, frames)
        try:
            return np.asarray(self.h5[name][key])
        except (OSError, TypeError, ValueError) as exc:
            raise DataError(f"{self.source.path}: {name}: cannot be read ({exc})") from None


@dataclass(frozen=True)
class NpzMatrices:
    """One array of an NPZ archive, (n, N, N) or (N, N), read row by row from its ``.npy``
    member (no full load): only the selected matrices and frames are ever in memory."""

    path: str
    member: str
    shape: tuple[int, ...]
    dtype: str
    offset: int  # byte offset of the data in the member

    @contextlib.contextmanager
    def open(self) -> Iterator[MatrixReader]:
        with zipfile.ZipFile(self.path) as zf, zf.open(self.member) as fp:
            yield _NpzReader(fp, self)


@dataclass(frozen=True)
class _NpzReader:
    fp: Any
    source: NpzMatrices

    def read(self, position: int, frames: slice) -> np.ndarray:
        n = self.source.shape[-1]
        dtype = np.dtype(self.source.dtype)
        rows = range(n)[frames]
        if not rows:
            return np.empty((0, 0), dtype)
        lo, hi = rows[0], rows[-1]  # a positive-step window: lo ≤ hi
        out = np.empty((len(rows), len(rows)), dtype)
        for k, r in enumerate(rows):
            at = self.source.offset + ((position * n + r) * n + lo) * dtype.itemsize
            self.fp.seek(at)
            buf = self.fp.read((hi - lo + 1) * dtype.itemsize)
            out[k] = np.frombuffer(buf, dtype)[:: frames.step or 1]
        return out


# --------------------------------------------------------------------------------------------
# the index


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
    labels = bins or [None] * n
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


def _check_layout_arg(layout: str, allowed: tuple[str, ...], src: str) -> None:
    if layout not in allowed:
        raise DataError(f"{src}: data.layout: got {layout!r}, expected one of {', '.join(allowed)}")


# --------------------------------------------------------------------------------------------
# HDF5 helpers


def _scalar(h5: Any, name: str, src: str) -> float:
    """A scalar that producers store as (), (1,) or (1, 1)."""
    v = _vector(_read(h5, name, src), src, name)
    if v.size != 1:
        raise DataError(
            f"{src}: {name}: expected one value (a scalar or shape (1, 1)), got {v.size}"
        )
    return float(v[0])


def _dt_product(h5: Any, keys: tuple[str, ...], src: str) -> tuple[float | None, str]:
    """dt as the product of the scalars ``keys`` (frame time × averaging × stride)."""
    missing = [k for k in keys if not _is_dataset(h5, k)]
    if missing:
        return None, f"missing {', '.join(missing)}"
    values = [_scalar(h5, k, src) for k in keys]
    dt = float(np.prod(values))
    if not (np.isfinite(dt) and dt > 0):
        shown = " × ".join(f"{k} = {v:g}" for k, v in zip(keys, values, strict=True))
        raise DataError(f"{src}: frame interval {shown} = {dt:g}; expected a product > 0 s")
    return dt, " × ".join(keys)


def _matrix_meta(ds: Any, src: str, field: str) -> tuple[tuple[int, ...], np.dtype]:
    if ds.dtype.kind not in "iuf":
        raise DataError(
            f"{src}: {field}: expected real numeric correlation values, got dtype {ds.dtype} "
            f"with shape {ds.shape}"
        )
    return tuple(int(d) for d in ds.shape), ds.dtype


def _group_matrices(h5: Any, group: str, src: str) -> tuple[list[str], int, np.dtype]:
    """Dataset names of ``group`` in natural order, their common N and dtype (metadata only)."""
    import h5py

    if not _is_group(h5, group):
        raise DataError(f"{src}: {group}: expected a group of correlation matrices")
    g = h5[group]
    names = sorted((k for k in g.keys() if isinstance(g.get(k), h5py.Dataset)), key=natural_key)
    if not names:
        raise DataError(f"{src}: {group}: holds no matrix datasets")
    first: tuple[int, ...] | None = None
    dtype = None
    for name in names:
        shape, dt = _matrix_meta(g[name], src, f"{group}/{name}")
        if len(shape) != 2 or shape[0] != shape[1]:
            raise DataError(
                f"{src}: {group}/{name}: expected a square N×N matrix, got shape {shape}"
            )
        if first is None:
            first, dtype = shape, dt
        elif shape != first:
            raise DataError(
                f"{src}: {group}/{name}: shape {shape} differs from {group}/{names[0]} {first}; "
                "all matrices must have the same size"
            )
    assert first is not None and dtype is not None
    return names, first[0], dtype


def _stack_meta(ds: Any, src: str, field: str) -> tuple[int, int]:
    """(n matrices, N) of an N×N or n×N×N dataset/array."""
    shape, _ = _matrix_meta(ds, src, field)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3:
        raise DataError(f"{src}: {field}: expected an N×N or n×N×N array, got shape {shape}")
    if shape[1] != shape[2]:
        raise DataError(f"{src}: {field}: matrices must be square, got shape {shape}")
    if shape[0] == 0:
        raise DataError(f"{src}: {field}: holds no matrices (shape {shape})")
    return shape[0], shape[1]


def _labels(h5: Any, name: str, src: str, n: int | None) -> np.ndarray:
    """1-based integer labels stored as any numeric vector; ``n`` = expected count."""
    raw = _vector(_read(h5, name, src), src, name)
    if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
        raise DataError(f"{src}: {name}: expected integer bin labels")
    if n is not None and raw.size != n:
        raise DataError(f"{src}: {name}: has {raw.size} labels, expected {n} (one per matrix)")
    return raw.astype(np.int64)


def _texts(h5: Any, name: str) -> list[str]:
    value = np.asarray(h5[name][()]).reshape(-1)
    return [v.decode() if isinstance(v, bytes) else str(v) for v in value]


# --------------------------------------------------------------------------------------------
# layouts


def matching_layouts(h5: Any, keys: FlatKeys) -> list[str]:
    """Every HDF5 layout whose identifying datasets ``h5`` holds, in detection order."""
    from hpcfit.xpcs.nexus import is_nexus

    found = []
    if _has(h5, APSU_CMAP) and _has(h5, APSU_QLIST):
        found.append("aps_u")
    if _has(h5, LEGACY_DQ) and _has(h5, LEGACY_C2):
        found.append("aps_legacy")
    if is_nexus(h5):
        found.append("nexus")
    if _exchange_c2_name(h5) is not None:
        found.append("exchange")
    if _has(h5, keys.c2):
        found.append("flat")
    return found


def detect_layout(h5: Any, keys: FlatKeys | None = None) -> str:
    """The one layout of an open HDF5 file; an error if none or several match."""
    from hpcfit.xpcs.nexus import NEXUS_MARKER

    keys = keys or FlatKeys()
    found = matching_layouts(h5, keys)
    src = _h5name(h5)
    if len(found) > 1:
        raise DataError(
            f"{src}: ambiguous HDF5 layout: the file matches {', '.join(found)}; "
            f"set data.layout to one of them"
        )
    if not found:
        raise DataError(
            f"{src}: unknown HDF5 layout; expected aps_u ({APSU_CMAP} and {APSU_QLIST}), "
            f"aps_legacy ({LEGACY_DQ} and {LEGACY_C2}), nexus ({NEXUS_MARKER}), exchange (one of "
            f"{', '.join(f'{EXCHANGE}/{n}' for n in EXCHANGE_C2)}) or flat (/{keys.c2})"
        )
    return found[0]


def _index_aps_u(h5: Any, src: str, sink: list[str]) -> FileIndex:
    names, n_frames, dtype = _group_matrices(h5, APSU_CMAP, src)
    if _has(h5, APSU_MAP_NAMES):
        axes = [t.strip().lower() for t in _texts(h5, APSU_MAP_NAMES)]
        if len(axes) != 2 or axes[0] != "q" or axes[1] not in ("phi", "φ"):
            raise DataError(
                f"{src}: {APSU_MAP_NAMES}: the dynamic partition is along {axes}, expected "
                "['q', 'phi']; hpcfit fits q/φ bins (re-partition the file in q and phi)"
            )
    q_list = _vector(_read(h5, APSU_QLIST, src), src, APSU_QLIST)
    has_phi = _has(h5, APSU_PHILIST)
    phi_list = _vector(_read(h5, APSU_PHILIST, src), src, APSU_PHILIST) if has_phi else None
    n_q = q_list.size
    n_phi = 1 if phi_list is None else phi_list.size
    if n_q == 0 or n_phi == 0:
        raise DataError(f"{src}: {APSU_QLIST}/{APSU_PHILIST}: empty bin list")
    labels = _labels(h5, APSU_BINS, src, len(names))
    if not _has(h5, APSU_MAPPING):
        raise DataError(
            f"{src}: {APSU_MAPPING}: missing; it maps the labels of {APSU_BINS} to (q, φ) cells "
            "(labels count non-empty cells only, so they are not cell numbers)"
        )
    mapping = _labels(h5, APSU_MAPPING, src, None)
    bad = np.flatnonzero((labels < 1) | (labels > mapping.size))
    if bad.size:
        k = int(bad[0])
        raise DataError(
            f"{src}: {APSU_BINS}: label {int(labels[k])} at position {k} is outside 1…"
            f"{mapping.size} (the length of {APSU_MAPPING})"
        )
    cells = mapping[labels - 1]
    bad = np.flatnonzero((cells < 0) | (cells >= n_q * n_phi))
    if bad.size:
        k = int(bad[0])
        raise DataError(
            f"{src}: {APSU_MAPPING}: label {int(labels[k])} maps to cell {int(cells[k])}, outside "
            f"0…{n_q * n_phi - 1} (n_q = {n_q} × n_phi = {n_phi})"
        )
    q_idx, phi_idx = cells // n_phi, cells % n_phi
    phi = _phi_or_default(
        None if phi_list is None else phi_list[phi_idx], len(names), src, APSU_PHILIST, sink
    )
    origin = tuple(
        {
            "dataset": f"{APSU_CMAP}/{name}",
            "bin": int(b),
            "cell": [int(qi), int(pi)],
            "q_source": f"{APSU_QLIST}[{int(qi)}] (cell {int(c)} = {APSU_MAPPING}[{int(b) - 1}])",
            "phi_source": f"{APSU_PHILIST}[{int(pi)}]" if has_phi else "default 0",
        }
        for name, b, c, qi, pi in zip(names, labels, cells, q_idx, phi_idx, strict=True)
    )
    dt, dt_source = _dt_product(h5, APSU_DT, src)
    return FileIndex(
        path=src,
        layout="aps_u",
        n_frames=n_frames,
        q=q_list[q_idx],
        phi=phi,
        origin=origin,
        matrices=H5Matrices(src, tuple((f"{APSU_CMAP}/{n}", None) for n in names)),
        half=True,
        dtype=str(dtype),
        dt_file=dt,
        dt_source=dt_source,
        warnings=tuple(sink),
    )


def _name_numbers(names: list[str]) -> list[int] | None:
    """The trailing integer of every name (``g2_00007`` → 7), or None if one has none."""
    nums = []
    for name in names:
        m = re.search(r"(\d+)$", name)
        if m is None:
            return None
        nums.append(int(m.group(1)))
    return nums


def _index_aps_legacy(h5: Any, src: str, sink: list[str]) -> FileIndex:
    names, n_frames, dtype = _group_matrices(h5, LEGACY_C2, src)
    n = len(names)
    dq = _vector(_read(h5, LEGACY_DQ, src), src, LEGACY_DQ)
    dphi = _vector(_read(h5, LEGACY_DPHI, src), src, LEGACY_DPHI) if _has(h5, LEGACY_DPHI) else None
    if dphi is not None and dphi.size != dq.size:
        raise DataError(
            f"{src}: {LEGACY_DPHI}: has {dphi.size} values, expected {dq.size} (one per dynamic "
            f"bin, as {LEGACY_DQ})"
        )
    # The partition tool writes one (q, φ) per cell of its grid, NaN for cells that caught no
    # pixel, and numbers only the non-empty cells: label b is the b-th finite cell.
    cells = np.flatnonzero(np.isfinite(dq))
    if dphi is not None and not np.array_equal(cells, np.flatnonzero(np.isfinite(dphi))):
        raise DataError(
            f"{src}: {LEGACY_DPHI}: its empty (NaN) cells differ from those of {LEGACY_DQ}"
        )
    compressed = cells.size < dq.size
    if _has(h5, LEGACY_BINS):
        bins = _labels(h5, LEGACY_BINS, src, n)
        bad = np.flatnonzero((bins < 1) | (bins > cells.size))
        if bad.size:
            k = int(bad[0])
            raise DataError(
                f"{src}: {LEGACY_BINS}: bin {int(bins[k])} at position {k} is outside "
                f"1…{cells.size} (the non-empty bins of {LEGACY_DQ})"
            )
        nums = _name_numbers(names)
        if nums is not None and sorted(nums) == sorted(bins.tolist()) and nums != bins.tolist():
            # xpcs-eigen names each matrix after its bin (g2_<bin>): pair by name
            by_name = dict(zip(nums, names, strict=True))
            names = [by_name[int(b)] for b in bins]
            pairing = "name"
        else:  # boost_corr ≤ 2024 names by position (g2_<k + 1>): pair in natural order
            pairing = "position"
    else:  # every non-empty bin stored, in order
        if cells.size != n:
            raise DataError(
                f"{src}: {LEGACY_DQ}: has {cells.size} non-empty bins but {LEGACY_C2} holds {n} "
                f"matrices and {LEGACY_BINS} is missing; expected one per matrix"
            )
        bins, pairing = np.arange(1, n + 1), "position"
    cell = cells[bins - 1]
    phi = _phi_or_default(None if dphi is None else dphi[cell], n, src, LEGACY_DPHI, sink)
    via = " (bin {b} = finite entry {c})" if compressed else ""
    origin = tuple(
        {
            "dataset": f"{LEGACY_C2}/{name}",
            "bin": int(b),
            "bin_source": f"{LEGACY_BINS}[{k}]" if _has(h5, LEGACY_BINS) else "position",
            "pairing": pairing,
            "q_source": f"{LEGACY_DQ}[{int(c)}]" + via.format(b=int(b), c=int(c)),
            "phi_source": f"{LEGACY_DPHI}[{int(c)}]" if dphi is not None else "default 0",
        }
        for k, (name, b, c) in enumerate(zip(names, bins, cell, strict=True))
    )
    dt, dt_source = _dt_product(h5, LEGACY_DT, src)
    return FileIndex(
        path=src,
        layout="aps_legacy",
        n_frames=n_frames,
        q=dq[cell],
        phi=phi,
        origin=origin,
        matrices=H5Matrices(src, tuple((f"{LEGACY_C2}/{nm}", None) for nm in names)),
        half=True,
        dtype=str(dtype),
        dt_file=dt,
        dt_source=dt_source,
        warnings=tuple(sink),
    )


def _exchange_c2_name(h5: Any) -> str | None:
    for name in EXCHANGE_C2:
        if _is_dataset(h5, f"{EXCHANGE}/{name}"):
            return f"{EXCHANGE}/{name}"
    return None


def _time_dt(t: np.ndarray | None, name: str | None) -> tuple[float | None, str]:
    """dt as the median spacing of a file's time axis (generic layouts)."""
    if t is None or t.size < 2:
        return None, "no time axis"
    dt = float(np.median(np.diff(t)))
    if not (np.isfinite(dt) and dt > 0):
        return None, f"{name}: median spacing {dt} (not a strictly increasing axis)"
    return dt, f"{name} (median spacing)"


def _stack_refs(name: str, n: int, dims: int) -> tuple[tuple[str, int | None], ...]:
    return tuple((name, None if dims == 2 else k) for k in range(n))


def _index_exchange(h5: Any, src: str, sink: list[str]) -> FileIndex:
    c2_name = _exchange_c2_name(h5)
    if c2_name is None:
        raise DataError(
            f"{src}: exchange layout: none of "
            f"{', '.join(f'{EXCHANGE}/{n}' for n in EXCHANGE_C2)} is a dataset"
        )
    ds = h5[c2_name]
    n, n_frames = _stack_meta(ds, src, c2_name)

    def lookup(names: tuple[str, ...]) -> str | None:
        for k in tuple(f"{EXCHANGE}/{k}" for k in names) + names:
            if _is_dataset(h5, k):
                return k
        return None

    q_name = lookup(EXCHANGE_Q)
    if q_name is None:
        raise DataError(
            f"{src}: q: missing; expected one of {', '.join(EXCHANGE_Q)} in /{EXCHANGE} or at "
            "the file root (the model needs q)"
        )
    q = _per_bin(_vector(_read(h5, q_name, src), src, q_name), n, src, q_name, broadcast=True)
    phi_name = lookup(EXCHANGE_PHI)
    phi = None if phi_name is None else _vector(_read(h5, phi_name, src), src, phi_name)
    phi = None if phi is None else _per_bin(phi, n, src, phi_name, broadcast=False)
    t_name = lookup(EXCHANGE_T)
    t = None if t_name is None else _vector(_read(h5, t_name, src), src, t_name)
    dt, dt_source = _time_dt(t, t_name)
    return FileIndex(
        path=src,
        layout="exchange",
        n_frames=n_frames,
        q=q,
        phi=_phi_or_default(phi, n, src, phi_name or "/".join(EXCHANGE_PHI), sink),
        origin=_plain_origin(c2_name, n, ds.ndim, q_name, phi_name),
        matrices=H5Matrices(src, _stack_refs(c2_name, n, ds.ndim)),
        dtype=str(ds.dtype),
        t_file=t,
        dt_file=dt,
        dt_source=dt_source,
        warnings=tuple(sink),
    )


def _plain_origin(
    c2: str, n: int, dims: int, q_name: str, phi_name: str | None
) -> tuple[dict[str, Any], ...]:
    return tuple(
        {
            "dataset": c2 if dims == 2 else f"{c2}[{k}]",
            "bin": None,
            "q_source": q_name,
            "phi_source": phi_name or "default 0",
        }
        for k in range(n)
    )


def _index_flat_h5(h5: Any, keys: FlatKeys, src: str, sink: list[str]) -> FileIndex:
    if not _is_dataset(h5, keys.c2):
        raise DataError(f"{src}: {keys.c2}: missing; expected the c2 array (N×N or n×N×N)")
    ds = h5[keys.c2]
    n, n_frames = _stack_meta(ds, src, keys.c2)

    def get(name: str) -> np.ndarray | None:
        return _read(h5, name, src) if _has(h5, name) else None

    return _flat_index(
        get, keys, src, "flat", n, n_frames, ds.ndim, str(ds.dtype),
        H5Matrices(src, _stack_refs(keys.c2, n, ds.ndim)), sink,
    )  # fmt: skip


def _flat_index(
    get: Any,
    keys: FlatKeys,
    src: str,
    layout: str,
    n: int,
    n_frames: int,
    dims: int,
    dtype: str,
    matrices: Any,
    sink: list[str],
) -> FileIndex:
    """Shared metadata of the flat HDF5 layout and NPZ; ``get(name)`` is None when missing."""
    q_raw = get(keys.q)
    if q_raw is None:
        raise DataError(f"{src}: {keys.q}: missing; a q per matrix (1/Å) is required")
    q = _per_bin(_vector(q_raw, src, keys.q), n, src, keys.q, broadcast=True)
    phi_raw = get(keys.phi)
    phi = None
    if phi_raw is not None:
        phi = _per_bin(_vector(phi_raw, src, keys.phi), n, src, keys.phi, broadcast=False)
    t_raw = get(keys.t)
    t = None if t_raw is None else _vector(t_raw, src, keys.t)
    sigma_raw = get(keys.sigma)
    sigma = (
        None
        if sigma_raw is None
        else _per_bin(_vector(sigma_raw, src, keys.sigma), n, src, keys.sigma, broadcast=True)
    )
    dt, dt_source = _time_dt(t, keys.t)
    return FileIndex(
        path=src,
        layout=layout,
        n_frames=n_frames,
        q=q,
        phi=_phi_or_default(phi, n, src, keys.phi, sink),
        origin=_plain_origin(keys.c2, n, dims, keys.q, None if phi is None else keys.phi),
        matrices=matrices,
        dtype=dtype,
        t_file=t,
        dt_file=dt,
        dt_source=dt_source,
        sigma=sigma,
        warnings=tuple(sink),
    )


def _index_hdf5(path: Path, layout: str, keys: FlatKeys) -> FileIndex:
    import h5py

    from hpcfit.xpcs.nexus import index_nexus

    src = str(path)
    _check_layout_arg(layout, ("auto", *LAYOUTS), src)
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{src}: not a readable HDF5 file ({exc})") from None
    sink: list[str] = []
    with h5:
        if layout == "auto":
            layout = detect_layout(h5, keys)
        if layout == "aps_u":
            return _index_aps_u(h5, src, sink)
        if layout == "aps_legacy":
            return _index_aps_legacy(h5, src, sink)
        if layout == "nexus":
            return index_nexus(h5, src, sink)
        if layout == "exchange":
            return _index_exchange(h5, src, sink)
        return _index_flat_h5(h5, keys, src, sink)


# --------------------------------------------------------------------------------------------
# NPZ


def _npz_member_meta(zf: zipfile.ZipFile, member: str, src: str, name: str) -> NpzMatrices:
    """Shape, dtype and data offset of an ``.npy`` member, from its header only."""
    with zf.open(member) as fp:
        try:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        except ValueError as exc:
            raise DataError(f"{src}: {name}: not a NumPy array member ({exc})") from None
        offset = fp.tell()
    if dtype.hasobject:
        raise DataError(
            f"{src}: {name}: holds Python objects (needs pickle); expected a numeric array"
        )
    if dtype.kind not in "iuf":
        raise DataError(
            f"{src}: {name}: expected real numeric correlation values, got dtype {dtype} "
            f"with shape {shape}"
        )
    if fortran and len(shape) > 1:
        raise DataError(f"{src}: {name}: stored in Fortran order; save it C-ordered")
    return NpzMatrices(src, member, tuple(int(d) for d in shape), dtype.str, offset)


def _index_npz(path: Path, layout: str, keys: FlatKeys) -> FileIndex:
    src = str(path)
    _check_layout_arg(layout, ("auto", "flat", "npz"), src)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{src}: not a readable NPZ archive ({exc})") from None
    sink: list[str] = []
    with zf:
        members = {m[:-4]: m for m in zf.namelist() if m.endswith(".npy")}
        if keys.c2 not in members:
            raise DataError(f"{src}: {keys.c2}: missing; expected the c2 array (N×N or n×N×N)")
        meta = _npz_member_meta(zf, members[keys.c2], src, keys.c2)
        shape = meta.shape
        n, n_frames = _stack_meta(_ShapeOnly(shape, np.dtype(meta.dtype)), src, keys.c2)

        def get(name: str) -> np.ndarray | None:
            if name not in members:
                return None
            try:
                with zf.open(members[name]) as fp:
                    return np.lib.format.read_array(fp, allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise DataError(
                    f"{src}: {name}: cannot be loaded without pickle; expected a numeric "
                    f"array ({exc})"
                ) from None

        return _flat_index(get, keys, src, "npz", n, n_frames, len(shape), meta.dtype, meta, sink)


@dataclass(frozen=True)
class _ShapeOnly:
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


# --------------------------------------------------------------------------------------------


def index_file(path: str | Path, layout: str = "auto", keys: FlatKeys | None = None) -> FileIndex:
    """Index ``path`` from its metadata; the format is chosen by extension.

    ``layout`` is "auto" or one of aps_u, aps_legacy, nexus, exchange, flat (HDF5); NPZ accepts
    "auto", "flat" or "npz". ``keys`` names the flat/NPZ arrays. No matrix is read.
    """
    path = Path(path)
    keys = keys or FlatKeys()
    suffix = path.suffix.lower()
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a data file")
    if suffix not in HDF5_SUFFIXES + NPZ_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file extension {path.suffix or '(none)'!r}; "
            f"supported formats: {SUPPORTED_FORMATS}"
        )
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    if suffix in NPZ_SUFFIXES:
        return _index_npz(path, layout, keys)
    return _index_hdf5(path, layout, keys)
