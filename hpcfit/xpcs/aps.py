"""The two APS layouts: APS-U (boost_corr) and legacy (xpcs-eigen, boost_corr before 2025).

How each producer writes its file is documented for users in ``docs/data.md``; in short:

- **aps_u**: matrices ``c2_NNNNN`` (position from 1) in ``xpcs/twotime/correlation_map``, paired
  in natural name order with ``xpcs/twotime/processed_bins``: 1-based labels of the *compressed*
  dynamic partition. Label b sits in cell ``xpcs/qmap/dynamic_index_mapping[b − 1]`` (q-major)
  of ``dynamic_v_list_dim0`` (q) × ``dynamic_v_list_dim1`` (φ); ``map_names`` must be (q, phi).
  dt = frame_time × avg_frame × stride_frame.
- **aps_legacy**: matrices in ``exchange/C2T_all``; ``xpcs/dqlist``/``dphilist`` hold one value
  per grid cell with NaN for empty cells, and bin b is the b-th finite entry; the stored bins are
  ``xpcs/qphi_bin_to_process``. dt = exposure_period × avg_frames × stride_frames;
  ``exchange/tau`` is the multi-tau lag list, not a time axis.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from hpcfit.errors import DataError
from hpcfit.xpcs.arrays import (
    _dt_product,
    _group_matrices,
    _has,
    _labels,
    _phi_or_default,
    _read,
    _texts,
    _vector,
)
from hpcfit.xpcs.file_index import FileIndex
from hpcfit.xpcs.matrices import H5Matrices

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


def index_aps_u(h5: Any, src: str, sink: list[str]) -> FileIndex:
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


def index_aps_legacy(h5: Any, src: str, sink: list[str]) -> FileIndex:
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
