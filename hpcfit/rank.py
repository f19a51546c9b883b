"""Rank mode: the setup every rank performs before JAX starts, and the worker entry point.

``python -m mpi4py -m hpcfit.rank <run_dir>`` is what the launcher starts: rank 0 composes the
config from ``<run_dir>/overrides.yaml`` (checking it against ``config.yaml``) and broadcasts
it; every rank then pins itself, sets its XLA device count and runs the pipeline. Ranks started
by others (``mpiexec -n R hpcfit``, ``srun hpcfit``) reach :func:`run` through the Hydra app.

Setup order (design §1.2): (1) CPU pinning from the node-local ranks' allowed CPU sets, with
C = ``mpi.cores_per_rank`` (default: chains per rank); (2) the XLA host device count = chains
per rank; (3) x64, then a check of ``jax.local_device_count()``. Affinity goes to ``run.json``.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from hpcfit.config import Config
from hpcfit.parallel.comm import Comm

log = logging.getLogger("hpcfit")


def setup(comm: Comm, cfg: Config) -> dict[str, Any]:
    """Pin, set the device count and check it; returns every rank's facts (on rank 0)."""
    from hpcfit.runtime import pin
    from hpcfit.runtime.process import check_devices, configure

    cores = cfg.mpi.cores_per_rank or cfg.cmc.num_chains
    node = comm.split_shared()
    sets = node.bcast(node.gather(sorted(pin.allowed_cpus())))
    decision = pin.plan([frozenset(s) for s in sets], node.rank, cores)
    affinity = pin.apply(decision)
    if decision.warning and node.rank == 0:
        log.warning("CPU pinning: %s", decision.warning)
    configure(device_count=cfg.cmc.num_chains)
    devices = check_devices(cfg.cmc.num_chains)
    facts = {
        "rank": comm.rank,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "affinity": list(affinity),
        "pinning": decision.reason,
        "local_devices": devices,
    }
    return {"rank_setup": comm.gather(facts)}


def run(cfg: Config, run_dir: Path, resolved: dict[str, Any], comm: Comm) -> int:
    """Set up this rank and run the configured workload; returns the exit code."""
    from hpcfit.pipelines import xpcs

    facts = setup(comm, cfg)
    return xpcs.run(cfg, run_dir, resolved, comm, facts=facts if comm.rank == 0 else None)


def load_run_inputs(run_dir: Path) -> tuple[Config, dict[str, Any]]:
    """Compose the config from ``overrides.yaml`` and check it equals ``config.yaml``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from hpcfit import config

    config.register()
    overrides = list(OmegaConf.load(run_dir / "overrides.yaml").overrides)
    with initialize_config_dir(config_dir=str(config.config_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
    resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    written = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=True)
    if written != resolved:
        raise RuntimeError(
            f"{run_dir}/config.yaml differs from the config composed from "
            "overrides.yaml (edited, or another hpcfit version)"
        )
    return config.to_config(cfg), resolved


def main(argv: list[str] | None = None) -> None:
    """``python -m mpi4py -m hpcfit.rank <run_dir>``: one rank of a launched job."""
    from hpcfit.runtime.process import configure

    configure()  # float64 and thread variables before anything imports jax
    from hpcfit.parallel.comm import MPIComm

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m mpi4py -m hpcfit.rank <run_dir>\n")
        raise SystemExit(2)
    run_dir = Path(args[0])
    comm = MPIComm()
    console = logging.StreamHandler(sys.stdout)  # rank 0 talks; the others only warn
    console.setLevel(logging.INFO if comm.rank == 0 else logging.WARNING)
    console.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
    logging.getLogger().addHandler(console)
    logging.getLogger().setLevel(logging.INFO)
    loaded = load_run_inputs(run_dir) if comm.rank == 0 else None
    cfg, resolved = comm.bcast(loaded)
    if cfg.mpi.ranks is not None and cfg.mpi.ranks != comm.size:
        if comm.rank == 0:
            sys.stderr.write(
                f"hpcfit: error: mpi.ranks: expected {comm.size} (the world size), "
                f"got {cfg.mpi.ranks}\n"
            )
        raise SystemExit(2)
    raise SystemExit(run(cfg, run_dir, resolved, comm))


if __name__ == "__main__":
    main()
