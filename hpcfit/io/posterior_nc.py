"""Posterior draws as an ArviZ InferenceData (xarray DataTree) in netCDF-4 (engine h5netcdf).

The file loads with ``arviz.from_netcdf(path)``: group ``posterior`` holds one variable per
parameter name with dims ``(chain, draw)``; the optional group ``sample_stats`` holds per-draw
statistics (``diverging``, ``energy``, ...) with the same dims; global attributes sit on the root.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.io.atomic import write_atomic_path

_RESERVED = ("chain", "draw")


def _check_names(names: Sequence[str], what: str) -> list[str]:
    out = [str(n) for n in names]
    if len(set(out)) != len(out):
        raise ValueError(f"{what} must be unique, got {out}")
    for n in out:
        if not n or "/" in n or n in _RESERVED:
            raise ValueError(f"invalid {what[:-1]} {n!r} (empty, containing '/', or chain/draw)")
    return out


def write_posterior_nc(
    path: str | Path,
    draws_theta: np.ndarray,
    names: Sequence[str],
    *,
    sample_stats: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping[str, str | int | float] | None = None,
) -> Path:
    """Write draws to ``path`` as ArviZ netCDF, atomically (temp file + ``os.replace``).

    Args:
        path: target file (conventionally ``*.nc``); parent directories are created.
        draws_theta: posterior draws in the physical (constrained) parameters, shape
            ``(chains, samples, P)``, in each parameter's own units; dtype is kept.
        names: the ``P`` parameter names, e.g. ``"D0_ref"``, ``"contrast_0"``; one netCDF
            variable each in group ``posterior``.
        sample_stats: optional per-draw statistics, each of shape ``(chains, samples)``
            (bool arrays are allowed; xarray stores them as int8 and decodes them back).
        attrs: global attributes (str, int or float; bools are stored as int 0/1).

    Returns:
        ``path``.

    Raises:
        ValueError: on shape mismatches or invalid/duplicate names.
        TypeError: on attribute values that are not str, int or float.
    """
    import arviz as az

    draws = np.asarray(draws_theta)
    if draws.ndim != 3:
        raise ValueError(f"draws_theta must have shape (chains, samples, P), got {draws.shape}")
    names = _check_names(names, "parameter names")
    if draws.shape[2] != len(names):
        raise ValueError(f"draws_theta has {draws.shape[2]} parameters but {len(names)} names")
    chains, samples = draws.shape[:2]
    if chains < 1 or samples < 1:
        raise ValueError(f"draws_theta needs at least one chain and one draw, got {draws.shape}")

    data: dict[str, dict[str, np.ndarray]] = {
        "posterior": {n: np.array(draws[:, :, p]) for p, n in enumerate(names)}
    }
    if sample_stats:
        stats = {}
        for n, values in zip(
            _check_names(list(sample_stats), "sample_stats keys"),
            sample_stats.values(),
            strict=True,
        ):
            arr = np.asarray(values)
            if arr.shape != (chains, samples):
                raise ValueError(
                    f"sample_stats[{n!r}] must have shape {(chains, samples)}, got {arr.shape}"
                )
            stats[n] = np.array(arr)
        data["sample_stats"] = stats

    root_attrs: dict[str, str | int | float] = {}
    for k, given in (attrs or {}).items():
        v: Any = given.item() if isinstance(given, np.generic) else given
        if isinstance(v, bool):
            v = int(v)
        if not isinstance(v, str | int | float):
            raise TypeError(f"attrs[{k!r}] must be str, int or float, got {type(v).__name__}")
        root_attrs[str(k)] = v

    tree = az.from_dict(data, attrs={"/": root_attrs} if root_attrs else None)

    def write(tmp: Path) -> None:
        tree.to_netcdf(tmp, mode="w", engine="h5netcdf")

    return write_atomic_path(path, write)
