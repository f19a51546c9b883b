"""Range and cross-field checks of a composed configuration (schema: :mod:`hpcfit.config`).

Hydra rejects unknown keys and wrong types while composing; :func:`to_config` turns the
composed config into the frozen schema objects and :func:`validate` then rejects out-of-range
values and inconsistent combinations, raising :class:`~hpcfit.errors.ConfigError` whose message
names the key, the expected value and the received one. No JAX import here.
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hpcfit.config import (
    CmcConfig,
    Config,
    DeviceConfig,
    FileData,
    KuramotoConfig,
    KuramotoJob,
    Launcher,
    ModelConfig,
    MpiConfig,
    NlsqConfig,
    NrptConfig,
    NrptJob,
    NrptModel,
    ScalingParamConfig,
    SyntheticData,
    XpcsJob,
)
from hpcfit.errors import ConfigError, describe_omegaconf_error


def to_config(cfg: DictConfig) -> Config:
    """Convert the composed Hydra config (without its ``hydra`` node) to the frozen schema of
    its workload and :func:`validate` it."""
    try:
        obj = OmegaConf.to_object(cfg)
    except Exception as exc:  # OmegaConf names the key in its message
        raise ConfigError(describe_omegaconf_error(exc)) from None
    assert isinstance(obj, XpcsJob | KuramotoJob | NrptJob)
    validate(obj)
    return obj


def _require(ok: bool, key: str, expected: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")


def _positive(key: str, value: float) -> None:
    _require(math.isfinite(value) and value > 0, key, "a finite value > 0", value)


def validate(cfg: Config) -> None:
    """Range and cross-field checks; raises :class:`ConfigError` naming the first bad key."""
    _validate_mpi(cfg.mpi)
    if isinstance(cfg, KuramotoJob):
        _validate_device(cfg.device)
        _validate_kuramoto(cfg.kuramoto)
    elif isinstance(cfg, NrptJob):
        _validate_device(cfg.device)
        _validate_nrpt(cfg.nrpt)
    else:
        _validate_xpcs(cfg)


def _validate_xpcs(cfg: XpcsJob) -> None:
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
        _require(data.frame_stride >= 1, "data.frame_stride", "an integer >= 1", data.frame_stride)
        if data.dt is not None:
            _positive("data.dt", data.dt)
        if data.q is not None:
            _positive("data.q", data.q)
        _require(data.q_tolerance >= 0, "data.q_tolerance", "a value >= 0", data.q_tolerance)
        if data.q_max_rel_distance is not None:
            _require(
                data.q_max_rel_distance >= 0,
                "data.q_max_rel_distance",
                "null or a value >= 0",
                data.q_max_rel_distance,
            )
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
    _require(nlsq.coarse.frames >= 0, "nlsq.coarse.frames", "an integer >= 0", nlsq.coarse.frames)
    _require(nlsq.coarse.starts >= 1, "nlsq.coarse.starts", "an integer >= 1", nlsq.coarse.starts)
    fine = nlsq.coarse.fine_steps
    _require(fine >= 1, "nlsq.coarse.fine_steps", "an integer >= 1", fine)
    above = nlsq.coarse.chunked_above
    _require(above >= 0, "nlsq.coarse.chunked_above", "an integer >= 0", above)
    _require(
        nlsq.coarse.max_nfev >= 1, "nlsq.coarse.max_nfev", "an integer >= 1", nlsq.coarse.max_nfev
    )
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
    if mpi.memory_limit_mb is not None:
        _require(
            mpi.memory_limit_mb > 0,
            "mpi.memory_limit_mb",
            "null or a number > 0",
            mpi.memory_limit_mb,
        )
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
    _require(0 < cmc.plan_probe <= 1, "cmc.plan_probe", "a fraction in (0, 1]", cmc.plan_probe)
    _require(
        cmc.enabled or not cmc.plan_only,
        "cmc.plan_only",
        "false when cmc.enabled=false (the plan sizes the CMC job)",
        cmc.plan_only,
    )
    _require(
        math.isfinite(cmc.init_jitter) and cmc.init_jitter >= 0,
        "cmc.init_jitter",
        "a finite value >= 0",
        cmc.init_jitter,
    )
    _positive("cmc.robust_z", cmc.robust_z)
    _require(cmc.max_retries >= 0, "cmc.max_retries", "an integer >= 0", cmc.max_retries)
    limit = cmc.shard_time_limit_s
    _require(limit >= 0, "cmc.shard_time_limit_s", "seconds >= 0 (0: no limit)", limit)
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


DEVICE_SPECS = ("auto", "cpu", "gpu", "none")
NRPT_MAX_ROUNDS = 24  # hpcfit.nrpt.run.MAX_ROUNDS (equal by test), kept here to avoid JAX


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(key: str, value: float) -> None:
    _require(math.isfinite(value), key, "a finite value", value)


def _validate_device(device: DeviceConfig) -> None:
    spec = device.spec.strip().lower()
    _require(spec in DEVICE_SPECS, "device.spec", f"one of {', '.join(DEVICE_SPECS)}", device.spec)
    if device.threshold is not None:
        t = device.threshold
        _require(math.isfinite(t) and t >= 0, "device.threshold", "null or a finite value >= 0", t)
    g = device.gpus_per_node
    ok = g == "auto" or (_is_int(g) and g >= 0)
    _require(ok, "device.gpus_per_node", "'auto' or an integer >= 0", g)
    if device.batch_chunk is not None:
        _require(device.batch_chunk >= 1, "device.batch_chunk", "null or >= 1", device.batch_chunk)
    if device.compile_cache is not None:
        _require(bool(device.compile_cache.strip()), "device.compile_cache", "null or a folder", "")


def _validate_kuramoto(k: KuramotoConfig) -> None:
    _require(k.seed >= 0, "kuramoto.seed", "an integer >= 0", k.seed)
    _require(k.n_oscillators >= 1, "kuramoto.n_oscillators", "an integer >= 1", k.n_oscillators)
    _require(k.n_members >= 1, "kuramoto.n_members", "an integer >= 1", k.n_members)
    _positive("kuramoto.dt", k.dt)
    _require(k.n_steps >= 1, "kuramoto.n_steps", "an integer >= 1", k.n_steps)
    _finite("kuramoto.coupling", k.coupling)
    if k.checkpoint_steps is not None:
        _require(
            1 <= k.checkpoint_steps <= k.n_steps,
            "kuramoto.checkpoint_steps",
            f"null or an integer in [1, kuramoto.n_steps={k.n_steps}]",
            k.checkpoint_steps,
        )


def _validate_nrpt(n: NrptConfig) -> None:
    _require(n.seed >= 0, "nrpt.seed", "an integer >= 0", n.seed)
    if n.model is NrptModel.grid:
        _require(n.L >= 2, "nrpt.L", "an integer >= 2", n.L)
    else:
        _require(n.model_file is not None, "nrpt.model_file", "a JSON file (nrpt.model=file)", None)
    _finite("nrpt.J", n.J)
    _finite("nrpt.h", n.h)
    _require(math.isfinite(n.beta) and n.beta >= 0, "nrpt.beta", "a finite value >= 0", n.beta)
    _require(n.n_chains >= 2, "nrpt.n_chains", "an integer >= 2", n.n_chains)
    limit = NRPT_MAX_ROUNDS
    _require(1 <= n.n_rounds <= limit, "nrpt.n_rounds", f"an integer in [1, {limit}]", n.n_rounds)
    _require(n.n_expl >= 1, "nrpt.n_expl", "an integer >= 1", n.n_expl)
    _require(
        0 < n.target_acceptance < 1,
        "nrpt.target_acceptance",
        "a value in (0, 1)",
        n.target_acceptance,
    )
    if n.schedule is not None:
        _validate_schedule(list(n.schedule), n.n_chains)


def _validate_schedule(betas: list[float], n_chains: int) -> None:
    key = "nrpt.schedule"
    _require(
        len(betas) == n_chains, key, f"{n_chains} values (nrpt.n_chains)", f"{len(betas)} values"
    )
    _require(all(math.isfinite(b) for b in betas), key, "finite values", betas)
    _require(betas[0] == 0.0 and betas[-1] == 1.0, key, "first value 0 and last value 1", betas)
    ok = all(a < b for a, b in zip(betas, betas[1:], strict=False))
    _require(ok, key, "strictly increasing values", betas)
