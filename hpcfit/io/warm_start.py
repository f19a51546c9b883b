"""Rank 0's warm-start outputs: the data record, ``nlsq/result.{json,npz}``, the c2 maps and
the plain-text table. Writing only; the fit is :mod:`hpcfit.xpcs.nlsq`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.io.atomic import write_json, write_npz
from hpcfit.records import NLSQResult
from hpcfit.xpcs.dataset import XpcsData
from hpcfit.xpcs.params import NAMES


def describe_data(data: XpcsData) -> dict[str, Any]:
    return {
        "fingerprint": data.fingerprint(),
        "n_phi": data.n_phi,
        "n_frames": data.n_frames,
        "dt": data.dt,
        "frame_stride": data.frame_stride,
        "start_frame": data.start_frame,
        "n_points": data.n_points,
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
                result.params, data.t, data.q, data.step, data.phi, result.contrast, result.offset
            )
        )
        sigma = np.asarray(result.extra["sigma_used"])
    c2_maps(out_dir, data.t, data.c2, model, sigma, slot_labels(data))


def slot_labels(data: XpcsData) -> list[str]:
    return [
        f"slot {a}: φ = {p:g}°, q = {q:g} 1/Å"
        for a, (p, q) in enumerate(zip(data.phi, data.q, strict=True))
    ]


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
