"""Rank mode: the setup every rank performs before JAX starts, and the worker entry point.

``python -m mpi4py -m hpcfit.rank <run_dir>`` is what the launcher starts: rank 0 composes the
config from ``<run_dir>/overrides.yaml`` (checking it against ``config.yaml``) and broadcasts
it; every rank then pins itself, sets its XLA device count and runs the pipeline. Ranks started
by others (``mpiexec -n R hpcfit``, ``srun hpcfit``) reach :func:`run` through the Hydra app.

Setup order: (0) the rank's role, GPU or CPU, from its
node-local rank and ``device.gpus_per_node``; (1) CPU pinning from the node-local ranks' allowed
CPU sets, with C = ``mpi.cores_per_rank`` (default: chains per rank for XPCS, 1 otherwise);
(2) the XLA host device count = chains per rank (XPCS); (3) x64, then a check of
``jax.local_device_count()``. Roles and affinity go to ``run.json``.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any, cast

from hpcfit.config import Config, KuramotoJob, XpcsJob, cores_per_rank
from hpcfit.errors import ConfigError, InputError
from hpcfit.parallel.comm import Comm

log = logging.getLogger("hpcfit")


def setup(comm: Comm, cfg: Config) -> dict[str, Any]:
    """Rank role, pinning and device count, before JAX starts; every rank's facts (on rank 0)."""
    from hpcfit.runtime import pin
    from hpcfit.runtime.process import check_devices, configure

    with comm.split_shared() as node:
        role = assign_role(node, cfg)
        sets = node.bcast(node.gather(sorted(pin.allowed_cpus())))
        local_rank = node.rank
    decision = pin.plan([frozenset(s) for s in sets], local_rank, cores_per_rank(cfg))
    affinity = pin.apply(decision)
    if decision.warning and local_rank == 0:
        log.warning("CPU pinning: %s", decision.warning)
    chains = cfg.cmc.num_chains if isinstance(cfg, XpcsJob) else None
    configure(device_count=chains)
    facts = {
        "rank": comm.rank,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "affinity": list(affinity),
        "pinning": decision.reason,
        "role": role.role,
        "cuda_visible_devices": role.get("CUDA_VISIBLE_DEVICES"),
        "local_devices": check_devices(chains) if chains else None,
    }
    return {"rank_setup": comm.gather(facts)}


def assign_role(node: Comm, cfg: Config) -> Any:
    """This rank's GPU or CPU role, applied to ``os.environ``.

    The XPCS fit never uses a GPU (its NUTS chains run on CPU virtual devices), so every rank
    of an XPCS job is a CPU rank. For the routed workloads, node-local ranks below
    ``device.gpus_per_node`` get one GPU each. Where JAX is already imported (tests), a CPU
    role leaves the environment alone and a GPU role is a configuration error.
    """
    from hpcfit import device

    visible = node.bcast(node.gather(os.environ.get("CUDA_VISIBLE_DEVICES")))
    options: dict[str, Any] = {"node_visible": visible}
    if isinstance(cfg, XpcsJob):
        gpus: Any = 0
        options["device_count"] = cfg.cmc.num_chains
    else:
        gpus = cfg.device.gpus_per_node
        options["deterministic_gpu"] = cfg.device.deterministic_gpu
        options["compile_cache"] = cfg.device.compile_cache
    if "jax" not in sys.modules:
        role = device.assign_rank_devices(node.rank, gpus, os.environ, **options)
        os.environ.update(role)
        return role
    role = device.plan_rank_role(node.rank, gpus, os.environ, **options)
    if role.role == "gpu":
        raise ConfigError(
            "device.gpus_per_node: a GPU rank must set its devices before JAX starts, but JAX "
            "is already imported in this process; start the job with hpcfit or mpiexec"
        )
    return role


def run(
    cfg: Config, run_dir: Path, resolved: dict[str, Any], comm: Comm, owned: bool = False
) -> int:
    """Set up this rank and run the configured workload; returns the exit code.

    Rank 0 owns the run directory (:func:`hpcfit.io.run_dir.claim`) unless ``owned`` says the
    caller does, or the ranks were started by hpcfit's launcher, which owns it. A directory in
    use by another run ends every rank with exit 2 before any work.

    The routed workloads (Kuramoto, NRPT) run on the GPU ranks' sub-communicator when some
    ranks have the GPU role; the CPU ranks then wait and leave with the
    job's exit code. Otherwise every rank works.
    """
    from hpcfit.io.run_dir import OWNER_ENV, claim

    owner, busy = None, None
    if comm.rank == 0 and not owned and not os.environ.get(OWNER_ENV):
        try:
            owner = claim(run_dir)
        except InputError as exc:
            busy = str(exc)
    busy = comm.bcast(busy)
    if busy is not None:
        if comm.rank == 0:
            sys.stderr.write(f"hpcfit: error: {busy}\n")
        return 2
    try:
        return _run_ranks(cfg, run_dir, resolved, comm)
    finally:
        if owner is not None:
            owner.release()


def _run_ranks(cfg: Config, run_dir: Path, resolved: dict[str, Any], comm: Comm) -> int:
    facts = setup(comm, cfg)
    roles = comm.bcast([f["role"] for f in facts["rank_setup"]] if comm.rank == 0 else None)
    gpu_ranks = [r for r, role in enumerate(roles) if role == "gpu"]
    if isinstance(cfg, XpcsJob) or not gpu_ranks or len(gpu_ranks) == comm.size:
        return _run_workload(cfg, run_dir, resolved, comm, facts if comm.rank == 0 else None)
    leader = gpu_ranks[0]
    facts = comm.bcast(facts if comm.rank == 0 else None)
    on_gpu = comm.rank in gpu_ranks
    code = None
    with comm.split(0 if on_gpu else 1) as work:
        if on_gpu:
            if comm.rank == leader:
                log.info("%s runs on the GPU ranks %s", cfg.workload.name.value, gpu_ranks)
            leader_facts = facts if comm.rank == leader else None
            code = _run_workload(cfg, run_dir, resolved, work, leader_facts)
    return comm.bcast(code, root=leader)


def _run_workload(
    cfg: Config, run_dir: Path, resolved: dict[str, Any], comm: Comm, facts: Any
) -> int:
    if isinstance(cfg, XpcsJob):
        from hpcfit.pipelines import xpcs

        return xpcs.run(cfg, run_dir, resolved, comm, facts=facts)
    if isinstance(cfg, KuramotoJob):
        from hpcfit.pipelines import kuramoto

        return kuramoto.run(cfg, run_dir, resolved, comm, facts=facts)
    from hpcfit.pipelines import nrpt

    return nrpt.run(cfg, run_dir, resolved, comm, facts=facts)


def load_run_inputs(run_dir: Path) -> tuple[Config, dict[str, Any]]:
    """Compose the config from ``overrides.yaml`` and check it equals ``config.yaml``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from hpcfit import config

    config.register()
    overrides = list(OmegaConf.load(run_dir / "overrides.yaml").overrides)
    with initialize_config_dir(config_dir=str(config.config_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
    resolved = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    written = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=True)
    if written != resolved:
        raise RuntimeError(
            f"{run_dir}/config.yaml differs from the config composed from "
            "overrides.yaml (edited, or another hpcfit version)"
        )
    from hpcfit.validation import to_config

    return to_config(cfg), resolved


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
