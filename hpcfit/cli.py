"""The ``hpcfit`` console script: a Hydra app with strict, early input checking.

Before Hydra runs, the command line's overrides are composed and validated once (each point of
a ``-m`` sweep too), so that an unknown key or an out-of-range value ends the run with exit
status 2 and one ``hpcfit: error: …`` line naming the key — before any run directory exists.
Data errors are found before any expensive work; they leave only the failed ``run.json``.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
import traceback
from pathlib import Path
from typing import Any, cast

from hpcfit.errors import ConfigError, InputError
from hpcfit.status import EXIT_INTERNAL

_NO_PREVALIDATION_FLAGS = {
    "--help",
    "-h",
    "--hydra-help",
    "--info",
    "--cfg",
    "-c",
    "--version",
    "--shell-completion",
    "-sc",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--package",
    "-p",
    "--resolve",
}


_RANK_COMM: Any = None  # rank mode: this process's communicator (set by main, never at import)
_SILENT_RANK_OVERRIDES = [
    "hydra.output_subdir=null",
    "hydra/job_logging=disabled",
    "hydra/hydra_logging=disabled",
]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hpcfit`` console script: launcher or rank mode."""
    global _RANK_COMM
    argv = list(sys.argv[1:] if argv is None else argv)
    from hpcfit.runtime.process import configure

    configure()  # float64 and thread variables before anything imports jax
    from hpcfit.runtime.env import detect, world_size_mismatch

    launch_env = detect(os.environ)
    comm = None
    if launch_env.is_rank:  # MPI first, before Hydra composes and before JAX starts
        from hpcfit.parallel.comm import MPIComm

        comm = MPIComm()
        mismatch = world_size_mismatch(launch_env, comm.size)
        if mismatch:
            fail(InputError(mismatch))
        run_id = comm.bcast(default_run_id(os.environ) if comm.rank == 0 else None)
        os.environ["HPCFIT_RUN_ID"] = run_id
        if comm.rank != 0:
            argv = [*argv, *_SILENT_RANK_OVERRIDES]
    _RANK_COMM = comm
    from hpcfit import config

    config.register()
    os.environ.setdefault("HPCFIT_RUN_ID", default_run_id(os.environ))
    try:
        prevalidate(argv)
    except InputError as exc:
        if comm is not None and comm.rank != 0:
            raise SystemExit(exc.exit_code) from None  # rank 0 prints the line
        fail(exc)
    import hydra

    app = hydra.main(config_path=str(config.config_dir()), config_name="config", version_base=None)(
        _task
    )
    sys.argv = [sys.argv[0] if sys.argv else "hpcfit", *argv]
    if comm is None:
        app()
        return
    _abort_guard(app, comm)


def _abort_guard(app: Any, comm: Any) -> None:
    """Run the Hydra app; a non-zero exit or an uncaught exception on any rank aborts every
    rank (Hydra turns exceptions into ``sys.exit(1)``, so the guard sits outside it)."""
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code != 0:
            sys.stderr.write(f"hpcfit: rank {comm.rank} exits with status {code}\n")
            comm.abort(code)
        raise
    except BaseException as exc:
        traceback.print_exc()
        sys.stderr.write(f"hpcfit: rank {comm.rank}: {type(exc).__name__}: {exc}\n")
        comm.abort(EXIT_INTERNAL)


def default_run_id(env: dict[str, str] | os._Environ[str]) -> str:
    """``HPCFIT_RUN_ID``; else the Slurm job id (``<array job>_<task>``); else time + random."""
    if env.get("HPCFIT_RUN_ID"):
        return env["HPCFIT_RUN_ID"]
    job = env.get("SLURM_ARRAY_JOB_ID") or env.get("SLURM_JOB_ID")
    if job:
        task = env.get("SLURM_ARRAY_TASK_ID")
        return f"{job}_{task}" if task else job
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def fail(exc: InputError) -> None:
    """Print the one-line error and exit with the input-error status."""
    message = " ".join(str(exc).split())
    sys.stderr.write(f"hpcfit: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(exc.exit_code)


def _override_sets(argv: list[str]) -> list[list[str]] | None:
    """The job-config overrides of each run the command line asks for (None: leave to Hydra)."""
    if any(a.split("=")[0] in _NO_PREVALIDATION_FLAGS for a in argv):
        return None
    multirun = any(a in ("-m", "--multirun") for a in argv)
    overrides = [a for a in argv if not a.startswith("-")]
    overrides = [a for a in overrides if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    if not multirun:
        return [overrides]
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def prevalidate(argv: list[str]) -> None:
    """Compose and validate each requested configuration; raises ConfigError naming the key."""
    from hydra import compose, initialize_config_dir

    from hpcfit.config import ConfigError, config_dir
    from hpcfit.errors import describe_omegaconf_error
    from hpcfit.validation import to_config

    try:
        sets = _override_sets(argv)
    except Exception as exc:  # override grammar errors
        raise ConfigError(describe_omegaconf_error(exc) + _split_value_hint(argv)) from None
    run_dir = _run_dir_of(argv)
    if (
        sets is not None
        and run_dir is not None
        and not any(a in ("-m", "--multirun") for a in argv)
    ):
        check_run_dir(run_dir)
    for overrides in sets or []:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            try:
                cfg = compose(config_name="config", overrides=overrides)
            except Exception as exc:
                hint = _split_value_hint(argv)
                raise ConfigError(describe_omegaconf_error(exc) + hint) from None
        to_config(cfg)


def _split_value_hint(argv: list[str]) -> str:
    """A hint when a word without ``=`` follows a ``key=value`` override: most likely a value
    with a space that the shell split (an unquoted path)."""
    for prev, word in zip(argv, argv[1:], strict=False):
        if "=" in prev and "=" not in word and not word.startswith(("-", "~")):
            key, value = prev.split("=", 1)
            return (
                f"; '{word}' is not a key=value override: if it belongs to {key}, quote the "
                f'override for the shell: "{key}={value} {word}"'
            )
    return ""


def _run_dir_of(argv: list[str]) -> Path | None:
    """The run directory a single run will use: ``hydra.run.dir=…`` or the default (None when
    no run id is set yet)."""
    for a in reversed(argv):
        if a.startswith("hydra.run.dir="):
            return Path(a.split("=", 1)[1])
    run_id = os.environ.get("HPCFIT_RUN_ID")
    return Path("runs") / run_id if run_id else None


def check_run_dir(path: Path) -> None:
    """A run directory that cannot be created or written is an input error (exit 2), found
    before Hydra creates it: a file in its place, or a parent that is a file or not writable."""
    from hpcfit.errors import RunDirError

    if "${" in str(path):  # an interpolation Hydra resolves later
        return
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run directory {path} exists and is not a directory")
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise RunDirError(f"cannot create run directory {path}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "run directory" if probe == path else f"cannot create run directory {path}:"
        raise RunDirError(f"{what} {probe} is not writable")


def _task(cfg) -> None:
    """The Hydra task: one job of the configured workload in Hydra's run directory.

    Launcher mode starts the ranks (:func:`hpcfit.launch.launch`); rank mode runs this rank
    with the config rank 0 composed. A rank whose process did not start in :func:`main` (a
    submitit task runs this function, pickled on the login node, in every Slurm task) joins
    MPI here and runs under the same abort guard (:func:`_join_world`).
    """
    comm = _RANK_COMM if _RANK_COMM is not None else _join_world()
    if comm is not None and _RANK_COMM is None:
        _abort_guard(lambda: _run_task(cfg, comm), comm)
        return
    _run_task(cfg, comm)


def _join_world() -> Any:
    """Rank mode entered from the task function itself (submitit): MPI starts here, before
    JAX; the world size must match the launcher's task count, and every rank takes rank 0's
    run id. None in launcher mode. The mode is looked up when called, never at import (the
    function is pickled on a login node where MPI must not start)."""
    from hpcfit.runtime.env import detect, world_size_mismatch

    launch_env = detect(os.environ)
    if not launch_env.is_rank:
        return None
    from hpcfit.runtime.process import configure

    configure()
    from hpcfit.parallel.comm import MPIComm

    comm = MPIComm()
    mismatch = world_size_mismatch(launch_env, comm.size)
    if mismatch:
        fail(InputError(mismatch))
    run_id = comm.bcast(default_run_id(os.environ) if comm.rank == 0 else None)
    os.environ["HPCFIT_RUN_ID"] = run_id
    return comm


def _run_task(cfg, comm: Any) -> None:
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from hpcfit.io.run_record import RunRecord
    from hpcfit.validation import to_config

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if comm is not None and _RANK_COMM is None:  # joined in _join_world: rank 0's directory
        run_dir = Path(comm.bcast(str(run_dir) if comm.rank == 0 else None))
    resolved = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    try:
        if comm is None:
            from hpcfit.launch import launch

            code = launch(to_config(cfg), run_dir, resolved, list(hydra_cfg.overrides.task))
        else:
            from hpcfit import rank

            config = comm.bcast(to_config(cfg) if comm.rank == 0 else None)
            if config.mpi.ranks is not None and config.mpi.ranks != comm.size:
                raise ConfigError(
                    f"mpi.ranks: expected {comm.size} (the world size), got {config.mpi.ranks}"
                )
            code = rank.run(config, run_dir, resolved, comm)
    except InputError as exc:
        if comm is not None and comm.rank != 0:
            raise SystemExit(exc.exit_code) from None
        fail(exc)
    except Exception as exc:  # an internal error: keep the record, show the traceback
        traceback.print_exc()
        if comm is None or comm.rank == 0:
            RunRecord(run_dir, resolved, seeds={}).finish(
                "internal_error", EXIT_INTERNAL, f"{type(exc).__name__}: {exc}"
            )
        raise SystemExit(EXIT_INTERNAL) from None
    if code:
        raise SystemExit(code)
