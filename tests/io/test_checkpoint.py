"""Checkpoints of CMC shards and of the NLSQ warm start: exact round trips, fingerprints, and
every bad file turned into a reason (never an exception)."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import numpy as np
import pytest

from hpcfit.cmc.diagnostics import shard_diagnostics
from hpcfit.cmc.policy import ShardResult
from hpcfit.io.checkpoint import (
    FORMAT,
    fingerprint,
    load_shard,
    load_warm_start,
    save_shard,
    save_warm_start,
    shard_paths,
    warm_start_paths,
)
from hpcfit.records import NLSQResult, StartRecord, WarmStartFlag

FP = fingerprint({"run": "a"})
OTHER_FP = fingerprint({"run": "b"})


def attempt(r: int, status: str, **kw) -> dict:
    """An attempt record shaped like ``hpcfit.cmc.policy._one_attempt``'s."""
    rec = dict(
        attempt=r, target_accept=0.8 + 0.05 * r, num_warmup=500 * (r + 1), status=status,
        message="", gate_failures=[], gate_warnings=[], error_type=None, traceback=None,
        wall_s=1.0 / 3.0,
    )  # fmt: skip
    return rec | kw


def ok_shard(shard_id: int = 3) -> ShardResult:
    rng = np.random.default_rng(shard_id)
    theta = rng.normal(size=(2, 50, 3))
    extra = {
        "diverging": np.zeros((2, 50), dtype=bool),
        "accept_prob": rng.uniform(0.7, 0.9, size=(2, 50)),
        "num_steps": np.full((2, 50), 7),
        "energy": rng.normal(size=(2, 50)),
    }
    diag = shard_diagnostics(theta, extra, max_tree_depth=10, names=["a", "b", "c"]).to_json()
    diag["rhat"][1] = None  # as Diagnostics.to_json writes a non-finite R-hat
    attempts = [
        attempt(
            0,
            "gates_failed",
            message="ok",
            gate_failures=["max_rhat: a R-hat = 1.2 > 1.05", "min_bfmi: chain 1 E-BFMI = 0.1"],
            gate_warnings=["min_accept_prob: chain 0 mean acceptance = 0.5 < 0.6"],
        ),
        attempt(1, "ok", message="ok"),
    ]
    draws_u = rng.normal(size=(2, 50, 3))
    return ShardResult(shard_id, "ok", attempts, draws_u, theta, diag, 12.345678901234567)


def excluded_shard(shard_id: int = 7) -> ShardResult:
    attempts = [
        attempt(0, "bad_init", message="no finite start", error_type="BadInit"),
        attempt(
            1,
            "failed",
            message="RuntimeError: boom",
            error_type="RuntimeError",
            traceback="Traceback (most recent call last):\n  ...\nRuntimeError: boom\n",
            wall_s=math.inf,
            nested=[[1, 2.5], [None, "x"], {"k": (1, 2)}],
        ),
    ]
    return ShardResult(shard_id, "excluded", attempts, None, None, None, 0.0)


def assert_same_shard(got: ShardResult, want: ShardResult) -> None:
    assert (got.shard_id, got.status, got.wall_s) == (want.shard_id, want.status, want.wall_s)
    assert got.attempts == want.attempts
    assert got.diagnostics == want.diagnostics
    for name in ("draws_u", "draws_theta"):
        g, w = getattr(got, name), getattr(want, name)
        if w is None:
            assert g is None
        else:
            assert g.dtype == w.dtype and g.shape == w.shape
            assert g.tobytes() == w.tobytes()


# --------------------------------------------------------------------------------------------
# shards


@pytest.mark.parametrize("make", [ok_shard, excluded_shard])
def test_shard_round_trip_is_exact(tmp_path, make):
    want = make()
    save_shard(tmp_path, want, FP)
    got, reason = load_shard(tmp_path, want.shard_id, FP)
    assert reason == ""
    assert_same_shard(got, want)
    assert got.reason == want.reason


def test_shard_files_layout(tmp_path):
    save_shard(tmp_path, ok_shard(3), FP)
    npz_path, json_path = shard_paths(tmp_path, 3)
    assert (npz_path.name, json_path.name) == ("shard_00003.npz", "shard_00003.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard_00003.json", "shard_00003.npz"]
    doc = json.loads(json_path.read_text())  # strict JSON: no NaN / Infinity tokens
    assert (doc["format"], doc["kind"], doc["fingerprint"]) == (FORMAT, "cmc_shard", FP)
    assert doc["shard_id"] == 3 and doc["status"] == "ok"
    assert doc["draws_theta"]["$array"] == "draws_theta"
    with np.load(npz_path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["draws_theta", "draws_u"]


def test_non_finite_floats_round_trip_through_strict_json(tmp_path):
    res = excluded_shard()
    res.attempts[0]["values"] = [math.nan, -math.inf, math.inf, -0.0, 5e-324]
    save_shard(tmp_path, res, FP)
    text = shard_paths(tmp_path, res.shard_id)[1].read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))
    got, reason = load_shard(tmp_path, res.shard_id, FP)
    assert reason == ""
    v = got.attempts[0]["values"]
    assert math.isnan(v[0]) and v[1:3] == [-math.inf, math.inf]
    assert math.copysign(1.0, v[3]) == -1.0 and v[4] == 5e-324


def test_fingerprint_mismatch(tmp_path):
    save_shard(tmp_path, ok_shard(3), FP)
    assert load_shard(tmp_path, 3, OTHER_FP) == (None, "fingerprint mismatch")


def test_missing_and_interrupted_write(tmp_path):
    assert load_shard(tmp_path, 0, FP) == (None, "missing")
    assert load_shard(tmp_path / "nonexistent", 0, FP) == (None, "missing")
    save_shard(tmp_path, ok_shard(0), FP)
    shard_paths(tmp_path, 0)[1].unlink()  # the run died between the npz and the json
    assert load_shard(tmp_path, 0, FP) == (None, "missing")


def _truncate_json(tmp_path):
    p = shard_paths(tmp_path, 3)[1]
    p.write_bytes(p.read_bytes()[:100])


def _drop_npz(tmp_path):
    shard_paths(tmp_path, 3)[0].unlink()


def _garbage_npz(tmp_path):
    shard_paths(tmp_path, 3)[0].write_bytes(b"PK\x03\x04 not a zip file")


def _reshaped_npz(tmp_path):
    r = ok_shard(3)
    np.savez(shard_paths(tmp_path, 3)[0], draws_u=r.draws_u[:, :-1], draws_theta=r.draws_theta)


def _other_draws_same_shape(tmp_path):
    r = ok_shard(3)
    np.savez(shard_paths(tmp_path, 3)[0], draws_u=r.draws_u + 1.0, draws_theta=r.draws_theta)


def _other_shard_copied_in(tmp_path):
    save_shard(tmp_path, ok_shard(4), FP)
    for src, dst in zip(shard_paths(tmp_path, 4), shard_paths(tmp_path, 3), strict=True):
        shutil.copyfile(src, dst)


def _edit_json(**changes):
    def edit(tmp_path):
        p = shard_paths(tmp_path, 3)[1]
        p.write_text(json.dumps(json.loads(p.read_text()) | changes))

    return edit


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_truncate_json, "json"),
        (_drop_npz, "shard_00003.npz is missing"),
        (_garbage_npz, "corrupt"),
        (_reshaped_npz, "shape"),
        (_other_draws_same_shape, "'draws_u': sha256 differs"),
        (_other_shard_copied_in, "shard_id 4, expected 3"),
        (_edit_json(format=FORMAT + 1), "format"),
        (_edit_json(kind="nlsq_warm_start"), "kind"),
        (_edit_json(status="finished"), "status"),
        (_edit_json(attempts={"0": 1}), "attempts"),
        (_edit_json(wall_s={"$float": "big"}), "non-finite"),
        (_edit_json(draws_u=None), "draws_u does not fit status 'ok'"),
        (_edit_json(surprise=1), "surprise"),
    ],
)
def test_bad_checkpoints_give_a_reason(tmp_path, damage, expected):
    save_shard(tmp_path, ok_shard(3), FP)
    damage(tmp_path)
    result, reason = load_shard(tmp_path, 3, FP)
    assert result is None
    assert reason.startswith("corrupt: ") and expected in reason, reason


def test_recorded_dtype_must_match(tmp_path):
    save_shard(tmp_path, ok_shard(3), FP)
    p = shard_paths(tmp_path, 3)[1]
    doc = json.loads(p.read_text())
    doc["draws_theta"]["dtype"] = "<f4"
    p.write_text(json.dumps(doc))
    result, reason = load_shard(tmp_path, 3, FP)
    assert result is None and "dtype" in reason


def test_saves_are_atomic_and_replace_old_checkpoints(tmp_path):
    save_shard(tmp_path, ok_shard(3), OTHER_FP)
    save_shard(tmp_path, excluded_shard(3), FP)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard_00003.json", "shard_00003.npz"]
    got, reason = load_shard(tmp_path, 3, FP)
    assert reason == ""
    assert_same_shard(got, excluded_shard(3))
    with np.load(shard_paths(tmp_path, 3)[0], allow_pickle=False) as npz:
        assert npz.files == []


def test_unsupported_content_raises_and_keeps_the_old_checkpoint(tmp_path):
    save_shard(tmp_path, ok_shard(3), FP)
    bad = dataclasses.replace(ok_shard(3), diagnostics={"names": {"a", "b"}})
    with pytest.raises(TypeError, match="set"):
        save_shard(tmp_path, bad, OTHER_FP)
    with pytest.raises(TypeError, match=r"\$float"):
        save_shard(tmp_path, dataclasses.replace(bad, diagnostics={"$float": "nan"}), FP)
    got, reason = load_shard(tmp_path, 3, FP)
    assert reason == ""
    assert_same_shard(got, ok_shard(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard_00003.json", "shard_00003.npz"]


def test_shard_paths_rejects_bad_ids(tmp_path):
    assert shard_paths(tmp_path, np.int64(12)) == shard_paths(tmp_path, 12)
    for bad in (-1, True, 1.0):
        with pytest.raises(ValueError):
            shard_paths(tmp_path, bad)


# --------------------------------------------------------------------------------------------
# fingerprint


def test_fingerprint_is_stable_and_exact():
    u = np.linspace(0.0, 1.0, 7)
    L = np.tril(np.ones((3, 3)))
    doc = {"version": "0.1.0", "K": 8, "s": 3, "sigma_a": [0.1, 0.2], "u": u, "L": L}
    fp = fingerprint(doc)
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert fingerprint(dict(reversed(list(doc.items())))) == fp  # key order is irrelevant
    assert fingerprint(doc | {"u": u.copy(), "sigma_a": (0.1, 0.2)}) == fp
    assert fingerprint(doc | {"L": np.asfortranarray(L)}) == fp  # C-order bytes are hashed

    changed = {
        "float by 1 ulp": doc | {"sigma_a": [0.1, np.nextafter(0.2, 1.0)]},
        "array byte": doc | {"u": np.where(np.arange(7) == 6, np.nextafter(1.0, 2.0), u)},
        "array shape": doc | {"L": L.reshape(1, 9)},
        "array dtype": doc | {"u": u.astype(np.float32)},
        "int vs float": doc | {"K": 8.0},
        "bool vs int": doc | {"s": 1} | {"K": True},
        "sign of zero": doc | {"sigma_a": [-0.0, 0.2]},
        "renamed key": {("k" if k == "K" else k): v for k, v in doc.items()},
        "extra key": doc | {"seed": 0},
    }
    hashes = {name: fingerprint(d) for name, d in changed.items()}
    assert fp not in hashes.values()
    assert len(set(hashes.values())) == len(hashes)


def test_fingerprint_of_non_finite_values_and_other_types():
    nan = fingerprint({"x": math.nan})
    assert nan == fingerprint({"x": np.float64("nan")})
    values = [math.inf, -math.inf, "nan", "NaN", None, 0.0]
    assert len({nan, *(fingerprint({"x": v}) for v in values)}) == len(values) + 1
    arr = np.array([1.0, math.nan])
    assert fingerprint({"a": arr}) == fingerprint({"a": arr.copy()})

    @dataclasses.dataclass(frozen=True)
    class Settings:
        flag: WarmStartFlag = WarmStartFlag.converged
        n: np.int64 = np.int64(3)

    assert fingerprint({"s": Settings()}) == fingerprint({"s": {"flag": "converged", "n": 3}})
    with pytest.raises(TypeError):
        fingerprint({1: "a"})
    with pytest.raises(TypeError):
        fingerprint({"a": {1, 2}})


# --------------------------------------------------------------------------------------------
# warm start


def hand_made_warm_start() -> NLSQResult:
    """Every field populated, with NaN, inf, None, empty and array-valued entries."""
    rng = np.random.default_rng(0)
    sigma_k = rng.uniform(size=5)
    sigma_k[2] = np.nan
    return NLSQResult(
        flags=(WarmStartFlag.at_bounds, WarmStartFlag.singular),
        message="`ftol` termination condition is satisfied.",
        theta_names=("D0_ref", "alpha_ref", "f0", "contrast_0", "offset_0"),
        theta=rng.normal(size=5),
        cov=rng.normal(size=(5, 5)),
        sigma_k=sigma_k,
        params=rng.normal(size=14),
        contrast=np.array([0.3]),
        offset=np.array([1.0]),
        sigma_hat=np.array([0.002]),
        sigma_known=False,
        chi2_red=None,
        chi2_red_reason="σ estimated from residuals",
        cost=0.1 + 0.2,
        start_cost=math.inf,
        ssr_weighted=123.456,
        dof=1000,
        residual_rms=np.array([0.0021]),
        condition_number=math.inf,
        unidentified=("f0",),
        nfev=17,
        njev=None,
        nit=None,
        solver_status=2,
        wall_s=1.5,
        scaling_mode="profile",
        starts=(
            StartRecord(rng.normal(size=3), rng.normal(size=3), 0.5, ()),
            StartRecord(rng.normal(size=3), np.full(3, np.nan), math.nan, ("nonfinite", "error")),
        ),
        passes=2,
        extra={
            "degenerate_slots": [],
            "sigma_used": [0.002],
            "pinned": ["f0"],
            "n_points": 1000,
            "slot_counts": [1000],
            "jac_norms": np.arange(6, dtype=np.int32).reshape(2, 3),
            "nested": {"scale": np.float64(2.0), "pair": (1, "a")},
        },
    )


def assert_same_warm_start(got: NLSQResult, want: NLSQResult) -> None:
    assert isinstance(got, NLSQResult)
    for f in dataclasses.fields(NLSQResult):
        g, w = getattr(got, f.name), getattr(want, f.name)
        if f.name == "starts":
            assert len(g) == len(w) and all(isinstance(s, StartRecord) for s in g)
            for gs, ws in zip(g, w, strict=True):
                assert_same_array(gs.start, ws.start)
                assert_same_array(gs.theta, ws.theta)
                assert gs.flags == ws.flags and isinstance(gs.flags, tuple)
                assert same_float(gs.cost, ws.cost)
        elif f.name == "extra":
            assert g.keys() == w.keys()
            for k in w:
                if isinstance(w[k], np.ndarray):
                    assert_same_array(g[k], w[k])
                else:
                    assert g[k] == w[k] and type(g[k]) is type(w[k]), k
        elif isinstance(w, np.ndarray):
            assert_same_array(g, w)
        elif isinstance(w, float):
            assert type(g) is float and same_float(g, w), f.name
        else:
            assert g == w and type(g) is type(w), f.name


def assert_same_array(g, w) -> None:
    assert isinstance(g, np.ndarray) and g.dtype == w.dtype and g.shape == w.shape
    assert g.tobytes() == w.tobytes()  # bitwise, NaN positions included


def same_float(g: float, w: float) -> bool:
    return (math.isnan(g) and math.isnan(w)) or g == w


def test_warm_start_round_trip_hand_made(tmp_path):
    want = hand_made_warm_start()
    save_warm_start(tmp_path, want, FP)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json", "checkpoint.npz"]
    got, reason = load_warm_start(tmp_path, FP)
    assert reason == ""
    assert_same_warm_start(got, want)
    assert got.flags == want.flags and got.usable == want.usable


def test_warm_start_round_trip_of_a_real_fit(tmp_path):
    from hpcfit.config import NlsqConfig
    from hpcfit.xpcs.nlsq import fit
    from hpcfit.xpcs.params import make_space
    from hpcfit.xpcs.synthetic import EMBEDDED, EMBEDDED_FIXED, generate

    data = generate(dataclasses.replace(EMBEDDED, n_frames=30))
    space = make_space(fixed=EMBEDDED_FIXED, start={"D0_ref": 5000.0, "D0_sample": 20000.0})
    want = fit(dataclasses.replace(data, sigma=None), space, NlsqConfig())
    save_warm_start(tmp_path, want, FP)
    got, reason = load_warm_start(tmp_path, FP)
    assert reason == ""
    assert_same_warm_start(got, want)
    assert json.dumps(got.to_json(), allow_nan=False) == json.dumps(want.to_json())


def test_warm_start_bad_checkpoints(tmp_path):
    assert load_warm_start(tmp_path, FP) == (None, "missing")
    save_warm_start(tmp_path, hand_made_warm_start(), FP)
    assert load_warm_start(tmp_path, OTHER_FP) == (None, "fingerprint mismatch")

    npz_path, json_path = warm_start_paths(tmp_path)
    doc = json.loads(json_path.read_text())
    json_path.write_text(json.dumps(doc | {"flags": ["not_a_flag"]}))
    result, reason = load_warm_start(tmp_path, FP)
    assert result is None and reason.startswith("corrupt: ") and "not_a_flag" in reason

    json_path.write_text(json.dumps(doc | {"theta": [1.0, 2.0]}))
    result, reason = load_warm_start(tmp_path, FP)
    assert result is None and "theta is not an array" in reason

    json_path.write_text(json.dumps(doc))
    with np.load(npz_path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "starts.1.theta"}
    np.savez(npz_path, **arrays)
    result, reason = load_warm_start(tmp_path, FP)
    assert result is None and "'starts.1.theta' is not in the npz" in reason

    save_shard(tmp_path, ok_shard(0), FP)  # a shard checkpoint is not a warm start
    shutil.copyfile(shard_paths(tmp_path, 0)[1], json_path)
    result, reason = load_warm_start(tmp_path, FP)
    assert result is None and "kind 'cmc_shard'" in reason


def test_any_record_round_trips_and_is_checked_by_kind_id_and_fingerprint(tmp_path):
    """The store every workload uses (NRPT rounds and Kuramoto chunks save records too)."""
    from hpcfit.io.checkpoint import load_record, save_record

    fields = {
        "round_done": 3,
        "history": [{"betas": np.linspace(0.0, 1.0, 4), "rate": math.inf, "pair": (1, 2)}],
        "states": np.arange(6, dtype=np.int8).reshape(2, 3),
        "records": None,
    }
    stem = tmp_path / "r"
    save_record(stem, "demo", "fp1", fields)
    got, reason = load_record(stem, "demo", "fp1", {"round_done": 3})
    assert reason == "" and got is not None
    assert got["history"][0]["pair"] == (1, 2) and got["history"][0]["rate"] == math.inf
    assert np.array_equal(got["history"][0]["betas"], fields["history"][0]["betas"])
    assert got["states"].dtype == np.int8 and np.array_equal(got["states"], fields["states"])
    assert got["records"] is None
    assert load_record(stem, "demo", "fp2") == (None, "fingerprint mismatch")
    assert load_record(stem, "other", "fp1")[1] == "corrupt: kind 'demo', expected 'other'"
    assert load_record(stem, "demo", "fp1", {"round_done": 4})[1].startswith("corrupt: round_done")
    assert load_record(tmp_path / "absent", "demo", "fp1") == (None, "missing")
