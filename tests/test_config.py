"""Composing the configuration: every group option, strict keys, frozen objects, validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from hpcfit import config as C
from hpcfit.cli import prevalidate
from hpcfit.errors import ConfigError
from hpcfit.xpcs.params import NAMES
from hpcfit.xpcs.synthetic import EMBEDDED, EMBEDDED_FIXED

C.register()
CONFIG_DIR = C.config_dir()


def compose_config(*overrides: str) -> C.Config:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=list(overrides))
    from hpcfit.validation import to_config

    return to_config(cfg)


def test_default_composes_to_frozen_objects() -> None:
    cfg = compose_config()
    assert isinstance(cfg, C.Config) and isinstance(cfg.data, C.EmbeddedData)
    assert isinstance(cfg.nlsq.scaling, C.Scaling) and cfg.nlsq.scaling is C.Scaling.profile
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.nlsq.max_nfev = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("workload", "schema", "sections"),
    [
        ("xpcs", C.XpcsJob, {"workload", "mpi", "data", "model", "nlsq", "cmc"}),
        ("kuramoto", C.KuramotoJob, {"workload", "mpi", "device", "kuramoto"}),
        ("nrpt", C.NrptJob, {"workload", "mpi", "device", "nrpt"}),
    ],
)
def test_each_workload_selects_its_own_schema(workload, schema, sections) -> None:
    cfg = compose_config(f"workload={workload}")
    assert type(cfg) is schema and cfg.workload.name.value == workload
    assert {f.name for f in dataclasses.fields(cfg)} == sections
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        composed = compose(config_name="config", overrides=[f"workload={workload}"])
    assert set(composed.keys()) == sections  # the run record's config holds nothing else


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["workload=kuramoto", "cmc.num_chains=2"], "cmc"),
        (["workload=nrpt", "data=synthetic"], "data"),
        (["workload=nrpt", "kuramoto.n_members=4"], "kuramoto"),
        (["device.spec=cpu"], "device"),  # the XPCS fit is never routed
    ],
)
def test_a_key_of_another_workload_is_an_input_error(overrides, key) -> None:
    with pytest.raises(ConfigError, match=key):
        prevalidate(overrides)


def test_nrpt_round_limit_is_the_engines() -> None:
    from hpcfit.nrpt.run import MAX_ROUNDS
    from hpcfit.validation import NRPT_MAX_ROUNDS

    assert NRPT_MAX_ROUNDS == MAX_ROUNDS
    assert compose_config("workload=nrpt", f"nrpt.n_rounds={MAX_ROUNDS}").nrpt.n_rounds == 24
    with pytest.raises(ConfigError, match=r"^nrpt.n_rounds: expected an integer in \[1, 24\]"):
        prevalidate(["workload=nrpt", f"nrpt.n_rounds={MAX_ROUNDS + 1}"])


@pytest.mark.parametrize(
    ("option", "schema", "fixed"),
    [
        ("embedded", C.EmbeddedData, set(EMBEDDED_FIXED)),
        ("synthetic", C.SyntheticData, set(EMBEDDED_FIXED)),
        ("file", C.FileData, {"f2"}),
    ],
)
def test_each_data_option_selects_its_schema_and_model(option, schema, fixed) -> None:
    extra = ["data.path=x.h5", "data.dt=0.1"] if option == "file" else []
    cfg = compose_config(f"data={option}", *extra)
    assert type(cfg.data) is schema
    assert set(cfg.model.fixed) == fixed
    assert set(cfg.model.space().free_names) == set(NAMES) - fixed


def test_synthetic_defaults_match_the_embedded_truth() -> None:
    cfg = compose_config("data=synthetic")
    assert tuple(cfg.data.truth) == EMBEDDED.truth and tuple(cfg.data.phi) == EMBEDDED.phi


@pytest.mark.parametrize(
    "override",
    [
        "nlsq.scaling=fit",
        "nlsq.loss=soft_l1",
        "nlsq.x_scale=jac",
        "nlsq.multistart.n=4",
        "nlsq.sigma=[0.002]",
        "data=file",
        "cmc.seed=3",
        "cmc.n_shards=4",
        "cmc.combine=robust",
        "cmc.gates.max_rhat=1.1",
        "cmc.checkpoint.enabled=false",
        "mpi.ranks=2",
        "mpi.launcher=mpiexec",
        "mpi.cores_per_rank=1",
        "workload=xpcs",
        "model.contrast.vary=false",
        "+model.priors.v0=[900.0,100.0]",
    ],
)
def test_every_group_key_is_settable(override: str) -> None:
    extra = ["data.path=x.h5", "data.dt=0.1"] if override == "data=file" else []
    cfg = compose_config(override, *extra)
    key, _, value = override.lstrip("+").partition("=")
    node = cfg
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    if key not in ("data", "workload"):
        shown = node.value if hasattr(node, "value") else node
        assert str(shown).replace(" ", "").lower() == value.lower().replace(" ", "")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["nlsq.unknown=1"], "nlsq.unknown"),
        (["nlsq.max_nfev=0"], "nlsq.max_nfev"),
        (["nlsq.gtol=2"], "nlsq.gtol"),
        (["nlsq.multistart.n=-1"], "nlsq.multistart.n"),
        (["nlsq.sigma=[0.0]"], "nlsq.sigma"),
        (["cmc.n_shards=0"], "cmc.n_shards"),
        (["nlsq.enabled=false"], "cmc.require_warm_start"),
        (["cmc.n_shards=many"], "cmc.n_shards"),
        (["cmc.num_chains=1"], "cmc.num_chains"),
        (["cmc.target_accept=1.0"], "cmc.target_accept"),
        (["cmc.combine=mean"], "cmc.combine"),
        (["cmc.on_shard_failure=ignore"], "cmc.on_shard_failure"),
        (["cmc.gates.max_rhat=0.9"], "cmc.gates.max_rhat"),
        (["cmc.max_excluded_fraction=1.0"], "cmc.max_excluded_fraction"),
        (["cmc.min_points_per_shard=30000"], "cmc.min_points_per_shard"),
        (["mpi.ranks=0"], "mpi.ranks"),
        (["mpi.ranks=2", "mpi.launcher=none"], "mpi.ranks"),
        (["mpi.cores_per_rank=0"], "mpi.cores_per_rank"),
        (["mpi.memory_limit_mb=0"], "mpi.memory_limit_mb"),
        (["data.start_frame=0"], "data.start_frame"),
        (["data.end_frame=1"], "data.end_frame"),
        (["data=synthetic", "data.q=0"], "data.q"),
        (["data=synthetic", "data.truth=[1.0]"], "data.truth"),
        (["data=synthetic", "data.sigma=[0.1,0.2]"], "data.sigma"),
        (
            ["data=file", "data.path=x", "data.dt=1", "data.phi=[0.0]", "data.phi_ranges=[[0,1]]"],
            "data.phi_ranges",
        ),
        (["data=file", "data.path=x", "data.dt=1", "data.phi_ranges=[[0,1,2]]"], "data.phi_ranges"),
        (["model.contrast.lo=2"], "model.contrast.hi"),
        (["+model.bounds.f0=[0.5,0.1]"], "model.bounds.f0"),
        (["+model.start.zeta=1"], "model.start.zeta"),
    ],
)
def test_invalid_values_name_the_key(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}"):
        prevalidate(overrides)


def test_phi_ranges_accept_integer_angles() -> None:
    cfg = compose_config("data=file", "data.path=x.h5", "data.dt=0.1", "data.phi_ranges=[[350,10]]")
    assert cfg.data.phi_ranges == [[350, 10]]


def test_prior_is_retruncated_to_narrowed_bounds() -> None:
    cfg = compose_config("+model.bounds.v0=[1000.0,2000.0]")
    space = cfg.model.space()
    k = NAMES.index("v0")
    assert (space.lo[k], space.hi[k]) == (1000.0, 2000.0)


def test_configs_ship_with_the_package() -> None:
    assert (Path(C.config_dir()) / "config.yaml").is_file()
    for group in ("data", "model", "nlsq", "cmc", "mpi", "workload"):
        assert any((CONFIG_DIR / group).glob("*.yaml")), group
