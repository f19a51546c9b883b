"""Outputs of the Kuramoto job: chunk checkpoints, the gather to rank 0, and the files in
``<run_dir>/kuramoto/``:

* ``summary.json``: N, members, steps, dt, network, ranks, the device of every rank and
  statistics of the order parameter r(t) = |(1/N) Σ_j exp(iθ_j(t))| over the members;
* ``ensemble.h5``: member-indexed θ0, ω, final phases (rad, unwrapped), r(t), the time axis, the
  coupling matrix, and with ``kuramoto.record=trajectory`` every phase at every step;
* ``order_parameter.png``: r(t) of every member and the ensemble mean.

All files are written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.config import KuramotoConfig, KuramotoJob
from hpcfit.io.atomic import write_atomic_path, write_json
from hpcfit.io.checkpoint import load_record, save_record
from hpcfit.io.jsonable import plain
from hpcfit.parallel.comm import Comm

CHUNK_KEYS = ("final", "order_parameter", "trajectory")
CHUNK_KIND = "kuramoto_chunk"


# ------------------------------------------------------------------------- chunk checkpoints
def chunk_stem(chunk_dir: Path, start: int, stop: int) -> Path:
    """Stem of the checkpoint record of members [start, stop) (``.npz`` and ``.json``)."""
    return Path(chunk_dir) / f"members-{start:07d}-{stop:07d}"


def save_chunk(chunk_dir: Path, start: int, stop: int, fp: str, arrays: dict[str, Any]) -> None:
    """Checkpoint a finished chunk of members [start, stop) under fingerprint ``fp``."""
    kept = {k: np.asarray(v) for k, v in arrays.items() if k in CHUNK_KEYS}
    fields = {"start": int(start), "stop": int(stop), **kept}
    save_record(chunk_stem(chunk_dir, start, stop), CHUNK_KIND, fp, fields)


def load_chunk(chunk_dir: Path, start: int, stop: int, fp: str) -> dict[str, np.ndarray] | None:
    """The chunk's arrays if a complete record with fingerprint ``fp`` holds members
    [start, stop); else None (missing, from other settings, or damaged: recomputed)."""
    ids = {"start": int(start), "stop": int(stop)}
    fields, _ = load_record(chunk_stem(chunk_dir, start, stop), CHUNK_KIND, fp, ids)
    if fields is None:
        return None
    out = {k: v for k, v in fields.items() if k in CHUNK_KEYS and isinstance(v, np.ndarray)}
    if out.get("final") is None or out["final"].shape[0] != stop - start:
        return None
    return out


# ------------------------------------------------------------------------------------ gather
@dataclass
class Gathered:
    """Rank 0's member-ordered results (empty on the other ranks)."""

    theta0: np.ndarray
    omega: np.ndarray
    final: np.ndarray
    order_parameter: np.ndarray
    devices: list[str]
    walls: list[float]
    partial_h5: Path | None = None  # trajectories, written during the gather
    summary: dict[str, Any] = field(default_factory=dict)


def partial_h5_path(run_dir: Path) -> Path:
    return Path(run_dir) / "kuramoto" / ".ensemble.h5.partial"


def gather(comm: Comm, block: Any, k: KuramotoConfig, run_dir: Path) -> Gathered:
    """Gather every rank's block to rank 0 in rank order (= member order).

    Trajectories travel one rank at a time and go straight into a partial HDF5 file, so rank
    0 holds at most one rank's trajectories in memory.
    """
    theta0 = comm.gatherv(block.theta0)
    omega = comm.gatherv(block.omega)
    final = comm.gatherv(block.final)
    r = comm.gatherv(block.order_parameter)
    devices = comm.gather(block.device)
    walls = comm.gather(block.wall_s)
    partial = None
    if block.trajectory is not None:
        partial = _gather_trajectories(comm, block, k, partial_h5_path(run_dir))
    if comm.rank != 0:
        empty = np.zeros((0,))
        return Gathered(empty, empty, empty, empty, [], [])
    # rank 0 is the gathers' root, so each holds a value there
    assert theta0 is not None and omega is not None and final is not None and r is not None
    assert devices is not None and walls is not None
    return Gathered(theta0, omega, final, r, list(devices), list(walls), partial)


def _gather_trajectories(comm: Comm, block: Any, k: KuramotoConfig, path: Path) -> Path | None:
    import h5py

    n, rows = k.n_oscillators, k.n_steps + 1
    empty = np.zeros((0, rows, n))
    h5 = None
    if comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        h5 = h5py.File(path, "w")
        dset = h5.create_dataset("trajectory", (k.n_members, rows, n), dtype="f8", chunks=True)
    try:
        at = 0
        for source in range(comm.size):
            part = comm.gatherv(block.trajectory if comm.rank == source else empty)
            if h5 is not None and part is not None:
                dset[at : at + part.shape[0]] = part
                at += part.shape[0]
    finally:
        if h5 is not None:
            h5.close()
    return path if comm.rank == 0 else None


# ------------------------------------------------------------------------------------ writers
def summary_of(cfg: KuramotoJob, g: Gathered) -> dict[str, Any]:
    """The facts of ``summary.json`` (r statistics over members; None when r was not kept)."""
    k = cfg.kuramoto
    n = k.n_oscillators
    r_final = np.abs(np.exp(1j * g.final).mean(axis=-1))
    out: dict[str, Any] = {
        "N": n,
        "members": k.n_members,
        "steps": k.n_steps,
        "dt": k.dt,
        "t_final": k.n_steps * k.dt,
        "seed": k.seed,
        "network": k.network.value,
        "omega": k.omega.value,
        "coupling": k.coupling,
        "record": k.record.value,
        "ranks": len(g.devices),
        "device_per_rank": g.devices,
        "wall_s_per_rank": g.walls,
        "finite": bool(np.isfinite(g.final).all()),
        "r_final": _stats(r_final),
    }
    if g.order_parameter.shape[1] > 0:
        r = g.order_parameter
        tail = r[:, r.shape[1] // 2 :]
        out["r_initial"] = _stats(r[:, 0])
        out["r_time_mean_second_half"] = _stats(tail.mean(axis=1))
        out["r_ensemble_mean_final"] = float(r[:, -1].mean())
    return out


def _stats(x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, dtype=np.float64)
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return {"mean": float(x.mean()), "sd": sd, "min": float(x.min()), "max": float(x.max())}


def write_outputs(
    run_dir: Path, cfg: KuramotoJob, g: Gathered, omega_shared: np.ndarray, coupling: np.ndarray
) -> dict[str, Any]:
    """Write summary.json, ensemble.h5 (with the shared ω and the coupling matrix of the
    network) and order_parameter.png; returns the summary."""
    k = cfg.kuramoto
    out = Path(run_dir) / "kuramoto"
    out.mkdir(parents=True, exist_ok=True)
    time_axis = k.dt * np.arange(k.n_steps + 1, dtype=np.float64)
    g.summary = summary_of(cfg, g)

    def fill(path: Path) -> None:
        import h5py

        mode = "a" if g.partial_h5 is not None else "w"
        if g.partial_h5 is not None:
            os.replace(g.partial_h5, path)
        with h5py.File(path, mode) as h5:
            h5.attrs["kuramoto_config"] = json.dumps(plain(k, nonfinite="keep"))
            h5.attrs["units"] = "phases in rad (unwrapped), time in the units of 1/omega"
            h5["member_id"] = np.arange(k.n_members)
            h5["theta0"] = g.theta0
            h5["omega"] = g.omega if g.omega.shape[0] else omega_shared
            h5["coupling_matrix"] = coupling
            h5["final_phases"] = g.final
            h5["time"] = time_axis
            if g.order_parameter.shape[1] > 0:
                h5["order_parameter"] = g.order_parameter

    write_atomic_path(out / "ensemble.h5", fill)
    if g.order_parameter.shape[1] > 0:
        write_atomic_path(
            out / "order_parameter.png",
            lambda p: plot_order_parameter(p, time_axis, g.order_parameter),
        )
    write_json(out / "summary.json", g.summary)
    return g.summary


def plot_order_parameter(path: Path, t: np.ndarray, r: np.ndarray) -> None:
    """r(t) of every member (thin) and their mean (thick)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    try:
        for row in r:
            ax.plot(t, row, lw=0.6, alpha=0.35, color="tab:blue")
        ax.plot(t, r.mean(axis=0), lw=2.0, color="black", label=f"mean of {r.shape[0]} members")
        ax.set_xlabel("t")
        ax.set_ylabel("order parameter r(t)")
        ax.set_ylim(0.0, 1.0)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
