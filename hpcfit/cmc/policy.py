"""Shard failure policy and exclusion accounting.

An attempt fails on a non-ok sampler status (``bad_init``, ``failed``), a failed shard gate, or
any exception in the attempt or its diagnostics, which becomes part of its record and never
escapes. ``exclusion_report`` applies the global guard to the per-shard outcomes.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcfit.cmc.diagnostics import Gates, apply_gates, shard_diagnostics
from hpcfit.cmc.nuts import NutsSettings, retry_settings, run_attempt
from hpcfit.status import EXIT_OK, EXIT_WORK_FAILED

log = logging.getLogger("hpcfit")

POLICIES = ("retry", "exclude", "abort")
STATUSES = ("ok", "excluded", "failed")


@dataclass(frozen=True)
class ShardResult:
    """Outcome of one shard under the failure policy.

    ``status``: "ok" (an attempt passed; its draws and diagnostics are kept), "excluded" (no
    attempt passed under retry / exclude) or "failed" (abort policy: the caller stops the job).
    ``attempts`` holds one dict per attempt run, in order, with keys attempt, target_accept,
    num_warmup, status ("ok", "gates_failed", or the sampler's "bad_init" / "failed"), message,
    gate_failures, gate_warnings, error_type, traceback, wall_s, and for an attempt whose sampler
    finished mean_steps, median_steps (leapfrog steps per transition), tree_depth_hits,
    step_size (the adapted step size per chain) and completion_margin_sd (``cmc.scaling=marginal``:
    the closest a drawn-back quantity's conditional mean came to its bounds, in conditional sds;
    None otherwise). Draws are float64
    (chains, samples, P) and None unless ``status == "ok"``; ``diagnostics`` is the kept
    attempt's ``Diagnostics.to_json()``. ``wall_s`` is the shard's total wall time (s).
    """

    shard_id: int
    status: str
    attempts: list[dict[str, Any]]
    draws_u: np.ndarray | None
    draws_theta: np.ndarray | None
    diagnostics: dict[str, Any] | None
    wall_s: float

    @property
    def reason(self) -> str:
        """Why the shard is not used ("" when ok): the last attempt's failure."""
        if self.status == "ok" or not self.attempts:
            return ""
        a = self.attempts[-1]
        detail = "; ".join(a["gate_failures"]) if a["status"] == "gates_failed" else a["message"]
        return f"attempt {a['attempt']}: {a['status']}: {detail}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict without the draws."""
        keys = ("shard_id", "status", "reason", "diagnostics", "wall_s")
        return {k: getattr(self, k) for k in keys} | {"attempts": [dict(a) for a in self.attempts]}


def run_shard(
    target: Any,
    data: Any,
    precond: Any,
    *,
    n_shards: int,
    seed: int,
    shard_id: int,
    settings: NutsSettings,
    gates: Gates,
    on_failure: str,
    max_retries: int = 2,
    attempt_fn: Callable[..., Any] = run_attempt,
) -> ShardResult:
    """Run one shard under ``cmc.on_shard_failure`` (never raises once the arguments are valid).

    ``target, data, precond, n_shards, seed, shard_id`` go to ``attempt_fn`` (``run_attempt``'s
    signature, returning an AttemptResult-like record: status, message, names, draws_u,
    draws_theta, extra), with ``attempt=r`` and the settings of that attempt: ``settings`` first,
    then :func:`~hpcfit.cmc.nuts.retry_settings` of the previous attempt and its failed gates.
    ``max_retries`` counts the re-runs allowed under "retry" and is ignored otherwise.
    """
    if on_failure not in POLICIES:
        raise ValueError(f"cmc.on_shard_failure must be one of {POLICIES}, got {on_failure!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"cmc.max_retries must be an integer >= 0, got {max_retries!r}")
    t0 = time.perf_counter()
    n_attempts = max_retries + 1 if on_failure == "retry" else 1
    attempts: list[dict[str, Any]] = []
    s = settings
    for r in range(n_attempts):
        if r:
            failed = {f.split(":", 1)[0] for f in attempts[-1]["gate_failures"]}
            s = retry_settings(s, failed)
        rec, kept = _one_attempt(
            attempt_fn, target, data, precond, n_shards, seed, shard_id, r, s, gates
        )
        attempts.append(rec)
        if rec["status"] != "ok":
            last = r + 1 == n_attempts
            log.warning(
                "shard %d attempt %d: %s — %s; %s",
                shard_id,
                r,
                rec["status"],
                "; ".join(rec["gate_failures"]) or rec["message"] or rec["error_type"],
                f"shard {'failed' if on_failure == 'abort' else 'excluded'}"
                if last
                else "retrying",
            )
        if kept is not None:
            draws_u, draws_theta, diag = kept
            wall = time.perf_counter() - t0
            return ShardResult(shard_id, "ok", attempts, draws_u, draws_theta, diag, wall)
    status = "failed" if on_failure == "abort" else "excluded"
    return ShardResult(shard_id, status, attempts, None, None, None, time.perf_counter() - t0)


def _one_attempt(attempt_fn, target, data, precond, n_shards, seed, shard_id, r, s, gates):
    """(attempt record, (draws_u, draws_theta, diagnostics json) or None if it failed)."""
    t0 = time.perf_counter()
    rec: dict[str, Any] = dict(
        attempt=r, target_accept=float(s.target_accept), num_warmup=int(s.num_warmup),
        thin=int(s.thin), status="failed", message="", gate_failures=[], gate_warnings=[],
        error_type=None, traceback=None, wall_s=0.0,
    )  # fmt: skip
    kept = None
    try:
        res = attempt_fn(
            target, data, precond, n_shards=n_shards, seed=seed, shard_id=shard_id,
            attempt=r, settings=s,
        )  # fmt: skip
        rec["message"] = str(res.message)
        rec["n_compiles"] = getattr(res, "n_compiles", None)
        rec["compile_s"] = getattr(res, "compile_s", None)
        if res.status != "ok":
            rec["status"] = str(res.status)
            rec["error_type"] = getattr(res, "error_type", None)
            rec["traceback"] = getattr(res, "traceback", None)
        else:
            theta = np.asarray(res.draws_theta, dtype=np.float64)
            diag = shard_diagnostics(theta, res.extra, s.max_tree_depth, names=res.names)
            gate = apply_gates(diag, gates, n_chains=theta.shape[0])
            rec["gate_failures"], rec["gate_warnings"] = list(gate.failures), list(gate.warnings)
            rec["status"] = "ok" if gate.passed else "gates_failed"
            rec["mean_steps"], rec["median_steps"] = diag.mean_steps, diag.median_steps
            rec["tree_depth_hits"] = round(
                diag.tree_depth_hit_rate * theta.shape[0] * theta.shape[1]
            )
            size = getattr(res, "step_size", None)
            rec["step_size"] = None if size is None else [float(x) for x in size]
            rec["completion_margin_sd"] = getattr(res, "completion_margin_sd", None)
            if gate.passed:
                kept = (np.asarray(res.draws_u, dtype=np.float64), theta, diag.to_json())
    except Exception as exc:  # guarded shard work: failures are records
        rec.update(status="failed", message=f"{type(exc).__name__}: {exc}")
        rec.update(error_type=type(exc).__name__, traceback=traceback.format_exc())
        kept = None
    rec["wall_s"] = time.perf_counter() - t0
    return rec, kept


def exclusion_report(
    results: Sequence[ShardResult],
    n_shards: int,
    max_excluded_fraction: float = 0.25,
    shard_sizes: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Exclusion accounting and the global guard over one result per shard id 0…K−1.

    Returns a JSON-ready dict: n_shards K, n_used K′, used_ids, excluded_ids, failed_ids
    (abort), reasons {str(id): reason}, fraction_shards_used, excluded_fraction,
    fraction_points_used (from ``shard_sizes``, points per shard; else None), prior_exponent
    K′/K, fatal, fatal_reason, exit_code (0, or 3 when fatal). ``fatal`` holds when more than
    ``max_excluded_fraction`` of the shards are out, none is left, or one failed under abort.
    """
    if isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1:
        raise ValueError(f"n_shards must be an integer >= 1, got {n_shards!r}")
    ids = sorted(r.shard_id for r in results)
    if ids != list(range(n_shards)):
        raise ValueError(f"expected one result per shard id 0..{n_shards - 1}, got ids {ids}")
    by_id = sorted(results, key=lambda r: r.shard_id)
    for r in by_id:
        if r.status not in STATUSES:
            raise ValueError(f"shard {r.shard_id}: unknown status {r.status!r}")
    used = [r.shard_id for r in by_id if r.status == "ok"]
    excluded = [r.shard_id for r in by_id if r.status == "excluded"]
    failed = [r.shard_id for r in by_id if r.status == "failed"]
    n_out = len(excluded) + len(failed)
    points = None
    if shard_sizes is not None:
        sizes = [int(n) for n in shard_sizes]
        if len(sizes) != n_shards or sum(sizes) <= 0:
            raise ValueError(f"need {n_shards} shard sizes with a positive sum, got {sizes}")
        points = sum(sizes[s] for s in used) / sum(sizes)
    fatal_reason = ""
    if failed:
        fatal_reason = f"shards {failed} failed under on_shard_failure=abort"
    elif not used:
        fatal_reason = "no shard is left"
    elif n_out / n_shards > max_excluded_fraction:
        fatal_reason = (
            f"{n_out} of {n_shards} shards excluded ({n_out / n_shards!r})"
            f" > max_excluded_fraction {max_excluded_fraction!r}"
        )
    return {
        "n_shards": n_shards,
        "n_used": len(used),
        "used_ids": used,
        "excluded_ids": excluded,
        "failed_ids": failed,
        "reasons": {str(r.shard_id): r.reason for r in by_id if r.status != "ok"},
        "fraction_shards_used": len(used) / n_shards,
        "excluded_fraction": n_out / n_shards,
        "max_excluded_fraction": max_excluded_fraction,
        "fraction_points_used": points,
        "prior_exponent": len(used) / n_shards,
        "fatal": bool(fatal_reason),
        "fatal_reason": fatal_reason,
        "exit_code": EXIT_WORK_FAILED if fatal_reason else EXIT_OK,
    }


MARGIN_SD = 5.0
"""Below this many conditional sds from a bound, a drawn-back quantity's dropped truncation
(``Completion``) may show in the result."""


def completion_margin(used: Sequence[ShardResult]) -> tuple[float | None, str]:
    """The smallest completion margin of the kept attempts (None without a completion), and a
    warning line when it is below 5 conditional sds ("" otherwise)."""
    found = [r.attempts[-1].get("completion_margin_sd") for r in used if r.attempts]
    margins = [float(m) for m in found if m is not None]
    if not margins:
        return None, ""
    worst = min(margins)
    if worst >= MARGIN_SD:
        return worst, ""
    return worst, (
        f"a contrast or offset posterior lies {worst:.1f} conditional sd from its bounds: "
        "cmc.scaling=marginal drops those bounds; cmc.scaling=sample respects them"
    )
