"""Ising models on arbitrary graphs.

H(s) = −(Σ_i b_i s_i + Σ_{(i,j)∈E} J_ij s_i s_j) for spins s ∈ {−1, +1}ⁿ; the target is
γ(s) = exp(−β_t H(s)). An :class:`IsingModel` holds the graph as an edge list with one coupling
per edge and one field per spin (``h`` is b). Builders: :func:`grid_model` (L×L square lattice,
open or periodic) and :func:`load_model_file` (JSON ``{n, edges, J, h}``). Invalid input raises
``ConfigError`` (arguments) or ``DataError`` (files), naming the field, the expected and the
received value. Pure NumPy; no JAX.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.errors import ConfigError, DataError, InputError


@dataclass(frozen=True, eq=False)
class IsingModel:
    """A validated Ising model (arrays are read-only copies).

    Parameters
    ----------
    n : int  number of spins (≥ 1)
    edges : Int64[(m, 2)]  spin ids (0 ≤ id < n), no self-loops, no duplicate (either orientation)
    J : Float64[(m,)]  coupling of each edge (energy units; > 0 ferromagnetic)
    h : Float64[(n,)]  external field b_i of each spin (energy units)
    beta_t : float  target inverse temperature β_t ≥ 0 (1/energy units)
    grid : (L, periodic) or None  set by :func:`grid_model`; lets the sampler use a checkerboard
    """

    n: int
    edges: np.ndarray
    J: np.ndarray
    h: np.ndarray
    beta_t: float = 1.0
    grid: tuple[int, bool] | None = None

    def __post_init__(self) -> None:
        n, edges, J, h, beta = _validate(
            self.n, self.edges, self.J, self.h, self.beta_t, ConfigError, "IsingModel"
        )
        for name, value in (("n", n), ("edges", edges), ("J", J), ("h", h), ("beta_t", beta)):
            object.__setattr__(self, name, value)

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])

    def energy(self, spins: np.ndarray) -> np.ndarray:
        """H(s) for spins of shape (..., n) with values ±1 (NumPy, float64, energy units)."""
        s = np.asarray(spins, dtype=np.float64)
        pair = s[..., self.edges[:, 0]] * s[..., self.edges[:, 1]]
        return -(s @ self.h + pair @ self.J)

    def fingerprint_doc(self) -> dict[str, Any]:
        """The inputs that define the model (for checkpoint fingerprints)."""
        return {
            "kind": "ising",
            "n": self.n,
            "edges": self.edges,
            "J": self.J,
            "h": self.h,
            "beta_t": self.beta_t,
        }


def grid_model(
    L: int, J: float = 1.0, h: float = 0.0, periodic: bool = False, beta: float = 1.0
) -> IsingModel:
    """The L×L square-lattice Ising model with uniform coupling ``J`` and field ``h``.

    Spin (row, col) has id row·L + col; each spin lists its right then its lower neighbour
    (wrapping around when ``periodic``). Periodic lattices need L ≥ 3 (L = 2 would repeat edges).

    Parameters
    ----------
    L : int  side length (≥ 2; ≥ 3 when periodic)
    J : float  coupling of every nearest-neighbour pair (energy units)
    h : float  field on every spin (energy units)
    periodic : bool  torus instead of open boundaries
    beta : float  target inverse temperature β_t ≥ 0
    """
    if isinstance(L, bool) or not isinstance(L, int | np.integer):
        raise ConfigError(f"nrpt.L must be an integer, got {L!r}")
    L = int(L)
    lo = 3 if periodic else 2
    if L < lo:
        kind = "periodic" if periodic else "open"
        raise ConfigError(f"nrpt.L must be >= {lo} for a {kind} grid, got {L}")
    for name, value in (("nrpt.J", J), ("nrpt.h", h), ("nrpt.beta", beta)):
        if not _is_real(value) or not math.isfinite(float(value)):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
    edges = []
    for r in range(L):
        for c in range(L):
            i = r * L + c
            if c + 1 < L or periodic:
                edges.append((i, r * L + (c + 1) % L))
            if r + 1 < L or periodic:
                edges.append((i, ((r + 1) % L) * L + c))
    m = len(edges)
    return IsingModel(
        n=L * L,
        edges=np.asarray(edges, dtype=np.int64).reshape(m, 2),
        J=np.full(m, float(J)),
        h=np.full(L * L, float(h)),
        beta_t=float(beta),
        grid=(L, bool(periodic)),
    )


def load_model_file(path: str | Path, beta: float = 1.0) -> IsingModel:
    """Read a JSON model ``{"n": int, "edges": [[i, j], ...], "J": [...], "h": [...]}``.

    Raises ``DataError`` naming the file and the field for a missing or unreadable file, wrong
    types, spin ids out of range, self-loops, duplicate edges (either orientation), J/h length
    mismatches and non-finite values; ``ConfigError`` for a bad ``beta``.
    """
    path = Path(path)
    if not _is_real(beta) or not (math.isfinite(float(beta)) and float(beta) >= 0):
        raise ConfigError(f"nrpt.beta must be a finite number >= 0, got {beta!r}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: model file not found") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable JSON model file ({exc})") from exc
    where = f"{path}"
    if not isinstance(doc, dict):
        raise DataError(f"{where}: expected a JSON object with keys n, edges, J, h")
    missing = [k for k in ("n", "edges", "J", "h") if k not in doc]
    if missing:
        raise DataError(f"{where}: missing field(s) {missing} (expected n, edges, J, h)")
    n, edges, J, h = doc["n"], doc["edges"], doc["J"], doc["h"]
    if isinstance(n, bool) or not isinstance(n, int):
        raise DataError(f"{where}: field 'n' must be an integer, got {n!r}")
    edges = _list_field(edges, "edges", where)
    for k, e in enumerate(edges):
        ok = isinstance(e, list) and len(e) == 2
        if not ok or any(isinstance(v, bool) or not isinstance(v, int) for v in e):
            raise DataError(f"{where}: field 'edges[{k}]' must be a pair of integers, got {e!r}")
    J = _list_field(J, "J", where)
    h = _list_field(h, "h", where)
    for name, values in (("J", J), ("h", h)):
        for k, v in enumerate(values):
            if not _is_real(v):
                raise DataError(f"{where}: field '{name}[{k}]' must be a number, got {v!r}")
    edge_arr = np.asarray(edges, dtype=np.int64).reshape(len(edges), 2)
    J_arr = np.asarray(J, dtype=np.float64).reshape(len(J))
    h_arr = np.asarray(h, dtype=np.float64).reshape(len(h))
    n, edge_arr, J_arr, h_arr, beta = _validate(n, edge_arr, J_arr, h_arr, beta, DataError, where)
    return IsingModel(n=n, edges=edge_arr, J=J_arr, h=h_arr, beta_t=beta)


def _list_field(value: Any, name: str, where: str) -> list:
    if not isinstance(value, list):
        raise DataError(f"{where}: field '{name}' must be a list, got {type(value).__name__}")
    return value


def _is_real(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(
        x, bool | np.bool_
    )


def _validate(
    n: Any,
    edges: Any,
    J: Any,
    h: Any,
    beta_t: Any,
    error: type[InputError],
    where: str,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, float]:
    """Check every rule of a model (n, edges, J, h, β_t); returns read-only normalised copies."""
    if not _is_real(n) or int(n) != n:
        raise error(f"{where}: field 'n' must be an integer, got {n!r}")
    n = int(n)
    if n < 1:
        raise error(f"{where}: field 'n' must be >= 1, got {n}")
    try:
        edges = np.array(edges, copy=True)
    except (TypeError, ValueError) as exc:
        raise error(
            f"{where}: field 'edges' must be integer pairs of shape (m, 2) ({exc})"
        ) from exc
    if edges.size == 0:
        edges = edges.reshape(0, 2)
    if edges.ndim != 2 or edges.shape[1] != 2 or not np.issubdtype(edges.dtype, np.integer):
        raise error(
            f"{where}: field 'edges' must be integer pairs of shape (m, 2), "
            f"got dtype {edges.dtype} shape {edges.shape}"
        )
    edges = edges.astype(np.int64)
    bad = np.flatnonzero(np.any((edges < 0) | (edges >= n), axis=1))
    if bad.size:
        k = int(bad[0])
        raise error(
            f"{where}: field 'edges[{k}]' = {edges[k].tolist()} has a spin id outside [0, {n})"
        )
    loops = np.flatnonzero(edges[:, 0] == edges[:, 1])
    if loops.size:
        k = int(loops[0])
        raise error(f"{where}: field 'edges[{k}]' = {edges[k].tolist()} is a self-loop")
    key = np.sort(edges, axis=1)
    _, first, counts = np.unique(key, axis=0, return_index=True, return_counts=True)
    if np.any(counts > 1):
        pair = key[first[np.flatnonzero(counts > 1)[0]]]
        ks = np.flatnonzero(np.all(key == pair, axis=1)).tolist()
        raise error(
            f"{where}: field 'edges' repeats the pair {pair.tolist()} (either orientation) "
            f"at entries {ks}"
        )
    m = edges.shape[0]
    arrays = []
    for name, value, length in (("J", J, m), ("h", h, n)):
        try:
            a = np.array(value, dtype=np.float64, copy=True).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise error(f"{where}: field '{name}' must be a list of numbers ({exc})") from exc
        if np.ndim(value) != 1 or a.shape[0] != length:
            what = "one per edge" if name == "J" else "one per spin"
            raise error(
                f"{where}: field '{name}' must have {length} values ({what}), "
                f"got shape {np.shape(value)}"
            )
        nonfinite = np.flatnonzero(~np.isfinite(a))
        if nonfinite.size:
            k = int(nonfinite[0])
            raise error(f"{where}: field '{name}[{k}]' must be finite, got {a[k]!r}")
        arrays.append(a)
    if not _is_real(beta_t) or not (math.isfinite(float(beta_t)) and float(beta_t) >= 0):
        raise error(f"{where}: field 'beta_t' must be a finite number >= 0, got {beta_t!r}")
    for a in (edges, *arrays):
        a.flags.writeable = False
    return n, edges, arrays[0], arrays[1], float(beta_t)
