"""HDF5/NPZ layout detection, the metadata index and reading matrices through it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpcfit.errors import DataError
from hpcfit.xpcs.arrays import natural_key, rebuild_half
from hpcfit.xpcs.data import read_slots
from hpcfit.xpcs.layouts import FlatKeys, detect_layout, index_file

N = 8


@dataclasses.dataclass
class RawData:
    """Every matrix of a file with its metadata, read through the index (small test files)."""

    c2: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    t_file: np.ndarray | None
    sigma: np.ndarray | None
    layout: str
    bins: list | None
    warnings: tuple


def read_file(path, layout="auto", keys=None) -> RawData:
    index = index_file(path, layout=layout, keys=keys)
    sink: list[str] = list(index.warnings)
    c2 = read_slots(index, np.arange(index.n_bins), slice(None), sink)
    bins = [o["bin"] for o in index.origin]
    return RawData(
        c2, index.q, index.phi, index.t_file, index.sigma, index.layout,
        None if all(b is None for b in bins) else bins, tuple(sink),
    )  # fmt: skip


def sym_stack(n_bins: int, n: int = N, seed: int = 0) -> np.ndarray:
    """Exactly symmetric positive matrices (n_bins, n, n)."""
    rng = np.random.default_rng(seed)
    m = 1.0 + rng.random((n_bins, n, n))
    return np.triu(m) + np.swapaxes(np.triu(m, 1), 1, 2)


def half(m: np.ndarray, store: str) -> np.ndarray:
    if store == "upper":
        return np.triu(m)
    if store == "lower":
        return np.tril(m)
    return m


def write_aps_u(
    path: Path,
    c2: np.ndarray,
    q_list,
    phi_list,
    bins,
    *,
    store: str = "upper",
    names=None,
    times: dict | None = None,
) -> Path:
    names = names or [f"c2_{b:05d}" for b in bins]
    with h5py.File(path, "w") as f:
        g = f.create_group("xpcs/twotime/correlation_map")
        for name, m in zip(names, c2, strict=True):
            g[name] = half(m, store)
        f["xpcs/qmap/dynamic_v_list_dim0"] = np.asarray(q_list, dtype=np.float64)
        if phi_list is not None:
            f["xpcs/qmap/dynamic_v_list_dim1"] = np.asarray(phi_list, dtype=np.float64)
        if bins is not None:
            f["xpcs/twotime/processed_bins"] = np.asarray(bins, dtype=np.int64)
        n_cells = len(q_list) * (1 if phi_list is None else len(phi_list))
        f["xpcs/qmap/dynamic_index_mapping"] = np.arange(n_cells)  # every cell non-empty
        for k, v in (times or {}).items():
            f[k] = v
    return path


def write_legacy(path: Path, c2, dq, dphi, *, store="lower", times: dict | None = None) -> Path:
    with h5py.File(path, "w") as f:
        g = f.create_group("exchange/C2T_all")
        for k, m in enumerate(c2):
            g[f"g2_{k + 1:05d}"] = half(m, store)
        f["xpcs/dqlist"] = np.asarray(dq, dtype=np.float64).reshape(1, -1)
        if dphi is not None:
            f["xpcs/dphilist"] = np.asarray(dphi, dtype=np.float64).reshape(1, -1)
        for k, v in (times or {}).items():
            f[k] = v
    return path


def write_h5(path: Path, datasets: dict) -> Path:
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f[k] = v
    return path


# --------------------------------------------------------------------------------------------
# detection


def _marker_files(tmp_path: Path) -> dict[str, Path]:
    c2 = sym_stack(1)
    return {
        "aps_u": write_aps_u(tmp_path / "u.h5", c2, [0.01], [0.0], [1]),
        "aps_legacy": write_legacy(tmp_path / "l.h5", c2, [0.01], [0.0]),
        "exchange": write_h5(
            tmp_path / "e.h5", {"exchange/corr": c2[0], "exchange/q": 0.01, "exchange/phi": 0.0}
        ),
        "flat": write_h5(tmp_path / "f.h5", {"c2": c2[0], "q": 0.01, "phi": 0.0}),
    }


@pytest.mark.parametrize("layout", ["aps_u", "aps_legacy", "exchange", "flat"])
def test_detect_layout(tmp_path, layout):
    path = _marker_files(tmp_path)[layout]
    with h5py.File(path, "r") as f:
        assert detect_layout(f) == layout
    assert read_file(path).layout == layout


@pytest.mark.parametrize(
    ("datasets", "found"),
    [
        ({"c2": np.eye(2), "exchange/twotime": np.eye(2)}, "exchange, flat"),
        (
            {
                "c2": np.eye(2),
                "xpcs/twotime/correlation_map/c2_00001": np.eye(2),
                "xpcs/qmap/dynamic_v_list_dim0": [0.01],
            },
            "aps_u, flat",
        ),
    ],
)
def test_ambiguous_layout_is_an_error_unless_forced(tmp_path, datasets, found):
    path = write_h5(tmp_path / "both.h5", datasets)
    with pytest.raises(DataError, match=f"ambiguous HDF5 layout: the file matches {found}"):
        index_file(path)
    with h5py.File(path, "r") as f:
        with pytest.raises(DataError, match="set data.layout"):
            detect_layout(f)


def test_one_aps_u_marker_alone_does_not_identify_aps_u(tmp_path):
    datasets = {"exchange/twotime": np.eye(2), "xpcs/twotime/correlation_map/c2_00001": 1}
    with h5py.File(write_h5(tmp_path / "one.h5", datasets), "r") as f:
        assert detect_layout(f) == "exchange"


def test_detect_layout_flat_custom_key(tmp_path):
    path = write_h5(tmp_path / "k.h5", {"corr_matrix": np.eye(2)})
    with h5py.File(path, "r") as f:
        assert detect_layout(f, FlatKeys(c2="corr_matrix")) == "flat"
        with pytest.raises(DataError):
            detect_layout(f)


def test_unknown_layout_names_identifying_datasets(tmp_path):
    path = write_h5(tmp_path / "odd.h5", {"something/else": np.eye(2)})
    with pytest.raises(DataError) as exc:
        read_file(path)
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg
    for marker in (
        "xpcs/twotime/correlation_map",
        "xpcs/qmap/dynamic_v_list_dim0",
        "xpcs/dqlist",
        "exchange/C2T_all",
        "exchange/twotime_corr",
        "/c2",
    ):
        assert marker in msg


# --------------------------------------------------------------------------------------------
# half matrices


@pytest.mark.parametrize("store", ["upper", "lower"])
def test_rebuild_half_is_exact(store):
    m = sym_stack(1, 10, seed=3)[0]
    full, rebuilt = rebuild_half(half(m, store))
    assert rebuilt
    assert np.array_equal(full, m)


def test_rebuild_half_keeps_full_matrix():
    m = sym_stack(1, 5)[0]
    out, rebuilt = rebuild_half(m)
    assert not rebuilt and out is m


def test_natural_key_orders_digits_numerically():
    names = ["c2_10", "c2_2", "c2_1", "c2_00003"]
    assert sorted(names, key=natural_key) == ["c2_1", "c2_2", "c2_00003", "c2_10"]
    padded = [f"c2_{k:05d}" for k in (12, 3, 100, 7)]
    assert sorted(padded, key=natural_key) == sorted(padded)


# --------------------------------------------------------------------------------------------
# APS-U


@pytest.mark.parametrize("store", ["upper", "lower"])
def test_aps_u_bins_to_q_phi_and_rebuild(tmp_path, store):
    q_list = [0.004, 0.006]
    phi_list = [-30.0, 0.0, 30.0]
    bins = [2, 4, 6]  # (q0, φ1), (q1, φ0), (q1, φ2)
    c2 = sym_stack(3)
    t = np.arange(1, N + 1) * 0.5
    path = write_aps_u(
        tmp_path / "apsu.hdf5",
        c2,
        q_list,
        phi_list,
        bins,
        store=store,
        times={"xpcs/twotime/t": t},  # not a producer key: ignored
    )
    raw = read_file(path)
    assert raw.layout == "aps_u"
    assert raw.bins == bins
    assert np.array_equal(raw.c2, c2)
    assert raw.c2.dtype == np.float64
    assert np.array_equal(raw.q, [0.004, 0.006, 0.006])
    assert np.array_equal(raw.phi, [0.0, -30.0, 30.0])
    assert raw.t_file is None
    assert raw.sigma is None and raw.warnings == ()


def test_aps_u_pairs_unpadded_names_in_natural_order(tmp_path):
    c2 = sym_stack(3)
    path = write_aps_u(
        tmp_path / "nat.h5",
        c2,
        [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10],
        [0.0],
        [1, 2, 10],
        names=["c2_1", "c2_2", "c2_10"],
    )
    raw = read_file(path)
    assert np.array_equal(raw.c2, c2)
    assert np.array_equal(raw.q, [0.01, 0.02, 0.10])


def test_aps_u_full_matrices_warn_and_are_kept(tmp_path):
    c2 = sym_stack(2)
    c2[1, 0, 1] += 1e-3  # not symmetric: proves M is used as stored
    path = write_aps_u(tmp_path / "full.h5", c2, [0.01], [0.0, 90.0], [1, 2], store="full")
    with pytest.warns(UserWarning, match="both strict triangles non-zero"):
        raw = read_file(path)
    assert np.array_equal(raw.c2, c2)
    assert len(raw.warnings) == 1 and "2 of 2" in raw.warnings[0]


def test_aps_u_single_matrix_without_phi_list_defaults_to_zero(tmp_path):
    path = write_aps_u(tmp_path / "nophi.h5", sym_stack(1), [0.01, 0.02], None, [2])
    with pytest.warns(UserWarning, match="phi = 0"):
        raw = read_file(path)
    assert np.array_equal(raw.phi, [0.0]) and np.array_equal(raw.q, [0.02])


# --------------------------------------------------------------------------------------------
# APS legacy


@pytest.mark.parametrize("store", ["upper", "lower"])
def test_aps_legacy_reads_half_matrices(tmp_path, store):
    c2 = sym_stack(3, seed=5)
    path = write_legacy(
        tmp_path / "legacy.hdf",
        c2,
        [0.003, 0.004, 0.005],
        [10.0, 20.0, 190.0],
        store=store,
    )
    raw = read_file(path)
    assert raw.layout == "aps_legacy" and raw.bins == [1, 2, 3]
    assert np.array_equal(raw.c2, c2)
    assert np.array_equal(raw.q, [0.003, 0.004, 0.005])
    assert np.array_equal(raw.phi, [10.0, 20.0, 190.0])  # not normalised yet
    assert raw.t_file is None


def test_aps_legacy_tau_is_not_a_time_axis(tmp_path):
    """``exchange/tau`` is the multi-tau lag list; the legacy layout has no time axis."""
    t = np.linspace(0.1, 0.8, N)
    path = write_legacy(
        tmp_path / "tau.h5", sym_stack(1), [0.003], [0.0], times={"exchange/tau": t}
    )
    index = index_file(path)
    assert index.t_file is None and index.dt_file is None
    assert "measurement/instrument/detector/exposure_period" in index.dt_source


# --------------------------------------------------------------------------------------------
# exchange


@pytest.mark.parametrize(
    ("datasets", "q", "phi", "t"),
    [
        (  # earlier names win; q and phi per bin; exchange group before root
            {
                "exchange/twotime_corr": "C2",
                "exchange/corr": "C2x",
                "exchange/q_val": [0.01, 0.02],
                "exchange/q": [9.0, 9.0],
                "exchange/phi_angles": [0.0, 45.0],
                "exchange/azimuth": [1.0, 1.0],
                "exchange/tau": "T",
                "exchange/t": "Tx",
            },
            [0.01, 0.02],
            [0.0, 45.0],
            "T",
        ),
        (  # a scalar q applies to every matrix; names looked up at the root too
            {"exchange/c2": "C2", "qval": 0.005, "azimuth": [10.0, 20.0], "delay_time": "T"},
            [0.005, 0.005],
            [10.0, 20.0],
            "T",
        ),
    ],
)
def test_exchange_layout(tmp_path, datasets, q, phi, t):
    c2 = sym_stack(2)
    times = np.arange(N) + 1.0
    sub = {"C2": c2, "C2x": c2 * 2, "T": times, "Tx": times * 2}
    path = write_h5(
        tmp_path / "ex.h5",
        {k: sub[v] if isinstance(v, str) else v for k, v in datasets.items()},
    )
    raw = read_file(path)
    assert raw.layout == "exchange"
    assert np.array_equal(raw.c2, c2)
    assert np.array_equal(raw.q, q)
    assert np.array_equal(raw.phi, phi)
    assert np.array_equal(raw.t_file, sub[t])


def test_exchange_single_2d_matrix_defaults_phi(tmp_path):
    m = sym_stack(1)[0]
    path = write_h5(tmp_path / "ex1.h5", {"exchange/twotime": m, "exchange/q": [0.01]})
    with pytest.warns(UserWarning, match="phi = 0"):
        raw = read_file(path)
    assert raw.c2.shape == (1, N, N) and np.array_equal(raw.c2[0], m)
    assert np.array_equal(raw.phi, [0.0]) and raw.t_file is None


# --------------------------------------------------------------------------------------------
# flat HDF5 and NPZ


def write_flat(path: Path, arrays: dict) -> Path:
    if path.suffix == ".npz":
        np.savez(path, **arrays)
        return path
    return write_h5(path, arrays)


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_flat_and_npz(tmp_path, suffix):
    c2 = sym_stack(2)
    arrays = {
        "c2": c2,
        "t": np.arange(1, N + 1) * 0.01,
        "q": np.array([0.005, 0.006]),
        "phi": np.array([0.0, 90.0]),
        "sigma": np.array([0.002, 0.003]),
        "dt": np.float64(0.01),  # extra keys are ignored
    }
    raw = read_file(write_flat(tmp_path / f"flat{suffix}", arrays))
    assert raw.layout == ("npz" if suffix == ".npz" else "flat")
    for name in ("c2", "q", "phi", "sigma"):
        assert np.array_equal(getattr(raw, name), arrays[name])
        assert getattr(raw, name).dtype == np.float64
    assert np.array_equal(raw.t_file, arrays["t"])


@pytest.mark.parametrize("suffix", [".hdf5", ".npz"])
def test_flat_custom_keys_and_2d(tmp_path, suffix):
    m = sym_stack(1)[0].astype(np.float32)
    keys = FlatKeys(c2="C", t="time", q="Q", phi="angle", sigma="noise")
    path = write_flat(tmp_path / f"keys{suffix}", {"C": m, "Q": 0.01, "angle": 30.0, "noise": 0.1})
    raw = read_file(path, keys=keys)
    assert raw.c2.shape == (1, N, N) and raw.c2.dtype == np.float64
    assert np.array_equal(raw.c2[0], m.astype(np.float64))
    assert np.array_equal(raw.q, [0.01]) and np.array_equal(raw.phi, [30.0])
    assert np.array_equal(raw.sigma, [0.1]) and raw.t_file is None


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_flat_missing_phi_single_matrix_warns(tmp_path, suffix):
    path = write_flat(tmp_path / f"nophi{suffix}", {"c2": sym_stack(1)[0], "q": 0.01})
    with pytest.warns(UserWarning, match=r"phi: missing.*phi = 0"):
        raw = read_file(path)
    assert np.array_equal(raw.phi, [0.0])
    assert len(raw.warnings) == 1


def test_forced_layout(tmp_path):
    path = write_h5(
        tmp_path / "both.h5",
        {"c2": sym_stack(1)[0], "q": 0.01, "exchange/corr": sym_stack(1)[0] * 2, "exchange/q": 1},
    )
    with pytest.warns(UserWarning, match="phi = 0"):
        assert read_file(path, layout="exchange").layout == "exchange"
    with pytest.warns(UserWarning, match="phi = 0"):
        raw = read_file(path, layout="flat")
    assert raw.layout == "flat" and np.array_equal(raw.q, [0.01])


# --------------------------------------------------------------------------------------------
# failures: one-line DataError naming the file and the field


def _bad_file(tmp_path: Path, case: str) -> tuple[Path, dict]:
    c2 = sym_stack(2)
    name = {"missing_file": "nope.h5", "extension": "data.txt"}.get(case, f"{case}.h5")
    path = tmp_path / name
    kwargs: dict = {}
    if case == "missing_file":
        pass
    elif case == "extension":
        path.write_text("c2")
    elif case == "corrupt_h5":
        path.write_text("not hdf5")
    elif case == "apsu_count_mismatch":
        write_aps_u(path, c2, [0.01], [0.0, 90.0], [1, 2], names=["c2_1", "c2_2"])
        with h5py.File(path, "a") as f:
            del f["xpcs/twotime/processed_bins"]
            f["xpcs/twotime/processed_bins"] = [1, 2, 3]
    elif case == "apsu_missing_bins":
        write_aps_u(path, c2, [0.01], [0.0, 90.0], None, names=["a", "b"])
    elif case == "apsu_bin_range":
        write_aps_u(path, c2, [0.01], [0.0, 90.0], [1, 3])
    elif case == "apsu_shape_mismatch":
        write_aps_u(path, c2, [0.01], [0.0, 90.0], [1, 2])
        with h5py.File(path, "a") as f:
            del f["xpcs/twotime/correlation_map/c2_00002"]
            f["xpcs/twotime/correlation_map/c2_00002"] = np.eye(N + 1)
    elif case == "apsu_multi_no_phi":
        write_aps_u(path, c2, [0.01, 0.02], None, [1, 2])
    elif case == "legacy_q_count":
        write_legacy(path, c2, [0.01, 0.02, 0.03], [0.0, 1.0])
    elif case == "legacy_not_square":
        write_legacy(path, c2, [0.01, 0.02], [0.0, 1.0])
        with h5py.File(path, "a") as f:
            del f["exchange/C2T_all/g2_00001"]
            f["exchange/C2T_all/g2_00001"] = np.ones((N, N + 1))
    elif case == "exchange_no_q":
        write_h5(path, {"exchange/corr": c2, "exchange/phi": [0.0, 1.0]})
    elif case == "flat_no_q":
        write_h5(path, {"c2": c2, "phi": [0.0, 1.0]})
    elif case == "flat_no_phi":
        write_h5(path, {"c2": c2, "q": 0.01})
    elif case == "flat_phi_count":
        write_h5(path, {"c2": c2, "q": 0.01, "phi": [0.0, 1.0, 2.0]})
    elif case == "flat_q_count":
        write_h5(path, {"c2": c2, "q": [0.01, 0.02, 0.03], "phi": [0.0, 1.0]})
    elif case == "flat_sigma_count":
        write_h5(path, {"c2": c2, "q": 0.01, "phi": [0.0, 1.0], "sigma": [1.0, 1.0, 1.0]})
    elif case == "flat_not_square":
        write_h5(path, {"c2": np.ones((2, N, N + 1)), "q": 0.01, "phi": [0.0, 1.0]})
    elif case == "flat_1d":
        write_h5(path, {"c2": np.ones(N), "q": 0.01})
    elif case == "flat_string":
        write_h5(path, {"c2": "abc", "q": 0.01})
    elif case == "forced_missing":
        write_h5(path, {"c2": c2, "q": 0.01, "phi": [0.0, 1.0]})
        kwargs = {"layout": "aps_u"}
    elif case == "bad_layout_name":
        write_h5(path, {"c2": c2, "q": 0.01, "phi": [0.0, 1.0]})
        kwargs = {"layout": "magic"}
    return path, kwargs


@pytest.mark.parametrize(
    ("case", "fields"),
    [
        ("missing_file", ["not found"]),
        ("extension", ["unsupported", ".txt", ".h5", ".hdf5", ".hdf", ".npz"]),
        ("corrupt_h5", ["HDF5"]),
        ("apsu_count_mismatch", ["xpcs/twotime/processed_bins", "3 labels", "expected 2"]),
        ("apsu_missing_bins", ["xpcs/twotime/processed_bins", "missing"]),
        ("apsu_bin_range", ["xpcs/twotime/processed_bins", "label 3", "1…2"]),
        ("apsu_shape_mismatch", ["correlation_map/c2_00002", "same size"]),
        ("apsu_multi_no_phi", ["dynamic_v_list_dim1", "missing"]),
        ("legacy_q_count", ["xpcs/dphilist", "2 values", "expected 3"]),
        ("legacy_not_square", ["exchange/C2T_all/g2_00001", "square"]),
        ("exchange_no_q", ["q", "q_val"]),
        ("flat_no_q", ["q: missing"]),
        ("flat_no_phi", ["phi: missing", "2 matrices"]),
        ("flat_phi_count", ["phi", "3 values", "expected 2"]),
        ("flat_q_count", ["q", "3 values", "expected 2"]),
        ("flat_sigma_count", ["sigma", "3 values"]),
        ("flat_not_square", ["c2", "square"]),
        ("flat_1d", ["c2", "N×N"]),
        ("flat_string", ["c2", "numeric"]),
        ("forced_missing", ["xpcs/twotime/correlation_map"]),
        ("bad_layout_name", ["data.layout", "magic", "aps_legacy"]),
    ],
)
def test_read_errors(tmp_path, case, fields):
    path, kwargs = _bad_file(tmp_path, case)
    with pytest.raises(DataError) as exc:
        read_file(path, **kwargs)
    msg = str(exc.value)
    assert str(path) in msg
    assert "\n" not in msg
    for field in fields:
        assert field in msg


@pytest.mark.parametrize(
    ("case", "fields"),
    [("object_c2", ["c2", "pickle"]), ("single_array", ["NPZ"]), ("not_zip", ["NPZ"])],
)
def test_npz_errors(tmp_path, case, fields):
    path = tmp_path / f"{case}.npz"
    if case == "object_c2":
        ragged = np.empty(2, dtype=object)
        ragged[0], ragged[1] = np.eye(2), np.eye(3)
        np.savez(path, c2=ragged, q=np.float64(0.01))
    elif case == "single_array":
        with path.open("wb") as fh:
            np.save(fh, np.eye(3))
    else:
        path.write_bytes(b"garbage that is not a zip archive")
    with pytest.raises(DataError) as exc:
        read_file(path)
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg
    for field in fields:
        assert field in msg


def test_npz_rejects_hdf5_layout(tmp_path):
    path = write_flat(tmp_path / "x.npz", {"c2": np.eye(2), "q": 0.01})
    with pytest.raises(DataError, match="data.layout"):
        read_file(path, layout="aps_u")
