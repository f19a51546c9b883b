"""The NRPT job over MPI ranks.

Rank 0 builds (or reads and validates) the Ising model and broadcasts it; every rank resolves
its device once with the score ⌈N/P⌉·n_free and runs :func:`hpcfit.nrpt.run` on the world
communicator (replicas balanced over ranks, only swap statistics cross ranks, round
checkpoints in ``nrpt/checkpoints``). Rank 0 prints one progress line per round and writes
``nrpt/summary.json``, ``nrpt/rounds.h5`` and ``nrpt/barrier.png``. The output is bitwise
identical for any rank count on one device kind.

Exit codes: 0 ok; 2 bad model file or device; 3 a replica's energy became non-finite (the
message names replica, chain and first scan); 70 internal error.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

from hpcfit.config import Config, NrptConfig, NrptModel
from hpcfit.errors import ConfigError, InputError
from hpcfit.io.run_record import RunRecord
from hpcfit.parallel.comm import Comm, SerialComm
from hpcfit.pipelines.status import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    RunLog,
    Status,
    fail,
    rank_errors_status,
)

log = logging.getLogger("hpcfit")


def build_model(n: NrptConfig) -> Any:
    """The Ising model of ``nrpt.model``: an L×L grid, or the JSON file (validated)."""
    from hpcfit.nrpt import grid_model, load_model_file

    if n.model is NrptModel.grid:
        return grid_model(n.L, J=n.J, h=n.h, periodic=n.periodic, beta=n.beta)
    return load_model_file(n.model_file, beta=n.beta)


def resolve_rank_device(cfg: Config, n_free: int, n_ranks: int) -> Any:
    """The one device this rank's replicas run on (score ⌈N/P⌉·n_free); None: routing off."""
    from hpcfit import device

    spec = cfg.device.spec.strip().lower()
    if spec == "none":
        return None
    score = device.nrpt_score(device.n_local(cfg.nrpt.n_chains, n_ranks), n_free)
    try:
        return device.resolve_device(spec, score=score, threshold=cfg.device.threshold)
    except (RuntimeError, ValueError) as exc:  # no GPU for device.spec=gpu, bad env variable
        raise ConfigError(f"device.spec={spec}: {exc}") from None


def progress_line(info: dict[str, Any]) -> str:
    """One line per round: scans, barrier, round trips, efficiency, wall time."""
    return (
        f"nrpt round {info['round']:>2}: {info['scans']:>6} scans  "
        f"Lambda={info['Lambda']:.3f}  round trips={info['round_trips']}  "
        f"tau_obs/tau_bar={info['efficiency']:.2f}  N_rec={info['n_chains_recommended']}  "
        f"{info['wall_s']:.2f} s"
    )


def run(
    cfg: Config,
    run_dir: Path,
    resolved: dict[str, Any],
    comm: Comm | None = None,
    facts: dict[str, Any] | None = None,
) -> int:
    """Run NRPT on every rank of ``comm``; rank 0 writes ``nrpt/``. Returns the exit code."""
    from hpcfit import nrpt

    comm = comm or SerialComm()
    root = comm.rank == 0
    n = cfg.nrpt
    record = RunRecord(run_dir, resolved, seeds={"nrpt.seed": n.seed}) if root else None
    run_log = RunLog(run_dir / f"rank-{comm.rank}.log")
    try:
        model, status = None, None
        if root:
            assert record is not None
            record.set(**(facts or {}))
            record.start(comm.size)
            try:
                model = build_model(n)
            except InputError as exc:
                status = fail(record, EXIT_INPUT, " ".join(str(exc).split()))
        status, model = comm.bcast((status, model))
        if status is not None:
            return status.code
        if root:
            log.info(
                "nrpt: %d spins, %d edges, %d chains, %d rounds, n_expl=%d on %d ranks",
                model.n,
                len(model.J),
                n.n_chains,
                n.n_rounds,
                n.n_expl,
                comm.size,
            )
        result, error = None, None
        try:
            target = nrpt.IsingTarget(model)
            dev = resolve_rank_device(cfg, target.n_free, comm.size)
            result = nrpt.run(
                target,
                n_chains=n.n_chains,
                n_rounds=n.n_rounds,
                n_expl=n.n_expl,
                seed=n.seed,
                target_acceptance=n.target_acceptance,
                schedule=None if n.schedule is None else list(n.schedule),
                comm=comm if comm.size > 1 else None,
                device=dev,
                on_round=(lambda info: log.info("%s", progress_line(info))) if root else None,
                checkpoint_dir=run_dir / "nrpt" / "checkpoints",
            )
        except InputError as exc:  # the same on every rank (device, config)
            error = (EXIT_INPUT, " ".join(str(exc).split()))
        except Exception as exc:  # becomes a status; never raised inside a collective
            traceback.print_exc()
            error = (EXIT_INTERNAL, f"rank {comm.rank}: {type(exc).__name__}: {exc}")
        errors = comm.gather(error)
        if root:
            status = rank_errors_status(errors, record)
            if status is None and not result.ok:  # 3: a non-finite energy (replica, scan), 70
                message = result.message or str(result.failure)
                status = fail(record, result.exit_code, message, result.status)
            elif status is None:
                status = _write(record, run_dir, result)
        status = comm.bcast(status)
        return status.code
    finally:
        run_log.close()


def _write(record: RunRecord, run_dir: Path, result: Any) -> Status:
    """Rank 0: the output files and the run record."""
    from hpcfit.nrpt import write_outputs

    try:
        write_outputs(result, run_dir)
    except Exception as exc:
        traceback.print_exc()
        return fail(record, EXIT_INTERNAL, f"{type(exc).__name__}: {exc}")
    record.set(
        nrpt={
            "Lambda": result.Lambda,
            "log_Z": result.log_Z,
            "round_trips": result.round_trips,
            "device": result.device,
        }
    )
    record.finish("ok", EXIT_OK)
    log.info("run directory: %s (exit 0)", run_dir)
    return Status(EXIT_OK, "ok")
