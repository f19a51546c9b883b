"""Peer driver: the ``oscillatools`` package (0.1.0), run by the peer venv's python.

Run by ``benchmarks/kuramoto_bench.py`` as a long-lived subprocess of
``.peers/oscillatools/bin/python`` so that hpcfit and peer timings can alternate. The protocol is
one JSON object per line: a command on stdin, one reply on stdout (anything the package prints
goes to stderr). Inputs come in an ``.npz`` file written by the caller. Commands:

``info``                     versions, the integrator's module and the tier it dispatches to
``load npz``                 theta0, omega, K, dt, n_steps, cotangent
``time what [repeats] [first]``  what ∈ forward (the RK4 trajectory) | gradient (the trajectory
                             and the adjoint, as one gradient call of hpcfit) | vjp (the adjoint
                             alone, on a stored trajectory)
``values out``               writes trajectory, g_theta0, g_omega, g_K to the ``.npz`` ``out``
``quit``

The peer's integrator is ``oscillatools.accel.diff_kuramoto_rk4.kuramoto_rk4_trajectory`` and
its adjoint ``kuramoto_rk4_vjp``: a dispatcher over Rust, Julia and a pure-NumPy floor; with
neither engine installed (numpy and scipy only) it serves the NumPy floor, which ``info`` and
every timing report (``tier``). oscillatools is AGPL-licensed and is never imported by hpcfit.
The timing helpers come from ``benchmarks/_record.py`` (standard library only), so both sides
are timed the same way.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# first: puts benchmarks/ on sys.path and sends the package's prints to stderr
from _driver import serve, version  # noqa: E402

# isort: split
import _record  # noqa: E402
import numpy as np  # noqa: E402
from oscillatools.accel import diff_kuramoto_rk4 as rk4  # noqa: E402

STATE: dict[str, Any] = {}


def _tiers() -> dict[str, str | None]:
    return {
        "forward": rk4.last_kuramoto_rk4_trajectory_tier_used(),
        "vjp": rk4.last_kuramoto_rk4_vjp_tier_used(),
    }


def cmd_info(_: dict[str, Any]) -> dict[str, Any]:
    from oscillatools.accel import dispatcher

    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "versions": {n: version(n) for n in ("oscillatools", "numpy", "scipy")},
        "integrator": f"{rk4.__name__}.kuramoto_rk4_trajectory / kuramoto_rk4_vjp",
        "module_file": rk4.__file__,
        "available_tiers": list(dispatcher.available_tiers()),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }


def cmd_load(msg: dict[str, Any]) -> dict[str, Any]:
    d = np.load(msg["npz"])
    STATE.update(
        theta0=np.asarray(d["theta0"], dtype=np.float64),
        omega=np.asarray(d["omega"], dtype=np.float64),
        K=np.asarray(d["K"], dtype=np.float64),
        dt=float(d["dt"]),
        n_steps=int(d["n_steps"]),
        cotangent=np.asarray(d["cotangent"], dtype=np.float64),
    )
    STATE["trajectory"] = _forward()
    return {"n": int(STATE["theta0"].size), "n_steps": STATE["n_steps"], "tier": _tiers()}


def _forward() -> np.ndarray:
    s = STATE
    return rk4.kuramoto_rk4_trajectory(s["theta0"], s["omega"], s["K"], s["dt"], s["n_steps"])


def _vjp(trajectory: np.ndarray):
    s = STATE
    return rk4.kuramoto_rk4_vjp(trajectory, s["omega"], s["K"], s["dt"], s["cotangent"])


def _gradient():
    return _vjp(_forward())


def cmd_time(msg: dict[str, Any]) -> dict[str, Any]:
    what = msg["what"]
    if what == "forward":
        fn, args = _forward, ()
    elif what == "gradient":
        fn, args = _gradient, ()
    elif what == "vjp":
        fn, args = _vjp, (STATE["trajectory"],)
    else:
        raise ValueError(f"unknown timing {what!r}")
    out = _record.time_call(
        fn, *args, repeats=int(msg.get("repeats", 3)), first=bool(msg.get("first", False))
    )
    out["tier"] = _tiers()
    out["loadavg"] = _record.loadavg()
    return out


def cmd_values(msg: dict[str, Any]) -> dict[str, Any]:
    traj = _forward()
    g_theta, g_omega, g_K = _vjp(traj)
    np.savez(msg["out"], trajectory=traj, g_theta0=g_theta, g_omega=g_omega, g_K=g_K)
    return {"out": msg["out"], "shape": list(traj.shape), "tier": _tiers()}


COMMANDS = {"info": cmd_info, "load": cmd_load, "time": cmd_time, "values": cmd_values}


if __name__ == "__main__":
    sys.exit(serve(COMMANDS))
