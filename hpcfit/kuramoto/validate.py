"""Argument checks of the Kuramoto entry points, run before anything is compiled.

Every failure raises :class:`hpcfit.errors.ConfigError` naming the argument, what was expected
and what was received. Arrays may be NumPy arrays, ``jax.Array`` s or nested sequences; they
come back as float64 arrays (NumPy stays NumPy, JAX stays JAX). Inside ``jit``/``vmap``/``grad``
(tracer arguments) only shapes and dtypes are checked: values are not known there.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any

import jax
import numpy as np

from hpcfit.errors import ConfigError
from hpcfit.kuramoto.rk4 import RECORDS


def is_tracer(x: object) -> bool:
    return isinstance(x, jax.core.Tracer)


def real_array(name: str, x: Any) -> Any:
    """``x`` as a float64 array, refusing booleans, complex numbers and non-numeric data."""
    if isinstance(x, jax.Array):
        dtype = x.dtype
    else:
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as exc:  # ragged nested sequences
            raise ConfigError(f"{name} must be an array of real numbers: {exc}") from None
        dtype = x.dtype
    if dtype == np.bool_ or not (
        np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)
    ):
        raise ConfigError(f"{name} must hold real numbers, got dtype {dtype}")
    return x if dtype == np.float64 else x.astype(np.float64)


def check_finite(name: str, x: Any) -> None:
    """ConfigError when ``x`` holds NaN or ±inf (skipped for tracers)."""
    if is_tracer(x):
        return
    bad = ~np.isfinite(np.asarray(x))
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ConfigError(
            f"{name} must be finite; found {int(bad.sum())} non-finite value(s), the first at "
            f"index {first}"
        )


def check_dt(dt: Any) -> Any:
    """dt as a float64 scalar: finite and > 0 (a tracer passes through)."""
    if is_tracer(dt):
        if dt.shape != ():
            raise ConfigError(f"dt must be a scalar, got shape {dt.shape}")
        return dt
    if isinstance(dt, bool | np.bool_):
        raise ConfigError(f"dt must be a finite number > 0, got {dt!r}")
    if isinstance(dt, np.ndarray | jax.Array) and dt.shape == ():
        dt = dt.item()
    if not isinstance(dt, numbers.Real):
        raise ConfigError(f"dt must be a finite number > 0, got {dt!r}")
    value = float(dt)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"dt must be a finite number > 0, got {dt!r}")
    return np.float64(value)


def count(name: str, value: Any, minimum: int) -> int:
    """``value`` as a Python int ≥ ``minimum`` (bools and non-integers refused)."""
    if isinstance(value, bool | np.bool_):
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {number}")
    return number


def optional_count(name: str, value: Any) -> int | None:
    """None, or an integer ≥ 1 (``chunk``, ``checkpoint_steps``)."""
    return None if value is None else count(name, value, 1)


def check_record(record: Any) -> str:
    if record not in RECORDS:
        raise ConfigError(f"record must be one of {', '.join(RECORDS)}; got {record!r}")
    return record


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


def single(theta0: Any, omega: Any, K: Any) -> tuple[Any, Any, Any]:
    """θ0 (N,), ω (N,), K (N, N) with N ≥ 1, real and finite."""
    theta0, omega, K = real_array("theta0", theta0), real_array("omega", omega), real_array("K", K)
    if theta0.ndim != 1 or theta0.shape[0] < 1:
        raise ConfigError(
            f"theta0 must be a 1-D array of N >= 1 phases, got shape {_shape(theta0)}"
        )
    n = theta0.shape[0]
    if _shape(omega) != (n,):
        raise ConfigError(
            f"omega must have shape (N,) = ({n},) to match theta0, got {_shape(omega)}"
        )
    _check_square(K, n, batched=None)
    for name, x in (("theta0", theta0), ("omega", omega), ("K", K)):
        check_finite(name, x)
    return theta0, omega, K


def members(theta0: Any, omega: Any, K: Any) -> tuple[Any, Any, Any]:
    """θ0 (B, N) with B ≥ 1 and N ≥ 1; ω (N,) or (B, N); K (N, N) or (B, N, N); finite."""
    theta0, omega, K = real_array("theta0", theta0), real_array("omega", omega), real_array("K", K)
    if theta0.ndim != 2 or theta0.shape[0] < 1 or theta0.shape[1] < 1:
        raise ConfigError(
            "theta0 must be a (B, N) array of B >= 1 members with N >= 1 phases each, got shape "
            f"{_shape(theta0)}"
        )
    b, n = theta0.shape
    if _shape(omega) not in ((n,), (b, n)):
        raise ConfigError(
            f"omega must have shape (N,) = ({n},) (shared) or (B, N) = ({b}, {n}) (per member) "
            f"to match theta0, got {_shape(omega)}"
        )
    _check_square(K, n, batched=b)
    for name, x in (("theta0", theta0), ("omega", omega), ("K", K)):
        check_finite(name, x)
    return theta0, omega, K


def _check_square(K: Any, n: int, *, batched: int | None) -> None:
    shape = _shape(K)
    if K.ndim >= 2 and shape[-1] != shape[-2]:
        raise ConfigError(f"K must be square in its last two axes, got shape {shape}")
    allowed = [(n, n)] + ([] if batched is None else [(batched, n, n)])
    if shape not in allowed:
        expected = " or ".join(str(s) for s in allowed)
        raise ConfigError(
            f"K must have shape {expected} (N = {n} from theta0"
            f"{'' if batched is None else f', B = {batched}'}), got {shape}"
        )


def cotangent(lam: Any, shape: tuple[int, ...]) -> Any:
    """The terminal cotangent ∂L/∂θ_final: real, finite, of the final phases' shape."""
    lam = real_array("cotangent", lam)
    if _shape(lam) != shape:
        raise ConfigError(
            f"cotangent must have the shape of the final phases {shape}, got {_shape(lam)}"
        )
    check_finite("cotangent", lam)
    return lam
