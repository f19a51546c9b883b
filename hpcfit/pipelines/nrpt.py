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
from pathlib import Path
from typing import Any

from hpcfit.config import NrptConfig, NrptJob, NrptModel
from hpcfit.errors import ConfigError
from hpcfit.io.run_record import RunRecord
from hpcfit.pipelines.runner import Job, workload_run
from hpcfit.pipelines.status import fail
from hpcfit.status import EXIT_OK, Status

log = logging.getLogger("hpcfit")


def build_model(n: NrptConfig) -> Any:
    """The Ising model of ``nrpt.model``: an L×L grid, or the JSON file (validated)."""
    from hpcfit.nrpt import grid_model, load_model_file

    if n.model is NrptModel.grid:
        return grid_model(n.L, J=n.J, h=n.h, periodic=n.periodic, beta=n.beta)
    assert n.model_file is not None  # validation requires it when nrpt.model is file
    return load_model_file(n.model_file, beta=n.beta)


def resolve_rank_device(cfg: NrptJob, n_free: int, n_ranks: int) -> Any:
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


def _outline(cfg: NrptJob, job: Job) -> int:
    """Rank 0 reads the model and every rank gets it; the ranks run NRPT together; rank 0
    records the outcome and writes the outputs."""
    from hpcfit import nrpt

    n, comm = cfg.nrpt, job.comm
    model, status = job.on_root(lambda _: build_model(n), share=True)
    if status.final:
        return status.code
    if job.root:
        log.info(
            "nrpt: %d spins, %d edges, %d chains, %d rounds, n_expl=%d on %d ranks",
            model.n,
            len(model.J),
            n.n_chains,
            n.n_rounds,
            n.n_expl,
            comm.size,
        )

    def sample() -> Any:
        target = nrpt.IsingTarget(model)
        return nrpt.run(
            target,
            n_chains=n.n_chains,
            n_rounds=n.n_rounds,
            n_expl=n.n_expl,
            seed=n.seed,
            target_acceptance=n.target_acceptance,
            schedule=None if n.schedule is None else list(n.schedule),
            comm=comm if comm.size > 1 else None,
            device=resolve_rank_device(cfg, target.n_free, comm.size),
            on_round=(lambda info: log.info("%s", progress_line(info))) if job.root else None,
            checkpoint_dir=job.run_dir / "nrpt" / "checkpoints",
        )

    result, status = job.on_every_rank(sample)
    if status.final:
        return status.code
    _, status = job.on_root(lambda record: _finish(record, job.run_dir, result))
    return status.code


def _finish(record: RunRecord, run_dir: Path, result: Any) -> Status:
    """Rank 0: a non-finite energy (exit 3) or an error while closing a round (70) ends the
    run with its state; otherwise the output files and the run record."""
    from hpcfit.io.nrpt_out import write_outputs

    if not result.ok:
        return fail(record, result.exit_code, result.message or str(result.failure), result.status)
    write_outputs(result, run_dir)
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


def seeds_of(cfg: NrptJob) -> dict[str, int]:
    return {"nrpt.seed": cfg.nrpt.seed}


run = workload_run(seeds_of, _outline)
"""Run NRPT on every rank of ``comm``; rank 0 writes ``nrpt/``. Returns the exit code."""
