"""The CMC job rank 0 builds for every rank: σ_a, shard plan, targets and preconditioner.

``plan_cmc`` fills a ``Prepared`` (``hpcfit.pipelines.xpcs``) with the pooled points, the shard
plan, the :class:`~hpcfit.pipelines.shards.ShardJob` and two targets: the one reporting every free
quantity (names, priors and bounds of the outputs) and the one NUTS samples (``cmc.scaling``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit import __version__
from hpcfit.config import XpcsJob
from hpcfit.io.atomic import write_json
from hpcfit.io.jsonable import plain
from hpcfit.io.run_record import RunRecord
from hpcfit.records import NLSQResult
from hpcfit.xpcs.dataset import XpcsData

log = logging.getLogger("hpcfit")


def noise_levels(cfg: XpcsJob, data: XpcsData, warm: NLSQResult | None) -> tuple[np.ndarray, str]:
    """σ_a for the shard likelihood and where it came from: the warm start's σ (known or
    estimated), else the known σ in the precedence the warm start uses (``nlsq.sigma`` over the
    file's), else a model-free MAD estimate."""
    from hpcfit.xpcs.nlsq import known_sigma
    from hpcfit.xpcs.posterior import mad_sigma

    if warm is not None and warm.usable:
        if warm.sigma_known:
            return np.asarray(warm.extra["sigma_used"], dtype=np.float64), "known"
        return np.asarray(warm.sigma_hat, dtype=np.float64), "nlsq"
    known = known_sigma(data, cfg.nlsq)
    if known is not None:
        return known, "known"
    return mad_sigma(data.c2, data.frame_mask), "mad"


def identification_note(names: tuple[str, ...]) -> str | None:
    """The warning for quantities the warm start does not pin down (at a bound, unidentified,
    σ_k not finite or wider than the prior sd): the sampler scales them by their prior width."""
    if not names:
        return None
    return (
        f"CMC: the warm start does not identify {', '.join(names)} (at a bound, unidentified, "
        "σ_k not finite or wider than the prior sd): NUTS scales them by their prior width, and "
        "their posteriors may be dominated by the priors; more frames, a longer frame interval "
        "or fixing them (model.fixed) helps"
    )


def plan_cmc(cfg: XpcsJob, run_dir: Path, record: RunRecord, p: Any, n_ranks: int) -> None:
    """Shard count and plan, target, preconditioner and the job every rank receives."""
    from hpcfit.cmc.diagnostics import Gates
    from hpcfit.cmc.nuts import NutsSettings
    from hpcfit.cmc.plan import idle_rank_note, plan_shards
    from hpcfit.pipelines.shards import ShardJob, fingerprint_doc
    from hpcfit.pipelines.xpcs_plan import shard_count
    from hpcfit.xpcs.posterior import (
        as_sampled,
        cold_start_preconditioner,
        shard_target,
        warm_start_preconditioner,
    )

    c = cfg.cmc
    pooled = p.data.pooled()
    k = shard_count(cfg, pooled.size, n_ranks)
    plan = plan_shards(pooled.a, p.data.n_phi, c.seed, k)
    for line in plan.warnings():
        log.warning("%s", line)
    note = idle_rank_note(k, n_ranks)
    if note:
        log.warning("%s", note)
    write_json(run_dir / "cmc" / "plan.json", plan.to_json(pooled))
    sigma, sigma_source = noise_levels(cfg, p.data, p.warm)
    grid = p.data.grid()
    target = shard_target(grid, p.space, sigma, sample_sigma=c.sample_sigma)
    sampled = as_sampled(target, grid, p.space, sigma, c.sample_sigma, c.scaling.value, k)
    if p.warm is not None and p.warm.usable:
        precond = warm_start_preconditioner(
            p.warm,
            sampled,
            k,
            whiten_scale=c.whiten_scale,
            sigma=sigma,
            slot_counts=np.bincount(pooled.a, minlength=p.data.n_phi),
        )
        note = identification_note(precond.fallback)
        if note:
            log.warning("%s", note)
    else:
        log.warning("CMC runs cold: preconditioner from the configured start values")
        precond = cold_start_preconditioner(sampled, p.space, sigma, k)
    settings = NutsSettings(
        num_warmup=c.num_warmup,
        num_samples=c.num_samples,
        num_chains=c.num_chains,
        target_accept=c.target_accept,
        max_tree_depth=c.max_tree_depth,
        dense_mass=c.dense_mass,
        init_jitter=c.init_jitter,
        precondition=c.precondition.value,
    )
    gates = Gates(**plain(c.gates, nonfinite="keep"))
    fields = dict(
        grid=grid,
        space=p.space,
        sigma=sigma,
        sample_sigma=c.sample_sigma,
        scaling=c.scaling.value,
        precond=precond,
        settings=settings,
        gates=gates,
        n_shards=k,
        seed=c.seed,
        on_failure=c.on_shard_failure.value,
        max_retries=c.max_retries,
        owner_rule=c.shard_owner.value,
        checkpoint_dir=str(run_dir / "cmc" / "shards") if c.checkpoint.enabled else None,
        time_limit_s=c.shard_time_limit_s,
        shard_points=int(plan.counts.max()),
    )
    job = ShardJob(**fields, fingerprint_doc=fingerprint_doc(fields, sampled, __version__))
    p.pooled, p.plan, p.job, p.target, p.sampler_target = pooled, plan, job, target, sampled
    record.set(
        cmc={
            "n_shards": k,
            "n_ranks": n_ranks,
            "sigma": sigma.tolist(),
            "sigma_source": sigma_source,
            "preconditioner": precond.source,
            "not_identified_by_warm_start": list(precond.fallback) if p.warm else [],
            "owners": job.owners(n_ranks),
        },
    )
    log.info(
        "CMC: K = %d shards of %s points on %d rank(s), %d chains each, σ from %s",
        k,
        plan.counts.tolist(),
        n_ranks,
        c.num_chains,
        sigma_source,
    )
