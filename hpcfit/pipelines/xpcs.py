"""The XPCS job, stage by stage: load → parameter space → NLSQ warm start → outputs.

Reads as the data flow; the numerics live in ``hpcfit.xpcs``. Bad input raises
:class:`~hpcfit.errors.InputError` before anything but the failed ``run.json`` is written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.config import Config, SyntheticData
from hpcfit.errors import InputError
from hpcfit.io.atomic import write_json, write_npz
from hpcfit.io.run_record import RunRecord
from hpcfit.parallel.comm import Comm, SerialComm
from hpcfit.records import NLSQResult
from hpcfit.xpcs.dataset import XpcsData
from hpcfit.xpcs.params import NAMES

log = logging.getLogger("hpcfit")

EXIT_OK, EXIT_INPUT, EXIT_WARM_START = 0, 2, 4


def run(cfg: Config, run_dir: Path, resolved: dict[str, Any], comm: Comm | None = None) -> int:
    """Run the job in ``run_dir``; returns the exit code (0 ok, 4 unusable warm start)."""
    comm = comm or SerialComm()
    record = RunRecord(run_dir, resolved, seeds=seeds_of(cfg))
    try:
        from hpcfit.xpcs.sources import load_configured

        data = load_configured(cfg.data)
        space = cfg.model.space()
    except InputError as exc:
        record.finish("failed", EXIT_INPUT, str(exc))
        raise
    record.set(data=describe_data(data), ranks=comm.size)
    handler = _log_to(run_dir / "rank-0.log")
    try:
        log.info(
            "data: %s, %d angles × %d frames, %d pooled points",
            data.provenance.get("file", data.provenance.get("source")),
            data.n_phi,
            data.n_frames,
            data.n_phi * data.n_frames * (data.n_frames - 1) // 2,
        )
        result = None
        if cfg.nlsq.enabled:
            from hpcfit.xpcs.nlsq import fit

            result = fit(data, space, cfg.nlsq)
            write_warm_start(run_dir / "nlsq", result, data)
            log.info("%s", warm_start_table(result, data))
        write_plots(run_dir / "plots", data, result)
        code = EXIT_OK if result is None or result.usable else EXIT_WARM_START
        status = "ok" if code == EXIT_OK else "warm_start_unusable"
        message = None if result is None else ", ".join(f.name for f in result.flags)
        record.finish(status, code, message)
        log.info("run directory: %s (exit %d)", run_dir, code)
        return code
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def seeds_of(cfg: Config) -> dict[str, int]:
    seeds = {"nlsq.multistart.seed": cfg.nlsq.multistart.seed, "cmc.seed": cfg.cmc.seed}
    if isinstance(cfg.data, SyntheticData):
        seeds["data.seed"] = cfg.data.seed
    return seeds


def describe_data(data: XpcsData) -> dict[str, Any]:
    return {
        "fingerprint": data.fingerprint(),
        "n_phi": data.n_phi,
        "n_frames": data.n_frames,
        "dt": data.dt,
        "start_frame": data.start_frame,
        "q": data.q.tolist(),
        "phi": data.phi.tolist(),
        "sigma": None if data.sigma is None else data.sigma.tolist(),
        "provenance": data.provenance,
    }


def write_warm_start(out_dir: Path, result: NLSQResult, data: XpcsData) -> None:
    doc = result.to_json()
    truth = data.provenance.get("truth")
    if truth is not None:
        doc["truth"] = dict(zip(NAMES, truth, strict=True))
    doc["param_names"] = list(NAMES)
    write_json(out_dir / "result.json", doc)
    write_npz(
        out_dir / "result.npz",
        theta=result.theta,
        cov=result.cov,
        params=result.params,
        contrast=result.contrast,
        offset=result.offset,
        sigma_hat=result.sigma_hat,
        residual_rms=result.residual_rms,
        theta_names=np.array(result.theta_names),
    )


def write_plots(out_dir: Path, data: XpcsData, result: NLSQResult | None) -> None:
    from hpcfit.io.plots import c2_maps

    model = None
    sigma = data.sigma if data.sigma is not None else np.ones(data.n_phi)
    if result is not None:
        from hpcfit.xpcs.model import c2_slots

        model = np.asarray(
            c2_slots(
                result.params, data.t, data.q, data.dt, data.phi, result.contrast, result.offset
            )
        )
        sigma = np.asarray(result.extra["sigma_used"])
    labels = [
        f"slot {a}: φ = {p:g}°, q = {q:g} 1/Å"
        for a, (p, q) in enumerate(zip(data.phi, data.q, strict=True))
    ]
    c2_maps(out_dir, data.t, data.c2, model, sigma, labels)


def warm_start_table(result: NLSQResult, data: XpcsData) -> str:
    """Plain-text table: parameter, estimate ± σ_k, and the truth when the data carries it."""
    truth = dict(zip(NAMES, data.provenance.get("truth") or [], strict=False))
    lines = [
        f"NLSQ warm start: {', '.join(f.name for f in result.flags)}; "
        f"nfev={result.nfev}, cost={result.cost:.6g}, chi2_red={result.chi2_red}, "
        f"{result.wall_s:.1f} s",
        f"{'parameter':<18}{'estimate':>16}{'sigma':>14}{'truth':>14}",
    ]
    for name, value, err in zip(result.theta_names, result.theta, result.sigma_k, strict=True):
        t = truth.get(name)
        lines.append(f"{name:<18}{value:>16.8g}{err:>14.4g}{'' if t is None else f'{t:.6g}':>14}")
    return "\n".join(lines)


def _log_to(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler
