"""A short NUTS run on one shard that measures what a shard of the job costs.

The probe runs the job's own sampler on a real shard of the plan, with the job's whole warmup
(so the step size and mass matrix are adapted as the job's will be) and ``fraction`` of its
sampling iterations (at least 20), and records the wall time, the share of it spent compiling
(``jax.monitoring``), the leapfrog steps of the warmup and per sampling iteration, and the
memory the attempt added to the process. :mod:`hpcfit.cmc.sizing` turns that into the job's
estimate.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from hpcfit.cmc.nuts import NutsSettings, run_attempt
from hpcfit.cmc.sizing import ProbeTiming
from hpcfit.runtime import memory
from hpcfit.runtime.compile_meter import CompileMeter

MIN_ITERATIONS = 20


def probe_settings(settings: NutsSettings, fraction: float) -> NutsSettings:
    """The job's settings with ``fraction`` of its sampling iterations (its whole warmup)."""
    return dataclasses.replace(
        settings, num_samples=max(MIN_ITERATIONS, math.ceil(settings.num_samples * fraction))
    )


def probe_shard(
    target: Any,
    data: Any,
    precond: Any,
    *,
    points: int,
    n_shards: int,
    seed: int,
    shard_id: int,
    settings: NutsSettings,
    fraction: float,
) -> ProbeTiming:
    """Run attempt 0 of shard ``shard_id`` with :func:`probe_settings` and measure it."""
    s = probe_settings(settings, fraction)
    memory.reset_peak()
    before = memory.current_mb()
    with CompileMeter() as meter:
        t0 = time.perf_counter()
        result = run_attempt(
            target,
            data,
            precond,
            n_shards=n_shards,
            seed=seed,
            shard_id=shard_id,
            attempt=0,
            settings=s,
        )
        wall = time.perf_counter() - t0
    steps, warmup = result.num_steps, result.warmup_steps
    mean_steps = float(np.mean(steps)) if steps is not None else math.nan
    status = "ok" if result.status == "ok" else f"{result.status}: {result.message}"
    return ProbeTiming(
        points=points,
        warmup_iterations=s.num_warmup,
        sampling_iterations=s.num_samples,
        wall_s=wall,
        compile_s=meter.total_s,
        warmup_steps=float(np.max(warmup)) if warmup is not None else math.nan,
        mean_steps=mean_steps,
        status=status,
        sampling_mb=max(memory.peak_mb() - before, 0.0),
    )
