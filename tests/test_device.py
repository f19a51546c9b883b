"""Device routing policy, rank roles and the threshold recommendation table.

CPU-only: the GPU is a unique sentinel object returned by a patched ``first_gpu`` and compared
with ``is``. The conftest gives four virtual CPU devices, so "elsewhere" is another CPU device.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hpcfit.device as device
from hpcfit.device import (
    ACCELERATOR,
    CPU,
    DEFAULT_THRESHOLD,
    ENV_DEVICE,
    ENV_THRESHOLD,
    NONE,
    assign_rank_devices,
    decide,
    gpus_per_node_from_env,
    kuramoto_score,
    n_local,
    nrpt_score,
    plan_rank_role,
    recommend_threshold,
    resolve_device,
    resolve_entry_device,
    tree_device_put,
)
from hpcfit.errors import ConfigError
from hpcfit.parallel.balance import load_balance

SENTINEL = object()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in (ENV_DEVICE, ENV_THRESHOLD):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def gpu(monkeypatch):
    monkeypatch.setattr(device, "first_gpu", lambda: SENTINEL)
    return SENTINEL


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(device, "first_gpu", lambda: None)


def cpu0():
    return jax.devices("cpu")[0]


def _run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


# --------------------------------------------------------------------------- import hygiene


def test_import_does_not_import_jax() -> None:
    code = (
        "import json, sys\n"
        "import hpcfit.device\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib'))))"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


# --------------------------------------------------------------------------- explicit devices


def test_none_device_and_cpu(gpu) -> None:
    assert resolve_device(None, score=10**9) is None
    other = jax.devices("cpu")[3]
    assert resolve_device(other, score=0) is other
    assert resolve_device("cpu", score=10**9) == cpu0()
    assert resolve_device(" CPU ", score=10**9) == cpu0()


def test_device_ignores_bad_environment(gpu, monkeypatch) -> None:
    monkeypatch.setenv(ENV_DEVICE, "bogus")
    monkeypatch.setenv(ENV_THRESHOLD, "abc")
    other = jax.devices("cpu")[2]
    assert resolve_device(other) is other
    assert resolve_device(None) is None


def test_invalid_specs(no_gpu) -> None:
    with pytest.raises(ValueError, match="auto, cpu, gpu"):
        resolve_device("tpu!")
    with pytest.raises(TypeError):
        resolve_device(3)
    with pytest.raises(RuntimeError, match="no GPU is visible") as info:
        resolve_device("gpu")
    assert "JAX_PLATFORMS, CUDA_VISIBLE_DEVICES and the installed jaxlib" in str(info.value)


def test_gpu_with_gpu(gpu) -> None:
    assert resolve_device("gpu") is SENTINEL
    assert resolve_device(" Gpu", score=0) is SENTINEL


# --------------------------------------------------------------------------- auto and threshold


def test_auto_without_accelerator_is_noop(no_gpu) -> None:
    assert resolve_device("auto", score=10**9) is None
    assert resolve_device(score=10**9) is None


def test_threshold_boundary(gpu) -> None:
    t = DEFAULT_THRESHOLD
    assert resolve_device("auto", score=t - 1) == cpu0()
    assert resolve_device("auto", score=t) is SENTINEL
    assert resolve_device("auto", score=None) == cpu0()
    assert resolve_device("auto", score=t - 1, threshold=t - 1) is SENTINEL


# --------------------------------------------------------------------------- threshold settings


def test_env_threshold(gpu, monkeypatch) -> None:
    monkeypatch.setenv(ENV_THRESHOLD, "10")
    assert resolve_device("auto", score=10) is SENTINEL
    assert resolve_device("auto", score=9) == cpu0()
    assert resolve_device("auto", score=99, threshold=100) == cpu0()  # the argument wins
    assert resolve_device("auto", score=100, threshold=100) is SENTINEL
    monkeypatch.delenv(ENV_THRESHOLD)
    assert resolve_device("auto", score=4095) == cpu0()
    assert resolve_device("auto", score=4096) is SENTINEL
    monkeypatch.setenv(ENV_THRESHOLD, " ")  # blank counts as unset
    assert resolve_device("auto", score=4096) is SENTINEL


@pytest.mark.parametrize("bad", ["abc", "-1", "nan", "inf"])
def test_bad_env_threshold_names_variable(gpu, monkeypatch, bad) -> None:
    monkeypatch.setenv(ENV_THRESHOLD, bad)
    with pytest.raises(ValueError, match=ENV_THRESHOLD):
        resolve_device("auto", score=1)


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "100", True])
def test_bad_threshold_argument_names_it(gpu, bad) -> None:
    with pytest.raises(ValueError, match=r"^threshold must be"):
        resolve_device("auto", score=1, threshold=bad)


def test_bad_threshold_caught_without_gpu(no_gpu, monkeypatch) -> None:
    """A bad setting fails on a laptop too, not only on the GPU node."""
    monkeypatch.setenv(ENV_THRESHOLD, "-5")
    with pytest.raises(ValueError, match=ENV_THRESHOLD):
        resolve_device("auto", score=1)


# --------------------------------------------------------------------------- HPCFIT_DEVICE


def test_env_device(gpu, monkeypatch) -> None:
    monkeypatch.setenv(ENV_DEVICE, "cpu")
    assert resolve_device("auto", score=10**9) == cpu0()
    for off in ("none", "off", " OFF "):
        monkeypatch.setenv(ENV_DEVICE, off)
        assert resolve_device("auto", score=10**9) is None
    monkeypatch.setenv(ENV_DEVICE, "gpu")
    assert resolve_device("auto", score=0) is SENTINEL
    assert resolve_device("cpu", score=10**9) == cpu0()  # explicit argument wins
    monkeypatch.setenv(ENV_DEVICE, "auto")
    assert resolve_device("auto", score=10**9) is SENTINEL
    monkeypatch.setenv(ENV_DEVICE, "")
    assert resolve_device("auto", score=1) == cpu0()


def test_env_gpu_without_gpu(no_gpu, monkeypatch) -> None:
    monkeypatch.setenv(ENV_DEVICE, "gpu")
    with pytest.raises(RuntimeError, match="no GPU is visible"):
        resolve_device("auto")


def test_bogus_env_names_variable(gpu, monkeypatch) -> None:
    monkeypatch.setenv(ENV_DEVICE, "bogus")
    with pytest.raises(ValueError, match=ENV_DEVICE):
        resolve_device("auto", score=1)
    assert resolve_device("cpu") == cpu0()  # the variable applies only to "auto"


def test_environment_read_on_every_call(gpu, monkeypatch) -> None:
    assert resolve_device("auto", score=10**9) is SENTINEL
    monkeypatch.setenv(ENV_DEVICE, "cpu")
    assert resolve_device("auto", score=10**9) == cpu0()
    monkeypatch.setenv(ENV_DEVICE, "off")
    assert resolve_device("auto", score=10**9) is None
    monkeypatch.delenv(ENV_DEVICE)
    monkeypatch.setenv(ENV_THRESHOLD, str(10**10))
    assert resolve_device("auto", score=10**9) == cpu0()


def test_resolve_accepts_str_subclass_and_int_like_scores(gpu) -> None:
    class Name(str):
        pass

    assert resolve_device(Name(" GPU ")) is SENTINEL
    assert resolve_device("auto", score=np.int64(DEFAULT_THRESHOLD)) is SENTINEL
    assert resolve_device("auto", score=np.float32(DEFAULT_THRESHOLD - 1)) == cpu0()
    with pytest.raises(TypeError, match="score"):
        resolve_device("auto", score=True)


# --------------------------------------------------------------------------- decide (pure table)

_TABLE = [
    # spec, env device, env threshold, score, threshold, has_gpu, expected
    (None, "bogus", "abc", 1, None, True, NONE),
    ("cpu", "gpu", None, 10**9, None, True, CPU),
    ("CPU ", None, None, None, None, False, CPU),
    ("gpu", "cpu", None, 0, None, True, ACCELERATOR),
    ("auto", "none", None, 10**9, None, True, NONE),
    ("auto", "Off", None, 10**9, None, True, NONE),
    ("auto", "cpu", None, 10**9, None, True, CPU),
    ("auto", "gpu", None, 0, None, True, ACCELERATOR),
    ("auto", None, None, 10**9, None, False, NONE),
    ("auto", "", None, 10**9, None, False, NONE),
    ("auto", "auto", None, 10**9, None, False, NONE),
    ("auto", None, None, None, None, True, CPU),
    ("auto", None, None, 4095, None, True, CPU),
    ("auto", None, None, 4096, None, True, ACCELERATOR),
    ("auto", None, "0", 0, None, True, ACCELERATOR),
    ("auto", None, "8", 7.5, None, True, CPU),
    ("auto", None, "8", 7.5, 7.5, True, ACCELERATOR),
    ("auto", None, "bad", 7.5, 7.5, True, ACCELERATOR),  # the argument wins; env not read
]


@pytest.mark.parametrize(("spec", "env", "env_t", "score", "t", "has_gpu", "expected"), _TABLE)
def test_decide_table(spec, env, env_t, score, t, has_gpu, expected) -> None:
    assert decide(spec, env, env_t, score, t, has_gpu) is expected


def test_decide_returns_given_device_itself() -> None:
    dev = jax.devices("cpu")[1]
    assert decide(dev, "bogus", "abc", -1, None, False) is dev


@pytest.mark.parametrize(
    ("spec", "env", "env_t", "score", "t", "has_gpu", "error", "match"),
    [
        ("tpu!", None, None, 1, None, True, ValueError, "auto, cpu, gpu"),
        (3, None, None, 1, None, True, TypeError, "auto, cpu, gpu"),
        (b"cpu", None, None, 1, None, True, TypeError, "bytes"),
        ("gpu", None, None, 1, None, False, RuntimeError, "no GPU is visible"),
        ("auto", "gpu", None, 1, None, False, RuntimeError, "no GPU is visible"),
        ("auto", "tpu", None, 1, None, True, ValueError, ENV_DEVICE),
        ("auto", None, "1e400", 1, None, True, ValueError, ENV_THRESHOLD),
        ("auto", None, None, 1, -0.5, True, ValueError, "threshold"),
        ("auto", None, None, -1, None, True, ValueError, "score"),
        ("auto", None, None, "big", None, True, TypeError, "score"),
    ],
)
def test_decide_errors(spec, env, env_t, score, t, has_gpu, error, match) -> None:
    with pytest.raises(error, match=match):
        decide(spec, env, env_t, score, t, has_gpu)


# --------------------------------------------------------------------------- work scores


def test_work_scores() -> None:
    assert nrpt_score(10, 4096) == 40960
    assert kuramoto_score(8, 256) == 2048
    assert device.KURAMOTO_FACTOR == 1
    assert n_local(7, 2) == 4


def test_n_local_is_largest_block_of_load_balance() -> None:
    for n in range(0, 25):
        for p in range(1, 7):
            largest = max(stop - start for start, stop in (load_balance(n, p, r) for r in range(p)))
            assert n_local(n, p) == largest, (n, p)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: n_local(5, 0), ValueError),
        (lambda: n_local(-1, 2), ValueError),
        (lambda: n_local(2.5, 2), TypeError),
        (lambda: nrpt_score(True, 3), TypeError),
        (lambda: kuramoto_score(-2, 3), ValueError),
    ],
)
def test_score_arguments_checked(call, error) -> None:
    with pytest.raises(error):
        call()


# --------------------------------------------------------------------------- tracer guard


@pytest.mark.parametrize("spec", ["cpu", "device"])
def test_entry_device_tracer_guard(spec) -> None:
    dev = jax.devices("cpu")[1] if spec == "device" else "cpu"
    seen = []

    def entry(x):
        seen.append(resolve_entry_device(dev, score=10**9, arrays={"x": x, "n": 3}))
        return jnp.sum(x * x)

    x = jnp.arange(4.0)
    jax.jit(entry)(x)
    jax.vmap(entry)(x.reshape(2, 2))
    jax.grad(entry)(x)
    assert seen == [None, None, None]
    concrete = resolve_entry_device(dev, score=10**9, arrays={"x": x, "n": 3})
    assert concrete == (cpu0() if spec == "cpu" else dev)


def test_resolve_entry_device_resolves_strings_once(gpu, monkeypatch) -> None:
    calls = []
    real = device.resolve_device

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(device, "resolve_device", spy)
    assert resolve_entry_device("auto", score=4096, arrays=(np.ones(2),)) is SENTINEL
    assert len(calls) == 1
    dev = jax.devices("cpu")[2]
    assert resolve_entry_device(dev, score=1) is dev
    assert resolve_entry_device(None, score=10**9) is None
    assert len(calls) == 1  # a Device or None is passed down, never resolved again


# --------------------------------------------------------------------------- first_gpu


def test_first_gpu_none_on_cpu_only_jax(monkeypatch) -> None:
    def no_backend(*args):
        raise RuntimeError("Unknown backend: 'gpu' requested")

    monkeypatch.setattr(jax, "devices", no_backend)
    device._first_gpu_cached.cache_clear()  # noqa: SLF001 - looked up once per process
    try:
        assert device.first_gpu() is None
    finally:
        device._first_gpu_cached.cache_clear()  # noqa: SLF001


def test_first_gpu_takes_the_first(monkeypatch) -> None:
    a, b = object(), object()
    monkeypatch.setattr(jax, "devices", lambda kind=None: [a, b] if kind == "gpu" else [])
    device._first_gpu_cached.cache_clear()  # noqa: SLF001 - looked up once per process
    try:
        assert device.first_gpu() is a
    finally:
        device._first_gpu_cached.cache_clear()  # noqa: SLF001


def test_first_gpu_real_cpu_platform() -> None:
    if os.environ.get("JAX_PLATFORMS") != "cpu":
        pytest.skip("JAX_PLATFORMS is not 'cpu': a GPU may be visible")
    assert device.first_gpu() is None


# --------------------------------------------------------------------------- tree_device_put


def _committed_to(x, dev) -> bool:
    return x.committed and x.devices() == {dev}


def test_tree_device_put_none_is_identity() -> None:
    tree = {"a": jnp.ones(3)}
    assert tree_device_put(tree, None) is tree


def test_tree_device_put_uncommitted_arrays_move() -> None:
    dev = jax.devices("cpu")[1]
    tree = {"a": jnp.arange(3.0), "b": [jnp.zeros((2, 2))], "c": None}
    assert not tree["a"].committed
    out = tree_device_put(tree, dev)
    assert out is not tree and out["c"] is None
    assert _committed_to(out["a"], dev) and _committed_to(out["b"][0], dev)
    np.testing.assert_array_equal(out["a"], tree["a"])
    assert out["a"].dtype == jnp.float64


def test_tree_device_put_already_placed_is_same_object() -> None:
    dev = jax.devices("cpu")[1]
    tree = {"a": jax.device_put(jnp.arange(3.0), dev), "b": (jax.device_put(jnp.ones(2), dev),)}
    assert tree_device_put(tree, dev) is tree
    only_numpy = {"x": np.ones(3), "k": 4}
    assert tree_device_put(only_numpy, dev) is only_numpy


def test_tree_device_put_other_leaves_keep_identity() -> None:
    dev = jax.devices("cpu")[2]
    host, marker = np.arange(4.0), object()
    tree = {"host": host, "n": 7, "s": "ring", "obj": marker, "x": jnp.ones(2)}
    out = tree_device_put(tree, dev)
    assert out is not tree
    assert out["host"] is host and out["obj"] is marker and out["n"] == 7 and out["s"] == "ring"
    assert _committed_to(out["x"], dev)


def test_tree_device_put_one_leaf_elsewhere_moves() -> None:
    dev, elsewhere = jax.devices("cpu")[0], jax.devices("cpu")[3]
    tree = [jax.device_put(jnp.ones(2), dev), jax.device_put(jnp.arange(3.0), elsewhere)]
    out = tree_device_put(tree, dev)
    assert out is not tree
    assert all(_committed_to(x, dev) for x in out)
    np.testing.assert_array_equal(out[1], np.arange(3.0))


# --------------------------------------------------------------------------- rank roles


def test_two_gpus_per_node() -> None:
    r0, r1, r2 = (plan_rank_role(r, 2, {}, device_count=4) for r in range(3))
    assert (r0.role, r0["CUDA_VISIBLE_DEVICES"], r0["JAX_PLATFORMS"]) == ("gpu", "0", "cuda,cpu")
    assert (r1.role, r1["CUDA_VISIBLE_DEVICES"]) == ("gpu", "1")
    assert (r2.role, r2["CUDA_VISIBLE_DEVICES"], r2["JAX_PLATFORMS"]) == ("cpu", "", "cpu")
    for role in (r0, r1, r2):
        assert role["JAX_ENABLE_X64"] == "1"
    assert r0["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=true"
    assert r2["XLA_FLAGS"] == "--xla_force_host_platform_device_count=4"


def test_zero_gpus_all_cpu() -> None:
    for env in ({}, {"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "0,1"}):
        roles = [plan_rank_role(r, 0, env) for r in range(3)]
        assert [r.role for r in roles] == ["cpu"] * 3
        assert all(r["CUDA_VISIBLE_DEVICES"] == "" for r in roles)


def test_launch_list_is_indexed_by_local_rank() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "4,5"}
    assert plan_rank_role(1, 2, env)["CUDA_VISIBLE_DEVICES"] == "5"
    assert plan_rank_role(1, "auto", env)["CUDA_VISIBLE_DEVICES"] == "5"
    assert plan_rank_role(0, None, env)["CUDA_VISIBLE_DEVICES"] == "4"
    assert plan_rank_role(2, "auto", env).role == "cpu"
    assert plan_rank_role(1, 1, env).role == "cpu"


def test_per_task_lists_all_gpu() -> None:
    for rank in range(4):
        env = {"CUDA_VISIBLE_DEVICES": str(rank)}
        role = plan_rank_role(rank, "auto", env)
        assert (role.role, role.bound, role["CUDA_VISIBLE_DEVICES"]) == ("gpu", True, str(rank))
        assert plan_rank_role(rank, 4, env).role == "gpu"  # the node count need not fit the list
    assert plan_rank_role(3, "auto", {"CUDA_VISIBLE_DEVICES": "GPU-1a2b"})[
        "CUDA_VISIBLE_DEVICES"
    ] == ("GPU-1a2b")


def test_node_lists_tell_binding_from_shared_gpu() -> None:
    distinct = ["0", "1", "2"]
    roles = [
        plan_rank_role(r, "auto", {"CUDA_VISIBLE_DEVICES": v}, node_visible=distinct)
        for r, v in enumerate(distinct)
    ]
    assert [(r.role, r["CUDA_VISIBLE_DEVICES"]) for r in roles] == [
        ("gpu", "0"),
        ("gpu", "1"),
        ("gpu", "2"),
    ]
    shared = ["0", "0", "0"]
    roles = [
        plan_rank_role(r, "auto", {"CUDA_VISIBLE_DEVICES": "0"}, node_visible=shared)
        for r in range(3)
    ]
    assert [r.role for r in roles] == ["gpu", "cpu", "cpu"]


def test_too_many_gpus_is_config_error() -> None:
    with pytest.raises(ConfigError, match=r"device\.gpus_per_node.*'4,5'.*got 3"):
        plan_rank_role(0, 3, {"CUDA_VISIBLE_DEVICES": "4,5"})
    with pytest.raises(ConfigError, match=r"device\.gpus_per_node"):
        plan_rank_role(0, 1, {"CUDA_VISIBLE_DEVICES": ""})
    with pytest.raises(ConfigError, match=r"device\.gpus_per_node"):
        plan_rank_role(0, -1, {})


def test_rank_role_flags_cache_and_existing_values() -> None:
    flags = "--xla_gpu_deterministic_ops=false --foo=1 --xla_force_host_platform_device_count=8"
    env = {"XLA_FLAGS": flags}
    gpu_role = plan_rank_role(0, 1, env, device_count=2, compile_cache="/scratch/jax-cache")
    assert gpu_role["XLA_FLAGS"].split() == [
        "--foo=1",
        "--xla_force_host_platform_device_count=8",
        "--xla_gpu_deterministic_ops=true",
    ]
    assert gpu_role["JAX_COMPILATION_CACHE_DIR"] == "/scratch/jax-cache"
    loose = plan_rank_role(0, 1, env, deterministic_gpu=False)
    assert loose["XLA_FLAGS"] == env["XLA_FLAGS"]
    assert "JAX_COMPILATION_CACHE_DIR" not in loose
    preset = {"JAX_COMPILATION_CACHE_DIR": "/mine"}
    assert "JAX_COMPILATION_CACHE_DIR" not in plan_rank_role(0, 1, preset, compile_cache="/x")
    cpu_role = plan_rank_role(1, 1, env, device_count=2, compile_cache="/scratch/jax-cache")
    assert cpu_role["XLA_FLAGS"].split() == [
        "--xla_gpu_deterministic_ops=false",
        "--foo=1",
        "--xla_force_host_platform_device_count=2",
    ]
    assert "JAX_COMPILATION_CACHE_DIR" not in cpu_role


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, 0),
        ({"CUDA_VISIBLE_DEVICES": ""}, 0),
        ({"CUDA_VISIBLE_DEVICES": "", "SLURM_GPUS_ON_NODE": "4"}, 0),
        ({"CUDA_VISIBLE_DEVICES": "0,1,2"}, 3),
        ({"CUDA_VISIBLE_DEVICES": "-1"}, 0),
        ({"CUDA_VISIBLE_DEVICES": "0,-1,2"}, 1),
        ({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, 0),
        ({"SLURM_GPUS_ON_NODE": "4"}, 4),
    ],
)
def test_gpus_per_node_from_env(env, expected) -> None:
    assert gpus_per_node_from_env(env) == expected


def test_gpus_per_node_bad_slurm_value() -> None:
    with pytest.raises(ConfigError, match="SLURM_GPUS_ON_NODE"):
        gpus_per_node_from_env({"SLURM_GPUS_ON_NODE": "4(x2)"})


def test_rank_role_guard_in_this_process() -> None:
    assert "jax" in sys.modules
    with pytest.raises(RuntimeError, match="before jax is imported"):
        assign_rank_devices(0, 1, {})


def test_rank_role_subprocess_before_and_after_jax() -> None:
    call = (
        "from hpcfit.device import assign_rank_devices\n"
        "role = assign_rank_devices(1, 2, {'CUDA_VISIBLE_DEVICES': '4,5'})\n"
        "print(json.dumps([role.role, dict(role)]))\n"
    )
    before = _run_python("import json\n" + call)
    assert before.returncode == 0, before.stderr
    role, updates = json.loads(before.stdout)
    assert role == "gpu" and updates["CUDA_VISIBLE_DEVICES"] == "5"
    after = _run_python("import json\nimport jax\n" + call)
    assert after.returncode != 0
    assert "RuntimeError" in after.stderr and "before jax is imported" in after.stderr


# --------------------------------------------------------------------------- threshold advice


def _rows(cpu_wins, gpu_wins):
    return [(s, 1.0, 2.0) for s in cpu_wins] + [(s, 2.0, 1.0) for s in gpu_wins]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (_rows([256, 512, 1024, 2048], [4096, 8192, 16384]), 4096),  # hamon: √(2048·4096) = 2896
        (_rows([1024], [4096]), 2048),  # √ = 2048 exactly
        (_rows([2048], [8192]), 4096),
        (_rows([1000], [3000]), 2048),  # √ = 1732, log₂ = 10.76 → 2¹¹
        (_rows([], [64, 128]), 64),  # CPU never won: low = 32, high = 64 → 2^5.5 → 64
        (_rows([1024, 2048], []), None),  # GPU never won
        (_rows([8192], [1024, 16384]), 16384),  # a noisy GPU win below the last CPU win is ignored
        (_rows([8192], [1024]), None),  # no GPU win above the largest CPU win
        (_rows([2048, 4096], [2048, 8192]), 8192),  # mixed outcomes at one score
        ([(4096, 1.5, 1.5), (8192, 2.0, 1.0)], 8192),  # a tie is a CPU win
    ],
)
def test_recommendation_table(rows, expected) -> None:
    assert recommend_threshold(rows) == expected


def test_recommendation_is_nearest_power_of_two_in_log_space() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        low, high = sorted(rng.integers(1, 10**6, size=2).tolist())
        if low == high:
            continue
        t = recommend_threshold(_rows([low], [high]))
        midpoint = math.sqrt(low * high)
        assert abs(math.log2(t) - math.log2(midpoint)) <= 0.5 + 1e-12
        assert t & (t - 1) == 0


@pytest.mark.parametrize("rows", [[], [(0, 1.0, 2.0)], [(64, math.nan, 1.0)], [(64, 1.0)]])
def test_recommendation_bad_rows(rows) -> None:
    with pytest.raises(ValueError):
        recommend_threshold(rows)
