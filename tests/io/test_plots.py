"""Trace, corner and posterior-predictive PNGs (hpcfit.io.plots)."""

from __future__ import annotations

import numpy as np
import pytest

from hpcfit.io.plots import corner_plot, ppc_maps, trace_plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ["D0_ref", "alpha", "contrast_0"]


def _assert_png(path, tmp_path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _draws():
    return np.random.default_rng(0).normal(size=(2, 40, len(NAMES)))


def test_trace_plot(tmp_path):
    path = trace_plot(tmp_path / "sub" / "trace.png", _draws(), NAMES)
    _assert_png(path, tmp_path / "sub")


def test_trace_plot_nonfinite_and_constant(tmp_path):
    draws = _draws()
    draws[0, :5, 0] = np.nan
    draws[:, :, 1] = 1.0
    draws[:, :, 2] = np.inf
    _assert_png(trace_plot(tmp_path / "trace.png", draws, NAMES), tmp_path)


def test_corner_plot(tmp_path):
    path = corner_plot(
        tmp_path / "corner.png", _draws(), NAMES, truth=[0.0, None, 0.5], max_points=30
    )
    _assert_png(path, tmp_path)
    flat = corner_plot(tmp_path / "flat.png", _draws().reshape(-1, 3), NAMES)
    _assert_png(flat, tmp_path)


def test_ppc_maps(tmp_path):
    rng = np.random.default_rng(1)
    n, n_phi, d = 12, 2, 5
    t = np.linspace(0.0, 1.1, n)
    lag = np.abs(t[:, None] - t[None, :])
    model = 1.0 + 0.3 * np.exp(-lag / 0.4)
    draws = model * (1 + 0.01 * rng.normal(size=(d, n_phi, 1, 1)))
    c2 = model + 0.01 * rng.normal(size=(n_phi, n, n))
    path = ppc_maps(tmp_path / "ppc.png", t, c2, draws, ["φ = 0°", "φ = 90°"])
    _assert_png(path, tmp_path)


@pytest.mark.parametrize(
    ("draws", "names", "match"),
    [
        (np.zeros((40, 3)), NAMES, r"\(chains, samples, P\)"),
        (np.zeros((2, 40, 2)), NAMES, "2 parameters but 3 names"),
        (np.zeros((2, 0, 3)), NAMES, "non-empty"),
    ],
)
def test_trace_plot_bad_shapes(tmp_path, draws, names, match):
    with pytest.raises(ValueError, match=match):
        trace_plot(tmp_path / "t.png", draws, names)
    assert list(tmp_path.iterdir()) == []


def test_corner_plot_bad_input(tmp_path):
    with pytest.raises(ValueError, match="truth has 2 entries"):
        corner_plot(tmp_path / "c.png", _draws(), NAMES, truth=[1.0, 2.0])
    with pytest.raises(ValueError, match="max_points"):
        corner_plot(tmp_path / "c.png", _draws(), NAMES, max_points=0)
    with pytest.raises(ValueError, match=r"or \(n, P\), got \(5,\)"):
        corner_plot(tmp_path / "c.png", np.zeros((5,)), NAMES)
    with pytest.raises(ValueError, match="2 parameters but 3 names"):
        corner_plot(tmp_path / "c.png", np.zeros((5, 2)), NAMES)


@pytest.mark.parametrize(
    ("t", "c2", "draws", "labels", "match"),
    [
        (np.zeros((4, 1)), np.zeros((1, 4, 4)), np.zeros((2, 1, 4, 4)), ["a"], "t must"),
        (np.arange(4.0), np.zeros((1, 4, 5)), np.zeros((2, 1, 4, 5)), ["a"], "c2 must"),
        (np.arange(4.0), np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), ["a"], "model_draws must"),
        (np.arange(4.0), np.zeros((1, 4, 4)), np.zeros((2, 2, 4, 4)), ["a"], "model_draws must"),
        (np.arange(4.0), np.zeros((1, 4, 4)), np.zeros((2, 1, 4, 4)), ["a", "b"], "2 labels"),
    ],
)
def test_ppc_maps_bad_shapes(tmp_path, t, c2, draws, labels, match):
    with pytest.raises(ValueError, match=match):
        ppc_maps(tmp_path / "p.png", t, c2, draws, labels)
