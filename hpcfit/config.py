"""The configuration schema: frozen dataclasses registered with Hydra's ConfigStore.

Values live in ``configs/`` (YAML); the schema and the cross-field checks live here. Hydra
rejects unknown keys and wrong types while composing (struct mode); :func:`validate` rejects
out-of-range values, naming the key. No JAX import here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from hpcfit.errors import ConfigError
from hpcfit.xpcs.layouts import FlatKeys


class Scaling(Enum):
    profile = "profile"  # variable projection of contrast/offset per slot
    fit = "fit"  # contrast/offset as ordinary unknowns


class Loss(Enum):
    linear = "linear"
    soft_l1 = "soft_l1"


class XScale(Enum):
    prior_sd = "prior_sd"
    jac = "jac"


class Layout(Enum):
    auto = "auto"
    aps_u = "aps_u"
    aps_legacy = "aps_legacy"
    exchange = "exchange"
    flat = "flat"


class QSelect(Enum):
    nearest = "nearest"
    tolerance = "tolerance"
    all = "all"


@dataclass(frozen=True)
class WorkloadConfig:
    name: str = "xpcs"  # the pipeline to run; this version has the XPCS fit only


@dataclass(frozen=True)
class EmbeddedData:
    """The embedded default dataset (model spec §8), optionally windowed."""

    start_frame: int = 1
    end_frame: int | None = None


@dataclass(frozen=True)
class FileData:
    """A two-time correlation file (HDF5 or NPZ; layout auto-detected)."""

    path: str = MISSING
    dt: float | None = None  # frame interval, s; null: median spacing of the file's time axis
    layout: Layout = Layout.auto
    q: float | None = None  # target q, 1/Å
    q_select: QSelect = QSelect.nearest
    q_tolerance: float = 0.0
    phi: list[float] | None = None  # target angles, deg; null = all
    phi_ranges: list[Any] | None = None  # wrap-aware [lo, hi] pairs, deg
    phi_tolerance: float = 5.0
    start_frame: int = 1
    end_frame: int | None = None
    keys: FlatKeys = field(default_factory=FlatKeys)  # dataset names of the flat layout


@dataclass(frozen=True)
class SyntheticData:
    """A generated dataset (model spec §8); lists of length 1 apply to every angle."""

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


@dataclass(frozen=True)
class MultistartConfig:
    n: int = 0  # 0 = off; otherwise the configured start plus n − 1 Latin-hypercube starts
    seed: int = 0


@dataclass(frozen=True)
class NlsqConfig:
    """Joint multi-angle warm start with ``nlsq.curve_fit`` (cmc spec §1)."""

    enabled: bool = True
    scaling: Scaling = Scaling.profile
    loss: Loss = Loss.linear
    f_scale: float = 1.0
    x_scale: XScale = XScale.prior_sd
    ftol: float = 1e-8
    xtol: float = 1e-8
    gtol: float = 1e-8
    max_nfev: int = 2000
    sigma: list[float] | None = None  # known noise level per slot (one value: all slots)
    multistart: MultistartConfig = field(default_factory=MultistartConfig)
    jac_chunk_bytes: int = 256 * 2**20


class Precondition(Enum):
    whiten = "whiten"  # sample z with u = û + L·z (default)
    mass = "mass"  # Σ_w as NUTS's initial inverse mass matrix
    none = "none"  # identity start (tests)


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
    """Per-shard pass/fail gates (cmc spec §4.2)."""

    max_rhat: float = 1.05
    min_ess_bulk_per_chain: float = 100.0
    min_ess_tail_per_chain: float = 100.0
    max_divergence_rate: float = 0.01
    min_bfmi: float = 0.3


@dataclass(frozen=True)
class CmcConfig:
    """Consensus Monte Carlo over data shards (cmc spec §2–§5, keys of §8)."""

    enabled: bool = True
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
    whiten_scale: float = 1.0
    init_jitter: float = 0.5
    sample_sigma: bool = False  # sample σ_a ~ HalfNormal(2·σ̂_a) instead of fixing σ̂_a
    combine: Combiner = Combiner.consensus
    robust_z: float = 3.5
    on_shard_failure: ShardFailure = ShardFailure.retry
    max_retries: int = 2
    max_excluded_fraction: float = 0.25
    gates: GatesConfig = field(default_factory=GatesConfig)


@dataclass(frozen=True)
class MpiConfig:
    """How ranks are started (design §1.2)."""

    ranks: int | None = None  # None: 1 in launcher mode, the world size in rank mode
    launcher: Launcher = Launcher.auto
    cores_per_rank: int | None = None  # None: chains per rank (cmc.num_chains)


@dataclass(frozen=True)
class Config:
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    data: Any = MISSING  # EmbeddedData | FileData | SyntheticData (the chosen group option)
    model: ModelConfig = field(default_factory=ModelConfig)
    nlsq: NlsqConfig = field(default_factory=NlsqConfig)
    cmc: CmcConfig = field(default_factory=CmcConfig)
    mpi: MpiConfig = field(default_factory=MpiConfig)


DATA_SCHEMAS: dict[str, type] = {
    "embedded": EmbeddedData,
    "file": FileData,
    "synthetic": SyntheticData,
}


def _writable(node: DictConfig | ListConfig) -> DictConfig | ListConfig:
    """Clear the read-only flag OmegaConf sets for frozen dataclasses, so overrides can merge."""
    OmegaConf.set_readonly(node, False)
    children = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for key in children:
        child = node._get_node(key)  # noqa: SLF001
        if isinstance(child, DictConfig | ListConfig):
            _writable(child)
    return node


def register() -> None:
    """Store the schema nodes in Hydra's ConfigStore (``config_schema``, ``data/<x>_schema``)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    root = _writable(OmegaConf.structured(Config))
    for section in ("start", "bounds", "priors"):  # keyed by parameter name: open for new keys
        OmegaConf.set_struct(root.model[section], False)
    cs.store(name="config_schema", node=root)
    for name, schema in DATA_SCHEMAS.items():
        cs.store(group="data", name=f"{name}_schema", node=_writable(OmegaConf.structured(schema)))


def config_dir() -> Path:
    """The shipped ``configs/`` directory (inside the wheel, or the source tree's)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError("hpcfit configs/ directory not found next to the package")


def to_config(cfg: DictConfig) -> Config:
    """Convert the composed Hydra config (without its ``hydra`` node) to frozen objects."""
    try:
        obj = OmegaConf.to_object(cfg)
    except Exception as exc:  # OmegaConf names the key in its message
        raise ConfigError(describe_omegaconf_error(exc)) from None
    assert isinstance(obj, Config)
    validate(obj)
    return obj


def describe_omegaconf_error(exc: BaseException) -> str:
    """One line naming the key from an OmegaConf/Hydra composition error."""
    missing = getattr(exc, "missing_cfg_file", None)  # hydra.errors.MissingConfigException
    if missing and "/" in missing:
        group, option = missing.rsplit("/", 1)
        known = sorted(o for o in getattr(exc, "options", None) or [] if not o.endswith("_schema"))
        return f"{group}: unknown option '{option}'; expected one of {known}"
    cause = exc
    while cause.__cause__ is not None and not hasattr(cause, "full_key"):
        cause = cause.__cause__
    key = getattr(cause, "full_key", None)
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if "Missing mandatory value" in first and key:
        return f"{key}: missing mandatory value; set {key}=..."
    return f"{key}: {first}" if key else first


def _require(ok: bool, key: str, expected: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")


def _positive(key: str, value: float) -> None:
    _require(math.isfinite(value) and value > 0, key, "a finite value > 0", value)


def validate(cfg: Config) -> None:
    """Range and cross-field checks; raises :class:`ConfigError` naming the first bad key."""
    _require(cfg.workload.name == "xpcs", "workload.name", "'xpcs'", cfg.workload.name)
    _validate_mpi(cfg.mpi)
    _validate_cmc(cfg.cmc)
    if cfg.cmc.enabled and cfg.cmc.require_warm_start:
        _require(
            cfg.nlsq.enabled,
            "cmc.require_warm_start",
            "false when nlsq.enabled=false (CMC then starts cold)",
            True,
        )
    _validate_data(cfg.data)
    _validate_model(cfg.model)
    _validate_nlsq(cfg.nlsq)


def _validate_frames(start: int, end: int | None) -> None:
    _require(start >= 1, "data.start_frame", "an integer >= 1 (1-based)", start)
    if end is not None:
        _require(end > start, "data.end_frame", f"null or > data.start_frame={start}", end)


def _validate_data(data: Any) -> None:
    _validate_frames(data.start_frame, getattr(data, "end_frame", None))
    if isinstance(data, FileData):
        if data.dt is not None:
            _positive("data.dt", data.dt)
        if data.q is not None:
            _positive("data.q", data.q)
        _require(data.q_tolerance >= 0, "data.q_tolerance", "a value >= 0", data.q_tolerance)
        _positive("data.phi_tolerance", data.phi_tolerance)
        _require(
            data.phi is None or data.phi_ranges is None,
            "data.phi_ranges",
            "null when data.phi is given (choose one)",
            data.phi_ranges,
        )
        for pair in data.phi_ranges or []:
            ok = isinstance(pair, list | tuple) and len(pair) == 2
            ok = ok and all(isinstance(v, int | float) and math.isfinite(v) for v in pair)
            _require(ok, "data.phi_ranges", "a list of [lo, hi] pairs of angles in degrees", pair)
    elif isinstance(data, SyntheticData):
        _require(data.n_frames >= 2, "data.n_frames", "an integer >= 2", data.n_frames)
        _positive("data.dt", data.dt)
        _positive("data.q", data.q)
        _require(len(data.phi) >= 1, "data.phi", "at least one angle", data.phi)
        _require(data.seed >= 0, "data.seed", "an integer >= 0", data.seed)
        _require(len(data.truth) == 14, "data.truth", "14 values", data.truth)
        for key in ("contrast", "offset", "sigma"):
            values = getattr(data, key)
            _require(
                len(values) in (1, len(data.phi)),
                f"data.{key}",
                f"1 value or {len(data.phi)} (one per data.phi angle)",
                values,
            )
        for s in data.sigma:
            _positive("data.sigma", s)


def _validate_model(model: ModelConfig) -> None:
    from hpcfit.xpcs.params import NAMES

    for section in ("start", "bounds", "priors"):
        for name in getattr(model, section):
            _require(name in NAMES, f"model.{section}.{name}", f"one of {list(NAMES)}", name)
    for name in model.fixed:
        _require(name in NAMES, "model.fixed", f"names from {list(NAMES)}", name)
    for name, pair in model.bounds.items():
        _require(len(pair) == 2, f"model.bounds.{name}", "[lo, hi]", pair)
    for name, pair in model.priors.items():
        _require(len(pair) == 2, f"model.priors.{name}", "[mean, sd]", pair)
    for key in ("contrast", "offset"):
        sp: ScalingParamConfig = getattr(model, key)
        _require(sp.lo < sp.hi, f"model.{key}.hi", f"> model.{key}.lo={sp.lo}", sp.hi)
        _require(
            sp.lo <= sp.start <= sp.hi, f"model.{key}.start", f"in [{sp.lo}, {sp.hi}]", sp.start
        )
        _positive(f"model.{key}.prior_sd", sp.prior_sd)
    model.space()


def _validate_nlsq(nlsq: NlsqConfig) -> None:
    _positive("nlsq.f_scale", nlsq.f_scale)
    for key in ("ftol", "xtol", "gtol"):
        value = getattr(nlsq, key)
        _require(0 < value < 1, f"nlsq.{key}", "a value in (0, 1)", value)
    _require(nlsq.max_nfev >= 1, "nlsq.max_nfev", "an integer >= 1", nlsq.max_nfev)
    _require(nlsq.multistart.n >= 0, "nlsq.multistart.n", "an integer >= 0", nlsq.multistart.n)
    _require(
        nlsq.multistart.seed >= 0, "nlsq.multistart.seed", "an integer >= 0", nlsq.multistart.seed
    )
    _require(
        nlsq.jac_chunk_bytes >= 2**20, "nlsq.jac_chunk_bytes", ">= 1 MiB", nlsq.jac_chunk_bytes
    )
    for s in nlsq.sigma or []:
        _positive("nlsq.sigma", s)


def _validate_mpi(mpi: MpiConfig) -> None:
    if mpi.ranks is not None:
        _require(mpi.ranks >= 1, "mpi.ranks", "null or an integer >= 1", mpi.ranks)
        if mpi.launcher is Launcher.none:
            _require(mpi.ranks == 1, "mpi.ranks", "1 (or null) with mpi.launcher=none", mpi.ranks)
    if mpi.cores_per_rank is not None:
        _require(
            mpi.cores_per_rank >= 1,
            "mpi.cores_per_rank",
            "null or an integer >= 1",
            mpi.cores_per_rank,
        )


def _validate_cmc(cmc: CmcConfig) -> None:
    _require(cmc.seed >= 0, "cmc.seed", "an integer >= 0", cmc.seed)
    k = cmc.n_shards
    ok = k == "auto" or (isinstance(k, int) and not isinstance(k, bool) and k >= 1)
    _require(ok, "cmc.n_shards", "'auto' or an integer >= 1", k)
    for key in ("max_points_per_shard", "min_points_per_shard", "min_shards_per_rank"):
        _require(getattr(cmc, key) >= 1, f"cmc.{key}", "an integer >= 1", getattr(cmc, key))
    _require(
        cmc.min_points_per_shard <= cmc.max_points_per_shard,
        "cmc.min_points_per_shard",
        f"<= cmc.max_points_per_shard={cmc.max_points_per_shard}",
        cmc.min_points_per_shard,
    )
    _require(cmc.num_warmup >= 0, "cmc.num_warmup", "an integer >= 0", cmc.num_warmup)
    _require(cmc.num_samples >= 4, "cmc.num_samples", "an integer >= 4", cmc.num_samples)
    _require(
        cmc.num_chains >= 2,
        "cmc.num_chains",
        "an integer >= 2 (CMC needs 2 chains)",
        cmc.num_chains,
    )
    _require(0 < cmc.target_accept < 1, "cmc.target_accept", "a value in (0, 1)", cmc.target_accept)
    _require(
        1 <= cmc.max_tree_depth <= 15,
        "cmc.max_tree_depth",
        "an integer in [1, 15]",
        cmc.max_tree_depth,
    )
    _positive("cmc.whiten_scale", cmc.whiten_scale)
    _require(
        math.isfinite(cmc.init_jitter) and cmc.init_jitter >= 0,
        "cmc.init_jitter",
        "a finite value >= 0",
        cmc.init_jitter,
    )
    _positive("cmc.robust_z", cmc.robust_z)
    _require(cmc.max_retries >= 0, "cmc.max_retries", "an integer >= 0", cmc.max_retries)
    _require(
        0 <= cmc.max_excluded_fraction < 1,
        "cmc.max_excluded_fraction",
        "a value in [0, 1)",
        cmc.max_excluded_fraction,
    )
    g = cmc.gates
    _require(g.max_rhat >= 1, "cmc.gates.max_rhat", "a value >= 1", g.max_rhat)
    for key in ("min_ess_bulk_per_chain", "min_ess_tail_per_chain", "min_bfmi"):
        _require(getattr(g, key) >= 0, f"cmc.gates.{key}", "a value >= 0", getattr(g, key))
    _require(
        0 <= g.max_divergence_rate <= 1,
        "cmc.gates.max_divergence_rate",
        "a value in [0, 1]",
        g.max_divergence_rate,
    )


def as_plain(obj: Any) -> Any:
    """A frozen config dataclass as plain JSON-able values (enums by value)."""

    def conv(v: Any) -> Any:
        if isinstance(v, Enum):
            return v.value
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        return v

    return conv(asdict(obj) if is_dataclass(obj) else obj)
