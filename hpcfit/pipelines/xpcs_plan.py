"""Sizing an XPCS job: the size checks before any fit, and ``cmc.plan_only=true``.

:func:`check_sizes` runs on the selected data before the warm start: enough points per free
quantity, and a shard count that fits the points.

``cmc.plan_only=true`` sizes the job before it is queued, then stops.

Rank 0 has loaded the data, run the warm start and planned the shards for ``mpi.ranks``
ranks (the planning process itself runs on one). It probes one shard with the job's sampler
(:mod:`hpcfit.cmc.probe`), estimates the job (:mod:`hpcfit.cmc.sizing`), prints it with the
``sbatch`` line that fits it, and writes the same to ``plan.json`` in the run directory. The
run ends with state ``planned`` and exit status 0; nothing is sampled or combined.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hpcfit.config import XpcsJob, cores_per_rank
from hpcfit.io.atomic import write_json
from hpcfit.io.run_record import RunRecord
from hpcfit.pipelines.status import EXIT_OK, Status
from hpcfit.runtime import memory

log = logging.getLogger("hpcfit")


def check_sizes(cfg: XpcsJob, data: Any, space: Any, n_ranks: int) -> None:
    """Size checks that need the selected data, before any fit: enough points per free
    quantity, a pinned ``cmc.n_shards`` no larger than the points, and rank 0's memory for
    every shard's draws."""
    from hpcfit.cmc.sizing import draws_mb
    from hpcfit.errors import ConfigError
    from hpcfit.runtime.memory import over_limit
    from hpcfit.xpcs.data import require_enough_points

    source = str(data.provenance.get("file", data.provenance.get("source", "data")))
    n_free = space.n_free(data.n_phi)
    require_enough_points(data, n_free, source=source)
    if cfg.cmc.enabled:
        c = cfg.cmc
        k = shard_count(cfg, data.n_points, n_ranks)
        n_out = n_free + (data.n_phi if c.sample_sigma else 0)
        need = over_limit(draws_mb(k, c.num_chains, c.num_samples, n_out), cfg.mpi.memory_limit_mb)
        if need is not None:
            raise ConfigError(
                f"cmc.num_samples: the draws of {k} shard(s) × {c.num_chains} chains × "
                f"{c.num_samples} samples of {n_out} quantities need {need}; lower "
                "cmc.num_samples or cmc.num_chains"
            )


def shard_count(cfg: XpcsJob, n_points: int, n_ranks: int) -> int:
    """K from ``cmc.n_shards`` and the auto rule; ConfigError if it cannot be met."""
    from hpcfit.cmc.plan import resolve_n_shards
    from hpcfit.errors import ConfigError

    c = cfg.cmc
    try:
        return resolve_n_shards(
            c.n_shards,
            n_points,
            n_ranks,
            c.max_points_per_shard,
            c.min_points_per_shard,
            c.min_shards_per_rank,
        )
    except ValueError as exc:
        raise ConfigError(f"cmc.n_shards: {exc}") from None


def planned_ranks(cfg: XpcsJob, n_ranks: int) -> int:
    """The rank count the plan is for: ``mpi.ranks`` if set, else the ranks running now."""
    return cfg.mpi.ranks or n_ranks


def write_plan(
    cfg: XpcsJob,
    run_dir: Path,
    record: RunRecord,
    prepared: Any,
    prepare_s: float,
    base_mb: float,
) -> Status:
    """Probe one shard, estimate the job, print and write the plan; the run's final status."""
    from hpcfit.cmc.probe import probe_shard
    from hpcfit.cmc.sizing import describe, plan_job
    from hpcfit.xpcs.posterior import shard_data

    job, plan = prepared.job, prepared.plan
    rank0_peak = memory.peak_mb()
    shard = 0
    points = int(plan.counts[shard])
    log.info("plan: probing shard %d (%d points) with the job's sampler", shard, points)
    probe = probe_shard(
        prepared.sampler_target,
        shard_data(prepared.pooled, plan.indices(shard), job.sigma, size=job.shard_points),
        job.precond,
        points=points,
        n_shards=job.n_shards,
        seed=job.seed,
        shard_id=shard,
        settings=job.settings,
        fraction=cfg.cmc.plan_probe,
    )
    ranks = record.facts.get("cmc", {}).get("n_ranks", 1)
    kept = [o for o in task_overrides(run_dir) if not o.startswith(("cmc.plan_only", "mpi.ranks"))]
    estimate = plan_job(
        probe,
        n_shards=job.n_shards,
        n_ranks=ranks,
        points_per_shard=int(plan.counts.max()),
        cores_per_rank=cores_per_rank(cfg),
        num_warmup=job.settings.num_warmup,
        num_samples=job.settings.num_samples,
        max_retries=cfg.cmc.max_retries if cfg.cmc.on_shard_failure.value == "retry" else 0,
        prepare_s=prepare_s,
        base_mb=base_mb,
        rank0_peak_mb=max(rank0_peak, memory.peak_mb()),
        overrides=" ".join(shlex.quote(o) for o in kept),
    )
    doc = {"estimate": estimate.to_json(), "probe": asdict(probe), "settings": asdict(job.settings)}
    write_json(run_dir / "plan.json", doc)
    for line in describe(estimate, probe):
        log.info("%s", line)
    if probe.status != "ok":
        log.warning("plan: the probe did not finish cleanly (%s)", probe.status)
    record.set(plan=doc)
    record.finish("planned", EXIT_OK, estimate.sbatch)
    log.info("run directory: %s (plan only, exit 0)", run_dir)
    return Status(EXIT_OK, "planned", estimate.sbatch)


def task_overrides(run_dir: Path) -> list[str]:
    """The command line's overrides: Hydra's, else the launcher's ``overrides.yaml``."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except Exception:  # not inside a Hydra app (``python -m hpcfit.rank``)
        pass
    try:
        from omegaconf import OmegaConf

        return list(OmegaConf.load(run_dir / "overrides.yaml").overrides)
    except Exception:
        return []
