"""Rank 0's CMC outputs: combined draws, summary, diagnostics, results.h5,
posterior.nc and plots. Every file is written atomically; numbers are never rounded."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.io.atomic import write_json, write_npz

log = logging.getLogger("hpcfit")

PPC_DRAWS = 40  # posterior draws whose model maps form the predictive band


def fixed_values(space: Any, n_phi: int) -> dict[str, float]:
    """Parameters held fixed during sampling, with their values."""
    from hpcfit.xpcs.params import NAMES

    out = {
        n: float(v) for n, v, free in zip(NAMES, space.start, space.vary, strict=True) if not free
    }
    for key, info, vary in (
        ("contrast", space.contrast, space.vary_contrast),
        ("offset", space.offset, space.vary_offset),
    ):
        if not vary:
            out.update({f"{key}_{a}": float(info.default) for a in range(n_phi)})
    return out


def write_cmc_outputs(
    run_dir: Path,
    cfg: Any,
    p: Any,
    results: list,
    report: dict[str, Any],
    combined: Any,
    theta: np.ndarray,
    record: Any,
) -> dict[str, Any]:
    """Write every CMC product of a finished run; returns the summary dict."""
    from hpcfit.cmc.diagnostics import convergence
    from hpcfit.cmc.summary import nlsq_vs_cmc_table, summarise, write_summary_json

    out = run_dir / "cmc"
    names = p.target.names
    write_npz(
        out / "combined.npz", draws_u=combined.draws, draws_theta=theta, names=np.array(names)
    )
    summary = summarise(theta, names, fixed_values(p.space, p.data.n_phi))
    summary["combine"] = {
        "method": combined.method,
        "used_shards": list(combined.used),
        "excluded": [{"shard_id": s, "reason": r} for s, r in combined.excluded],
        "prior_exponent": report["prior_exponent"],
        "mu_u": None if combined.mu is None else combined.mu.tolist(),
        "sigma_u": None if combined.sigma is None else combined.sigma.tolist(),
    }
    if p.warm is not None and p.warm.usable:
        n = len(p.warm.theta_names)
        t = p.target
        summary["nlsq_vs_cmc"] = nlsq_vs_cmc_table(
            names[:n],
            p.warm.theta,
            p.warm.sigma_k,
            summary,
            t.prior_mean[:n],
            t.prior_sd[:n],
            t.lo[:n],
            t.hi[:n],
        )
    write_summary_json(out / "summary.json", summary)
    combined_conv = convergence(theta, names)
    worst = max((v["rhat"] for v in combined_conv.values() if v["rhat"] is not None), default=None)
    if worst is not None and worst > cfg.cmc.gates.max_rhat:
        log.warning(
            "combined draws: max R-hat %.4f > %g (per-shard gates still apply)",
            worst,
            cfg.cmc.gates.max_rhat,
        )
    diagnostics = {
        "shards": [r.to_json() for r in results],
        "combined": combined_conv,
        "condition_numbers": list(combined.condition_numbers),
        "exclusions": report,
    }
    write_json(out / "diagnostics.json", diagnostics)
    _write_results_h5(run_dir, p, results, combined, theta, summary, diagnostics, record)
    _write_posterior_nc(run_dir, cfg, theta, names, record)
    _write_plots(run_dir, p, theta, names)
    return summary


def _write_results_h5(run_dir, p, results, combined, theta, summary, diagnostics, record):
    from hpcfit.io.results import write_results_h5

    warm = None
    if p.warm is not None:
        w = p.warm
        warm = {
            "theta_names": list(w.theta_names),
            "theta": w.theta,
            "cov": w.cov,
            "sigma_k": w.sigma_k,
            "params": w.params,
            "contrast": w.contrast,
            "offset": w.offset,
            "sigma_hat": w.sigma_hat,
            "flags": [f.name for f in w.flags],
            "cost": float(w.cost),
            "usable": w.usable,
        }
    shards = {}
    for r in results:
        entry: dict[str, Any] = {"status": r.status, "record_json": None}
        entry["record"] = r.to_json()
        entry.pop("record_json")
        if r.draws_u is not None:
            entry["draws_u"], entry["draws_theta"] = r.draws_u, r.draws_theta
        shards[f"{r.shard_id:05d}"] = entry
    tree = {
        "data_fingerprint": record.facts["data"]["fingerprint"],
        "warm_start": warm,
        "plan": {
            "seed": p.plan.seed,
            "n_shards": p.plan.n_shards,
            "slot_counts": p.plan.slot_counts,
            "shard_of_point": p.plan.shard_of_point,
        },
        "preconditioner": {
            "names": list(p.job.precond.names),
            "u_hat": p.job.precond.u_hat,
            "chol": p.job.precond.chol,
            "source": p.job.precond.source,
        },
        "shards": shards,
        "combined": {
            "names": list(combined.names),
            "method": combined.method,
            "draws_u": combined.draws,
            "draws_theta": theta,
        },
        "summary": summary,
        "diagnostics_json": None,
        "provenance": {
            "versions": record.facts["versions"],
            "git": record.facts["git"],
            "host": record.facts["host"],
            "ranks": record.facts["ranks"],
        },
        "config": record.facts["config"],
    }
    tree.pop("diagnostics_json")
    tree["diagnostics"] = {
        "combined": diagnostics["combined"],
        "exclusions": diagnostics["exclusions"],
    }
    write_results_h5(run_dir / "results.h5", tree)


def _write_posterior_nc(run_dir, cfg, theta, names, record):
    from hpcfit.io.posterior_nc import write_posterior_nc

    attrs = {
        "hpcfit_version": record.facts["versions"].get("hpcfit") or "",
        "data_fingerprint": record.facts["data"]["fingerprint"],
        "combine": cfg.cmc.combine.value,
        "cmc_seed": int(cfg.cmc.seed),
    }
    write_posterior_nc(run_dir / "posterior.nc", theta, names, attrs=attrs)


def _write_plots(run_dir, p, theta, names):
    from hpcfit.io.plots import corner_plot, ppc_maps, trace_plot
    from hpcfit.io.warm_start import slot_labels
    from hpcfit.xpcs.params import NAMES
    from hpcfit.xpcs.posterior import predictive_maps

    plots = run_dir / "plots"
    trace_plot(plots / "trace.png", theta, names)
    truth = p.data.provenance.get("truth")
    by_name = dict(zip(NAMES, truth, strict=True)) if truth is not None else {}
    corner_plot(plots / "corner.png", theta, names, truth=[by_name.get(n) for n in names])
    flat = theta.reshape(-1, theta.shape[-1])
    pick = np.linspace(0, flat.shape[0] - 1, min(PPC_DRAWS, flat.shape[0])).astype(int)
    maps = predictive_maps(p.data.grid(), p.space, flat[pick])
    ppc_maps(plots / "ppc.png", p.data.t, p.data.c2, maps, slot_labels(p.data))
