"""Selection, frame slicing, reading of the selected matrices and validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpcfit.errors import DataError
from hpcfit.xpcs.data import Selection, circular_distance, in_phi_range, load, select, validate
from hpcfit.xpcs.dataset import XpcsData, production_grid
from hpcfit.xpcs.layouts import FileIndex, in_memory

N = 10
DT = 0.01


def sym_stack(n_bins: int, n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = 1.0 + rng.random((n_bins, n, n))
    return np.triu(m) + np.swapaxes(np.triu(m, 1), 1, 2)


def make_raw(q, phi, *, n=N, t=None, sigma=None, bins=None) -> FileIndex:
    q = np.asarray(q, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    return in_memory(sym_stack(q.size, n), q, phi, t_file=t, sigma=sigma, bins=bins)


def write_npz(path: Path, raw: FileIndex) -> Path:
    arrays = {"c2": raw.matrices.c2, "q": raw.q, "phi": raw.phi}
    if raw.t_file is not None:
        arrays["t"] = raw.t_file
    np.savez(path, **arrays)
    return path


# --------------------------------------------------------------------------------------------
# synthetic round trip


@pytest.fixture(scope="module")
def synthetic():
    from hpcfit.xpcs.synthetic import EMBEDDED, generate

    spec = dataclasses.replace(
        EMBEDDED,
        n_frames=12,
        phi=(0.0, 45.0, -90.0),
        contrast=(0.30, 0.28, 0.26),
        offset=(1.0, 1.0, 1.0),
        sigma=(0.002, 0.002, 0.003),
        seed=7,
    )
    return generate(spec)


@pytest.mark.parametrize("fmt", ["npz", "h5"])
def test_synthetic_round_trip(tmp_path, synthetic, fmt):
    from hpcfit.xpcs.synthetic import write_npz as write_synthetic

    npz = write_synthetic(synthetic, tmp_path / "syn.npz")
    path = npz
    if fmt == "h5":
        path = tmp_path / "syn.h5"
        with np.load(npz) as z, h5py.File(path, "w") as f:
            for key in z.files:
                f[key] = z[key]
    data = load(path, dt=synthetic.dt)
    for name in ("c2", "q", "phi", "sigma"):
        got, want = getattr(data, name), getattr(synthetic, name)
        assert got.dtype == np.float64
        assert np.array_equal(got, want), name
    assert np.array_equal(data.t_file, synthetic.t)
    assert np.array_equal(data.t, synthetic.t)
    assert data.dt == synthetic.dt and data.start_frame == 1
    assert data.fingerprint() == synthetic.fingerprint()
    prov = data.provenance
    assert prov["file"] == str(path)
    assert prov["layout"] == ("npz" if fmt == "npz" else "flat")
    assert prov["bin_indices"] == [0, 1, 2] and prov["bins"] is None
    assert prov["frame_window"] == [1, 12]
    assert prov["warnings"] == []


# --------------------------------------------------------------------------------------------
# q selection

MULTI_Q = [0.005, 0.005, 0.006, 0.006, 0.007, 0.007]
MULTI_PHI = [0.0, 90.0] * 3


@pytest.mark.parametrize(
    ("sel", "expected"),
    [
        (Selection(q=0.0061), [2, 3]),
        (Selection(q=0.0, q_max_rel_distance=None), [0, 1]),  # no limit: plain nearest
        (Selection(q=1.0, q_max_rel_distance=None), [4, 5]),
        (Selection(q=0.0055, q_select="tolerance", q_tolerance=0.00051), [0, 1, 2, 3]),
        (Selection(q=0.007, q_select="tolerance", q_tolerance=0.0), [4, 5]),
        (Selection(q_select="all"), [0, 1, 2, 3, 4, 5]),
        (Selection(q=0.0061, q_select="all"), [0, 1, 2, 3, 4, 5]),
        (Selection(q_select="all", phi=(90.0,)), [1, 3, 5]),
        (Selection(q=0.0061, phi=(91.0,)), [3]),
    ],
)
def test_q_selection(sel, expected):
    raw = make_raw(MULTI_Q, MULTI_PHI, bins=[3, 4, 5, 6, 7, 8])
    data = select(raw, sel, dt=DT, source="multi.h5")
    assert data.provenance["bin_indices"] == expected
    assert data.provenance["bins"] == [b + 3 for b in expected]
    assert np.array_equal(data.q, np.asarray(MULTI_Q)[expected])  # each slot keeps its own q
    assert data.provenance["q"] == [MULTI_Q[k] for k in expected]
    assert np.array_equal(data.c2, raw.matrices.c2[expected])


def test_q_selection_through_aps_u_file(tmp_path):
    """A multi-q APS-U file: nearest q keeps every angle at that q (heterodyne never did)."""
    n_q, n_phi = 3, 2
    c2 = sym_stack(n_q * n_phi)
    path = tmp_path / "multi_q.h5"
    with h5py.File(path, "w") as f:
        for b in range(1, n_q * n_phi + 1):
            f[f"xpcs/twotime/correlation_map/c2_{b:05d}"] = np.triu(c2[b - 1])
        f["xpcs/qmap/dynamic_v_list_dim0"] = [0.004, 0.005, 0.006]
        f["xpcs/qmap/dynamic_v_list_dim1"] = [-45.0, 45.0]
        f["xpcs/twotime/processed_bins"] = np.arange(1, n_q * n_phi + 1)
        f["xpcs/qmap/dynamic_index_mapping"] = np.arange(n_q * n_phi)  # no empty cell
    data = load(path, dt=DT, selection=Selection(q=0.0052))
    assert data.provenance["bins"] == [3, 4]
    assert data.provenance["bin_indices"] == [2, 3]
    assert np.array_equal(data.q, [0.005, 0.005])
    assert np.array_equal(data.phi, [-45.0, 45.0])
    assert np.array_equal(data.c2, c2[2:4])


@pytest.mark.parametrize(
    ("sel", "fields"),
    [
        (Selection(), ["data.q", "0.005", "0.006", "0.007"]),
        (Selection(q_select="tolerance"), ["data.q", "tolerance"]),
        (
            Selection(q=0.0065, q_select="tolerance", q_tolerance=0.0001),
            ["data.q", "0.005", "0.006", "0.007"],
        ),
        (Selection(q=0.006, q_select="tolerance", q_tolerance=-1.0), ["data.q_tolerance"]),
        (Selection(q=0.006, q_select="closest"), ["data.q_select", "nearest", "tolerance"]),
    ],
)
def test_q_selection_errors(tmp_path, sel, fields):
    path = write_npz(tmp_path / "multi.npz", make_raw(MULTI_Q, MULTI_PHI))
    with pytest.raises(DataError) as exc:
        load(path, dt=DT, selection=sel)
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg
    for field in fields:
        assert field in msg


# --------------------------------------------------------------------------------------------
# angle selection

ANGLES = [-0.5, 45.0, 90.0, 180.0, -135.0]


@pytest.mark.parametrize(
    ("sel", "expected"),
    [
        (Selection(), [0, 1, 2, 3, 4]),
        (Selection(phi=(359.0,)), [0]),
        (Selection(phi=(-1.0, 93.0)), [0, 2]),
        (Selection(phi=(90.0, 0.0)), [0, 2]),  # slots keep file order
        (Selection(phi=(-180.0,)), [3]),
        (Selection(phi=(178.0,)), [3]),
        (Selection(phi=(225.0,)), [4]),
        (Selection(phi=(50.0,), phi_tolerance=5.0), [1]),
        (Selection(phi_ranges=((350.0, 10.0),)), [0]),
        (Selection(phi_ranges=((-10.0, 10.0), (80.0, 100.0))), [0, 2]),
        (Selection(phi_ranges=((170.0, 190.0),)), [3]),
        (Selection(phi_ranges=((100.0, 240.0),)), [3, 4]),
        (Selection(phi_ranges=((10.0, 350.0),)), [1, 2, 3, 4]),
        (Selection(phi_ranges=((0.0, 360.0),)), [0, 1, 2, 3, 4]),
    ],
)
def test_angle_selection(sel, expected):
    raw = make_raw([0.01] * len(ANGLES), ANGLES)
    data = select(raw, sel, dt=DT, source="angles.npz")
    assert data.provenance["bin_indices"] == expected
    want = np.asarray(ANGLES)[expected]
    want = np.where(want == 180.0, -180.0, want)  # normalised to [-180, 180)
    assert np.array_equal(data.phi, want)
    assert np.all((data.phi >= -180.0) & (data.phi < 180.0))
    assert np.array_equal(data.c2, raw.matrices.c2[expected])


def test_duplicate_angle_targets_dropped_with_warning():
    raw = make_raw([0.01] * len(ANGLES), ANGLES)
    with pytest.warns(UserWarning, match="duplicate dropped"):
        data = select(raw, Selection(phi=(0.0, 359.0, 90.0)), dt=DT, source="dup.npz")
    assert data.provenance["bin_indices"] == [0, 2]
    assert any("duplicate" in w for w in data.provenance["warnings"])


def test_angle_target_keeps_every_q_at_that_angle():
    raw = make_raw(MULTI_Q, MULTI_PHI)
    data = select(raw, Selection(q_select="all", phi=(0.0,)), dt=DT, source="m.npz")
    assert data.provenance["bin_indices"] == [0, 2, 4]
    assert np.array_equal(data.q, [0.005, 0.006, 0.007])


def test_circle_helpers():
    assert np.allclose(circular_distance(np.array([-0.5, 179.0, -179.0]), 359.0), [0.5, 180, 178])
    assert in_phi_range(np.array([-0.5]), 350.0, 10.0).all()
    assert not in_phi_range(np.array([11.0, -11.0]), 350.0, 10.0).any()


@pytest.mark.parametrize(
    ("sel", "fields"),
    [
        (Selection(phi=(370.0 + 5.1,)), ["data.phi", "phi_tolerance", "-0.5", "45", "90"]),
        (Selection(phi=(20.0,), phi_tolerance=10.0), ["data.phi", "-0.5", "-135"]),
        (Selection(phi=()), ["data.phi", "-0.5"]),
        (Selection(phi_ranges=((100.0, 170.0),)), ["data.phi_ranges", "-0.5", "180"]),
        (Selection(phi=(0.0,), phi_ranges=((0.0, 10.0),)), ["data.phi", "data.phi_ranges"]),
        (Selection(phi=(0.0,), phi_tolerance=-1.0), ["data.phi_tolerance"]),
    ],
)
def test_angle_selection_errors(tmp_path, sel, fields):
    path = write_npz(tmp_path / "angles.npz", make_raw([0.01] * len(ANGLES), ANGLES))
    with pytest.raises(DataError) as exc:
        load(path, dt=DT, selection=sel)
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg
    for field in fields:
        assert field in msg


# --------------------------------------------------------------------------------------------
# frame slicing


@pytest.mark.parametrize(("start", "end"), [(1, None), (3, 8), (4, N), (1, 2), (9, 10)])
def test_frame_slicing(tmp_path, start, end):
    t = production_grid(1, N, DT)
    raw = make_raw([0.01, 0.01], [0.0, 90.0], t=t)
    path = write_npz(tmp_path / "frames.npz", raw)
    data = load(path, dt=DT, selection=Selection(start_frame=start, end_frame=end))
    e = N if end is None else end
    assert np.array_equal(data.c2, raw.matrices.c2[:, start - 1 : e, start - 1 : e])
    assert data.n_frames == e - start + 1
    assert data.start_frame == start
    assert data.t[0] == start * DT  # absolute times: t_0 = start_frame·dt
    assert np.array_equal(data.t, production_grid(start, e - start + 1, DT))
    assert np.array_equal(data.t_file, t[start - 1 : e])
    assert data.provenance["frame_window"] == [start, e]
    assert data.provenance["n_frames_file"] == N


@pytest.mark.parametrize(
    ("start", "end", "fields"),
    [
        (1, N + 1, ["data.end_frame", f"{N} frames"]),
        (7, 5, ["data.start_frame", f"{N} frames"]),
        (0, None, ["data.start_frame", "≥ 1"]),
        (N, N, ["c2", "1 frame", "at least 2"]),
        (N + 1, None, ["data.start_frame", f"{N} frames"]),
        (1.5, None, ["data.start_frame", "integer"]),
    ],
)
def test_frame_slicing_errors(tmp_path, start, end, fields):
    path = write_npz(tmp_path / "frames.npz", make_raw([0.01], [0.0]))
    with pytest.raises(DataError) as exc:
        load(path, dt=DT, selection=Selection(start_frame=start, end_frame=end))
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg
    for field in fields:
        assert field in msg


# --------------------------------------------------------------------------------------------
# validation through files: the message names the file and the field


def _corrupt(case: str, arrays: dict) -> tuple[dict, float]:
    dt = DT
    c2 = arrays["c2"]
    if case == "nan":
        c2[1, 3, 4] = np.nan
        c2[1, 5, 2] = np.inf
    elif case == "q_zero":
        arrays["q"] = np.array([0.01, 0.0])
    elif case == "q_negative":
        arrays["q"] = np.array([-0.01, 0.01])
    elif case == "t_not_increasing":
        arrays["t"][5] = arrays["t"][4]
    elif case == "t_length":
        arrays["t"] = arrays["t"][:-1]
    elif case == "sigma_zero":
        arrays["sigma"] = np.array([0.0, 0.1])
    elif case == "dt_zero":
        dt = 0.0
    elif case == "dt_negative":
        dt = -DT
    elif case == "dt_nan":
        dt = float("nan")
    return arrays, dt


@pytest.mark.parametrize(
    ("case", "fields"),
    [
        ("nan", ["c2", "2 non-finite", "(1, 3, 4)"]),
        ("q_zero", ["q", "slot 1", "> 0"]),
        ("q_negative", ["q", "slot 0", "> 0"]),
        ("t_not_increasing", ["t", "strictly increasing", "index 5"]),
        ("t_length", ["t", f"{N - 1} values", f"expected {N}"]),
        ("sigma_zero", ["sigma", "slot 0"]),
        ("dt_zero", ["dt", "> 0"]),
        ("dt_negative", ["dt", "> 0"]),
        ("dt_nan", ["dt", "> 0"]),
    ],
)
def test_validation_errors(tmp_path, case, fields):
    raw = make_raw([0.01, 0.01], [0.0, 90.0])
    arrays = {
        "c2": raw.matrices.c2.copy(),
        "q": raw.q,
        "phi": raw.phi,
        "t": production_grid(1, N, DT),
        "sigma": np.array([0.1, 0.1]),
    }
    arrays, dt = _corrupt(case, arrays)
    path = tmp_path / f"{case}.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as exc:
        load(path, dt=dt, selection=Selection(q_select="all"))
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg
    for field in fields:
        assert field in msg


def test_zero_or_negative_diagonal_is_not_an_error(tmp_path):
    """The fit never uses the diagonal, so its values are not checked."""
    raw = make_raw([0.01, 0.01], [0.0, 90.0])
    c2 = raw.matrices.c2.copy()
    c2[1, 2, 2], c2[1, 6, 6] = 0.0, -1.0
    path = tmp_path / "diag.npz"
    np.savez(path, c2=c2, q=raw.q, phi=raw.phi)
    data = load(path, dt=DT, selection=Selection(q_select="all"))
    assert data.frame_mask is None and data.n_points == 2 * N * (N - 1) // 2


def test_nan_outside_window_is_ignored(tmp_path):
    raw = make_raw([0.01], [0.0])
    c2 = raw.matrices.c2.copy()
    c2[0, 0, 5] = c2[0, 5, 0] = np.nan
    path = tmp_path / "nan_edge.npz"
    np.savez(path, c2=c2, q=raw.q, phi=raw.phi)
    data = load(path, dt=DT, selection=Selection(start_frame=2))
    assert np.isfinite(data.c2).all()


# --------------------------------------------------------------------------------------------
# warnings


def _data(**overrides) -> XpcsData:
    base = dict(
        c2=sym_stack(2),
        q=np.array([0.01, 0.01]),
        phi=np.array([0.0, 90.0]),
        dt=DT,
        t_file=production_grid(1, N, DT),
    )
    return XpcsData(**{**base, **overrides})


def test_validate_clean_data_returns_no_warnings():
    assert validate(_data(), source="mem.npz") == []


def test_validate_symmetry_warning():
    c2 = sym_stack(2)
    c2[1, 2, 7] += 1e-3
    with pytest.warns(UserWarning, match=r"mem\.npz: c2: slot 1 is not symmetric") as rec:
        out = validate(_data(c2=c2), source="mem.npz")
    assert len(out) == 1 and out[0] == str(rec[0].message)
    c2 = sym_stack(2)
    c2[0, 2, 7] *= 1 + 1e-9  # within 1e-6·max|c2|: no warning
    assert validate(_data(c2=c2), source="mem.npz") == []


def test_validate_time_spacing_warning():
    t = production_grid(1, N, DT) * 1.001
    with pytest.warns(UserWarning, match=r"mem\.npz: t: median spacing .* dt = 0\.01"):
        out = validate(_data(t_file=t), source="mem.npz")
    assert len(out) == 1
    t = production_grid(1, N, DT) * (1 + 1e-9)
    assert validate(_data(t_file=t), source="mem.npz") == []


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"c2": np.ones((2, N, N - 1))}, ["c2", "square"]),
        ({"c2": np.ones((N, N))}, ["c2", "shape"]),
        ({"q": np.array([0.01])}, ["q", "(2,)"]),
        ({"phi": np.array([0.0, 1.0, 2.0])}, ["phi", "(2,)"]),
        ({"phi": np.array([0.0, np.nan])}, ["phi", "slot 1"]),
        ({"sigma": np.array([1.0])}, ["sigma", "(2,)"]),
        ({"t_file": production_grid(1, N + 1, DT)}, ["t", f"({N},)"]),
        ({"c2": np.ones((2, N, N), dtype=np.float32)}, ["c2", "float64"]),
    ],
)
def test_validate_shape_errors(overrides, fields):
    with pytest.raises(DataError) as exc:
        validate(_data(**overrides), source="mem.npz")
    msg = str(exc.value)
    assert msg.startswith("mem.npz: ")
    for field in fields:
        assert field in msg


def test_missing_phi_warning_reaches_provenance(tmp_path):
    path = tmp_path / "one.npz"
    np.savez(path, c2=sym_stack(1)[0], q=np.float64(0.01))
    with pytest.warns(UserWarning, match="phi = 0"):
        data = load(path, dt=DT)
    assert np.array_equal(data.phi, [0.0])
    assert len(data.provenance["warnings"]) == 1


@pytest.mark.parametrize("target", [0.054, 5.0, 0.0001])
def test_nearest_q_beyond_the_distance_limit_is_an_error(target):
    """A mistyped q (0.054 for 0.0054) must not silently fit the 0.0108 bins."""
    raw = make_raw([0.0054, 0.0054, 0.0108], [0.0, 90.0, 0.0])
    with pytest.raises(DataError) as exc:
        select(raw, Selection(q=target), dt=DT, source="two_q.h5")
    msg = str(exc.value)
    assert "data.q_max_rel_distance = 0.25" in msg and "[0.0054, 0.0108]" in msg
    data = select(raw, Selection(q=target, q_max_rel_distance=None), dt=DT, source="two_q.h5")
    assert data.n_phi in (1, 2)


def test_nearest_q_within_the_limit_picks_the_bin():
    raw = make_raw([0.0054, 0.0054, 0.0108], [0.0, 90.0, 0.0])
    data = select(raw, Selection(q=0.0066), dt=DT, source="two_q.h5")  # 22 % from 0.0054
    assert data.q.tolist() == [0.0054, 0.0054]
    with pytest.raises(DataError, match="0.222 .relative."):
        select(raw, Selection(q=0.0066, q_max_rel_distance=0.2), dt=DT, source="two_q.h5")
