"""The Kuramoto ensemble job over MPI ranks.

Members m = 0…B−1 are global ids split into contiguous blocks by
:func:`~hpcfit.parallel.balance.load_balance` (loads differ by ≤ 1, a rank may own none). Member m
draws its initial phases (then, with ``kuramoto.omega=per_member``, its frequencies) from
``k_m = fold_in(PRNGKey(kuramoto.seed), m)``; the shared network is built identically on every
rank. Each rank resolves its device **once** with the score ⌈B/P⌉·N, runs its block as vmapped
chunks on it (``device.batch_chunk``; the last chunk is padded so every chunk has one shape),
checkpoints each finished chunk, and the results are gathered to rank 0 in rank order, which is
member order. The output is therefore bitwise identical for any rank count on one device kind.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit import __version__
from hpcfit.config import KuramotoConfig, KuramotoJob, KuramotoOmega, KuramotoRecord
from hpcfit.errors import ConfigError
from hpcfit.io.jsonable import plain
from hpcfit.io.run_record import RunRecord
from hpcfit.parallel.balance import load_balance
from hpcfit.pipelines.runner import Job, workload_run
from hpcfit.status import EXIT_OK, Status

log = logging.getLogger("hpcfit")


@dataclass
class Block:
    """One rank's members [start, stop) and what it computed for them."""

    start: int
    stop: int
    theta0: np.ndarray  # (b, N) rad
    omega: np.ndarray  # (b, N) rad/time with per-member ω, else (0, N)
    final: np.ndarray  # (b, N) rad, unwrapped
    order_parameter: np.ndarray  # (b, n_steps + 1), or (b, 0) when not recorded
    trajectory: np.ndarray | None  # (b, n_steps + 1, N) with record=trajectory
    device: str
    wall_s: float


MATRIX_COPIES = 4
"""N×N float64 arrays a rank holds at once: the coupling on the host and on the device and the
integrator's pairwise terms (2.7–2.9 measured at N = 4000 and 8000, one member per chunk)."""


def rank_memory_mb(k: KuramotoConfig, n_members: int, gathered: int) -> float:
    """Memory a rank needs (MB): the N×N matrices, its ``n_members`` outputs twice (device and
    host), and the ``gathered`` members' outputs it collects (rank 0: all of them)."""
    n = k.n_oscillators
    steps = k.n_steps + 1
    per_member = {"trajectory": steps * n, "order_parameter": steps + n, "final": n}
    values = MATRIX_COPIES * n * n + (2 * n_members + gathered) * per_member[k.record.value]
    return 8.0 * values / 2**20


def require_memory(cfg: KuramotoJob, n_members: int, gathered: int) -> None:
    """ConfigError before any large allocation when the rank's outputs and matrices would not
    fit in what it can have (``mpi.memory_limit_mb`` or measured)."""
    from hpcfit.runtime.memory import over_limit

    k = cfg.kuramoto
    need = over_limit(rank_memory_mb(k, n_members, gathered), cfg.mpi.memory_limit_mb)
    if need is not None:
        matrices = rank_memory_mb(k, 0, 0)
        key = "n_oscillators" if 2 * matrices > rank_memory_mb(k, n_members, gathered) else "record"
        raise ConfigError(
            f"kuramoto.{key}: N = {k.n_oscillators} with {n_members} member(s) of "
            f"{k.n_steps} steps on this rank (record={k.record.value}) needs {need}; lower "
            "kuramoto.n_oscillators, n_members or n_steps, or record less"
        )


def network(k: KuramotoConfig) -> tuple[np.ndarray, np.ndarray]:
    """The shared (ω (N,), K (N, N)) of ``kuramoto.network``; K = coupling/N off the diagonal."""
    from hpcfit.kuramoto import network as nets

    n = k.n_oscillators
    coupling = nets.all_to_all(n, k.coupling)
    if k.network.value == "bench":
        omega = nets.bench_network(n)[0]
    elif k.network.value == "lorentzian":
        omega = nets.lorentzian_frequencies(n, 0.5)
    else:
        omega = nets.gaussian_frequencies(n, 1.0)
    return np.asarray(omega, dtype=np.float64), np.asarray(coupling, dtype=np.float64)


def member_draws(k: KuramotoConfig, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """θ0_m ~ U(0, 2π)^N and, with per-member ω, ω_m, for members [start, stop).

    ``k_m = fold_in(PRNGKey(seed), m)`` is split into (k_θ, k_ω): θ0 comes first, then ω, drawn
    with the network's frequency law (bench: N(0, 0.7²); lorentzian: Cauchy(0, 0.5);
    gaussian: N(0, 1)).
    """
    import jax

    n = k.n_oscillators
    root = jax.random.PRNGKey(k.seed)
    thetas, omegas = [], []
    for m in range(start, stop):
        k_theta, k_omega = jax.random.split(jax.random.fold_in(root, m))
        thetas.append(np.asarray(jax.random.uniform(k_theta, (n,), minval=0.0, maxval=2 * np.pi)))
        if k.omega is KuramotoOmega.per_member:
            if k.network.value == "lorentzian":
                omegas.append(0.5 * np.asarray(jax.random.cauchy(k_omega, (n,))))
            else:
                scale = 0.7 if k.network.value == "bench" else 1.0
                omegas.append(scale * np.asarray(jax.random.normal(k_omega, (n,))))
    theta0 = np.stack(thetas) if thetas else np.zeros((0, n))
    omega = np.stack(omegas) if omegas else np.zeros((0, n))
    return theta0.astype(np.float64), omega.astype(np.float64)


def resolve_rank_device(cfg: KuramotoJob, n_ranks: int) -> Any:
    """The one device this rank's whole block runs on (score ⌈B/P⌉·N); None: routing off."""
    from hpcfit import device

    spec = cfg.device.spec.strip().lower()
    if spec == "none":
        return None
    k = cfg.kuramoto
    score = device.kuramoto_score(device.n_local(k.n_members, n_ranks), k.n_oscillators)
    try:
        return device.resolve_device(spec, score=score, threshold=cfg.device.threshold)
    except (RuntimeError, ValueError) as exc:  # no GPU for device.spec=gpu, bad env variable
        raise ConfigError(f"device.spec={spec}: {exc}") from None


def _chunks(start: int, stop: int, size: int | None) -> list[tuple[int, int]]:
    if stop <= start:
        return []
    step = size or (stop - start)
    return [(a, min(a + step, stop)) for a in range(start, stop, step)]


def _pad(x: np.ndarray, rows: int) -> np.ndarray:
    """``x`` with its last row repeated up to ``rows`` rows (padding only; results discarded)."""
    if x.shape[0] >= rows or x.shape[0] == 0:
        return x
    return np.concatenate([x, np.repeat(x[-1:], rows - x.shape[0], axis=0)])


def simulate_block(
    cfg: KuramotoJob, rank: int, n_ranks: int, chunk_dir: Path | None, fingerprint: str
) -> Block:
    """Integrate this rank's members on its resolved device, chunk by chunk (checkpointed)."""
    from hpcfit.io import kuramoto_out
    from hpcfit.kuramoto import ensemble, order_parameter

    k = cfg.kuramoto
    t0 = time.perf_counter()
    start, stop = load_balance(k.n_members, n_ranks, rank)
    require_memory(cfg, stop - start, k.n_members if rank == 0 else 0)
    omega_shared, coupling = network(k)
    theta0, omega_m = member_draws(k, start, stop)
    dev = resolve_rank_device(cfg, n_ranks)
    record = k.record.value
    finals, rs, trajs = [], [], []
    size = cfg.device.batch_chunk
    for a, b in _chunks(start, stop, size):
        cached = kuramoto_out.load_chunk(chunk_dir, a, b, fingerprint) if chunk_dir else None
        if cached is None:
            rows = size or (b - a)
            th = _pad(theta0[a - start : b - start], rows)
            om = _pad(omega_m[a - start : b - start], rows) if omega_m.shape[0] else omega_shared
            out = ensemble(th, om, coupling, dt=k.dt, n_steps=k.n_steps, record=record, device=dev)
            cached = {key: np.asarray(v)[: b - a] for key, v in out.items()}
            if record == "trajectory":
                cached["final"] = cached["trajectory"][:, -1, :]
                cached["order_parameter"] = np.asarray(order_parameter(cached["trajectory"]))
            if chunk_dir is not None:
                kuramoto_out.save_chunk(chunk_dir, a, b, fingerprint, cached)
        finals.append(cached["final"])
        rs.append(cached.get("order_parameter", np.zeros((b - a, 0))))
        if record == "trajectory":
            trajs.append(cached["trajectory"])
    n = k.n_oscillators
    width = 0 if k.record is KuramotoRecord.final else k.n_steps + 1
    return Block(
        start=start,
        stop=stop,
        theta0=theta0,
        omega=omega_m,
        final=np.concatenate(finals) if finals else np.zeros((0, n)),
        order_parameter=np.concatenate(rs) if rs else np.zeros((0, width)),
        trajectory=(
            (np.concatenate(trajs) if trajs else np.zeros((0, k.n_steps + 1, n)))
            if record == "trajectory"
            else None
        ),
        device="none (routing off)" if dev is None else f"{dev.platform}:{dev.id}",
        wall_s=time.perf_counter() - t0,
    )


def fingerprint_of(cfg: KuramotoJob) -> str:
    """What a finished chunk depends on: the Kuramoto settings, the version and batch_chunk."""
    from hpcfit.io.checkpoint import fingerprint

    doc = {"hpcfit": __version__, "kuramoto": plain(cfg.kuramoto, nonfinite="keep")}
    doc["batch_chunk"] = cfg.device.batch_chunk
    return fingerprint(doc)


def seeds_of(cfg: KuramotoJob) -> dict[str, int]:
    return {"kuramoto.seed": cfg.kuramoto.seed}


def _outline(cfg: KuramotoJob, job: Job) -> int:
    """Simulate each rank's members, gather them, write the outputs on rank 0."""
    from hpcfit.io import kuramoto_out

    k = cfg.kuramoto
    comm = job.comm
    if job.root:
        log.info(
            "kuramoto: N=%d, %d members, %d steps of dt=%g on %d ranks",
            k.n_oscillators,
            k.n_members,
            k.n_steps,
            k.dt,
            comm.size,
        )
    chunk_dir = job.run_dir / "kuramoto" / "chunks"
    block, status = job.on_every_rank(
        lambda: simulate_block(cfg, comm.rank, comm.size, chunk_dir, fingerprint_of(cfg))
    )
    if status.final:
        return status.code
    gathered = kuramoto_out.gather(comm, block, k, job.run_dir)
    _, status = job.on_root(lambda record: _write(cfg, job.run_dir, record, gathered))
    return status.code


def _write(cfg: KuramotoJob, run_dir: Path, record: RunRecord, gathered: Any) -> Status:
    """Rank 0: the output files and the run record's final state."""
    from hpcfit.io import kuramoto_out

    kuramoto_out.write_outputs(run_dir, cfg, gathered, *network(cfg.kuramoto))
    record.set(kuramoto=gathered.summary)
    record.finish("ok", EXIT_OK)
    log.info("run directory: %s (exit 0)", run_dir)
    return Status(EXIT_OK, "ok")


run = workload_run(seeds_of, _outline)
"""Run the ensemble on every rank of ``comm``; rank 0 writes ``kuramoto/``. Exit code."""
