"""Peer driver: the ``heterodyne`` package (2.0.1), run by the peer venv's python.

Run by the hpcfit benchmark scripts as a long-lived subprocess of ``.peers/heterodyne/bin/python``
so that hpcfit and peer timings can alternate while both stay warm. The protocol is one JSON
object per line: a command on stdin, one reply on stdout (anything else the package prints is
sent to stderr). Inputs come in ``.npz`` files written by the caller. Commands:

``info``                      versions, XLA flags and devices of this process
``load_pooled npz``           t, i, j, y, sigma, params, q, dt, phi, contrast, offset (+ t_mesh_<N>)
``time what [repeats] [min_time_s] [first]``   what ∈ value | value_and_grad | jacfwd | mesh_<N>
``pooled_values npz out``     c2 at (i, j) for params/t/q/dt/phi/contrast/offset in ``npz``
``meshgrid_values npz out``   the (N, N) map for the same inputs
``nlsq npz [mode] [repeats]`` the package's joint multi-angle NLSQ on c2 (n_phi, N, N)
``quit``

Importing ``heterodyne`` sets ``XLA_FLAGS`` (4 host devices, constant folding off) and x64; the
driver leaves that as the package does. It imports nothing from hpcfit; the timing helpers come
from ``benchmarks/_record.py`` (standard library only), so both sides are timed the same way.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

os.environ.setdefault("NLSQ_DISABLE_PERSISTENT_CACHE", "1")  # genuine cold compiles, as hpcfit

# first: puts benchmarks/ on sys.path and sends the package's prints to stderr
from _driver import serve, version  # noqa: E402

# isort: split
import _record  # noqa: E402
import heterodyne  # noqa: E402  (sets XLA_FLAGS and x64 before JAX starts)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from heterodyne.core.jax_backend import compute_c2_heterodyne  # noqa: E402
from heterodyne.core.physics_cmc import ShardGrid, compute_c2_elementwise  # noqa: E402

STATE: dict[str, Any] = {"warm": set()}


def cmd_info(_: dict[str, Any]) -> dict[str, Any]:
    devices = jax.devices()
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "versions": {
            n: version(n)
            for n in ("heterodyne", "jax", "jaxlib", "numpy", "scipy", "nlsq", "numpyro")
        },
        "env": {
            k: os.environ.get(k)
            for k in (
                "XLA_FLAGS",
                "JAX_ENABLE_X64",
                "OMP_NUM_THREADS",
                "NLSQ_DISABLE_PERSISTENT_CACHE",
            )
        },
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
        "device": {"platform": devices[0].platform, "count": len(devices)},
        "heterodyne_file": heterodyne.__file__,
    }


def _elementwise(p, t, i, j, q, dt, phi, contrast, offset):
    sg = ShardGrid(time_grid=t, idx1=i, idx2=j, n_pairs=0)
    return compute_c2_elementwise(p, sg, q, dt, phi, contrast, offset)


def cmd_load_pooled(msg: dict[str, Any]) -> dict[str, Any]:
    d = np.load(msg["npz"])
    args = {
        "t": jnp.asarray(d["t"]),
        "i": jnp.asarray(d["i"]),
        "j": jnp.asarray(d["j"]),
        "q": jnp.float64(d["q"]),
        "dt": jnp.float64(d["dt"]),
        "phi": jnp.float64(d["phi"]),
        "contrast": jnp.float64(d["contrast"]),
        "offset": jnp.float64(d["offset"]),
    }
    y, sigma, p = jnp.asarray(d["y"]), jnp.float64(d["sigma"]), jnp.asarray(d["params"])
    pooled = (args["t"], args["i"], args["j"], args["q"], args["dt"], args["phi"])
    scale = (args["contrast"], args["offset"])

    def value(p, t, i, j, q, dt, phi, c, o):
        return _elementwise(p, t, i, j, q, dt, phi, c, o)

    def residual(p, t, i, j, q, dt, phi, c, o, y, sigma):
        return (_elementwise(p, t, i, j, q, dt, phi, c, o) - y) / sigma

    def loss(p, *rest):
        r = residual(p, *rest)
        return jnp.sum(r * r)

    fns = {
        "value": (jax.jit(value), (p, *pooled, *scale)),
        "value_and_grad": (jax.jit(jax.value_and_grad(loss)), (p, *pooled, *scale, y, sigma)),
        "jacfwd": (jax.jit(jax.jacfwd(residual)), (p, *pooled, *scale, y, sigma)),
    }
    mesh = jax.jit(compute_c2_heterodyne)
    for key in d.files:
        if key.startswith("t_mesh_"):
            n = key.removeprefix("t_mesh_")
            fns[f"mesh_{n}"] = (
                mesh,
                (p, jnp.asarray(d[key]), args["q"], args["dt"], args["phi"], *scale),
            )
    STATE["fns"] = fns
    STATE["warm"] = set()
    return {"n_points": int(d["i"].size), "functions": sorted(fns)}


def cmd_time(msg: dict[str, Any]) -> dict[str, Any]:
    what = msg["what"]
    fn, args = STATE["fns"][what]
    first = bool(msg.get("first", what not in STATE["warm"]))
    out = _record.time_call(
        fn,
        *args,
        repeats=int(msg.get("repeats", 20)),
        min_time_s=float(msg.get("min_time_s", 0.0)),
        first=first,
    )
    STATE["warm"].add(what)
    out["loadavg"] = _record.loadavg()
    return out


def _scalar_inputs(d) -> tuple:
    return (
        jnp.asarray(d["params"]),
        jnp.asarray(d["t"]),
        float(d["q"]),
        float(d["dt"]),
        float(d["phi"]),
        float(d["contrast"]),
        float(d["offset"]),
    )


def cmd_pooled_values(msg: dict[str, Any]) -> dict[str, Any]:
    d = np.load(msg["npz"])
    p, t, q, dt, phi, c, o = _scalar_inputs(d)
    sg = ShardGrid(time_grid=t, idx1=jnp.asarray(d["i"]), idx2=jnp.asarray(d["j"]), n_pairs=0)
    out = np.asarray(compute_c2_elementwise(p, sg, q, dt, phi, c, o))
    np.save(msg["out"], out)
    return {"out": msg["out"], "n": int(out.size)}


def cmd_meshgrid_values(msg: dict[str, Any]) -> dict[str, Any]:
    d = np.load(msg["npz"])
    out = np.asarray(compute_c2_heterodyne(*_scalar_inputs(d)))
    np.save(msg["out"], out)
    return {"out": msg["out"], "shape": list(out.shape)}


# -- NLSQ -------------------------------------------------------------------------------------
_GROUPS = {
    "reference": ["D0_ref", "alpha_ref", "D_offset_ref"],
    "sample": ["D0_sample", "alpha_sample", "D_offset_sample"],
    "velocity": ["v0", "beta", "v_offset"],
    "fraction": ["f0", "f1", "f2", "f3"],
    "angle": ["phi0"],
}


def _model_config(d, names: list[str]) -> dict[str, Any]:
    start, lo, hi, vary = d["start"], d["lo"], d["hi"], d["vary"]
    params: dict[str, Any] = {}
    for group, members in _GROUPS.items():
        params[group] = {}
        for name in members:
            k = names.index(name)
            params[group][name] = {
                "value": float(start[k]),
                "min": float(lo[k]),
                "max": float(hi[k]),
                "vary": bool(vary[k]),
            }
    n = int(d["c2"].shape[-1])
    return {
        "analyzer_parameters": {
            "dt": float(d["dt"]),
            "start_frame": int(d["start_frame"]),
            "end_frame": int(d["start_frame"]) + n - 1,
            "scattering": {"wavevector_q": float(d["q"])},
        },
        "parameters": params,
        "scaling": {"n_angles": int(d["c2"].shape[0]), "mode": "individual"},
    }


class _Warnings(logging.Handler):
    """Collects the package's WARNING-and-above log messages (the reasons behind a failure)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = f"{record.name}: {record.getMessage()}"[:400]
        if msg not in self.messages:
            self.messages.append(msg)


def _one_nlsq(d, names: list[str], mode: str) -> dict[str, Any]:
    from heterodyne.core.heterodyne_model import HeterodyneModel
    from heterodyne.optimization.nlsq.config import NLSQConfig
    from heterodyne.optimization.nlsq.core import fit_nlsq_multi_phi

    c2, phi, sigma = np.asarray(d["c2"]), np.asarray(d["phi"]), np.asarray(d["sigma"])
    weights = np.broadcast_to((1.0 / sigma**2)[:, None, None], c2.shape).copy()  # 1/σ²
    t0 = time.perf_counter()
    model = HeterodyneModel.from_config(_model_config(d, names))
    cfg = NLSQConfig(
        per_angle_mode=mode,
        loss="linear",
        ftol=float(d["tol"]),
        xtol=float(d["tol"]),
        gtol=float(d["tol"]),
        max_nfev=int(d["max_nfev"]),
        enable_progress_bar=False,
        verbose=0,
    )
    warnings = _Warnings()
    logging.getLogger("heterodyne").addHandler(warnings)
    try:
        results = fit_nlsq_multi_phi(model, c2, phi, config=cfg, weights=weights)
    finally:
        logging.getLogger("heterodyne").removeHandler(warnings)
    wall = time.perf_counter() - t0
    first = results[0]
    return {
        "wall_s": wall,
        "success": bool(first.success),
        "message": str(first.message),
        "nfev": int(first.n_function_evals or 0),
        "params": np.asarray(model.get_params(), dtype=np.float64).tolist(),
        "varying_names": list(model.varying_names),
        "contrast": [float(r.metadata.get("contrast", np.nan)) for r in results],
        "offset": [float(r.metadata.get("offset", np.nan)) for r in results],
        "per_angle_cost": [float(r.final_cost) for r in results],
        "optimizer": results[0].metadata.get("optimizer"),
        "t_grid": np.asarray(model.t)[:3].tolist(),
        "warnings": warnings.messages[:8],
    }


def cmd_nlsq(msg: dict[str, Any]) -> dict[str, Any]:
    d = np.load(msg["npz"])
    names = [str(x) for x in d["names"]]
    mode = str(msg.get("mode", "auto"))
    runs = []
    for _ in range(int(msg.get("repeats", 2))):
        try:
            runs.append(_one_nlsq(d, names, mode))
        except Exception as exc:  # the peer's failure is data, not a crash of the driver
            runs.append({"error": f"{type(exc).__name__}: {exc}"})
            break
        if not runs[-1]["success"]:
            break
    return {"mode": mode, "runs": runs}


COMMANDS = {
    "info": cmd_info,
    "load_pooled": cmd_load_pooled,
    "time": cmd_time,
    "pooled_values": cmd_pooled_values,
    "meshgrid_values": cmd_meshgrid_values,
    "nlsq": cmd_nlsq,
}


if __name__ == "__main__":
    sys.exit(serve(COMMANDS))
