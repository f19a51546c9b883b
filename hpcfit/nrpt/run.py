"""The NRPT round loop: explore → swap → record per scan, adapt per round.

Round r = 1…R runs 2^r scans from global counter t0 = 2^r − 2; after each round r < R the ladder
is re-optimised from that round's records only; round R is production and gives every estimate.
Serial runs (``comm=None``) use path A (one jitted loop per round); a communicator of size P > 1
uses path B (:mod:`hpcfit.nrpt.distributed`). Statistics, the new ladder and the status are
computed on rank 0 from records gathered in replica order and broadcast, so every output is
bitwise the same for any P (and for path A).

**Failures.** A non-finite E_1 never stops a round (NaN compares false: its swaps are rejected).
At the round boundary rank 0 finds the first one and broadcasts the status; every rank then
returns an :class:`NrptResult` with ``status="non_finite_energy"``, ``exit_code == 3`` and
``failure = {replica, chain, scan, round}`` (the caller exits with ``result.exit_code``). An
exception on rank 0 while closing a round becomes ``status="internal_error"`` (exit code 70) the
same way. Nothing raises inside a collective; only exceptions of the caller's ``on_round``
propagate (under MPI the rank's abort guard then ends the job).

**Checkpoints.** With ``checkpoint_dir``, rank 0 writes one atomic file after every round
(:mod:`hpcfit.nrpt.checkpoint`); a run with the same configuration resumes after the last
complete round, bitwise equal to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import math
import platform
import time
import traceback
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hpcfit import device as device_mod
from hpcfit.errors import ConfigError
from hpcfit.nrpt import checkpoint as ckpt
from hpcfit.nrpt.distributed import gather_states, run_round_host
from hpcfit.nrpt.engine import get_engine, replica_keys, run_round_scan
from hpcfit.nrpt.result import STATUS_ERROR, STATUS_NONFINITE, STATUS_OK, NrptResult
from hpcfit.nrpt.schedule import check_ladder, optimal_schedule, uniform_ladder
from hpcfit.nrpt.stats import first_nonfinite, production_estimates, round_summary
from hpcfit.nrpt.targets import AbstractTarget
from hpcfit.parallel.balance import load_balance
from hpcfit.parallel.comm import Comm, SerialComm

PATHS = ("auto", "scan", "host")
MAX_ROUNDS = 24  # 2^25 scans: far beyond any practical run; keeps t below 2³²


def _int_arg(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"nrpt.{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ConfigError(f"nrpt.{name} must be {bound}, got {value}")
    return int(value)


def _device_name(dev: Any) -> str:
    d = dev if dev is not None else jax.devices()[0]
    return f"{d.platform}:{d.id} ({d.device_kind})"


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("hpcfit", "jax", "jaxlib", "numpy", "scipy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def run(
    target: AbstractTarget,
    *,
    n_chains: int = 10,
    n_rounds: int = 10,
    n_expl: int = 1,
    seed: int = 0,
    comm: Comm | None = None,
    device: Any = "auto",
    on_round: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    target_acceptance: float = 0.5,
    schedule: Any = None,
    path: str = "auto",
) -> NrptResult:
    """Run NRPT on ``target`` with an adaptive ladder of ``n_chains`` chains.

    Parameters
    ----------
    target : AbstractTarget  e.g. ``IsingTarget(grid_model(4))`` or ``GaussianPathTarget(2)``
    n_chains : int  N ≥ 2 (β_0 = 0 reference … β_{N−1} = 1 target)
    n_rounds : int  R ≥ 1; round r has 2^r scans, the last is production
    n_expl : int  explorer sweeps per scan (≥ 0; 0 freezes the states, for tests)
    seed : int  root key PRNGKey(seed); keys depend on replica ids and scan counters only
    comm : Comm or None  None: serial (path A); size P > 1: replicas split over ranks (path B)
    device : "auto" | "cpu" | "gpu" | jax.Device | None  resolved once with score ⌈N/P⌉·n_free
    on_round : callable(info) on rank 0 after each round (round, scans, Lambda, tau_observed,
        efficiency, round_trips, restarts, wall_s, betas, n_chains_recommended)
    checkpoint_dir : directory for the round checkpoint (same value on every rank)
    target_acceptance : float  a* in (0, 1) for the reported N_rec = ⌈Λ̂/(1 − a*)⌉ + 1
    schedule : sequence of N floats or None  the first round's ladder (0 = β_0 < … < β_{N−1} = 1);
        None: uniform
    path : "auto" (A when P = 1, else B), "scan" (A; P = 1 only) or "host" (B, any P)

    Returns
    -------
    NrptResult  the same on every rank
    """
    if not isinstance(target, AbstractTarget):
        raise ConfigError(f"target must be an NRPT target, got {type(target).__name__}")
    n_chains = _int_arg("n_chains", n_chains, 2)
    n_rounds = _int_arg("n_rounds", n_rounds, 1, MAX_ROUNDS)
    n_expl = _int_arg("n_expl", n_expl, 0)
    seed = _int_arg("seed", seed, 0, 2**63 - 1)
    a_star = float(target_acceptance) if isinstance(target_acceptance, int | float) else math.nan
    if isinstance(target_acceptance, bool) or not 0.0 < a_star < 1.0:
        raise ConfigError(f"nrpt.target_acceptance must lie in (0, 1), got {target_acceptance!r}")
    first_ladder = uniform_ladder(n_chains)
    if schedule is not None:
        try:
            first_ladder = check_ladder(np.asarray(schedule, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"nrpt.schedule: {exc}") from None
        if first_ladder.shape != (n_chains,):
            raise ConfigError(
                f"nrpt.schedule must hold n_chains = {n_chains} values, got {first_ladder.size}"
            )
    if path not in PATHS:
        raise ConfigError(f"path must be one of {PATHS}, got {path!r}")
    comm_ = comm if comm is not None else SerialComm()
    if path == "scan" and comm_.size > 1:
        raise ConfigError(f"path='scan' runs on one rank, got a communicator of size {comm_.size}")
    use_scan = path == "scan" or (path == "auto" and comm_.size == 1)
    score = device_mod.nrpt_score(device_mod.n_local(n_chains, comm_.size), target.n_free)
    dev = device_mod.resolve_entry_device(device, score=score)
    placement = jax.default_device(dev) if dev is not None else contextlib.nullcontext()
    with placement:
        work = _Run(
            target, n_chains, n_rounds, n_expl, seed, comm_, dev, use_scan, a_star, first_ladder
        )
        return work.execute(on_round, checkpoint_dir)


class _Run:
    """One run's state on one rank (kept off the public API)."""

    def __init__(
        self, target, n_chains, n_rounds, n_expl, seed, comm, dev, use_scan, a_star, first_ladder
    ):
        self.target, self.comm, self.dev, self.use_scan = target, comm, dev, use_scan
        self.a_star = a_star
        self.n, self.n_rounds, self.n_expl, self.seed = n_chains, n_rounds, n_expl, seed
        self.block = load_balance(n_chains, comm.size, comm.rank)
        self.counts = [
            b - a for a, b in (load_balance(n_chains, comm.size, p) for p in range(comm.size))
        ]
        self.engine = get_engine(target, n_chains, n_expl, 2**n_rounds)
        self.first_ladder = first_ladder  # the first round's ladder, part of the checkpoint key
        self.config = ckpt.run_config(
            self.target.fingerprint_doc(),
            self.n,
            self.n_expl,
            self.seed,
            self.n_rounds,
            self.a_star,
            first_ladder,
        )

    def _result(self, status: str, **fields: Any) -> NrptResult:
        return NrptResult(
            status=status,
            n_chains=self.n,
            n_rounds=self.n_rounds,
            n_expl=self.n_expl,
            seed=self.seed,
            ranks=self.comm.size,
            device=_device_name(self.dev),
            versions=_versions(),
            **fields,
        )

    def _start(
        self, checkpoint_dir: Path | None
    ) -> tuple[Any, np.ndarray, np.ndarray, int, list, dict | None]:
        """Initial (or resumed) local states, chain map, ladder, next round, history, records."""
        loaded = None
        if checkpoint_dir is not None and self.comm.rank == 0:
            loaded = ckpt.load(checkpoint_dir, self.config)
        loaded = self.comm.bcast(loaded)
        lo, hi = self.block
        keys = replica_keys(self.seed, np.arange(lo, hi))
        self.keys = device_mod.tree_device_put(keys, self.dev)
        if loaded is None:
            states = self.engine.init_fn(self.keys)
            chains = np.arange(self.n, dtype=np.int32)
            return states, chains, self.first_ladder.copy(), 1, [], None
        states = jnp.asarray(loaded["states"][lo:hi])
        return (
            states,
            np.asarray(loaded["chains"], dtype=np.int32),
            np.asarray(loaded["betas_next"], dtype=np.float64),
            loaded["round_done"] + 1,
            list(loaded["history"]),
            loaded["records"],
        )

    def _round(self, states, chains, betas, r):
        t0, n_scans = 2**r - 2, 2**r
        if self.use_scan:
            return run_round_scan(self.engine, states, self.keys, chains, betas, t0, n_scans)
        return run_round_host(
            self.engine,
            self.comm,
            states,
            self.keys,
            chains,
            betas,
            t0,
            n_scans,
            self.block,
            self.counts,
        )

    def _close_round(self, r, records, betas, wall, history, closing) -> dict[str, Any]:
        """Rank 0: status, statistics, next ladder and checkpoint after round r."""
        t0 = 2**r - 2
        bad = first_nonfinite(records, t0)
        if bad is not None:
            failure = {**bad, "round": r}
            message = (
                f"non-finite E_1 in round {r}: replica {bad['replica']} at chain {bad['chain']}, "
                f"first at global scan {bad['scan']}"
            )
            return {"status": STATUS_NONFINITE, "failure": failure, "message": message}
        summary = round_summary(records, betas, t0, self.a_star)
        nxt = betas if r == self.n_rounds else optimal_schedule(betas, summary["rejection"])
        row = {"round": r, "betas": betas.copy(), **summary, "wall_s": wall}
        if closing is not None:
            directory, states, chains = closing
            ckpt.save(
                directory,
                self.config,
                round_done=r,
                t_next=2 ** (r + 1) - 2,
                states=states,
                chains=chains,
                betas_next=nxt,
                history=[*history, row],
                records=records if r == self.n_rounds else None,
            )
        history.append(row)  # only a round whose closing succeeded enters the history
        return {"status": STATUS_OK, "betas_next": nxt, "row": row}

    def _failed(self, decision: dict, history: list, r: int, resumed_from: int, wall0: float):
        return self._result(
            decision["status"],
            failure=decision.get("failure"),
            message=decision["message"],
            history=self.comm.bcast(history if self.comm.rank == 0 else None),
            scans=2**r - 2,
            resumed_from=resumed_from,
            wall_s=time.perf_counter() - wall0,
        )

    def execute(self, on_round, checkpoint_dir) -> NrptResult:
        wall0 = time.perf_counter()
        checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        states, chains, betas, first, history, records = self._start(checkpoint_dir)
        resumed_from = first - 1
        states = device_mod.tree_device_put(states, self.dev)
        shape = jax.eval_shape(self.target.sample_reference, jax.random.PRNGKey(0))
        template = np.zeros(shape.shape, dtype=shape.dtype)
        for r in range(first, self.n_rounds + 1):
            tick = time.perf_counter()
            states, chains, records = self._round(states, chains, betas, r)
            jax.block_until_ready(states)
            wall = time.perf_counter() - tick
            closing = None
            if checkpoint_dir is not None:
                closing = (checkpoint_dir, gather_states(self.comm, states, template), chains)
            decision = None
            if self.comm.rank == 0:
                decision = _guarded(self._close_round, r, records, betas, wall, history, closing)
                row = decision.pop("row", None)
                if row is not None and on_round is not None:
                    on_round(_round_info(row))  # the caller's exceptions propagate
            decision = self.comm.bcast(decision)
            if decision["status"] != STATUS_OK:
                return self._failed(decision, history, r, resumed_from, wall0)
            betas = np.asarray(decision["betas_next"], dtype=np.float64)
        result = None
        if self.comm.rank == 0:
            result = _guarded(self._final, records, history, betas)
        fields = self.comm.bcast(result)
        if fields["status"] != STATUS_OK:
            return self._failed(fields, history, self.n_rounds + 1, resumed_from, wall0)
        fields.pop("status")
        return self._result(
            STATUS_OK, **fields, resumed_from=resumed_from, wall_s=time.perf_counter() - wall0
        )

    def _final(self, records: dict, history: list, betas: np.ndarray) -> dict[str, Any]:
        """Rank 0: the result's fields from the production round's records."""
        r = self.n_rounds
        t0 = 2**r - 2
        summary = round_summary(records, betas, t0, self.a_star)
        est = production_estimates(
            records,
            betas,
            t0,
            log_z0=self.target.log_Z0,
            beta_scale=self.target.beta_scale,
            n_free=self.target.n_free,
        )
        est["marginals"] = self.target.to_node_order(est["marginals"])
        est["marginals_se"] = self.target.to_node_order(est["marginals_se"])
        keep = ("Lambda", "rejection", "tau_observed", "tau_predicted", "efficiency")
        return {
            "status": STATUS_OK,
            **{k: summary[k] for k in keep},
            "round_trips": summary["round_trips"],
            "restarts": summary["restarts"],
            "n_chains_recommended": summary["n_chains_recommended"],
            **est,
            "betas": betas.copy(),
            "records": {k: records[k] for k in ("chain", "e1", "v", "site_sum")},
            "history": history,
            "scans": 2 ** (r + 1) - 2,
        }


def _guarded(step: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Rank 0's part of a round boundary; an exception becomes a status every rank receives
    (raising here would leave the other ranks waiting in the broadcast)."""
    try:
        return step(*args)
    except Exception as exc:
        text = "".join(traceback.format_exception(exc))
        return {"status": STATUS_ERROR, "message": f"{type(exc).__name__}: {exc}\n{text}"}


def _round_info(row: dict[str, Any]) -> dict[str, Any]:
    """What ``on_round`` receives: plain numbers plus the round's ladder."""
    keys = ("round", "scans", "Lambda", "tau_observed", "tau_predicted", "efficiency")
    info = {k: row[k] for k in keys}
    info.update(
        round_trips=row["round_trips"],
        restarts=row["restarts"],
        wall_s=row["wall_s"],
        betas=np.asarray(row["betas"]).copy(),
        n_chains_recommended=row["n_chains_recommended"],
    )
    return info
