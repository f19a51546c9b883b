"""Data files: format by extension, HDF5 layout detection and raw readers (model spec §7.2).

``read_file`` returns a :class:`RawData` — every matrix the file holds, with its q and φ, before
any selection. Selection, slicing and validation live in :mod:`hpcfit.xpcs.data`.

Decisions where the spec is silent:

- Matrix datasets of a group (APS-U ``correlation_map``, legacy ``C2T_all``) are sorted by a
  natural key (digit runs compare as integers; ties by name): ``c2_2`` before ``c2_10``, and
  the lexical order for zero-padded names. Subgroups there are ignored.
- A time axis is optional in every layout (never used for the physics); (1, n)/(n, 1) vectors
  are flattened; q and sigma of size 1 apply to every matrix, else one value per matrix.
- "exchange": names are looked up in ``exchange`` first, then at the root; detected when
  ``exchange`` holds one of the c2 dataset names.
- APS-U needs ``xpcs/twotime/processed_bins``; without ``dynamic_v_list_dim1`` n_φ = 1 and φ
  counts as missing (an error with > 1 matrix, else 0 with a warning).
- Half matrices are rebuilt for APS-U and APS legacy only; "both triangles non-zero" gives one
  warning per file. NPZ files accept ``layout`` auto, flat or npz.
- Warnings go through :func:`warnings.warn` and into ``RawData.warnings`` (for provenance).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.errors import DataError
from hpcfit.xpcs.arrays import (
    _first,
    _h5name,
    _has,
    _is_dataset,
    _is_group,
    _numeric,
    _per_bin,
    _phi_or_default,
    _read,
    _read_time,
    _stack_c2,
    _vector,
    _warn,
    natural_key,
    rebuild_half,
)

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
NPZ_SUFFIXES = (".npz",)
SUPPORTED_FORMATS = "HDF5 (.h5, .hdf5, .hdf) or NPZ (.npz)"

LAYOUTS = ("aps_u", "aps_legacy", "exchange", "flat")
"""HDF5 layouts in detection order."""

# APS-U twotime
APSU_CMAP = "xpcs/twotime/correlation_map"
APSU_QLIST = "xpcs/qmap/dynamic_v_list_dim0"
APSU_PHILIST = "xpcs/qmap/dynamic_v_list_dim1"
APSU_BINS = "xpcs/twotime/processed_bins"
APSU_T = ("xpcs/twotime/t", "xpcs/t", "exchange/t")
# APS legacy
LEGACY_DQ = "xpcs/dqlist"
LEGACY_DPHI = "xpcs/dphilist"
LEGACY_C2 = "exchange/C2T_all"
LEGACY_T = ("exchange/t", "exchange/tau", "xpcs/t")
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


@dataclass(frozen=True)
class RawData:
    """What a file holds, before selection. Arrays are float64.

    Attributes
    ----------
    c2 : Float64[Array, "n_bins N N"]  full matrices (half matrices already rebuilt)
    q : Float64[Array, "n_bins"]  q per matrix (1/Å)
    phi : Float64[Array, "n_bins"]  azimuth per matrix (deg), as stored (not normalised)
    t_file : Float64[Array, "n_t"] | None  the file's time axis, if any (not yet validated)
    sigma : Float64[Array, "n_bins"] | None  known noise level (flat / NPZ ``sigma``)
    layout : str  "aps_u" | "aps_legacy" | "exchange" | "flat" | "npz"
    bins : list[int] | None  1-based processed bin numbers (APS-U only)
    warnings : tuple[str, ...]  warnings issued while reading
    """

    c2: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    t_file: np.ndarray | None
    sigma: np.ndarray | None
    layout: str
    bins: list[int] | None
    warnings: tuple[str, ...] = ()

    @property
    def n_bins(self) -> int:
        return int(self.c2.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.c2.shape[-1])


def _check_layout_arg(layout: str, allowed: tuple[str, ...], src: str) -> None:
    if layout not in allowed:
        raise DataError(f"{src}: data.layout: got {layout!r}, expected one of {', '.join(allowed)}")


# --------------------------------------------------------------------------------------------
# HDF5


def _exchange_c2_name(h5: Any) -> str | None:
    for name in EXCHANGE_C2:
        if _is_dataset(h5, f"{EXCHANGE}/{name}"):
            return f"{EXCHANGE}/{name}"
    return None


def detect_layout(h5file: Any, keys: FlatKeys | None = None) -> str:
    """The layout of an open HDF5 file, tried in the order aps_u, aps_legacy, exchange, flat.

    Raises :class:`DataError` naming the datasets that would identify each layout.
    """
    keys = keys or FlatKeys()
    if _has(h5file, APSU_CMAP) and _has(h5file, APSU_QLIST):
        return "aps_u"
    if _has(h5file, LEGACY_DQ) and _has(h5file, LEGACY_C2):
        return "aps_legacy"
    if _exchange_c2_name(h5file) is not None:
        return "exchange"
    if _has(h5file, keys.c2):
        return "flat"
    raise DataError(
        f"{_h5name(h5file)}: unknown HDF5 layout; expected aps_u ({APSU_CMAP} and {APSU_QLIST}), "
        f"aps_legacy ({LEGACY_DQ} and {LEGACY_C2}), exchange (one of "
        f"{', '.join(f'{EXCHANGE}/{n}' for n in EXCHANGE_C2)}) or flat (/{keys.c2})"
    )


def _group_matrices(h5: Any, group: str, src: str, sink: list[str]) -> np.ndarray:
    """Datasets of ``group`` in natural name order, half matrices rebuilt, stacked (n, N, N)."""
    import h5py

    if not _is_group(h5, group):
        raise DataError(f"{src}: {group}: expected a group of correlation matrices")
    g = h5[group]
    names = sorted((k for k in g.keys() if isinstance(g.get(k), h5py.Dataset)), key=natural_key)
    if not names:
        raise DataError(f"{src}: {group}: holds no matrix datasets")
    mats: list[np.ndarray] = []
    n_full = 0
    first_shape: tuple[int, ...] | None = None
    for name in names:
        field = f"{group}/{name}"
        m = _numeric(_read(h5, field, src), src, field)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise DataError(f"{src}: {field}: expected a square N×N matrix, got shape {m.shape}")
        if first_shape is None:
            first_shape = m.shape
        elif m.shape != first_shape:
            raise DataError(
                f"{src}: {field}: shape {m.shape} differs from {group}/{names[0]} {first_shape}; "
                "all matrices must have the same size"
            )
        m, rebuilt = rebuild_half(m)
        n_full += not rebuilt
        mats.append(m)
    if n_full:
        _warn(
            f"{src}: {group}: {n_full} of {len(names)} half-stored matrices have both strict "
            "triangles non-zero; used as stored",
            sink,
        )
    return np.ascontiguousarray(np.stack(mats))


def _read_aps_u(h5: Any, src: str, sink: list[str]) -> RawData:
    c2 = _group_matrices(h5, APSU_CMAP, src, sink)
    q_list = _vector(_read(h5, APSU_QLIST, src), src, APSU_QLIST)
    phi_list = (
        _vector(_read(h5, APSU_PHILIST, src), src, APSU_PHILIST) if _has(h5, APSU_PHILIST) else None
    )
    n_q = q_list.size
    n_phi = 1 if phi_list is None else phi_list.size
    if n_q == 0 or n_phi == 0:
        raise DataError(f"{src}: {APSU_QLIST}/{APSU_PHILIST}: empty bin list")
    raw_bins = _numeric(_read(h5, APSU_BINS, src), src, APSU_BINS).reshape(-1)
    if raw_bins.size != c2.shape[0]:
        raise DataError(
            f"{src}: {APSU_BINS}: has {raw_bins.size} bins but {APSU_CMAP} holds "
            f"{c2.shape[0]} matrices; expected one bin per matrix"
        )
    if not np.all(np.isfinite(raw_bins)) or np.any(raw_bins != np.round(raw_bins)):
        raise DataError(f"{src}: {APSU_BINS}: expected integer bin numbers")
    bins = raw_bins.astype(np.int64)
    n_total = n_q * n_phi
    bad = np.flatnonzero((bins < 1) | (bins > n_total))
    if bad.size:
        raise DataError(
            f"{src}: {APSU_BINS}: bin {int(bins[bad[0]])} at position {int(bad[0])} is outside "
            f"1…{n_total} (n_q = {n_q} × n_phi = {n_phi})"
        )
    q_idx = (bins - 1) // n_phi
    phi_idx = (bins - 1) % n_phi
    q = q_list[q_idx]
    phi = _phi_or_default(
        None if phi_list is None else phi_list[phi_idx], c2.shape[0], src, APSU_PHILIST, sink
    )
    return RawData(
        c2=c2,
        q=q,
        phi=phi,
        t_file=_read_time(h5, APSU_T, src),
        sigma=None,
        layout="aps_u",
        bins=[int(b) for b in bins],
        warnings=tuple(sink),
    )


def _read_aps_legacy(h5: Any, src: str, sink: list[str]) -> RawData:
    c2 = _group_matrices(h5, LEGACY_C2, src, sink)
    n = c2.shape[0]
    q = _per_bin(
        _vector(_read(h5, LEGACY_DQ, src), src, LEGACY_DQ), n, src, LEGACY_DQ, broadcast=False
    )
    phi = _vector(_read(h5, LEGACY_DPHI, src), src, LEGACY_DPHI) if _has(h5, LEGACY_DPHI) else None
    return RawData(
        c2=c2,
        q=q,
        phi=_phi_or_default(phi, n, src, LEGACY_DPHI, sink),
        t_file=_read_time(h5, LEGACY_T, src),
        sigma=None,
        layout="aps_legacy",
        bins=None,
        warnings=tuple(sink),
    )


def _read_exchange(h5: Any, src: str, sink: list[str]) -> RawData:
    c2_name = _exchange_c2_name(h5)
    if c2_name is None:
        raise DataError(
            f"{src}: exchange layout: none of "
            f"{', '.join(f'{EXCHANGE}/{n}' for n in EXCHANGE_C2)} is a dataset"
        )
    c2 = _stack_c2(_read(h5, c2_name, src), src, c2_name)
    n = c2.shape[0]

    def lookup(names: tuple[str, ...]) -> str | None:
        return _first(h5, tuple(f"{EXCHANGE}/{k}" for k in names) + names)

    q_name = lookup(EXCHANGE_Q)
    if q_name is None:
        raise DataError(
            f"{src}: q: missing; expected one of {', '.join(EXCHANGE_Q)} in /{EXCHANGE} or at "
            "the file root (the model needs q)"
        )
    q = _per_bin(_vector(_read(h5, q_name, src), src, q_name), n, src, q_name, broadcast=True)
    phi_name = lookup(EXCHANGE_PHI)
    phi = None if phi_name is None else _vector(_read(h5, phi_name, src), src, phi_name)
    t_name = lookup(EXCHANGE_T)
    return RawData(
        c2=c2,
        q=q,
        phi=_phi_or_default(phi, n, src, phi_name or "/".join(EXCHANGE_PHI), sink),
        t_file=None if t_name is None else _vector(_read(h5, t_name, src), src, t_name),
        sigma=None,
        layout="exchange",
        bins=None,
        warnings=tuple(sink),
    )


def _from_flat(
    get: Callable[[str], np.ndarray | None], keys: FlatKeys, src: str, layout: str, sink: list[str]
) -> RawData:
    """Shared reader of the flat HDF5 layout and NPZ; ``get(name)`` is None when missing."""
    c2_raw = get(keys.c2)
    if c2_raw is None:
        raise DataError(f"{src}: {keys.c2}: missing; expected the c2 array (N×N or n×N×N)")
    c2 = _stack_c2(c2_raw, src, keys.c2)
    n = c2.shape[0]
    q_raw = get(keys.q)
    if q_raw is None:
        raise DataError(f"{src}: {keys.q}: missing; a q per matrix (1/Å) is required")
    q = _per_bin(_vector(q_raw, src, keys.q), n, src, keys.q, broadcast=True)
    phi_raw = get(keys.phi)
    phi = None if phi_raw is None else _vector(phi_raw, src, keys.phi)
    t_raw = get(keys.t)
    sigma_raw = get(keys.sigma)
    sigma = (
        None
        if sigma_raw is None
        else _per_bin(_vector(sigma_raw, src, keys.sigma), n, src, keys.sigma, broadcast=True)
    )
    return RawData(
        c2=c2,
        q=q,
        phi=_phi_or_default(phi, n, src, keys.phi, sink),
        t_file=None if t_raw is None else _vector(t_raw, src, keys.t),
        sigma=sigma,
        layout=layout,
        bins=None,
        warnings=tuple(sink),
    )


def _read_hdf5(path: Path, layout: str, keys: FlatKeys) -> RawData:
    import h5py

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
            return _read_aps_u(h5, src, sink)
        if layout == "aps_legacy":
            return _read_aps_legacy(h5, src, sink)
        if layout == "exchange":
            return _read_exchange(h5, src, sink)

        def get(name: str) -> np.ndarray | None:
            return _read(h5, name, src) if _has(h5, name) else None

        return _from_flat(get, keys, src, "flat", sink)


def _read_npz(path: Path, layout: str, keys: FlatKeys) -> RawData:
    src = str(path)
    _check_layout_arg(layout, ("auto", "flat", "npz"), src)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{src}: not a readable NPZ archive ({exc})") from None
    if not isinstance(archive, Mapping):
        raise DataError(f"{src}: expected an NPZ archive of named arrays, got a single array")
    sink: list[str] = []
    with archive:

        def get(name: str) -> np.ndarray | None:
            if name not in archive.files:
                return None
            try:
                return archive[name]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
                raise DataError(
                    f"{src}: {name}: cannot be loaded without pickle; expected a numeric "
                    f"array ({exc})"
                ) from None

        return _from_flat(get, keys, src, "npz", sink)


def read_file(path: str | Path, layout: str = "auto", keys: FlatKeys | None = None) -> RawData:
    """Read every matrix of ``path``; the format is chosen by extension (model spec §7.2).

    ``layout`` is "auto" or one of aps_u, aps_legacy, exchange, flat (HDF5); NPZ accepts
    "auto", "flat" or "npz". ``keys`` names the flat/NPZ arrays.
    """
    path = Path(path)
    keys = keys or FlatKeys()
    suffix = path.suffix.lower()
    if suffix not in HDF5_SUFFIXES + NPZ_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file extension {path.suffix or '(none)'!r}; "
            f"supported formats: {SUPPORTED_FORMATS}"
        )
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    if suffix in NPZ_SUFFIXES:
        return _read_npz(path, layout, keys)
    return _read_hdf5(path, layout, keys)
