"""Shard failure policy and exclusion accounting.

Truths: the retry schedule 0.9 → 0.945 → 0.9675 and warmup 500 → 1000 → 2000 after a failure
other than low ESS, and thinning 1 → 2 → 4 after low ESS alone (one real sampler run confirms
the settings reach NUTS); the first passing attempt is kept; a shard with
no passing attempt is excluded; exclude drops at once; abort gives "failed"; an exception
inside the attempt or its diagnostics becomes a record and never escapes; the global guard
(more than max_excluded_fraction excluded, none left, or abort) is fatal with exit code 3.
Policy logic uses an injected ``attempt_fn`` returning constructed AttemptResults.
"""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

from hpcfit.cmc.diagnostics import Gates
from hpcfit.cmc.nuts import AttemptResult, NutsSettings, run_attempt
from hpcfit.cmc.policy import ShardResult, completion_margin, exclusion_report, run_shard
from hpcfit.cmc.precondition import from_warm_start
from hpcfit.cmc.target import ShardTarget

NAMES = ("a", "b")
CHAINS, SAMPLES = 4, 500


def fake_result(kind: str, attempt: int, settings: NutsSettings, seed: int = 0) -> AttemptResult:
    """An AttemptResult: "good" passes the default gates, "split" fails R-hat, else a status."""
    head = dict(
        shard_id=0, attempt=attempt, names=NAMES, target_accept=settings.target_accept,
        num_warmup=settings.num_warmup, num_samples=SAMPLES, num_chains=CHAINS, wall_s=0.0,
    )  # fmt: skip
    if kind not in ("good", "split"):
        return AttemptResult(kind, f"forced {kind}", **head)
    rng = np.random.default_rng(seed + attempt)
    u = rng.normal(size=(CHAINS, SAMPLES, len(NAMES)))
    if kind == "split":
        u = u + 5.0 * np.arange(CHAINS)[:, None, None]
    return AttemptResult(
        "ok", "", **head, draws_u=u, draws_theta=2.0 * u,
        diverging=np.zeros((CHAINS, SAMPLES), dtype=bool),
        accept_prob=np.full((CHAINS, SAMPLES), 0.9),
        num_steps=np.full((CHAINS, SAMPLES), 7, dtype=np.int64),
        energy=rng.normal(size=(CHAINS, SAMPLES)),
    )  # fmt: skip


class Fake:
    """attempt_fn following a script of kinds per attempt; records its calls."""

    def __init__(self, *kinds: str) -> None:
        self.kinds, self.calls, self.results = kinds, [], []

    def __call__(self, target, data, precond, *, n_shards, seed, shard_id, attempt, settings):
        self.calls.append({"attempt": attempt, "settings": settings, "shard_id": shard_id})
        kind = self.kinds[min(attempt, len(self.kinds) - 1)]
        if kind == "raise":
            raise RuntimeError(f"boom in attempt {attempt}")
        res = fake_result(kind, attempt, settings, seed)
        self.results.append(res)
        return res


def shard(fake, on_failure="retry", **kw) -> ShardResult:
    kw = {"settings": NutsSettings(), "gates": Gates(), "max_retries": 2} | kw
    return run_shard(
        None, None, None, n_shards=4, seed=11, shard_id=0, on_failure=on_failure,
        attempt_fn=fake, **kw,
    )  # fmt: skip


def test_forced_failure_follows_retry_schedule():
    fake = Fake("split", "bad_init", "good")
    res = shard(fake)
    assert res.status == "ok"
    assert [a["status"] for a in res.attempts] == ["gates_failed", "bad_init", "ok"]
    ta = [a["target_accept"] for a in res.attempts]
    assert ta[0] == 0.9
    assert abs(ta[1] - 0.945) < 1e-12 and abs(ta[2] - 0.9675) < 1e-12
    assert [a["num_warmup"] for a in res.attempts] == [500, 1000, 2000]
    assert [c["attempt"] for c in fake.calls] == [0, 1, 2]
    for c, a in zip(fake.calls, res.attempts, strict=True):  # the settings reached attempt_fn
        assert c["settings"].target_accept == a["target_accept"]
        assert c["settings"].num_warmup == a["num_warmup"]
        assert c["settings"].num_samples == 1000
    assert any(f.startswith("max_rhat") for f in res.attempts[0]["gate_failures"])
    kept = fake.results[-1]
    assert res.draws_u is kept.draws_u and res.draws_theta is kept.draws_theta
    assert res.diagnostics["n_chains"] == CHAINS and res.diagnostics["names"] == list(NAMES)
    assert res.reason == ""
    json.dumps(res.to_json(), allow_nan=False)


def test_first_passing_attempt_is_kept():
    fake = Fake("bad_init", "good", "good")
    res = shard(fake)
    assert res.status == "ok" and len(res.attempts) == 2 and len(fake.calls) == 2
    assert res.draws_theta is fake.results[1].draws_theta
    assert shard(Fake("good")).attempts[0]["status"] == "ok"


@pytest.mark.parametrize("max_retries", [0, 1, 2])
def test_excluded_after_max_retries(max_retries):
    fake = Fake("split")
    res = shard(fake, max_retries=max_retries)
    assert res.status == "excluded" and len(fake.calls) == max_retries + 1
    assert res.draws_u is None and res.draws_theta is None and res.diagnostics is None
    assert res.reason.startswith(f"attempt {max_retries}: gates_failed: max_rhat")


def test_gates_that_cannot_pass_exclude():
    res = shard(Fake("good"), gates=Gates(min_ess_bulk_per_chain=1e12))
    assert res.status == "excluded" and len(res.attempts) == 3
    assert all(a["gate_failures"] for a in res.attempts)


def test_exclude_drops_at_once():
    fake = Fake("split", "good")
    res = shard(fake, on_failure="exclude")
    assert res.status == "excluded" and len(fake.calls) == 1
    assert shard(Fake("good"), on_failure="exclude").status == "ok"


def test_abort_returns_failed():
    fake = Fake("bad_init", "good")
    res = shard(fake, on_failure="abort")
    assert res.status == "failed" and len(fake.calls) == 1
    assert res.reason == "attempt 0: bad_init: forced bad_init"
    assert shard(Fake("good"), on_failure="abort").status == "ok"


def test_exception_becomes_record():
    fake = Fake("raise", "raise", "good")
    res = shard(fake)  # must not raise
    assert res.status == "ok" and len(res.attempts) == 3
    a = res.attempts[0]
    assert a["status"] == "failed" and a["error_type"] == "RuntimeError"
    assert a["message"] == "RuntimeError: boom in attempt 0"
    assert "Traceback" in a["traceback"] and "boom in attempt 0" in a["traceback"]
    assert "__call__" in a["traceback"]  # the frame that raised
    res = shard(Fake("raise"), on_failure="abort")
    assert res.status == "failed" and res.attempts[0]["error_type"] == "RuntimeError"
    json.dumps(res.to_json(), allow_nan=False)


def test_failed_attempt_record_keeps_its_traceback():
    def fn(*args, attempt, settings, **kw):
        r = fake_result("failed", attempt, settings)
        return AttemptResult(**{**r.__dict__, "error_type": "KeyError", "traceback": "tb"})

    res = shard(fn, on_failure="exclude")
    a = res.attempts[0]
    assert (a["status"], a["error_type"], a["traceback"]) == ("failed", "KeyError", "tb")


def test_exception_in_diagnostics_becomes_record():
    def one_chain(*args, attempt, settings, **kw):
        r = fake_result("good", attempt, settings)
        return AttemptResult(**{**r.__dict__, "draws_theta": r.draws_theta[:1]})

    res = shard(one_chain)
    assert res.status == "excluded" and len(res.attempts) == 3
    assert res.attempts[0]["error_type"] == "ValueError"
    assert "at least 2 chains" in res.attempts[0]["message"]


@pytest.mark.parametrize("kw", [{"on_failure": "skip"}, {"max_retries": -1}, {"max_retries": 1.0}])
def test_bad_policy_arguments(kw):
    with pytest.raises(ValueError):
        shard(Fake("good"), **({"on_failure": "retry"} | kw))


def results(statuses: str) -> list[ShardResult]:
    kinds = {"o": ("good", "retry"), "x": ("split", "exclude"), "f": ("bad_init", "abort")}
    out = []
    for s, c in enumerate(statuses):
        kind, policy = kinds[c]
        r = shard(Fake(kind), on_failure=policy)
        out.append(ShardResult(s, r.status, r.attempts, None, None, r.diagnostics, r.wall_s))
    return out[::-1]  # order must not matter


def test_exclusion_report_one_of_four():
    rep = exclusion_report(results("oxoo"), 4, 0.25, shard_sizes=[10, 20, 30, 40])
    assert rep["fatal"] is False and rep["exit_code"] == 0 and rep["fatal_reason"] == ""
    assert (rep["n_shards"], rep["n_used"]) == (4, 3)
    assert rep["used_ids"] == [0, 2, 3] and rep["excluded_ids"] == [1] and rep["failed_ids"] == []
    assert rep["prior_exponent"] == 3 / 4 and rep["fraction_shards_used"] == 0.75
    assert rep["fraction_points_used"] == 80 / 100
    assert list(rep["reasons"]) == ["1"] and "max_rhat" in rep["reasons"]["1"]
    json.dumps(rep, allow_nan=False)


def test_exclusion_report_guard():
    rep = exclusion_report(results("xoxo"), 4, 0.25)
    assert rep["fatal"] is True and rep["exit_code"] == 3 and rep["excluded_ids"] == [0, 2]
    assert rep["prior_exponent"] == 0.5 and rep["fraction_points_used"] is None
    assert exclusion_report(results("xoxo"), 4, 0.5)["fatal"] is False
    none_left = exclusion_report(results("x"), 1, 1.0)
    assert none_left["fatal"] is True and none_left["fatal_reason"] == "no shard is left"
    aborted = exclusion_report(results("ooof"), 4, 0.25)
    assert aborted["fatal"] is True and aborted["failed_ids"] == [3] and aborted["exit_code"] == 3
    assert exclusion_report(results("oooo"), 4)["prior_exponent"] == 1.0


def test_exclusion_report_needs_every_shard():
    with pytest.raises(ValueError, match="one result per shard"):
        exclusion_report(results("oo"), 3)
    with pytest.raises(ValueError, match="one result per shard"):
        exclusion_report(results("oo") * 2, 4)


# only the bulk-ESS gate can fail (and always does)
ESS_ONLY = Gates(
    max_rhat=float("inf"), min_ess_bulk_per_chain=1e12, min_ess_tail_per_chain=0.0,
    max_divergence_rate=1.0, min_bfmi=0.0,
)  # fmt: skip


def test_real_sampler_gets_the_retry_settings():
    """A short real run: gates that cannot pass force two retries through run_attempt."""
    lo, hi = np.array([-5.0]), np.array([5.0])
    target = ShardTarget(
        ("mu",), lo, hi, np.array([0.0]), np.array([3.0]),
        lambda th, d: -0.5 * jnp.sum((d - th[0]) ** 2),
    )  # fmt: skip
    data = jnp.asarray(np.random.default_rng(1).normal(0.5, 1.0, size=20))
    precond = from_warm_start(("mu",), np.array([0.5]), np.array([[0.05]]), lo, hi, np.ones(1), 2)
    seen = []

    def spy(*args, **kw):
        r = run_attempt(*args, **kw)
        seen.append(r)
        return r

    res = run_shard(
        target, data, precond, n_shards=2, seed=5, shard_id=1,
        settings=NutsSettings(num_warmup=10, num_samples=20, target_accept=0.9),
        gates=ESS_ONLY, on_failure="retry", attempt_fn=spy,
    )  # fmt: skip
    assert [r.status for r in seen] == ["ok"] * 3, [r.message for r in seen]
    assert res.status == "excluded"
    # only the ESS gate failed: the same warmup and target, twice then four times the draws
    # thinned back to num_samples
    assert [r.num_warmup for r in seen] == [10, 10, 10]
    assert [r.target_accept for r in seen] == [0.9] * 3
    assert [r.thin for r in seen] == [1, 2, 4]
    assert [r.draws_u.shape[1] for r in seen] == [20] * 3
    assert [a["thin"] for a in res.attempts] == [1, 2, 4]
    assert [r.attempt for r in seen] == [0, 1, 2]
    assert not np.array_equal(seen[0].draws_u, seen[1].draws_u)  # keyed by attempt


def test_failing_gates_are_named_on_the_console(caplog):
    """A retried attempt says which gate failed and with what value, then that it retries."""
    with caplog.at_level("WARNING", logger="hpcfit"):
        shard(Fake("split", "good"))
    lines = [r.getMessage() for r in caplog.records if r.name == "hpcfit"]
    assert len(lines) == 1
    assert lines[0].startswith("shard 0 attempt 0: gates_failed — max_rhat: ")
    assert "R-hat = " in lines[0] and "> 1.05" in lines[0] and lines[0].endswith("; retrying")


def test_last_failing_attempt_says_what_happens_to_the_shard(caplog):
    with caplog.at_level("WARNING", logger="hpcfit"):
        shard(Fake("bad_init"), on_failure="exclude")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "hpcfit"]
    assert line.startswith("shard 0 attempt 0: bad_init — ") and line.endswith("; shard excluded")


def test_completion_margin_is_the_worst_kept_attempt_and_warns_below_five_sd():
    def shard(s, margins):
        attempts = [{"attempt": r, "completion_margin_sd": m} for r, m in enumerate(margins)]
        return ShardResult(s, "ok", attempts, None, None, None, 1.0)

    assert completion_margin([shard(0, [None])]) == (None, "")
    worst, note = completion_margin([shard(0, [2.0, 9.0]), shard(1, [7.5])])
    assert worst == 7.5 and note == ""  # the failed first attempt's 2.0 is not kept
    worst, note = completion_margin([shard(0, [9.0]), shard(1, [4.2])])
    assert worst == 4.2 and "4.2 conditional sd" in note and "cmc.scaling=sample" in note
