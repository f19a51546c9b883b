"""Shards over ranks: distribute, sample owned shards with checkpoints, gather.

Rank 0 builds a :class:`ShardJob` (everything a rank needs, a few kB) and the pooled points;
:func:`distribute` broadcasts the job and sends each rank the points of its shards with
buffer-based ``Scatterv``. :func:`sample_owned` runs the owned shards in increasing id under the
failure policy, reusing matching checkpoints and writing new ones atomically;
:func:`gather_results` returns every :class:`ShardResult` to rank 0 and :func:`in_shard_order`
puts them in shard-id order.

A shard computes the same on any rank: its points, keys (fold_in(seed, s)), settings and
compiled program depend on the shard id only, so the combined result does not depend on R.
Every shard is padded to the job's ``shard_points``, so a rank compiles its sampler once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.cmc.diagnostics import Gates
from hpcfit.cmc.nuts import NutsSettings, run_attempt
from hpcfit.cmc.plan import ShardPlan
from hpcfit.cmc.policy import ShardResult, run_shard
from hpcfit.cmc.precondition import Preconditioner
from hpcfit.errors import RunDirError
from hpcfit.io import checkpoint
from hpcfit.parallel.balance import ids_by_rank
from hpcfit.parallel.comm import Comm
from hpcfit.pipelines.progress import Progress, progress_note
from hpcfit.xpcs.dataset import Pooled, SlotGrid
from hpcfit.xpcs.params import ParamSpace

log = logging.getLogger("hpcfit")


@dataclass(frozen=True, eq=False)
class ShardJob:
    """What every rank needs to run its shards, broadcast once by rank 0.

    ``sigma`` holds σ_a per slot (fixed noise, or the HalfNormal scale with ``sample_sigma``);
    ``shard_points`` is the length every shard's data is padded to (weight-0 points), so all
    shards have one shape and a rank compiles its sampler once;
    ``fingerprint_doc`` is the part of every shard's checkpoint fingerprint shared by all
    shards; ``checkpoint_dir`` is None when checkpoints are off.
    """

    grid: SlotGrid
    space: ParamSpace
    sigma: np.ndarray
    sample_sigma: bool
    scaling: str  # ``cmc.scaling``: "sample" or "marginal"
    precond: Preconditioner
    settings: NutsSettings
    gates: Gates
    n_shards: int
    seed: int
    on_failure: str
    max_retries: int
    owner_rule: str
    checkpoint_dir: str | None
    fingerprint_doc: dict[str, Any] = field(default_factory=dict)
    time_limit_s: float = 0.0  # ``cmc.shard_time_limit_s``; 0: none
    shard_points: int = 0  # every shard is padded to this many points (the largest); 0: none

    def sampler_target(self) -> Any:
        """The shard target NUTS samples (the same on every rank)."""
        from hpcfit.xpcs.posterior import shard_target

        return shard_target(
            self.grid,
            self.space,
            self.sigma,
            sample_sigma=self.sample_sigma,
            scaling=self.scaling,
            n_shards=self.n_shards,
        )

    def owners(self, n_ranks: int) -> list[list[int]]:
        """Shard ids of each rank, increasing (``cmc.shard_owner``)."""
        return ids_by_rank(self.n_shards, n_ranks, self.owner_rule)  # type: ignore[arg-type]


def fingerprint_doc(job_fields: dict[str, Any], target: Any, version: str) -> dict[str, Any]:
    """The shared part of the shard fingerprint: version, K, seed, σ_a, fixed values, priors and
    bounds, û and L, and the sampler, gate and retry settings (not R, owners, paths or the
    combiner, so changing only those reuses the shards)."""
    space: ParamSpace = job_fields["space"]
    return {
        "hpcfit": version,
        "n_shards": job_fields["n_shards"],
        "seed": job_fields["seed"],
        "sigma": np.asarray(job_fields["sigma"], dtype=np.float64),
        "sample_sigma": job_fields["sample_sigma"],
        "scaling": job_fields["scaling"],
        "fixed": {"vary": np.asarray(space.vary), "value": np.asarray(space.start, np.float64)},
        "scaling_fixed": [space.contrast.default, space.offset.default],
        "names": list(target.names),
        "lo": target.lo,
        "hi": target.hi,
        "prior_mean": target.prior_mean,
        "prior_sd": target.prior_sd,
        "u_hat": job_fields["precond"].u_hat,
        "chol": job_fields["precond"].chol,
        "grid": asdict(job_fields["grid"]),
        "settings": asdict(job_fields["settings"]),
        "gates": asdict(job_fields["gates"]),
        "on_failure": job_fields["on_failure"],
        "max_retries": job_fields["max_retries"] if job_fields["on_failure"] == "retry" else 0,
        "shard_points": job_fields.get("shard_points", 0),
    }


@dataclass(frozen=True)
class ShardPoints:
    """The points of one shard in canonical (a, i, j) order: int32 a, i, j and float64 y."""

    shard_id: int
    a: np.ndarray
    i: np.ndarray
    j: np.ndarray
    y: np.ndarray

    def sha256(self) -> str:
        h = hashlib.sha256()
        for arr in (self.a, self.i, self.j):
            h.update(np.ascontiguousarray(arr, dtype="<i4").tobytes())
        h.update(np.ascontiguousarray(self.y, dtype="<f8").tobytes())
        return h.hexdigest()


def distribute(
    comm: Comm, job: ShardJob | None, pooled: Pooled | None, plan: ShardPlan | None
) -> tuple[ShardJob, list[ShardPoints]]:
    """Broadcast the job and send each rank its shards' points (buffer ``Scatterv``).

    Rank 0 passes ``job``, ``pooled`` and ``plan``; the other ranks pass None. Returns the job
    and this rank's shards in increasing id.
    """
    job = comm.bcast(job)
    owners = job.owners(comm.size)
    ints = ys = layout = counts = None
    if comm.rank == 0:
        assert pooled is not None and plan is not None
        per_rank = [[plan.indices(s) for s in ids] for ids in owners]
        layout = [
            [(s, int(ix.size)) for s, ix in zip(ids, idx, strict=True)]
            for ids, idx in zip(owners, per_rank, strict=True)
        ]
        order = np.concatenate([ix for idx in per_rank for ix in idx] or [np.zeros(0, int)])
        ints = np.stack([pooled.a[order], pooled.i[order], pooled.j[order]], axis=1)
        ints = ints.astype(np.int32)
        ys = np.asarray(pooled.y, dtype=np.float64)[order]
        counts = [sum(n for _, n in rows) for rows in layout]
    mine = comm.scatter(layout)
    counts = comm.bcast(counts)
    local_ints = comm.scatterv(ints, counts)
    local_y = comm.scatterv(ys, counts)
    shards, start = [], 0
    for s, n in mine:
        block = local_ints[start : start + n]
        shards.append(
            ShardPoints(
                s,
                block[:, 0].copy(),
                block[:, 1].copy(),
                block[:, 2].copy(),
                local_y[start : start + n].copy(),
            )
        )
        start += n
    return job, shards


def sample_owned(
    comm: Comm,
    job: ShardJob,
    shards: Sequence[ShardPoints],
    *,
    progress: Progress | None = None,
    on_abort: Callable[[ShardResult], None] | None = None,
    on_timeout: Callable[[int], None] | None = None,
) -> list[ShardResult]:
    """Run (or reload) this rank's shards in increasing id; never raises for a shard's failure.

    Each attempt is bracketed by flushed "rank r start/end shard s attempt a" log lines, so a
    hard death is attributable. Under ``on_shard_failure=abort`` a failed shard is
    checkpointed and logged, ``on_abort`` runs, and the whole job is aborted with status 3.
    With ``job.time_limit_s`` > 0, a shard still running after that many seconds (a frozen
    rank, a sampler far slower than planned) is logged, ``on_timeout(shard_id)`` runs, and the
    job is aborted with status 3 from a watchdog thread.
    """
    from hpcfit import __version__
    from hpcfit.xpcs.posterior import shard_data

    target = job.sampler_target()
    ckpt = Path(job.checkpoint_dir) if job.checkpoint_dir else None
    results = []
    for points in sorted(shards, key=lambda p: p.shard_id):
        s = points.shard_id
        fp = checkpoint.fingerprint(
            {**job.fingerprint_doc, "hpcfit": __version__, "shard": s, "data": points.sha256()}
        )
        result, reused = None, False
        if ckpt is not None:
            result, why_not = checkpoint.load_shard(ckpt, s, fp)
            if result is not None:
                reused = True
                log.info("rank %d: shard %d reused from its checkpoint", comm.rank, s)
            elif why_not != "missing":
                log.warning(
                    "rank %d: shard %d checkpoint not used (%s); recomputing", comm.rank, s, why_not
                )
        if result is None:
            data = shard_data(points, None, job.sigma, size=job.shard_points or None)
            with _watchdog(comm, s, job.time_limit_s, on_timeout):
                result = run_shard(
                    target,
                    data,
                    job.precond,
                    n_shards=job.n_shards,
                    seed=job.seed,
                    shard_id=s,
                    settings=job.settings,
                    gates=job.gates,
                    on_failure=job.on_failure,
                    max_retries=job.max_retries,
                    attempt_fn=_logged_attempt(comm.rank),
                )
            if ckpt is not None:
                try:
                    checkpoint.save_shard(ckpt, result, fp)
                except RunDirError as exc:  # no room: the result is kept, only resuming is lost
                    log.warning("rank %d: shard %d checkpoint not written: %s", comm.rank, s, exc)
        note = progress_note(result, comm.rank, reused)
        if progress is not None:
            progress.report(note)
        else:
            comm.post(note, dest=0)
        results.append(result)
        if result.status == "failed":
            log.error(
                "rank %d, stage sample, shard %d: %s; on_shard_failure=abort stops the job",
                comm.rank,
                s,
                result.reason,
            )
            _flush_logs()
            if on_abort is not None:
                on_abort(result)
            comm.abort(3)
    comm.flush_posts()
    return results


@contextlib.contextmanager
def _watchdog(comm: Comm, shard_id: int, limit_s: float, on_timeout):
    """Abort the job (status 3) if the body runs longer than ``limit_s`` seconds (0: never)."""
    if not limit_s:
        yield
        return

    def expire() -> None:
        log.error(
            "rank %d, stage sample, shard %d: still running after cmc.shard_time_limit_s = %g s;"
            " stopping the job",
            comm.rank,
            shard_id,
            limit_s,
        )
        _flush_logs()
        if on_timeout is not None:
            on_timeout(shard_id)
        comm.abort(3)

    timer = threading.Timer(limit_s, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _logged_attempt(rank: int) -> Callable[..., Any]:
    def attempt(*args: Any, shard_id: int, attempt: int, **kwargs: Any) -> Any:
        log.info("rank %d start shard %d attempt %d", rank, shard_id, attempt)
        _flush_logs()
        res = run_attempt(*args, shard_id=shard_id, attempt=attempt, **kwargs)
        log.info(
            "rank %d end shard %d attempt %d: sampler %s (%.1f s)",
            rank,
            shard_id,
            attempt,
            res.status,
            res.wall_s,
        )
        _flush_logs()
        return res

    return attempt


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers + log.handlers:
        handler.flush()


def gather_results(comm: Comm, results: list[ShardResult]) -> list[list[ShardResult]]:
    """Every rank's results on rank 0, one list per rank ([] off rank 0); a collective that
    never raises. :func:`in_shard_order` checks and orders them."""
    return comm.gather(results) or []


def in_shard_order(gathered: list[list[ShardResult]], n_shards: int) -> list[ShardResult]:
    """The gathered results sorted by id; each id 0…K−1 exactly once, else RuntimeError (an
    internal error)."""
    flat = sorted((r for part in gathered for r in part), key=lambda r: r.shard_id)
    ids = [r.shard_id for r in flat]
    if ids != list(range(n_shards)):
        raise RuntimeError(f"gathered shard ids {ids}, expected 0..{n_shards - 1} once each")
    return flat
