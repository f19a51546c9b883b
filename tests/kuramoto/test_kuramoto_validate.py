"""Argument checks before any compile: each bad input raises ConfigError naming the
argument, the expected and the received value or shape."""

from __future__ import annotations

import numpy as np
import pytest

from hpcfit.errors import ConfigError
from hpcfit.kuramoto import chunks, ensemble, ensemble_gradient, final_state, gradient, trajectory

N = 4
TH, OM, K = np.zeros(N), np.ones(N), np.full((N, N), 0.25)


@pytest.fixture(autouse=True)
def _no_compile(monkeypatch: pytest.MonkeyPatch):
    """Bad input must be refused before a kernel is called (hence before anything compiles)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel was reached with invalid arguments")

    monkeypatch.setattr(chunks, "forward", refuse)
    monkeypatch.setattr(chunks, "gradient", refuse)


SINGLE_CASES = [
    ({"K": np.ones((N, N - 1))}, r"K must be square.*\(4, 3\)"),
    ({"K": np.ones((N + 1, N + 1))}, r"K must have shape \(4, 4\).*N = 4.*got \(5, 5\)"),
    ({"K": np.ones(N)}, r"K must have shape \(4, 4\).*got \(4,\)"),
    ({"omega": np.ones(N + 1)}, r"omega must have shape \(N,\) = \(4,\).*got \(5,\)"),
    ({"theta0": np.zeros((2, N))}, r"theta0 must be a 1-D array.*\(2, 4\)"),
    ({"theta0": np.zeros(0), "omega": np.zeros(0), "K": np.zeros((0, 0))}, r"theta0.*N >= 1"),
    ({"theta0": np.array([0.0, np.nan, 0.0, 0.0])}, r"theta0 must be finite.*index \(1,\)"),
    ({"omega": np.array([0.0, 0.0, np.inf, 0.0])}, r"omega must be finite"),
    ({"K": np.where(np.eye(N) > 0, -np.inf, 0.0)}, r"K must be finite; found 4"),
    ({"theta0": np.zeros(N, dtype=complex)}, r"theta0 must hold real numbers.*complex"),
    ({"omega": np.ones(N, dtype=bool)}, r"omega must hold real numbers.*bool"),
    ({"K": [[1, 2], [3]]}, r"K must be an array of real numbers"),
    ({"dt": 0.0}, r"dt must be a finite number > 0, got 0.0"),
    ({"dt": -0.1}, r"dt must be a finite number > 0"),
    ({"dt": float("nan")}, r"dt must be a finite number > 0"),
    ({"dt": float("inf")}, r"dt must be a finite number > 0"),
    ({"dt": True}, r"dt must be a finite number > 0"),
    ({"dt": "0.1"}, r"dt must be a finite number > 0"),
    ({"dt": np.ones(2)}, r"dt must be a finite number > 0"),
    ({"n_steps": -1}, r"n_steps must be an integer >= 0, got -1"),
    ({"n_steps": 2.5}, r"n_steps must be an integer >= 0, got 2.5"),
    ({"n_steps": True}, r"n_steps must be an integer >= 0"),
    ({"chunk": 0}, r"chunk must be an integer >= 1, got 0"),
    ({"checkpoint_steps": 0}, r"checkpoint_steps must be an integer >= 1"),
]


def _single_args(**over):
    kw = {"theta0": TH, "omega": OM, "K": K, "dt": 0.1, "n_steps": 3}
    kw.update(over)
    return kw


@pytest.mark.parametrize(("over", "match"), SINGLE_CASES)
@pytest.mark.parametrize("fn", [trajectory, final_state, gradient])
def test_single_network_arguments(fn, over, match) -> None:
    kw = _single_args(**over)
    if fn is gradient:
        kw["cotangent"] = np.ones(np.shape(kw["theta0"])[-1:] or (0,))
    with pytest.raises(ConfigError, match=match):
        fn(kw.pop("theta0"), kw.pop("omega"), kw.pop("K"), **kw)


def test_cotangent_shape_and_values() -> None:
    with pytest.raises(ConfigError, match=r"cotangent must have the shape.*\(4,\), got \(3,\)"):
        gradient(TH, OM, K, dt=0.1, n_steps=2, cotangent=np.ones(3))
    with pytest.raises(ConfigError, match=r"cotangent must be finite"):
        gradient(TH, OM, K, dt=0.1, n_steps=2, cotangent=np.array([0, 0, np.nan, 0]))
    with pytest.raises(ConfigError, match=r"cotangent must have the shape.*\(2, 4\)"):
        ensemble_gradient(np.zeros((2, N)), OM, K, dt=0.1, n_steps=2, cotangent=np.ones(N))


ENSEMBLE_CASES = [
    ({"theta0": np.zeros(N)}, r"theta0 must be a \(B, N\) array.*got shape \(4,\)"),
    ({"theta0": np.zeros((0, N))}, r"theta0 must be a \(B, N\) array of B >= 1.*\(0, 4\)"),
    ({"omega": np.ones((3, N))}, r"omega must have shape \(N,\) = \(4,\).*\(B, N\) = \(2, 4\)"),
    ({"K": np.ones((3, N, N))}, r"K must have shape \(4, 4\) or \(2, 4, 4\).*B = 2.*\(3, 4, 4\)"),
    ({"K": np.ones((2, N, N + 1))}, r"K must be square.*\(2, 4, 5\)"),
    ({"record": "phases"}, r"record must be one of order_parameter, trajectory, final"),
    ({"theta0": np.full((2, N), np.nan)}, r"theta0 must be finite; found 8"),
]


@pytest.mark.parametrize(("over", "match"), ENSEMBLE_CASES)
def test_ensemble_arguments(over, match) -> None:
    kw = {"theta0": np.zeros((2, N)), "omega": OM, "K": K, "dt": 0.1, "n_steps": 3}
    kw.update(over)
    with pytest.raises(ConfigError, match=match):
        ensemble(kw.pop("theta0"), kw.pop("omega"), kw.pop("K"), **kw)


def test_valid_edge_values_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def record(theta0, omega, K, dt, **kw):
        seen.update(dt=dt, dtype=theta0.dtype, **kw)
        return {"final": theta0, "trajectory": theta0}

    monkeypatch.setattr(chunks, "forward", record)
    final_state(
        [0, 1, 2, 3], OM.astype(np.float32), K.astype(int), dt=np.float32(0.5), n_steps=np.int64(0)
    )
    assert seen["n_steps"] == 0 and seen["dtype"] == np.float64
    assert isinstance(seen["dt"], np.float64) and seen["dt"] == 0.5
    ensemble(np.zeros((1, 1)), np.zeros(1), np.zeros((1, 1)), dt=1, n_steps=1, record="final")
    assert seen["record"] == "final" and seen["chunk"] == 1
