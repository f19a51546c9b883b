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

from hpcfit.errors import InputError

EXIT_INTERNAL = 70
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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hpcfit`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from hpcfit.runtime.process import configure

    configure()  # float64 and thread variables before anything imports jax
    from hpcfit import config

    config.register()
    os.environ.setdefault("HPCFIT_RUN_ID", default_run_id(os.environ))
    try:
        prevalidate(argv)
    except InputError as exc:
        fail(exc)
    import hydra

    app = hydra.main(config_path=str(config.config_dir()), config_name="config", version_base=None)(
        _task
    )
    sys.argv = [sys.argv[0] if sys.argv else "hpcfit", *argv]
    app()


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

    from hpcfit.config import ConfigError, config_dir, describe_omegaconf_error, to_config

    try:
        sets = _override_sets(argv)
    except Exception as exc:  # override grammar errors
        raise ConfigError(describe_omegaconf_error(exc)) from None
    for overrides in sets or []:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            try:
                cfg = compose(config_name="config", overrides=overrides)
            except Exception as exc:
                raise ConfigError(describe_omegaconf_error(exc)) from None
        to_config(cfg)


def _task(cfg) -> None:
    """The Hydra task: one run of the configured workload in Hydra's run directory."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from hpcfit.config import to_config
    from hpcfit.io.run_record import RunRecord
    from hpcfit.pipelines import xpcs

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    try:
        code = xpcs.run(to_config(cfg), run_dir, resolved)
    except InputError as exc:
        fail(exc)
    except Exception as exc:  # an internal error: keep the record, show the traceback
        traceback.print_exc()
        RunRecord(run_dir, resolved, seeds={}).finish(
            "error", EXIT_INTERNAL, f"{type(exc).__name__}: {exc}"
        )
        raise SystemExit(EXIT_INTERNAL) from None
    if code:
        raise SystemExit(code)
