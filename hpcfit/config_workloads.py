"""The configuration sections of the routed workloads: ``device``, ``kuramoto`` and ``nrpt``.

Frozen dataclasses with the defaults of ``configs/{device,kuramoto,nrpt}/default.yaml``;
:class:`hpcfit.config.Config` holds them. Checked by
:mod:`hpcfit.validation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class DeviceConfig:
    """Device routing of the Kuramoto and NRPT workloads.

    XPCS NUTS never consults it: it always runs on the CPU's virtual devices.
    """

    spec: str = "auto"  # auto | cpu | gpu | none (strings of hpcfit.device.resolve_device)
    threshold: float | None = None  # null: HPCFIT_DEVICE_THRESHOLD, else 4096
    gpus_per_node: Any = "auto"  # "auto" (CUDA_VISIBLE_DEVICES, SLURM_GPUS_ON_NODE) or an int
    deterministic_gpu: bool = True  # --xla_gpu_deterministic_ops=true on GPU ranks
    batch_chunk: int | None = None  # null: one batch per rank; else fixed-size vmapped chunks
    compile_cache: str | None = None  # persistent compilation cache folder for GPU ranks


class KuramotoNetwork(Enum):
    bench = "bench"  # ω ~ N(0, 0.7²) from the fixed benchmark generator
    lorentzian = "lorentzian"  # deterministic Lorentzian quantiles, half-width 0.5
    gaussian = "gaussian"  # deterministic Gaussian quantiles, σ = 1


class KuramotoOmega(Enum):
    shared = "shared"  # one ω for every member (from the network)
    per_member = "per_member"  # ω_m drawn from the member's key, after θ0_m


class KuramotoRecord(Enum):
    order_parameter = "order_parameter"  # r(t) and final phases per member
    trajectory = "trajectory"  # every phase at every step (memory: members × steps × N)
    final = "final"  # final phases only


@dataclass(frozen=True)
class KuramotoConfig:
    """Networked-Kuramoto RK4 ensemble."""

    seed: int = 0
    n_oscillators: int = 256
    n_members: int = 8
    dt: float = 0.05
    n_steps: int = 200
    record: KuramotoRecord = KuramotoRecord.order_parameter
    network: KuramotoNetwork = KuramotoNetwork.bench
    omega: KuramotoOmega = KuramotoOmega.shared
    coupling: float = 1.8  # K_jk = coupling / N off the diagonal
    checkpoint_steps: int | None = None  # null: plain scan; else jax.checkpoint blocks of steps


class NrptModel(Enum):
    grid = "grid"  # L×L grid, uniform J and h
    file = "file"  # JSON {n, edges, J, h} (nrpt.model_file)


@dataclass(frozen=True)
class NrptConfig:
    """Non-reversible parallel tempering on an Ising model."""

    seed: int = 0
    model: NrptModel = NrptModel.grid
    L: int = 4
    periodic: bool = False
    J: float = 1.0
    h: float = 0.0
    beta: float = 1.0  # target inverse temperature β_t (absorbed into E_1 = β_t·H)
    model_file: str | None = None
    n_chains: int = 10
    n_rounds: int = 10
    n_expl: int = 1  # heat-bath sweeps per scan
    schedule: list[float] | None = None  # initial ladder β_0 = 0 < … < β_{N−1} = 1; null: uniform
    target_acceptance: float = 0.5  # a* of the recommended chain count ⌈Λ/(1 − a*)⌉ + 1
