"""The configuration schema: frozen dataclasses registered with Hydra's ConfigStore.

Values live in ``configs/`` (YAML). One root schema per workload (:class:`XpcsJob`,
:class:`KuramotoJob`, :class:`NrptJob`): ``workload=`` selects it, so a job carries only its own
sections. This module holds the XPCS sections; those of the routed workloads (``device``,
``kuramoto``, ``nrpt``) are in :mod:`hpcfit.config_workloads`. Hydra rejects unknown keys and
wrong types while composing (struct mode); :func:`hpcfit.validation.to_config` converts a
composed config and rejects out-of-range values, naming the key. No JAX import here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from hpcfit.config_workloads import (  # noqa: F401  (part of the schema's public names)
    DeviceConfig,
    KuramotoConfig,
    KuramotoNetwork,
    KuramotoOmega,
    KuramotoRecord,
    NrptConfig,
    NrptModel,
)
from hpcfit.errors import ConfigError
from hpcfit.xpcs.file_index import FlatKeys
from hpcfit.xpcs.settings import (  # noqa: F401  (part of the schema's public names)
    CoarseConfig,
    Loss,
    MultistartConfig,
    NlsqConfig,
    Scaling,
    XScale,
)


class Layout(Enum):
    auto = "auto"
    aps_u = "aps_u"
    aps_legacy = "aps_legacy"
    nexus = "nexus"
    exchange = "exchange"
    flat = "flat"


class QSelect(Enum):
    nearest = "nearest"
    tolerance = "tolerance"
    all = "all"


class Workload(Enum):
    xpcs = "xpcs"  # XPCS heterodyne fit: NLSQ warm start, CMC over shards (the main job)
    kuramoto = "kuramoto"  # networked-Kuramoto RK4 ensemble
    nrpt = "nrpt"  # non-reversible parallel tempering on an Ising model


@dataclass(frozen=True)
class WorkloadConfig:
    name: Workload = Workload.xpcs  # chosen with the config group: workload=xpcs|kuramoto|nrpt


@dataclass(frozen=True)
class EmbeddedData:
    """The embedded default dataset, optionally windowed."""

    start_frame: int = 1
    end_frame: int | None = None


@dataclass(frozen=True)
class FileData:
    """A two-time correlation file (HDF5 or NPZ; layout auto-detected)."""

    path: str = MISSING
    dt: float | None = None  # frame interval, s; null: the file's (frame time × avg × stride)
    layout: Layout = Layout.auto
    q: float | None = None  # target q, 1/Å
    q_select: QSelect = QSelect.nearest
    q_tolerance: float = 0.0
    q_max_rel_distance: float | None = 0.25  # nearest: error beyond this relative distance
    phi: list[float] | None = None  # target angles, deg; null = all
    phi_ranges: list[Any] | None = None  # wrap-aware [lo, hi] pairs, deg
    phi_tolerance: float = 5.0
    start_frame: int = 1
    end_frame: int | None = None
    frame_stride: int = 1  # keep every k-th frame of the window (exact values; grid step k·dt)
    keys: FlatKeys = field(default_factory=FlatKeys)  # dataset names of the flat layout


@dataclass(frozen=True)
class SyntheticData:
    """A generated dataset; lists of length 1 apply to every angle."""

    n_frames: int = 100
    dt: float = 0.01
    start_frame: int = 1
    q: float = 0.0054
    phi: list[float] = field(default_factory=lambda: [0.0, 45.0, 90.0])
    contrast: list[float] = field(default_factory=lambda: [0.3])
    offset: list[float] = field(default_factory=lambda: [1.0])
    sigma: list[float] = field(default_factory=lambda: [0.002])
    seed: int = 12345
    truth: list[float] = field(
        default_factory=lambda: (
            [3000.0, 0.2, 0.0, 30000.0, 0.5, 0.0, 1500.0, 0.3] + [0.0, 0.4, -0.8, 0.0, 0.1, 3.0]
        )
    )


@dataclass(frozen=True)
class ScalingParamConfig:
    start: float
    lo: float
    hi: float
    prior_mean: float
    prior_sd: float
    vary: bool = True


@dataclass(frozen=True)
class ModelConfig:
    """Overrides of the parameter registry (``hpcfit.xpcs.params``), by parameter name."""

    start: dict[str, float] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=lambda: ["f2"])
    bounds: dict[str, list[float]] = field(default_factory=dict)  # name: [lo, hi]
    priors: dict[str, list[float]] = field(default_factory=dict)  # name: [mean, sd]
    contrast: ScalingParamConfig = field(
        default_factory=lambda: ScalingParamConfig(0.5, 0.0, 1.0, 0.5, 0.25)
    )
    offset: ScalingParamConfig = field(
        default_factory=lambda: ScalingParamConfig(1.0, 0.5, 1.5, 1.0, 0.25)
    )

    def space(self):
        """The effective :class:`~hpcfit.xpcs.params.ParamSpace` (errors name the key)."""
        from hpcfit.xpcs.params import ParamInfo, make_space

        def info(name: str, c: ScalingParamConfig) -> ParamInfo:
            return ParamInfo(name, "1", c.start, c.lo, c.hi, c.prior_mean, c.prior_sd)

        try:
            return make_space(
                start=dict(self.start),
                fixed=tuple(self.fixed),
                bounds={k: (v[0], v[1]) for k, v in self.bounds.items()},
                priors={k: (v[0], v[1]) for k, v in self.priors.items()},
                contrast=info("contrast", self.contrast),
                offset=info("offset", self.offset),
                vary_contrast=self.contrast.vary,
                vary_offset=self.offset.vary,
            )
        except ValueError as exc:
            raise ConfigError(f"model.{exc}") from None


class Precondition(Enum):
    whiten = "whiten"  # sample z with u = û + L·z (default)
    mass = "mass"  # Σ_w as NUTS's initial inverse mass matrix
    none = "none"  # identity start (tests)


class CmcScaling(Enum):
    marginal = "marginal"  # contrast/offset integrated out, drawn back per draw
    sample = "sample"  # contrast/offset sampled with the physics


class Combiner(Enum):
    consensus = "consensus"
    parametric = "parametric"
    robust = "robust"


class ShardFailure(Enum):
    retry = "retry"
    exclude = "exclude"
    abort = "abort"


class ShardOwner(Enum):
    modulo = "modulo"  # shard s on rank s mod R
    block = "block"  # balanced contiguous blocks of shard ids


class Launcher(Enum):
    auto = "auto"  # srun inside a Slurm allocation (srun on PATH), else mpiexec
    mpiexec = "mpiexec"
    srun = "srun"
    none = "none"  # never spawn ranks


@dataclass(frozen=True)
class CheckpointConfig:
    enabled: bool = True  # write finished shards atomically; a re-run resumes from them


@dataclass(frozen=True)
class GatesConfig:
    """Per-shard pass/fail gates."""

    max_rhat: float = 1.05
    min_ess_bulk_per_chain: float = 100.0
    min_ess_tail_per_chain: float = 100.0
    max_divergence_rate: float = 0.01
    min_bfmi: float = 0.3


@dataclass(frozen=True)
class CmcConfig:
    """Consensus Monte Carlo over data shards."""

    enabled: bool = True
    plan_only: bool = False  # size the job (load, warm start, one-shard probe) and stop
    plan_probe: float = 0.1  # fraction of num_samples the probe runs (≥ 20), after all the warmup
    require_warm_start: bool = True  # an unusable warm start stops the job (exit 4)
    seed: int = 0
    n_shards: Any = "auto"  # "auto" or an integer K >= 1
    max_points_per_shard: int = 20000
    min_points_per_shard: int = 2000
    min_shards_per_rank: int = 1
    shard_owner: ShardOwner = ShardOwner.modulo
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    num_warmup: int = 500
    num_samples: int = 1000
    num_chains: int = 4  # chains per shard = virtual XLA CPU devices per rank
    target_accept: float = 0.9
    max_tree_depth: int = 10
    dense_mass: bool = True  # full adapted mass matrix (see CHANGELOG: decisions)
    precondition: Precondition = Precondition.whiten
    scaling: CmcScaling = CmcScaling.marginal  # how NUTS treats each slot's contrast and offset
    whiten_scale: float = 1.0
    init_jitter: float = 0.5
    sample_sigma: bool = False  # sample σ_a ~ HalfNormal(2·σ̂_a) instead of fixing σ̂_a
    combine: Combiner = Combiner.consensus
    robust_z: float = 3.5
    on_shard_failure: ShardFailure = ShardFailure.retry
    max_retries: int = 2
    shard_time_limit_s: float = 0.0  # > 0: a shard still running after this long stops the job
    max_excluded_fraction: float = 0.25
    gates: GatesConfig = field(default_factory=GatesConfig)


@dataclass(frozen=True)
class MpiConfig:
    """How ranks are started."""

    ranks: int | None = None  # None: 1 in launcher mode, the world size in rank mode
    launcher: Launcher = Launcher.auto
    cores_per_rank: int | None = None  # None: cmc.num_chains for xpcs, 1 for kuramoto and nrpt
    oversubscribe: bool = False  # launcher mode: allow more ranks than cores (or Slurm tasks)
    memory_limit_mb: float | None = None  # most one rank may use; None: measured (cgroup, free)


@dataclass(frozen=True)
class JobConfig:
    """The sections every job has: which workload, and how its ranks start."""

    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    mpi: MpiConfig = field(default_factory=MpiConfig)


@dataclass(frozen=True)
class XpcsJob(JobConfig):
    """``workload=xpcs``: data selection, parameter model, NLSQ warm start and CMC."""

    data: Any = MISSING  # EmbeddedData | FileData | SyntheticData (the chosen group option)
    model: ModelConfig = field(default_factory=ModelConfig)
    nlsq: NlsqConfig = field(default_factory=NlsqConfig)
    cmc: CmcConfig = field(default_factory=CmcConfig)


@dataclass(frozen=True)
class KuramotoJob(JobConfig):
    """``workload=kuramoto``: a networked-Kuramoto RK4 ensemble, routed to a device."""

    device: DeviceConfig = field(default_factory=DeviceConfig)
    kuramoto: KuramotoConfig = field(default_factory=KuramotoConfig)


@dataclass(frozen=True)
class NrptJob(JobConfig):
    """``workload=nrpt``: non-reversible parallel tempering on an Ising model, routed to a
    device."""

    device: DeviceConfig = field(default_factory=DeviceConfig)
    nrpt: NrptConfig = field(default_factory=NrptConfig)


Config = XpcsJob | KuramotoJob | NrptJob
"""A job's configuration: the schema its ``workload`` group option selects."""

JOB_SCHEMAS: dict[Workload, type[JobConfig]] = {
    Workload.xpcs: XpcsJob,
    Workload.kuramoto: KuramotoJob,
    Workload.nrpt: NrptJob,
}


def cores_per_rank(cfg: JobConfig) -> int:
    """CPU cores each rank should own: ``mpi.cores_per_rank``, else one per chain for the XPCS
    fit (its chains run on parallel virtual devices) and 1 for the Kuramoto and NRPT workloads."""
    if cfg.mpi.cores_per_rank is not None:
        return cfg.mpi.cores_per_rank
    return cfg.cmc.num_chains if isinstance(cfg, XpcsJob) else 1


DATA_SCHEMAS: dict[str, type] = {
    "embedded": EmbeddedData,
    "file": FileData,
    "synthetic": SyntheticData,
}


def _writable(node: DictConfig | ListConfig) -> DictConfig | ListConfig:
    """Clear the read-only flag OmegaConf sets for frozen dataclasses, so overrides can merge."""
    OmegaConf.set_readonly(node, False)
    children: list[Any]
    if isinstance(node, DictConfig):
        children = [node._get_node(key) for key in node.keys()]  # noqa: SLF001
    else:
        children = [node._get_node(index) for index in range(len(node))]  # noqa: SLF001
    for child in children:
        if isinstance(child, DictConfig | ListConfig):
            _writable(child)
    return node


def register() -> None:
    """Store the schema nodes in Hydra's ConfigStore: one root schema per workload
    (``<workload>_schema``, named first in ``configs/workload/<workload>.yaml``) and the data
    sources' (``data/<x>_schema``)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for workload, schema in JOB_SCHEMAS.items():
        root = _writable(OmegaConf.structured(schema))
        if schema is XpcsJob:  # keyed by parameter name: open for new keys
            for section in ("start", "bounds", "priors"):
                OmegaConf.set_struct(root.model[section], False)
        cs.store(name=f"{workload.value}_schema", node=root)
    for name, schema in DATA_SCHEMAS.items():
        cs.store(group="data", name=f"{name}_schema", node=_writable(OmegaConf.structured(schema)))


def config_dir() -> Path:
    """The shipped ``configs/`` directory (inside the wheel, or the source tree's)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError("hpcfit configs/ directory not found next to the package")
