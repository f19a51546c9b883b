"""The XPCS job, stage by stage.

Rank 0: load and validate → parameter space → NLSQ warm start (or its checkpoint) → shard plan
and preconditioner. All ranks: distribute → sample owned shards (checkpointed) → gather.
Rank 0: failure policy → combine → summarise and write. Every decision that ends the job is a
status record that rank 0 broadcasts, so all ranks exit with the same code and none raises
inside a collective. The numerics live in ``hpcfit.xpcs`` and ``hpcfit.cmc``.

Exit codes: 0 ok; 2 config/data error; 3 shard failure (abort, or too many
shards excluded); 4 warm start unusable while required; 70 internal error.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit import __version__
from hpcfit.config import SyntheticData, XpcsJob
from hpcfit.io.atomic import write_json
from hpcfit.io.jsonable import plain
from hpcfit.io.run_dir import mark_ended
from hpcfit.io.run_record import RunRecord
from hpcfit.io.warm_start import describe_data, warm_start_table, write_plots, write_warm_start
from hpcfit.pipelines.runner import Job, workload_run
from hpcfit.pipelines.xpcs_job import plan_cmc
from hpcfit.records import NLSQResult
from hpcfit.runtime import memory
from hpcfit.status import EXIT_OK, EXIT_WARM_START, EXIT_WORK_FAILED, Status
from hpcfit.xpcs.dataset import XpcsData

log = logging.getLogger("hpcfit")


@dataclass
class Prepared:
    """Rank 0's products before sampling."""

    data: XpcsData
    space: Any
    warm: NLSQResult | None
    pooled: Any = None
    plan: Any = None
    job: Any = None
    target: Any = None  # reports every free quantity (the outputs' names, priors, bounds)
    sampler_target: Any = None  # what NUTS samples (``cmc.scaling``)

    def release_data(self) -> None:
        """After the scatter, drop the pooled points (what was scattered). The c2 maps stay
        for the posterior predictive plot."""
        self.pooled = None


def _outline(cfg: XpcsJob, job: Job) -> int:
    """Rank 0 loads, warm-starts and plans; the shards are scattered, sampled where they are
    owned (checkpointed) and gathered; rank 0 combines them and writes the results."""
    from hpcfit.pipelines.progress import Progress, ProgressMonitor
    from hpcfit.pipelines.shards import distribute, gather_results, in_shard_order, sample_owned

    comm, root, run_dir, record = job.comm, job.root, job.run_dir, job.record
    prepared, status = job.on_root(lambda rec: prepare(cfg, run_dir, rec, comm.size))
    if status.final:
        return status.code
    job_spec, shards = distribute(
        comm,
        prepared.job if root else None,
        prepared.pooled if root else None,
        prepared.plan if root else None,
    )
    if root:
        prepared.release_data()
    progress = Progress(job_spec.n_shards, comm.size) if root else None
    monitor: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if progress is not None:  # rank 0 prints the other ranks' notes as they arrive
        monitor = ProgressMonitor(comm, progress, job_spec.n_shards - len(shards))

    def on_abort(result):  # on_shard_failure=abort: the final state before MPI_Abort
        message = f"shard {result.shard_id}: {result.reason} (rank {comm.rank})"
        if record is not None:
            record.finish("shard_failed", EXIT_WORK_FAILED, message)
        else:
            mark_ended(run_dir, "shard_failed", EXIT_WORK_FAILED, message)

    def on_timeout(shard_id: int) -> None:
        message = f"shard {shard_id} exceeded cmc.shard_time_limit_s (rank {comm.rank})"
        mark_ended(run_dir, "shard_failed", EXIT_WORK_FAILED, message)

    with monitor:
        results = sample_owned(
            comm, job_spec, shards, progress=progress, on_abort=on_abort, on_timeout=on_timeout
        )
        gathered = gather_results(comm, results)
    peaks = comm.gather(round(memory.peak_mb(), 1))
    if record is not None:
        record.set(peak_rss_mb=peaks)
        log.info("peak RSS per rank (MB): %s", peaks)
    n_shards = job_spec.n_shards
    _, status = job.on_root(
        lambda rec: finish(cfg, run_dir, rec, prepared, in_shard_order(gathered, n_shards))
    )
    return status.code


# --------------------------------------------------------------------------- rank 0: prepare


def prepare(cfg: XpcsJob, run_dir: Path, record: RunRecord, n_ranks: int):
    """Load → warm start → plan → preconditioner. Returns (Prepared, Status)."""
    from hpcfit.io.sources import load_configured
    from hpcfit.pipelines.xpcs_plan import check_sizes, planned_ranks, write_plan

    t0, base_mb = time.perf_counter(), memory.current_mb()
    n_ranks = planned_ranks(cfg, n_ranks)
    data = load_configured(cfg.data, cfg.mpi.memory_limit_mb)
    space = cfg.model.space()
    record.set(data=describe_data(data))
    check_sizes(cfg, data, space, n_ranks)
    log.info(
        "data: %s, %d angles × %d frames, %d pooled points",
        data.provenance.get("file", data.provenance.get("source")),
        data.n_phi,
        data.n_frames,
        data.n_points,
    )
    for slot in data.provenance.get("slots", []):
        log.info(
            "  slot %d: %s, bin %s, q = %.6g 1/Å, φ = %.4g deg",
            slot["slot"],
            slot["dataset"],
            slot["bin"],
            slot["q"],
            slot["phi"],
        )
    if "dt_source" in data.provenance:
        log.info("  dt = %.9g s from %s", data.dt, data.provenance["dt_source"])
    warm = warm_start(cfg, run_dir, data, space) if cfg.nlsq.enabled else None
    write_plots(run_dir / "plots", data, warm)
    prepared = Prepared(data, space, warm)
    flags = None if warm is None else ", ".join(f.name for f in warm.flags)
    if not cfg.cmc.enabled:
        code, state, message = EXIT_OK, "ok", flags
        if warm is not None and not warm.usable:
            code, state, message = EXIT_WARM_START, "warm_start_unusable", unusable_reason(warm)
            log.error("NLSQ warm start unusable: %s", message)
        record.finish(state, code, message)
        log.info("run directory: %s (exit %d)", run_dir, code)
        return prepared, Status(code, state, flags)
    if warm is not None and not warm.usable and cfg.cmc.require_warm_start:
        message = f"NLSQ warm start unusable ({unusable_reason(warm)}); cmc.require_warm_start=true"
        log.error("%s", message)
        record.finish("warm_start_unusable", EXIT_WARM_START, message)
        return prepared, Status(EXIT_WARM_START, "warm_start_unusable", message)
    plan_cmc(cfg, run_dir, record, prepared, n_ranks)  # hpcfit.pipelines.xpcs_job
    if cfg.cmc.plan_only:
        prepare_s = time.perf_counter() - t0
        return prepared, write_plan(cfg, run_dir, record, prepared, prepare_s, base_mb)
    return prepared, Status(EXIT_OK, "ok", final=False)


def unusable_reason(warm: NLSQResult) -> str:
    """One line: the flags that make the warm start unusable, the χ²_red, and a hint."""
    bad = [f.name for f in warm.flags if not f.usable]
    parts = [", ".join(bad)]
    held = warm.extra.get("bound_active") or []
    if held:
        parts.append(f"held by a bound: {', '.join(held)} (model.bounds.NAME=[lo,hi] or fix it)")
    if warm.chi2_red is not None:
        from hpcfit.xpcs.nlsq import chi2_band

        parts.append(f"χ²_red = {warm.chi2_red:.4g}, expected 1 ± {chi2_band(warm.dof):.2g}")
    hint = (
        "more starts (nlsq.multistart.n, nlsq.coarse.starts), wider bounds (model.bounds) or a "
        "start value (model.start.NAME=...); check σ (nlsq.sigma) and the selection"
    )
    return f"{'; '.join(parts)}; try {hint}"


def warm_start(cfg: XpcsJob, run_dir: Path, data: XpcsData, space: Any) -> NLSQResult:
    """The NLSQ fit, or its checkpoint when the data and settings match."""
    from hpcfit.io import checkpoint

    out = run_dir / "nlsq"
    fp = checkpoint.fingerprint(
        {
            "hpcfit": __version__,
            "data": data.fingerprint(),
            "model": plain(cfg.model, nonfinite="keep"),
            "nlsq": plain(cfg.nlsq, nonfinite="keep"),
        }
    )
    if cfg.cmc.checkpoint.enabled:
        result, note = checkpoint.load_warm_start(out, fp)
        if result is not None:
            log.info("NLSQ warm start reused from its checkpoint")
            return result
        if note != "missing":
            log.warning("NLSQ warm-start checkpoint not used (%s); refitting", note)
    from hpcfit.xpcs.coarse import fit_warm_start

    result = fit_warm_start(data, space, cfg.nlsq)
    write_warm_start(out, result, data)
    if cfg.cmc.checkpoint.enabled:
        checkpoint.save_warm_start(out, result, fp)
    log.info("%s", warm_start_table(result, data))
    return result


# --------------------------------------------------------------------------- rank 0: finish


def finish(cfg: XpcsJob, run_dir: Path, record: RunRecord, p: Prepared, results: list) -> Status:
    """Failure policy → combination → summary and files. Returns the final status."""
    from hpcfit.cmc.combine import combine
    from hpcfit.cmc.policy import completion_margin, exclusion_report
    from hpcfit.cmc.summary import summary_table
    from hpcfit.io.report import write_cmc_outputs
    from hpcfit.parallel.keys import combination_key

    c = cfg.cmc
    report = exclusion_report(
        results, p.job.n_shards, c.max_excluded_fraction, shard_sizes=p.plan.counts.tolist()
    )
    if report["fatal"]:
        write_json(
            run_dir / "cmc" / "diagnostics.json",
            {"shards": [r.to_json() for r in results], "exclusions": report},
        )
        log.error("CMC stopped: %s", report["fatal_reason"])
        record.finish("shard_failed", EXIT_WORK_FAILED, report["fatal_reason"])
        return Status(EXIT_WORK_FAILED, "shard_failed", report["fatal_reason"])
    used = [r for r in results if r.status == "ok"]
    margin, note = completion_margin(used)
    if note:
        log.warning("%s", note)
    combined = combine(
        [r.draws_u for r in used],
        p.target.names,
        c.combine.value,
        shard_ids=[r.shard_id for r in used],
        rng_key=combination_key(c.seed),
        theta_means=np.stack([r.draws_theta.reshape(-1, p.target.size).mean(axis=0) for r in used]),
        robust_z=c.robust_z,
    )
    theta = np.asarray(p.target.transform.forward(combined.draws), dtype=np.float64)
    summary = write_cmc_outputs(run_dir, cfg, p, results, report, combined, theta, record)
    message = None
    if report["excluded_ids"] or combined.excluded:
        message = f"excluded shards: {report['excluded_ids'] + [e[0] for e in combined.excluded]}"
    facts = {**record.facts.get("cmc", {}), "used_shards": list(combined.used)}
    record.set(cmc=facts | ({"completion_margin_sd": margin} if margin is not None else {}))
    record.finish("ok", EXIT_OK, message)
    log.info("%s", summary_table(summary))
    log.info("run directory: %s (exit 0)", run_dir)
    return Status(EXIT_OK, "ok", message)


# --------------------------------------------------------------------------- helpers


def seeds_of(cfg: XpcsJob) -> dict[str, int]:
    seeds = {"nlsq.multistart.seed": cfg.nlsq.multistart.seed, "cmc.seed": cfg.cmc.seed}
    if isinstance(cfg.data, SyntheticData):
        seeds["data.seed"] = cfg.data.seed
    return seeds


run = workload_run(seeds_of, _outline)
"""Run the XPCS job in ``run_dir`` on every rank of ``comm``; returns the exit code."""
