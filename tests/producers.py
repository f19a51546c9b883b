"""Small two-time files written the way the real producers write them, key by key.

- ``write_aps_u``: boost_corr's APS-U result (``xpcs/twotime``) on a qmap group as the partition
  tool saves it (compressed ``dynamic_roi_map`` labels, ``dynamic_index_mapping``, ``map_names``
  as variable-length strings, the smallest unsigned integer types, lzf above 8192 values).
- ``write_legacy``: ``exchange/C2T_all`` with ``xpcs/dqlist`` (1, n_cells) holding NaN for
  empty cells, as the legacy partition tool writes it; ``flavour="eigen"`` names matrices
  ``g2_<bin>`` (xpcs-eigen: float32, deflate 6, (n, 1) uint64 bin list, (1, 1) metadata),
  ``flavour="boost"`` ``g2_<position>`` (boost_corr ≤ 2024: gzip, (n,) int32 bins, scalars).
- ``write_nexus``: the NXxpcs two-time array (boost_corr's result schema).

Every matrix is c2_ij = 1 + β·exp(−|i − j|/DECAY) with β = BETA0 + BETA_STEP·cell, where cell is
the (q, φ) grid cell that the *generator* computed from pixel geometry; :func:`decode_cell`
recovers it from the values a reader returns, so q/φ labels are checked against the geometry,
not against the reader's own mapping. ``python tests/producers.py tests/data`` rewrites the
committed fixtures.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

N_Q, N_PHI = 5, 4
Q_EDGES = np.linspace(0.002, 0.012, N_Q + 1)  # 1/Å
PHI_EDGES = np.linspace(-180.0, 180.0, N_PHI + 1)  # deg
Q_LIST = (Q_EDGES[1:] + Q_EDGES[:-1]) / 2
PHI_LIST = (PHI_EDGES[1:] + PHI_EDGES[:-1]) / 2
EMPTY_CELLS = (1, 2, 11, 16)  # beam-stop holder and a module gap: 16 of 20 cells non-empty
BETA0, BETA_STEP, DECAY = 0.10, 0.005, 4.0
FRAME_TIME, AVG, STRIDE = 0.002, 2, 3
EMPTY_FRAMES = {5: (3, 7)}  # label → frames (0-based) that caught no photons


@dataclass(frozen=True)
class Partition:
    roi_map: np.ndarray  # (H, W) compressed labels, 0 = masked
    index_mapping: np.ndarray  # label b → cell index_mapping[b − 1]
    cells: np.ndarray  # cell of each label, from pixel geometry (the truth)


def partition(size: int = 48) -> Partition:
    """The dynamic (q, φ) partition of a toy detector, numbered as the partition tool does."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    q = 0.012 * np.hypot(x, y) / (size / 2)
    phi = np.rad2deg(np.arctan2(y, x))
    p1 = np.digitize(q, Q_EDGES)  # 1…N_Q inside the q range
    p1[(p1 < 1) | (p1 > N_Q)] = 0
    p2 = np.clip(np.digitize(phi, PHI_EDGES), 1, N_PHI)
    cell = (p1 - 1) * N_PHI + (p2 - 1)
    p1[np.isin(cell, EMPTY_CELLS)] = 0  # masked pixels
    grid = np.clip((p1 - 1) * N_PHI + (p2 - 1) + 1, 0, None).astype(np.uint32)
    unique, inverse = np.unique(grid, return_inverse=True)
    roi = inverse.reshape(grid.shape).astype(np.uint32)  # 0 stays 0: masked pixels exist
    mapping = unique[unique >= 1] - 1
    return Partition(roi, mapping, mapping.astype(np.int64))


def matrix(cell: int, n: int, empty: tuple[int, ...] = ()) -> np.ndarray:
    lag = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    m = 1.0 + (BETA0 + BETA_STEP * cell) * np.exp(-lag / DECAY)
    for f in empty:
        m[f, :] = m[:, f] = 0.0
    return m


def decode_cell(c2: np.ndarray, kept: np.ndarray | None = None) -> int:
    """The generator's cell of a matrix read back (median over its kept off-diagonal pairs)."""
    n = c2.shape[-1]
    iu, ju = np.triu_indices(n, k=1)
    if kept is not None:
        ok = kept[iu] & kept[ju]
        iu, ju = iu[ok], ju[ok]
    beta = np.median((c2[iu, ju] - 1.0) / np.exp(-(ju - iu) / DECAY))
    return int(round((beta - BETA0) / BETA_STEP))


def _smallest_uint(a: np.ndarray) -> np.ndarray:
    for t in (np.uint8, np.uint16, np.uint32):
        if a.max() <= np.iinfo(t).max:
            return a.astype(t)
    return a.astype(np.uint64)


def _save(group: h5py.Group, name: str, value: np.ndarray) -> None:
    value = np.asarray(value)
    group.create_dataset(name, data=value, compression="lzf" if value.size > 1024 else None)


def write_aps_u(path: Path, n_frames: int = 16, labels: list[int] | None = None) -> Path:
    """boost_corr's APS-U two-time result; ``labels`` = processed bins (default: all)."""
    part = partition()
    labels = labels or list(range(1, part.index_mapping.size + 1))
    with h5py.File(path, "w") as f:
        qmap = f.create_group("xpcs/qmap")
        qmap.attrs["hash"] = "0" * 64
        qmap.attrs["version"] = "toy"
        _save(qmap, "dynamic_roi_map", _smallest_uint(part.roi_map))
        _save(qmap, "dynamic_index_mapping", _smallest_uint(part.index_mapping))
        for k, (values, unit, name) in enumerate(((Q_LIST, "Å⁻¹", "q"), (PHI_LIST, "deg", "phi"))):
            ds = qmap.create_dataset(f"dynamic_v_list_dim{k}", data=values)
            ds.attrs.update(unit=unit, name=name, size=values.size)
        qmap["dynamic_num_pts"] = np.array([N_Q, N_PHI], dtype=np.int64)
        qmap["map_names"] = ["q", "phi"]  # variable-length UTF-8 strings
        qmap["map_units"] = ["Å⁻¹", "deg"]
        f["entry/instrument/detector_1/frame_time"] = FRAME_TIME
        twotime = f.create_group("xpcs/twotime")
        config = twotime.create_group("config")
        config["avg_frame"], config["stride_frame"] = AVG, STRIDE  # Python ints: int64 ()
        config["analysis_type"] = "twotime"
        twotime["processed_bins"] = np.asarray(labels, dtype=np.int32)
        g2 = []
        for pos, label in enumerate(labels, start=1):
            m = matrix(int(part.cells[label - 1]), n_frames, EMPTY_FRAMES.get(label, ()))
            c2 = np.triu(m).astype(np.float32)
            g2.append(np.diagonal(c2, 1).mean())
            lzf = dict(compression="lzf", chunks=c2.shape) if c2.size > 8192 else {}
            twotime.create_dataset(f"correlation_map/c2_{pos:05d}", data=c2, **lzf)
        twotime["normalized_g2"] = np.tile(np.asarray(g2, np.float32), (n_frames, 1))
    return path


def write_legacy(
    path: Path, flavour: str, n_frames: int = 16, labels: list[int] | None = None
) -> Path:
    """The legacy layout; ``labels`` = qphi_bin_to_process (default: every odd label)."""
    part = partition()
    labels = labels or list(range(1, part.index_mapping.size + 1, 2))
    dq = np.full(N_Q * N_PHI, np.nan)
    dphi = np.full(N_Q * N_PHI, np.nan)
    dq[part.cells] = Q_LIST[part.cells // N_PHI]
    dphi[part.cells] = PHI_LIST[part.cells % N_PHI]
    eigen = flavour == "eigen"
    with h5py.File(path, "w") as f:
        f["xpcs/dqlist"] = dq.reshape(1, -1)
        f["xpcs/dphilist"] = dphi.reshape(1, -1)
        if eigen:
            f["xpcs/qphi_bin_to_process"] = np.asarray(labels, np.uint64).reshape(-1, 1)
            f["xpcs/avg_frames"] = np.array([[AVG]], dtype=np.int64)
            f["xpcs/stride_frames"] = np.array([[STRIDE]], dtype=np.int64)
            f["measurement/instrument/detector/exposure_period"] = np.array(
                [[FRAME_TIME]], dtype=np.float32
            )
            f["exchange/tau"] = np.arange(1, 9, dtype=np.float32).reshape(1, -1)
        else:
            f["xpcs/qphi_bin_to_process"] = np.asarray(labels, np.int32)
            f["xpcs/avg_frames"], f["xpcs/stride_frames"] = AVG, STRIDE
            f["measurement/instrument/detector/exposure_period"] = np.array([[FRAME_TIME]])
            f["exchange/tau"] = np.arange(1, 9, dtype=np.int64).reshape(1, -1)
        for pos, label in enumerate(labels, start=1):
            m = matrix(int(part.cells[label - 1]), n_frames, EMPTY_FRAMES.get(label, ()))
            c2 = np.triu(m).astype(np.float32)
            name = f"exchange/C2T_all/g2_{(label if eigen else pos):05d}"
            opts = dict(compression="gzip", compression_opts=6 if eigen else 4, chunks=c2.shape)
            f.create_dataset(name, data=c2, **opts)
    return path


def write_nexus(path: Path, n_frames: int = 16) -> Path:
    """The NXxpcs two-time array (one_array_q_first, upper half) and its ROI lists."""
    part = partition()
    k = part.index_mapping.size
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        twotime = entry.create_group("twotime")
        twotime.attrs["NX_class"] = "NXdata"
        c2 = np.stack(
            [
                np.triu(matrix(int(c), n_frames, EMPTY_FRAMES.get(b + 1, ())))
                for b, c in enumerate(part.cells)
            ]
        ).astype(np.float32)
        ds = twotime.create_dataset("two_time_corr_func", data=c2, compression="lzf")
        ds.attrs.update(
            storage_mode="one_array_q_first",
            baseline_reference=1,
            populated_elements="upper_half",
            time_origin_location="upper_left",
        )
        masks = entry.create_group("instrument/masks")
        masks.attrs["NX_class"] = "NXnote"
        masks["dynamic_roi_map"] = part.roi_map
        masks["dynamic_q_list"] = Q_LIST[part.cells // N_PHI]
        masks["dynamic_phi_list"] = PHI_LIST[part.cells % N_PHI]
        det = entry.create_group("instrument/detector_1")
        det.attrs["NX_class"] = "NXdetector"
        det["frame_time"] = FRAME_TIME
        assert c2.shape[0] == k
    return path


FIXTURES = {
    "aps_u_twotime.h5": lambda p: write_aps_u(p),
    "aps_legacy_xpcs_eigen.hdf": lambda p: write_legacy(p, "eigen"),
    "aps_legacy_boost_corr.hdf": lambda p: write_legacy(p, "boost"),
    "nexus_twotime.h5": lambda p: write_nexus(p),
}


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data")
    out.mkdir(parents=True, exist_ok=True)
    for name, write in FIXTURES.items():
        write(out / name)
        print(out / name)
