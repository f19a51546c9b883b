"""Helpers for the file readers: numeric checks, vectors, matrix stacks, half matrices, and
guarded HDF5 dataset access.

Every check raises :class:`~hpcfit.errors.DataError` naming the file and the field.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np

from hpcfit.errors import AdviceWarning, DataError


def natural_key(name: str) -> tuple[tuple[Any, ...], str]:
    """Sort key: digit runs compare as integers, other runs as text; ties by the plain name."""
    parts = re.split(r"(\d+)", name)
    key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p != "")
    return key, name


def _warn(msg: str, sink: list[str]) -> None:
    sink.append(msg)
    warnings.warn(msg, AdviceWarning, stacklevel=3)


def _numeric(arr: Any, src: str, field: str) -> np.ndarray:
    """Return ``arr`` as float64, or raise if it is not a real numeric array."""
    a = np.asarray(arr)
    if a.dtype.kind not in "biuf":
        raise DataError(
            f"{src}: {field}: expected a real numeric array, got dtype {a.dtype} "
            f"with shape {a.shape}"
        )
    return a.astype(np.float64)


def _vector(arr: Any, src: str, field: str) -> np.ndarray:
    """A 1-D float64 vector; scalars become length 1, (1, n)/(n, 1) are flattened."""
    a = _numeric(arr, src, field)
    if a.ndim > 1 and sum(d > 1 for d in a.shape) <= 1:
        a = a.reshape(-1)
    a = np.atleast_1d(a)
    if a.ndim != 1:
        raise DataError(f"{src}: {field}: expected a 1-D vector, got shape {a.shape}")
    return a


def _per_bin(arr: np.ndarray, n: int, src: str, field: str, *, broadcast: bool) -> np.ndarray:
    if arr.size == n:
        return arr
    if broadcast and arr.size == 1:
        return np.full(n, arr[0], dtype=np.float64)
    want = f"{n} values (one per matrix)" + (" or 1" if broadcast else "")
    raise DataError(f"{src}: {field}: has {arr.size} values, expected {want}")


def _stack_c2(arr: Any, src: str, field: str) -> np.ndarray:
    """c2 as (n, N, N) float64; a 2-D matrix becomes one slot."""
    a = _numeric(arr, src, field)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise DataError(f"{src}: {field}: expected an N×N or n×N×N array, got shape {a.shape}")
    if a.shape[1] != a.shape[2]:
        raise DataError(f"{src}: {field}: matrices must be square, got shape {a.shape}")
    if a.shape[0] == 0:
        raise DataError(f"{src}: {field}: holds no matrices (shape {a.shape})")
    return np.ascontiguousarray(a)


def rebuild_half(m: np.ndarray) -> tuple[np.ndarray, bool]:
    """Rebuild a half-stored matrix as M + Mᵀ − diag(M) if one strict triangle is all zero.

    Returns ``(matrix, rebuilt)``; if both strict triangles are non-zero, ``M`` is returned as is
    with ``rebuilt = False``. The rebuild is exact: off-diagonal entries are x + 0 and the
    diagonal is copied.
    """
    lower_zero = not np.any(np.tril(m, k=-1))
    upper_zero = not np.any(np.triu(m, k=1))
    if not (lower_zero or upper_zero):
        return m, False
    full = m + m.T
    np.fill_diagonal(full, np.diagonal(m))
    return full, True


def _phi_or_default(
    phi: np.ndarray | None, n: int, src: str, field: str, sink: list[str]
) -> np.ndarray:
    if phi is not None:
        return _per_bin(phi, n, src, field, broadcast=False)
    if n > 1:
        raise DataError(
            f"{src}: {field}: missing; an azimuth per matrix is required when the file holds "
            f"{n} matrices"
        )
    _warn(f"{src}: {field}: missing; the single matrix is taken at phi = 0 deg", sink)
    return np.zeros(1, dtype=np.float64)


# HDF5 access


def _has(h5: Any, name: str) -> bool:
    try:
        return name in h5
    except (KeyError, ValueError, RuntimeError):  # broken links and similar
        return False


def _is_dataset(h5: Any, name: str) -> bool:
    import h5py

    return _has(h5, name) and isinstance(h5[name], h5py.Dataset)


def _is_group(h5: Any, name: str) -> bool:
    import h5py

    return _has(h5, name) and isinstance(h5[name], h5py.Group)


def _h5name(h5: Any) -> str:
    return str(getattr(getattr(h5, "file", h5), "filename", "<hdf5>"))


def _read(h5: Any, name: str, src: str) -> np.ndarray:
    if not _is_dataset(h5, name):
        kind = "not a dataset" if _has(h5, name) else "missing"
        raise DataError(f"{src}: {name}: {kind}; expected a dataset")
    try:
        return np.asarray(h5[name][()])
    except (OSError, TypeError, ValueError) as exc:
        raise DataError(f"{src}: {name}: cannot be read ({exc})") from None


def _first(h5: Any, names: tuple[str, ...]) -> str | None:
    for name in names:
        if _is_dataset(h5, name):
            return name
    return None


def _read_time(h5: Any, names: tuple[str, ...], src: str) -> np.ndarray | None:
    name = _first(h5, names)
    return None if name is None else _vector(_read(h5, name, src), src, name)


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
