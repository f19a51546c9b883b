"""Round trip and atomicity of the results HDF5 file (hpcfit.io.results)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from hpcfit.io.results import read_results_h5, write_results_h5


def _assert_same(got, want, where="/"):
    """Equality in the documented round-trip sense: arrays bitwise, dicts recursively."""
    if isinstance(want, dict):
        assert isinstance(got, dict), where
        assert set(got) == {str(k) for k in want}, where
        for k, v in want.items():
            _assert_same(got[str(k)], v, f"{where}{k}/")
    elif isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), where
        assert got.dtype == want.dtype and got.shape == want.shape, where
        assert got.tobytes() == want.tobytes(), where
    elif isinstance(want, float) and np.isnan(want):
        assert isinstance(got, float) and np.isnan(got), where
    else:
        assert type(got) is type(want), where
        assert got == want, where


def _tree():
    rng = np.random.default_rng(7)
    return {
        "data_fingerprint": "sha256:abc123",
        "warm_start": {
            "theta": rng.normal(size=7),
            "cov": rng.normal(size=(40, 40)),  # > 1 KiB: compressed, still exact
            "cost": 0.1 + 0.2,
            "nfev": 42,
            "success": True,
            "message": "ftol satisfied — ok",
        },
        "plan": {
            "seed": 12345,
            "K": 3,
            "counts": np.array([[10, 11], [12, 13], [14, 15]], dtype=np.int64),
            "sha256": ["aa", "bb", "cc"],
        },
        "shards": {
            "00000": {
                "status": "ok",
                "draws_u": rng.normal(size=(2, 50, 4)),
                "draws_theta": rng.normal(size=(2, 50, 4)).astype(np.float32),
                "diagnostics": {
                    "rhat": [1.0, None, 1.01],
                    "divergences": 0,
                    "gates": {"ess_bulk": None, "passed": False, "reasons": []},
                    "nan_metric": float("nan"),
                    "per_chain": [{"steps": 7}, {"steps": 9}],
                },
            }
        },
        "combined": {
            "draws_u": rng.normal(size=(100, 4)),
            "draws_theta": rng.normal(size=(100, 4)),
            "names": ["D0_ref", "alpha", "contrast_0", "offset_0"],
            "mask": np.array([True, False, True]),
            "z": np.array(2.5),
        },
        "provenance": {"versions": {"numpy": np.__version__}, "git": {"dirty": False, "sha": None}},
        "config": {"nuts": {"chains": 2, "target_accept": 0.8}, "paths": ["a", "b"], "x": None},
    }


def test_round_trip_bitwise(tmp_path):
    tree = _tree()
    path = write_results_h5(tmp_path / "results.h5", tree)
    assert path == tmp_path / "results.h5"
    _assert_same(read_results_h5(path), tree)


def test_layout_groups_datasets_attributes(tmp_path):
    path = write_results_h5(tmp_path / "r.h5", _tree())
    with h5py.File(path, "r") as fh:
        assert fh.attrs["data_fingerprint"] == "sha256:abc123"
        assert isinstance(fh["shards/00000"], h5py.Group)
        assert fh["shards/00000"].attrs["status"] == "ok"
        assert fh["warm_start/cov"].compression == "gzip"
        assert fh["warm_start/theta"].compression is None
        assert json.loads(fh["config"].attrs["x_json"]) is None
        assert json.loads(fh["combined"].attrs["names_json"])[0] == "D0_ref"


def test_documented_conversions(tmp_path):
    tree = {
        1: {"numbers": [1.5, 2.5], "ints": (1, 2, 3), "bools": [True, False]},
        "ragged": [[1, 2], [3]],
        "empty": [],
        "np_scalar": np.float32(0.5),
        "big": 2**70,
        "tricky_json": "plain string",
        "nested_tuple": ("a", 1),
        "strs": np.array(["a", "bcd"]),
        "inf": float("inf"),
    }
    out = read_results_h5(write_results_h5(tmp_path / "c.h5", tree))
    assert set(out) == {"1", "ragged", "empty", "np_scalar", "big", "tricky_json", "nested_tuple",
                        "strs", "inf"}  # fmt: skip
    np.testing.assert_array_equal(out["1"]["numbers"], np.array([1.5, 2.5]))
    assert out["1"]["ints"].dtype.kind == "i"
    assert out["1"]["bools"].dtype == bool
    assert out["ragged"] == [[1, 2], [3]]
    assert out["empty"] == []
    assert out["np_scalar"] == 0.5 and type(out["np_scalar"]) is float
    assert out["big"] == 2**70
    assert out["tricky_json"] == "plain string"
    assert out["nested_tuple"] == ["a", 1]
    np.testing.assert_array_equal(out["strs"], tree["strs"])
    assert out["inf"] == float("inf")


def test_large_json_attribute(tmp_path):
    tree = {"log": [{"i": i, "msg": "x" * 50} for i in range(3000)]}  # ~200 kB of JSON
    assert read_results_h5(write_results_h5(tmp_path / "big.h5", tree)) == tree


def test_overwrite_and_no_temp_files(tmp_path):
    path = tmp_path / "r.h5"
    write_results_h5(path, {"a": 1})
    write_results_h5(path, {"b": 2})
    assert read_results_h5(path) == {"b": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]


def test_failure_leaves_old_file(tmp_path):
    path = tmp_path / "r.h5"
    write_results_h5(path, {"a": 1})
    with pytest.raises(TypeError, match="/bad/obj"):
        write_results_h5(path, {"a": 2, "bad": {"obj": object()}})
    assert read_results_h5(path) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]


@pytest.mark.parametrize(
    ("tree", "error"),
    [
        ({"a/b": 1}, ValueError),
        ({"": 1}, ValueError),
        ({(1, 2): 1}, TypeError),
        ({"x": np.array([object()], dtype=object)}, TypeError),
    ],
)
def test_rejects_bad_keys_and_values(tmp_path, tree, error):
    with pytest.raises(error):
        write_results_h5(tmp_path / "r.h5", tree)
    assert list(tmp_path.iterdir()) == []
