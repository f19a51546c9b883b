"""Output files of an NRPT run, written by rank 0, every write atomic.

``<out_dir>/nrpt/``:

* ``summary.json``: every scalar and vector estimate of :class:`NrptResult` (non-finite numbers as
  ``null``), the final ladder, the status and its failure record, the per-round history without
  the series, and the provenance (device, ranks, seed, versions);
* ``rounds.h5`` (``hpcfit.io.results.write_results_h5``): ``rounds/`` traces with one row per
  round (``round``, ``scans``, ``betas`` [R × N], ``rejection`` [R × (N−1)], ``Lambda``,
  ``tau_observed``, ``tau_predicted``, ``efficiency``, ``round_trips``, ``restarts``,
  ``wall_s``), ``final/`` with the production round's target-chain series ``energy`` (H) and
  ``abs_magnetisation`` (|M|), the local barrier on the midpoints and the 101-point grid, and the
  marginals;
* ``barrier.png``: the local barrier λ̂(β) of the production round and the ladder of every round.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.io.atomic import write_atomic, write_json
from hpcfit.io.jsonable import plain
from hpcfit.io.results import write_results_h5
from hpcfit.nrpt.result import NrptResult

_SERIES = ("energy_series", "abs_magnetisation_series", "records")


def summary_dict(result: NrptResult) -> dict[str, Any]:
    """The content of ``summary.json``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(result):
        if f.name in _SERIES:
            continue
        value = getattr(result, f.name)
        if f.name == "history":
            value = [{k: v for k, v in row.items() if k != "attempts"} for row in value]
        out[f.name] = plain(value)
    out["exit_code"] = result.exit_code
    return out


def rounds_tree(result: NrptResult) -> dict[str, Any]:
    """The nested mapping written to ``rounds.h5``."""
    hist = result.history
    n = result.n_chains
    rounds: dict[str, Any] = {
        "round": np.array([row["round"] for row in hist], dtype=np.int64),
        "scans": np.array([row["scans"] for row in hist], dtype=np.int64),
        "betas": np.array([row["betas"] for row in hist], dtype=np.float64).reshape(-1, n),
        "rejection": np.array([row["rejection"] for row in hist], dtype=np.float64).reshape(
            -1, n - 1
        ),
    }
    for key in ("Lambda", "tau_observed", "tau_predicted", "efficiency", "wall_s"):
        rounds[key] = np.array([row[key] for row in hist], dtype=np.float64)
    for key in ("round_trips", "restarts"):
        rounds[key] = np.array([row[key] for row in hist], dtype=np.int64)
    final = {
        "energy": np.asarray(result.energy_series, dtype=np.float64),
        "abs_magnetisation": np.asarray(result.abs_magnetisation_series, dtype=np.float64),
        "betas": np.asarray(result.betas, dtype=np.float64),
        "local_barrier_midpoints": np.asarray(result.local_barrier_midpoints),
        "local_barrier": np.asarray(result.local_barrier),
        "local_barrier_grid": np.asarray(result.local_barrier_grid),
        "local_barrier_on_grid": np.asarray(result.local_barrier_on_grid),
        "marginals": np.asarray(result.marginals, dtype=np.float64),
        "marginals_se": np.asarray(result.marginals_se, dtype=np.float64),
    }
    return {"status": result.status, "rounds": rounds, "final": final}


def barrier_plot(path: str | Path, result: NrptResult) -> Path:
    """``barrier.png``: λ̂(β) (left) and the ladder after each round (right)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    if result.local_barrier_on_grid.size:
        left.plot(result.local_barrier_grid, result.local_barrier_on_grid, color="C0", lw=1.2)
        left.plot(result.local_barrier_midpoints, result.local_barrier, "o", ms=3, color="C1")
    left.set_xlabel("β")
    left.set_ylabel("local barrier λ̂(β)")
    left.set_title(f"Λ̂ = {result.Lambda:.3g}, N = {result.n_chains}")
    for row in result.history:
        betas = np.asarray(row["betas"])
        right.plot(betas, np.full(betas.shape, row["round"]), "|", ms=8, color="C0")
    right.set_xlabel("β")
    right.set_ylabel("round")
    right.set_title("ladder per round")
    right.set_xlim(-0.02, 1.02)
    return write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=80))


def write_outputs(result: NrptResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``summary.json``, ``rounds.h5`` and ``barrier.png`` under ``out_dir/nrpt`` (rank 0).

    Returns the paths by name.
    """
    base = Path(out_dir) / "nrpt"
    return {
        "summary": write_json(base / "summary.json", summary_dict(result)),
        "rounds": write_results_h5(base / "rounds.h5", rounds_tree(result)),
        "barrier": barrier_plot(base / "barrier.png", result),
    }
