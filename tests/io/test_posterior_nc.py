"""ArviZ netCDF posterior file (hpcfit.io.posterior_nc)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from hpcfit.io.posterior_nc import write_posterior_nc

NAMES = ["D0_ref", "alpha", "contrast_0", "offset_0"]


def _draws(dtype=np.float64):
    return np.random.default_rng(3).normal(size=(2, 25, len(NAMES))).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip(tmp_path, dtype):
    draws = _draws(dtype)
    stats = {
        "diverging": np.zeros((2, 25), dtype=bool),
        "energy": np.arange(50.0).reshape(2, 25),
    }
    attrs = {"data_fingerprint": "sha256:abc", "K": 3, "temperature": 0.25, "flag": True}
    path = write_posterior_nc(tmp_path / "post.nc", draws, NAMES, sample_stats=stats, attrs=attrs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["post.nc"]
    tree = az.from_netcdf(path)
    try:
        post = tree["posterior"]
        assert set(post.data_vars) == set(NAMES)
        for p, name in enumerate(NAMES):
            values = post[name].values
            assert post[name].dims == ("chain", "draw")
            assert values.dtype == dtype
            assert values.tobytes() == np.ascontiguousarray(draws[:, :, p]).tobytes()
        assert tree.attrs["data_fingerprint"] == "sha256:abc"
        assert tree.attrs["K"] == 3
        assert tree.attrs["temperature"] == 0.25
        assert tree.attrs["flag"] == 1
        ss = tree["sample_stats"]
        assert ss["diverging"].values.dtype == bool
        np.testing.assert_array_equal(ss["energy"].values, stats["energy"])
    finally:
        tree.close()


def test_without_sample_stats_and_overwrite(tmp_path):
    path = tmp_path / "post.nc"
    write_posterior_nc(path, _draws(), NAMES)
    write_posterior_nc(path, _draws()[:, :5], NAMES)
    tree = az.from_netcdf(path)
    try:
        assert "sample_stats" not in tree.children
        assert tree["posterior"]["alpha"].shape == (2, 5)
    finally:
        tree.close()


@pytest.mark.parametrize(
    ("draws", "names", "kwargs", "match"),
    [
        (np.zeros((25, 4)), NAMES, {}, "chains, samples, P"),
        (np.zeros((2, 25, 3)), NAMES, {}, "3 parameters but 4 names"),
        (np.zeros((2, 25, 2)), ["a", "a"], {}, "unique"),
        (np.zeros((2, 25, 1)), ["chain"], {}, "invalid"),
        (np.zeros((2, 25, 4)), NAMES, {"sample_stats": {"lp": np.zeros(50)}}, "must have shape"),
    ],
)
def test_bad_input(tmp_path, draws, names, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_posterior_nc(tmp_path / "p.nc", draws, names, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_bad_attr_type(tmp_path):
    with pytest.raises(TypeError, match="attrs"):
        write_posterior_nc(tmp_path / "p.nc", _draws(), NAMES, attrs={"x": [1, 2]})
