"""Files written the producers' way (``tests/producers.py``, fixtures in ``tests/data/``): q/φ
labels checked against the generator's pixel geometry, dt from the file, selection before
reading, frame stride, empty frames, and the producers' dtypes and shapes."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import producers as P
import pytest

from hpcfit.errors import DataError
from hpcfit.io.sources import resolve_dt
from hpcfit.xpcs import matrices
from hpcfit.xpcs.data import Selection, load, select
from hpcfit.xpcs.layouts import index_file

DATA = Path(__file__).resolve().parents[1] / "data"
ALL = Selection(q_select="all")
FIXTURES = sorted(P.FIXTURES)
FILE_DT = {
    "aps_u_twotime.h5": P.FRAME_TIME * P.AVG * P.STRIDE,
    "aps_legacy_xpcs_eigen.hdf": float(np.float32(P.FRAME_TIME)) * P.AVG * P.STRIDE,
    "aps_legacy_boost_corr.hdf": P.FRAME_TIME * P.AVG * P.STRIDE,
    "nexus_twotime.h5": P.FRAME_TIME,  # NXxpcs records no averaging or stride
}


def geometry_labels(data) -> list[tuple[float, float]]:
    """(q, φ) of every slot from the cell the generator encoded in its values."""
    out = []
    for a in range(data.n_phi):
        kept = None if data.frame_mask is None else data.frame_mask[a]
        cell = P.decode_cell(data.c2[a], kept)
        out.append((P.Q_LIST[cell // P.N_PHI], P.PHI_LIST[cell % P.N_PHI]))
    return out


def test_committed_fixtures_are_what_the_writers_make(tmp_path):
    """The files in tests/data are reproducible from tests/producers.py."""
    for name, write in P.FIXTURES.items():
        fresh = write(tmp_path / name)
        with h5py.File(DATA / name) as a, h5py.File(fresh) as b:
            names_a, names_b = [], []
            a.visit(names_a.append)
            b.visit(names_b.append)
            assert names_a == names_b, name
            for key in names_a:
                if isinstance(a[key], h5py.Dataset):
                    assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
                    np.testing.assert_array_equal(a[key][()], b[key][()], err_msg=key)


@pytest.mark.parametrize("name", FIXTURES)
def test_q_phi_labels_follow_the_pixel_geometry(name):
    with pytest.warns(UserWarning, match="no photons"):
        data = load(DATA / name, dt=0.01, selection=ALL)
    expected = geometry_labels(data)
    np.testing.assert_array_equal(data.q, [q for q, _ in expected])
    np.testing.assert_array_equal(data.phi, [p for _, p in expected])
    assert [s["q"] for s in data.provenance["slots"]] == data.q.tolist()


def test_aps_u_empty_cells_would_mislabel_without_the_index_mapping():
    """16 of 20 cells are non-empty: reading label b as cell b − 1 gets 15 slots wrong."""
    index = index_file(DATA / "aps_u_twotime.h5")
    labels = np.array([o["bin"] for o in index.origin])
    naive_q = P.Q_LIST[(labels - 1) // P.N_PHI]
    naive_phi = P.PHI_LIST[(labels - 1) % P.N_PHI]
    wrong = (naive_q != index.q) | (naive_phi != index.phi)
    assert wrong.sum() == 15
    assert (
        index.origin[1]["cell"] == [0, 3]
        and "dynamic_index_mapping[1]" in index.origin[1]["q_source"]
    )


def test_aps_u_subset_of_processed_bins(tmp_path):
    path = P.write_aps_u(tmp_path / "subset.h5", labels=[2, 7, 13])
    index = index_file(path)
    assert [o["bin"] for o in index.origin] == [2, 7, 13]
    assert [o["dataset"].rsplit("/", 1)[1] for o in index.origin] == [
        "c2_00001",
        "c2_00002",
        "c2_00003",
    ]
    data = select(index, ALL, dt=0.01, source=str(path))
    expected = geometry_labels(data)
    np.testing.assert_array_equal(data.q, [q for q, _ in expected])


def test_aps_u_lzf_float32_matrices_are_read_exactly(tmp_path):
    """Above 8192 values boost_corr writes lzf with one chunk per matrix."""
    path = P.write_aps_u(tmp_path / "lzf.h5", n_frames=96, labels=[3, 4])
    with h5py.File(path) as f:
        ds = f["xpcs/twotime/correlation_map/c2_00001"]
        assert ds.compression == "lzf" and ds.dtype == np.float32 and ds.chunks == (96, 96)
        stored = ds[()].astype(np.float64)
    data = select(index_file(path), ALL, dt=0.01, source=str(path))
    assert data.c2.dtype == np.float64
    np.testing.assert_array_equal(data.c2[0], stored + stored.T - np.diag(np.diag(stored)))


def test_aps_u_xy_partition_is_an_error(tmp_path):
    path = P.write_aps_u(tmp_path / "xy.h5")
    with h5py.File(path, "a") as f:
        del f["xpcs/qmap/map_names"]
        f["xpcs/qmap/map_names"] = ["x", "y"]
    with pytest.raises(DataError, match=r"map_names: the dynamic partition is along \['x', 'y'\]"):
        index_file(path)


def test_aps_u_without_index_mapping_is_an_error(tmp_path):
    path = P.write_aps_u(tmp_path / "nomap.h5")
    with h5py.File(path, "a") as f:
        del f["xpcs/qmap/dynamic_index_mapping"]
    with pytest.raises(DataError, match="dynamic_index_mapping: missing"):
        index_file(path)


@pytest.mark.parametrize("labels", [[9, 1, 3], [1, 3, 9]])
def test_legacy_bin_named_matrices_pair_by_name(tmp_path, labels):
    """xpcs-eigen names matrices g2_<bin>: an unsorted bin list still pairs each with its own."""
    path = P.write_legacy(tmp_path / "eigen.hdf", "eigen", labels=labels)
    data = select(index_file(path), ALL, dt=0.01, source=str(path))
    assert data.provenance["bins"] == labels
    assert [s["dataset"][-8:] for s in data.provenance["slots"]] == [f"g2_{b:05d}" for b in labels]
    expected = geometry_labels(data)
    np.testing.assert_array_equal(data.q, [q for q, _ in expected])
    np.testing.assert_array_equal(data.phi, [p for _, p in expected])


def test_legacy_labels_count_the_finite_cells_only():
    """dqlist holds NaN for empty cells; label b is the b-th finite entry, not entry b − 1."""
    index = index_file(DATA / "aps_legacy_boost_corr.hdf")
    with h5py.File(DATA / "aps_legacy_boost_corr.hdf") as f:
        dq = f["xpcs/dqlist"][0]
    labels = np.array([o["bin"] for o in index.origin])
    assert np.isnan(dq[labels - 1]).any()  # the naive rule would give NaN or a wrong q
    np.testing.assert_array_equal(index.q, dq[np.flatnonzero(np.isfinite(dq))[labels - 1]])


@pytest.mark.parametrize("name", FIXTURES)
def test_dt_from_the_file(name):
    index = index_file(DATA / name)
    assert index.dt_file == pytest.approx(FILE_DT[name], rel=1e-15)
    assert index.t_file is None  # no producer writes a time axis (exchange/tau is a lag list)
    dt, source = resolve_dt(None, index, [])
    assert dt == index.dt_file and "frame_time" in source or "exposure_period" in source


def test_configured_dt_disagreeing_with_the_file_warns_naming_both():
    index = index_file(DATA / "aps_u_twotime.h5")
    sink: list[str] = []
    with pytest.warns(UserWarning, match=r"data.dt = 0.013 s differs from the file's 0.012 s"):
        assert resolve_dt(0.013, index, sink) == (0.013, "data.dt")
    assert len(sink) == 1
    assert resolve_dt(0.012 * (1 + 1e-7), index, []) == (0.012 * (1 + 1e-7), "data.dt")


def test_no_dt_anywhere_is_an_error(tmp_path):
    path = P.write_aps_u(tmp_path / "nodt.h5")
    with h5py.File(path, "a") as f:
        del f["entry/instrument/detector_1/frame_time"]
    with pytest.raises(DataError, match=r"data.dt: not set .*missing entry/instrument/detector_1"):
        resolve_dt(None, index_file(path), [])


def test_empty_frames_are_dropped_from_their_slot_only():
    with pytest.warns(UserWarning, match=r"slot 4 .*c2_00005.*: 2 of 16 frames") as rec:
        data = load(DATA / "aps_u_twotime.h5", dt=0.01, selection=ALL)
    assert sum("no photons" in str(w.message) for w in rec) == 1
    assert data.frame_mask is not None
    assert np.flatnonzero(~data.frame_mask[4]).tolist() == [3, 7]
    assert data.frame_mask[[0, 1, 2, 3, 5]].all()
    pooled = data.pooled()
    in_slot = pooled.a == 4
    assert not np.isin(pooled.i[in_slot], [3, 7]).any()
    assert not np.isin(pooled.j[in_slot], [3, 7]).any()
    assert in_slot.sum() == 14 * 13 // 2 and pooled.size == data.n_points == 15 * 120 + 91
    assert data.provenance["slots"][4]["frames_dropped"] == 2


def test_non_finite_among_frames_with_photons_is_an_error(tmp_path):
    path = P.write_aps_u(tmp_path / "nan.h5", labels=[3])
    with h5py.File(path, "a") as f:
        ds = f["xpcs/twotime/correlation_map/c2_00001"]
        m = ds[()]
        m[2, 9] = np.nan
        ds[...] = m
    with pytest.raises(DataError, match=r"2 non-finite values .* \(0, 2, 9\)"):
        load(path, dt=0.01, selection=ALL)


def test_only_the_selected_matrices_are_read(monkeypatch):
    positions: list[int] = []
    original = matrices._H5Reader.read

    def spy(self, position, frames):
        positions.append(position)
        return original(self, position, frames)

    monkeypatch.setattr(matrices._H5Reader, "read", spy)
    data = load(DATA / "aps_u_twotime.h5", dt=0.01, selection=Selection(q=0.009, phi=(-40.0,)))
    assert positions == [10] and data.provenance["bins"] == [11]


@pytest.mark.parametrize("name", FIXTURES)
def test_frame_stride_keeps_every_kth_frame_exactly(name):
    with pytest.warns(UserWarning):
        full = load(DATA / name, dt=0.01, selection=ALL)
        sel = Selection(q_select="all", start_frame=2, end_frame=15, frame_stride=3)
        strided = load(DATA / name, dt=0.01, selection=sel)
    np.testing.assert_array_equal(strided.c2, full.c2[:, 1:15:3, 1:15:3])
    assert strided.n_frames == 5 and strided.frame_stride == 3 and strided.dt == 0.01
    assert strided.step == pytest.approx(0.03, rel=1e-15)
    np.testing.assert_array_equal(strided.t, np.array([2, 5, 8, 11, 14]) * 0.01)
    assert strided.fingerprint() != full.fingerprint()


def test_nexus_q_last_storage(tmp_path):
    path = P.write_nexus(tmp_path / "last.h5")
    with h5py.File(path, "a") as f:
        ds = f["entry/twotime/two_time_corr_func"]
        values, attrs = ds[()], dict(ds.attrs)
        del f["entry/twotime/two_time_corr_func"]
        new = f.create_dataset("entry/twotime/two_time_corr_func", data=np.moveaxis(values, 0, -1))
        new.attrs.update({**attrs, "storage_mode": "one_array_q_last"})
    with pytest.warns(UserWarning, match="no photons"):
        a = load(path, dt=0.01, selection=ALL)
        b = load(DATA / "nexus_twotime.h5", dt=0.01, selection=ALL)
    np.testing.assert_array_equal(a.c2, b.c2)
    np.testing.assert_array_equal(a.q, b.q)


def test_npz_rows_are_read_without_loading_the_archive(tmp_path):
    rng = np.random.default_rng(1)
    c2 = rng.random((4, 20, 20))
    for save in (np.savez, np.savez_compressed):
        path = tmp_path / f"{save.__name__}.npz"
        save(path, c2=c2, q=np.full(4, 0.01), phi=np.arange(4) * 10.0)
        index = index_file(path)
        with index.open() as reader:
            np.testing.assert_array_equal(reader.read(2, slice(3, 17, 4)), c2[2, 3:17:4, 3:17:4])
            np.testing.assert_array_equal(reader.read(0, slice(None)), c2[0])
