"""Data files: format by extension, HDF5 layout detection, and indexing each layout.

:func:`index_file` reads a file's *metadata* only — which matrices it holds, their producer bin
labels, q, φ and shape, the frame interval — and returns a :class:`FileIndex`. Matrices are read
later, only those that the selection keeps (:mod:`hpcfit.xpcs.data`), through
:meth:`FileIndex.open`. Peak memory therefore follows the selection, not the file.

Layouts (every key for users: ``docs/data.md``): **aps_u** and **aps_legacy** in
:mod:`hpcfit.xpcs.aps`, **nexus** (NXxpcs) in :mod:`hpcfit.xpcs.nexus`, and here the generic
**exchange**, **flat** and NPZ layouts (q, φ, an optional time axis whose median spacing is dt,
and for flat/NPZ an optional known σ). Matrix sources live in :mod:`hpcfit.xpcs.matrices`.

Decisions where the producers leave a choice:

- Matrix datasets of a group are paired with their labels in natural name order (digit runs
  compare as integers; ties by name). Subgroups there are ignored.
- Several layouts matching one HDF5 file is an error unless ``data.layout`` chooses.
- (1, n)/(n, 1) vectors are flattened; (1, 1) scalars are scalars.
- A boolean or non-numeric matrix dataset is an error.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.errors import DataError
from hpcfit.xpcs.aps import (
    APSU_CMAP,
    APSU_QLIST,
    LEGACY_C2,
    LEGACY_DQ,
    index_aps_legacy,
    index_aps_u,
)
from hpcfit.xpcs.arrays import (
    _h5name,
    _has,
    _is_dataset,
    _per_bin,
    _phi_or_default,
    _read,
    _stack_meta,
    _vector,
)
from hpcfit.xpcs.file_index import FileIndex, FlatKeys, in_memory
from hpcfit.xpcs.matrices import H5Matrices, ShapeOnly, npz_member_meta

__all__ = ["FileIndex", "FlatKeys", "detect_layout", "in_memory", "index_file", "matching_layouts"]

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs")
NPZ_SUFFIXES = (".npz",)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first 8 bytes of an HDF5 file (superblock at 0)
SUPPORTED_FORMATS = "HDF5 (.h5, .hdf5, .hdf, .nxs) or NPZ (.npz)"

LAYOUTS = ("aps_u", "aps_legacy", "nexus", "exchange", "flat")
"""HDF5 layouts in detection order."""

# "exchange" group
EXCHANGE = "exchange"
EXCHANGE_C2 = ("twotime_corr", "twotime", "c2", "corr")
EXCHANGE_T = ("tau", "t", "times", "delay_time")
EXCHANGE_Q = ("q_val", "q_values", "q", "qval")
EXCHANGE_PHI = ("phi", "phi_angles", "azimuth")


def _check_layout_arg(layout: str, allowed: tuple[str, ...], src: str) -> None:
    if layout not in allowed:
        raise DataError(f"{src}: data.layout: got {layout!r}, expected one of {', '.join(allowed)}")


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
    phi = None
    if phi_name is not None:
        phi = _vector(_read(h5, phi_name, src), src, phi_name)
        phi = _per_bin(phi, n, src, phi_name, broadcast=False)
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
            return index_aps_u(h5, src, sink)
        if layout == "aps_legacy":
            return index_aps_legacy(h5, src, sink)
        if layout == "nexus":
            return index_nexus(h5, src, sink)
        if layout == "exchange":
            return _index_exchange(h5, src, sink)
        return _index_flat_h5(h5, keys, src, sink)


# --------------------------------------------------------------------------------------------
# NPZ


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
        meta = npz_member_meta(zf, members[keys.c2], src, keys.c2)
        shape = meta.shape
        n, n_frames = _stack_meta(ShapeOnly(shape, np.dtype(meta.dtype)), src, keys.c2)

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
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == HDF5_SIGNATURE and suffix in NPZ_SUFFIXES:
        raise DataError(
            f"{path}: the file is HDF5 (its first bytes say so) but named {path.suffix}; "
            "rename it .h5 (or .hdf5) to read it as HDF5"
        )
    if head[:4] == b"PK\x03\x04" and suffix in HDF5_SUFFIXES:
        raise DataError(
            f"{path}: the file is an NPZ (zip) archive but named {path.suffix}; rename it .npz"
        )
    if suffix in NPZ_SUFFIXES:
        return _index_npz(path, layout, keys)
    return _index_hdf5(path, layout, keys)
