"""The NeXus NXxpcs two-time layout (``data.layout=nexus``).

The NXxpcs application definition, and boost_corr's result schema that follows it, store the
two-time correlation of every q bin in one array ``<entry>/twotime/two_time_corr_func`` whose
attributes say how to read it:

- ``storage_mode``: ``one_array_q_first`` (n_q, N, N) or ``one_array_q_last`` (N, N, n_q);
  ``data_exchange_keys`` (one dataset per ROI) is not supported.
- ``populated_elements``: ``upper_half`` (boost_corr's choice), ``lower_half`` or ``all``; a half
  matrix is rebuilt as M + Mᵀ − diag M.
- ``time_origin_location``: only ``upper_left`` (row i, column j = frames i, j) is supported.
- ``baseline_reference``: the value of a fully decorrelated c2; hpcfit's model needs 1.

The matrix of position k belongs to ROI k + 1 of the dynamic partition; its q and φ are
``<entry>/instrument/masks/dynamic_q_list[k]`` and ``dynamic_phi_list[k]`` (ordered by ROI index
from 1). The frame interval is the detector's ``frame_time``
(``<entry>/instrument/<detector>/frame_time``): NXxpcs records no frame averaging or stride.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hpcfit.errors import DataError
from hpcfit.xpcs.arrays import _has, _is_dataset, _read, _vector, _warn

TWOTIME = "twotime/two_time_corr_func"
NEXUS_MARKER = f"<entry>/{TWOTIME}"
MASKS = "instrument/masks"
DETECTORS = ("instrument/detector_1", "instrument/detector")


def _entries(h5: Any) -> list[str]:
    """Candidate NXentry groups: ``entry`` first, then root groups tagged NXentry."""
    import h5py

    names = ["entry"] if _has(h5, "entry") else []
    for key, obj in h5.items():
        if key not in names and isinstance(obj, h5py.Group):
            cls = obj.attrs.get("NX_class")
            cls = cls.decode() if isinstance(cls, bytes) else cls
            if cls == "NXentry":
                names.append(key)
    return names


def _entry(h5: Any) -> str | None:
    for name in _entries(h5):
        if _is_dataset(h5, f"{name}/{TWOTIME}"):
            return name
    return None


def is_nexus(h5: Any) -> bool:
    return _entry(h5) is not None


def _attr(ds: Any, name: str) -> str | None:
    v = ds.attrs.get(name)
    if v is None:
        return None
    v = np.asarray(v).reshape(-1)[0] if np.ndim(v) else v
    return v.decode() if isinstance(v, bytes) else str(v)


def _frame_time(h5: Any, entry: str, src: str) -> tuple[float | None, str]:
    import h5py

    candidates = [f"{entry}/{d}/frame_time" for d in DETECTORS]
    inst = f"{entry}/instrument"
    if _has(h5, inst):
        for key, obj in h5[inst].items():
            cls = obj.attrs.get("NX_class") if isinstance(obj, h5py.Group) else None
            cls = cls.decode() if isinstance(cls, bytes) else cls
            if cls == "NXdetector":
                candidates.append(f"{inst}/{key}/frame_time")
    for name in candidates:
        if _is_dataset(h5, name):
            v = _vector(_read(h5, name, src), src, name)
            if v.size != 1 or not (np.isfinite(v[0]) and v[0] > 0):
                raise DataError(f"{src}: {name}: got {v.tolist()}, expected one frame time > 0 s")
            return float(v[0]), name
    return None, f"missing {candidates[0]}"


def index_nexus(h5: Any, src: str, sink: list[str]) -> Any:
    """Metadata of an NXxpcs two-time file (see the module docstring)."""
    from hpcfit.xpcs.arrays import _matrix_meta
    from hpcfit.xpcs.file_index import FileIndex
    from hpcfit.xpcs.matrices import H5Matrices

    entry = _entry(h5)
    if entry is None:
        raise DataError(f"{src}: nexus layout: no {NEXUS_MARKER} dataset")
    name = f"{entry}/{TWOTIME}"
    ds = h5[name]
    shape, dtype = _matrix_meta(ds, src, name)
    mode = _attr(ds, "storage_mode") or ("one_array_q_first" if len(shape) == 3 else "single")
    if len(shape) == 2:
        mode, shape = "single", (1, *shape)
    if len(shape) != 3 or mode not in ("one_array_q_first", "one_array_q_last", "single"):
        raise DataError(
            f"{src}: {name}: storage_mode {mode!r} with shape {tuple(ds.shape)}; expected "
            "one_array_q_first (n_q, N, N) or one_array_q_last (N, N, n_q)"
        )
    n, n_frames = (shape[2], shape[0]) if mode == "one_array_q_last" else (shape[0], shape[1])
    if shape[1] != (shape[0] if mode == "one_array_q_last" else shape[2]):
        raise DataError(f"{src}: {name}: matrices must be square, got shape {tuple(ds.shape)}")
    origin_loc = _attr(ds, "time_origin_location") or "upper_left"
    if origin_loc != "upper_left":
        raise DataError(
            f"{src}: {name}: time_origin_location {origin_loc!r}; expected upper_left "
            "(row i, column j = frames i, j)"
        )
    baseline = _attr(ds, "baseline_reference")
    if baseline is not None and float(baseline) != 1.0:
        raise DataError(
            f"{src}: {name}: baseline_reference {baseline}; expected 1 (c2 → 1 at full "
            "decorrelation, as the model's offset assumes)"
        )
    populated = _attr(ds, "populated_elements") or "all"
    if populated not in ("upper_half", "lower_half", "all"):
        raise DataError(
            f"{src}: {name}: populated_elements {populated!r}; expected upper_half, lower_half "
            "or all"
        )
    q_name, phi_name = f"{entry}/{MASKS}/dynamic_q_list", f"{entry}/{MASKS}/dynamic_phi_list"
    if not _is_dataset(h5, q_name):
        raise DataError(f"{src}: {q_name}: missing; the q of each ROI is required")
    q = _vector(_read(h5, q_name, src), src, q_name)
    if q.size != n:
        raise DataError(f"{src}: {q_name}: has {q.size} values, expected {n} (one per matrix)")
    if _is_dataset(h5, phi_name):
        phi = _vector(_read(h5, phi_name, src), src, phi_name)
        if phi.size != n:
            raise DataError(
                f"{src}: {phi_name}: has {phi.size} values, expected {n} (one per matrix)"
            )
    elif n == 1:
        _warn(f"{src}: {phi_name}: missing; the single matrix is taken at phi = 0 deg", sink)
        phi = np.zeros(1)
    else:
        raise DataError(f"{src}: {phi_name}: missing; an azimuth per matrix is required")
    dt, dt_source = _frame_time(h5, entry, src)
    origin = tuple(
        {
            "dataset": f"{name}[{k}]" if mode != "one_array_q_last" else f"{name}[:, :, {k}]",
            "bin": k + 1,
            "q_source": f"{q_name}[{k}]",
            "phi_source": f"{phi_name}[{k}]" if n > 1 or _is_dataset(h5, phi_name) else "default 0",
        }
        for k in range(n)
    )
    if mode == "single":
        refs: tuple[tuple[str, Any], ...] = ((name, None),)
    elif mode == "one_array_q_last":
        refs = tuple((name, ("last", k)) for k in range(n))
    else:
        refs = tuple((name, k) for k in range(n))
    return FileIndex(
        path=src,
        layout="nexus",
        n_frames=n_frames,
        q=q,
        phi=phi,
        origin=origin,
        matrices=H5Matrices(src, refs),
        half=populated != "all",
        dtype=str(dtype),
        dt_file=dt,
        dt_source=dt_source,
        warnings=tuple(sink),
    )
