"""The performance table of docs/benchmarks.md, rendered from the newest benchmark records.

    .venv/bin/python benchmarks/report.py            # print the Markdown block
    .venv/bin/python benchmarks/report.py --write    # replace the block in docs/benchmarks.md
    .venv/bin/python benchmarks/report.py --check    # exit 1 if docs/benchmarks.md is out of date

Reads the newest record (by ``generated_utc``, then file name) of each benchmark in
``benchmarks/results/`` and renders one Markdown table: metric, hpcfit, peer or baseline, ratio,
goal, met. Ratios are the peer's or baseline's time over hpcfit's (> 1: hpcfit faster). The
output depends on the records only (no clock, no host of its own; fixed float formats), so
``--check`` can compare it with the block between ``<!-- perf:start -->`` and
``<!-- perf:end -->`` in ``docs/benchmarks.md``; ``make bench`` ends with ``--write``. Standard
library only; runs no benchmark.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- perf:start -->", "<!-- perf:end -->"
BENCHMARKS = (
    "model_cost",
    "nlsq_warm_start",
    "nuts_gradient_cost",
    "cmc_scaling",
    "cmc_vs_full",
    "kuramoto_bench",
    "nrpt_bench",
    "real_file_io",
    "warm_start_scale",
    "warm_start_peer",
    "plan_vs_run",
    "plan_vs_run_large",
    "plan_only",
    "cmc_calibration",
)
DASH = "—"


# -- records ---------------------------------------------------------------------------------
def newest_records(results: Path = RESULTS) -> dict[str, dict[str, Any]]:
    """{benchmark: its newest record} for the benchmarks that have a record in ``results``."""
    out: dict[str, dict[str, Any]] = {}
    for name in BENCHMARKS:
        found = []
        for path in sorted(results.glob(f"{name}-*.json")):
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("schema", {}).get("name") == f"hpcfit.bench.{name}":
                found.append((record.get("generated_utc") or "", path.name, record))
        if found:
            out[name] = max(found, key=lambda x: (x[0], x[1]))[2]
    return out


def _get(d: Any, *keys: str | int) -> Any:
    """``d[k0][k1]…``, or None as soon as a level is missing or None."""
    for k in keys:
        if d is None:
            return None
        try:
            d = d[k]
        except (KeyError, IndexError, TypeError):
            return None
    return d


# -- formatting ------------------------------------------------------------------------------
def _num(x: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if x is None else f"{format(x, spec)}{unit}"


def _ratio(num: float | None, den: float | None) -> str:
    return "n/a" if num is None or not den else f"{num / den:.2f}×"


def _met(x: bool | None) -> str:
    return DASH if x is None else ("yes" if x else "**no**")


Row = tuple[str, str, str, str, str, str]


def _model_rows(rec: dict[str, Any]) -> list[Row]:
    res, par = rec["results"], rec["params"]
    peer = rec.get("peer", {}).get("name", "peer")
    pooled = res["pooled"]
    m, n = par["n_points"], par["n_frames"]
    labels = {
        "value": f"pooled c2 value, µs/point ({m} points, N = {n})",
        "value_and_grad": "pooled value + gradient (14 params), µs/point",
        "jacfwd": "pooled Jacobian (jacfwd), µs/point",
    }
    goal = res.get("goal", {})
    rows: list[Row] = []
    for key, label in labels.items():
        h = _get(pooled, "per_point_us", key, "hpcfit", "p50")
        p = _get(pooled, "per_point_us", key, "peer", "p50")
        is_goal = key == "value_and_grad" and "target_us_per_point" in goal
        rows.append(
            (
                label,
                _num(h, ".4f"),
                f"{peer} {_num(p, '.4f')}",
                _ratio(p, h),
                f"≤ {goal['target_us_per_point']:g}" if is_goal else DASH,
                _met(goal.get("met")) if is_goal else DASH,
            )
        )
    for size in sorted(res["meshgrid"], key=int):
        pe = res["meshgrid"][size]["per_element_us"]
        h, p = _get(pe, "hpcfit", "p50"), _get(pe, "peer", "p50")
        rows.append(
            (
                f"meshgrid c2 map N = {size}, ns/element",
                _num(None if h is None else h * 1e3, ".2f"),
                f"{peer} {_num(None if p is None else p * 1e3, '.2f')}",
                _ratio(p, h),
                DASH,
                DASH,
            )
        )
    return rows


def _nlsq_rows(rec: dict[str, Any]) -> list[Row]:
    res = rec["results"]
    h, s, goal = res["hpcfit"]["wall"], res["scipy_least_squares"]["wall"], res["goal"]
    nc = res.get("hpcfit_minus_compile") or {}
    target = f"≥ {goal['target_speedup']:g}×"
    base = "scipy FD"
    rows: list[Row] = [
        (
            "NLSQ warm start, cold first call, s",
            _num(h["first_s"], ".2f"),
            f"{base} {_num(s['first_s'], '.2f')}",
            _ratio(s["first_s"], h["first_s"]),
            target,
            _met(goal.get("met")),
        ),
        (
            "NLSQ warm start, repeat in one process (p50), s",
            _num(h.get("repeat_p50_s"), ".2f"),
            f"{base} {_num(s.get('repeat_p50_s'), '.2f')}",
            _ratio(s.get("repeat_p50_s"), h.get("repeat_p50_s")),
            target,
            _met(goal.get("met_repeat_p50")),
        ),
        (
            "NLSQ repeat minus JAX compile (p50, diagnostic), s",
            _num(nc.get("repeat_p50_s"), ".2f"),
            f"{base} {_num(nc.get('scipy_repeat_minus_compile_p50_s'), '.2f')}",
            _ratio(nc.get("scipy_repeat_minus_compile_p50_s"), nc.get("repeat_p50_s")),
            DASH,
            DASH,
        ),
        (
            "NLSQ final cost ½Σr²",
            _num(goal["cost_hpcfit"], ".4f"),
            f"{base} {_num(goal['cost_scipy'], '.4f')}",
            f"{goal['cost_rel_diff']:+.1e} rel",
            f"≤ {base} (rtol {goal['cost_rtol']:g})",
            _met(goal.get("cost_equal_or_better")),
        ),
    ]
    peer = rec.get("peer") or {}
    name = peer.get("name", "peer")
    wall = peer.get("auto_mode_wall")
    if wall:
        for label, key in (("cold first call", "first_s"), ("repeat (p50)", "repeat_p50_s")):
            rows.append(
                (
                    f"NLSQ {label} vs {name} (its `auto` mode), s",
                    _num(h.get(key), ".2f"),
                    f"{name} {_num(wall.get(key), '.2f')}",
                    _ratio(wall.get(key), h.get(key)),
                    DASH,
                    DASH,
                )
            )
    ev = peer.get("evaluated_in_hpcfit_objective")
    if ev:
        rows.append(
            (
                f"NLSQ cost in hpcfit's objective at {name}'s solution",
                _num(goal["cost_hpcfit"], ".4f"),
                f"{name} {_num(ev['hpcfit_cost_profiled_at_peer_params'], '.4f')}",
                _ratio(ev["hpcfit_cost_profiled_at_peer_params"], goal["cost_hpcfit"]),
                DASH,
                DASH,
            )
        )
    return rows


def _nuts_gradient_rows(rec: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for size in rec["results"]["per_shard_size"]:
        nuts = _get(size, "nuts", "cpu_us_per_point_per_gradient")
        direct = _get(size, "direct", "potential_value_and_grad_in_loop", "cpu_us_per_point")
        rows.append(
            (
                f"shard gradient inside NUTS, µs/point ({size['n_points']} points, CPU time)",
                _num(nuts, ".4f"),
                f"direct jitted loop {_num(direct, '.4f')}",
                _ratio(direct, nuts),
                DASH,
                DASH,
            )
        )
    return rows


def _scaling_rows(rec: dict[str, Any]) -> list[Row]:
    goals = rec["results"]["goals"]
    speed, comm = goals["speedup"], goals["comm_fraction"]
    k = _get(rec, "params", "n_shards") or "K"
    return [
        (
            f"CMC strong scaling 1 → 2 ranks, sampling phase (K = {k}), speedup",
            _num(speed["measured"], ".2f", "×"),
            DASH,
            DASH,
            f"≥ {speed['target']:g}×",
            _met(speed.get("met")),
        ),
        (
            "MPI communication, fraction of the 2-rank run's wall time",
            _num(100 * comm["measured"], ".2f", " %"),
            DASH,
            DASH,
            f"< {100 * comm['target_below']:g} %",
            _met(comm.get("met")),
        ),
    ]


def _cmc_vs_full_rows(rec: dict[str, Any]) -> list[Row]:
    res = rec["results"]
    rows: list[Row] = []
    for run, ranks in (("cmc_r1", 1), ("cmc_r2", 2)):
        phase = _get(res, "comparisons", run, "sampling_phase")
        if not phase:
            continue
        k = _get(rec, "params", "n_shards_cmc") or "K"
        rows.append(
            (
                f"CMC (K = {k}, {ranks} rank{'s' if ranks > 1 else ''}) vs one full NUTS run: "
                "sampling s per effective draw",
                _num(phase["cmc_s_per_ess"], ".4f"),
                f"full run {_num(phase['full_s_per_ess'], '.4f')}",
                _ratio(phase["full_s_per_ess"], phase["cmc_s_per_ess"]),
                f"≥ {_get(res, 'goal', 'target_speedup_per_ess') or 'K/2'}×",
                _met(phase.get("met")),
            )
        )
    return rows


def _kuramoto_rows(rec: dict[str, Any]) -> list[Row]:
    res, n = rec["results"], _get(rec, "params", "N")
    steps = _get(rec, "params", "n_steps")
    goals = res.get("goals", {})
    numpy_ms = (_get(res, "numpy_direct_rk4", "p50") or 0) / 1e3 or None
    final_ms = (_get(res, "final_state", "p50") or 0) / 1e3 or None
    rows: list[Row] = [
        (
            f"Kuramoto RK4 final state, ms (N = {n}, {steps} steps)",
            _num(final_ms, ".2f"),
            f"NumPy direct {_num(numpy_ms, '.1f')}",
            _ratio(numpy_ms, final_ms),
            f"≥ {_get(goals, 'speedup_vs_numpy', 'goal'):g}×",
            _met(_get(goals, "speedup_vs_numpy", "met", "final_state")),
        )
    ]
    peer = rec.get("peer") or {}
    traj_ms = (_get(res, "trajectory", "p50") or 0) / 1e3 or None
    grad_ms = (_get(res, "gradient", "p50") or 0) / 1e3 or None
    if _get(peer, "forward", "ok"):
        fwd = _get(peer, "forward", "p50") / 1e3
        rows.append(
            (
                "Kuramoto trajectory, ms",
                _num(traj_ms, ".2f"),
                f"{peer['name']} {_num(fwd, '.1f')}",
                _ratio(fwd, traj_ms),
                DASH,
                DASH,
            )
        )
    if _get(peer, "gradient", "ok"):
        grad = _get(peer, "gradient", "p50") / 1e3
        rows.append(
            (
                "Kuramoto gradient of the final state (θ0, ω, K), ms",
                _num(grad_ms, ".2f"),
                f"{peer['name']} {_num(grad, '.1f')}",
                _ratio(grad, grad_ms),
                DASH,
                DASH,
            )
        )
    b64 = _get(res, "ensemble", "B64") or {}
    ens = _get(goals, "ensemble_speedup_b64") or {}
    for label, key, speed in (
        ("default chunks", "ensemble_default_chunk", "default_chunk"),
        ("one vmapped chunk", "ensemble_chunk_64", "one_vmapped_chunk"),
    ):
        if key not in b64:
            continue
        rows.append(
            (
                f"Kuramoto ensemble B = 64 ({label}), ms",
                _num(b64[key]["p50"] / 1e3, ".1f"),
                f"loop of single calls {_num(b64['loop_of_single_calls']['p50'] / 1e3, '.1f')}",
                _num(ens.get(speed), ".2f", "×"),
                f"≥ {ens.get('goal', 3):g}×",
                _met(_get(ens, "met", speed)),
            )
        )
    dev = _get(goals, "resolve_device_us") or {}
    if dev:
        rows.append(
            (
                "resolve_device on CPU-only JAX, µs/call",
                _num(dev.get("value"), ".2f"),
                DASH,
                DASH,
                f"≤ {dev.get('goal', 2):g}",
                _met(dev.get("met")),
            )
        )
    return rows


NRPT_PEER_GOAL = 2.0
"""Issue goal: round trips per second ≥ 2× hamon's at equal or better efficiency τ_obs/τ̄."""


def _efficiency_tied_or_better(entry: dict[str, Any], ratio: float | None) -> bool | None:
    """Efficiency ratio ≥ 1 within two standard errors of the round-trip counts' Poisson noise.

    The relative standard error of a ratio of two counts n₁, n₂ is √(1/n₁ + 1/n₂) (medians over
    the repeats); with a few dozen round trips per run a strict ≥ 1 would be decided by noise.
    """
    mine = [r.get("round_trips_hamon_convention", 0) for r in entry.get("hpcfit", [])]
    theirs = [r.get("round_trips", 0) for r in entry.get("hamon", [])]
    if ratio is None or not mine or not theirs:
        return None
    n1, n2 = float(statistics.median(mine)), float(statistics.median(theirs))
    if n1 <= 0 or n2 <= 0:
        return False
    return ratio >= 1.0 - 2.0 * math.sqrt(1.0 / n1 + 1.0 / n2)


def _nrpt_rows(rec: dict[str, Any]) -> list[Row]:
    res = rec["results"]
    peer = _get(rec, "peer", "name") or "peer"
    rows: list[Row] = []
    for size in res.get("sizes", []):
        head = f"NRPT {size['L']}×{size['L']} Ising, N = {size['n_chains']}"
        for entry in size.get("by_n_expl", []):
            ratio = entry.get("ratio_hpcfit_over_hamon") or {}
            mine, theirs = entry.get("hpcfit_median") or {}, entry.get("hamon_median") or {}
            if "round_trips_per_s" not in mine:
                continue
            same = ratio.get("round_trips_per_s_same_convention")
            eff = ratio.get("efficiency_same_convention")
            tied = _efficiency_tied_or_better(entry, eff)
            fast = ratio.get("round_trips_per_s")
            rows.append(
                (
                    f"{head}, n_expl = {entry['n_expl']}: round trips/s (counted as hamon counts: "
                    f"{_num(same, '.2f', '×')}; efficiency ratio {_num(eff, '.2f')})",
                    _num(mine["round_trips_per_s"], ".0f"),
                    f"{peer} {_num(theirs.get('round_trips_per_s'), '.0f')}",
                    _num(fast, ".2f", "×"),
                    f"≥ {NRPT_PEER_GOAL:g}×, efficiency ≥ 1× (±2σ)",
                    _met(None if fast is None or tied is None else fast >= NRPT_PEER_GOAL and tied),
                )
            )
        first = _get(size, "by_n_expl", 0) or {}
        mine, theirs = first.get("hpcfit_median") or {}, first.get("hamon_median") or {}
        if "ess_per_s" in mine:
            rows.append(
                (
                    f"{head}, n_expl = {first['n_expl']}: ESS/s of H",
                    _num(mine["ess_per_s"], ".0f"),
                    f"{peer} {_num(theirs.get('ess_per_s'), '.0f')}",
                    _num(_get(first, "ratio_hpcfit_over_hamon", "ess_per_s"), ".2f", "×"),
                    DASH,
                    DASH,
                )
            )
    for scaling in res.get("strong_scaling", []):
        runs = {(r["P"], r.get("path")): r for r in scaling.get("runs", [])}
        two = next((r for (p, _), r in runs.items() if p == 2), None)
        if two is None:
            continue
        same = "bitwise equal" if scaling.get("bitwise_equal_across_P") else "**differ**"
        for path, label in (("host", "per-scan exchange"), ("scan", "fused scan")):
            one = runs.get((1, path))
            if one is None:
                continue
            rows.append(
                (
                    f"NRPT {scaling['L']}×{scaling['L']}, N = {scaling['n_chains']}: last round "
                    f"on 2 ranks vs 1 rank ({label}), s (results {same})",
                    _num(two["last_round_wall_s_median"], ".3f"),
                    f"1 rank {_num(one['last_round_wall_s_median'], '.3f')}",
                    _ratio(one["last_round_wall_s_median"], two["last_round_wall_s_median"]),
                    DASH,
                    DASH,
                )
            )
    return rows


def _real_file_rows(rec: dict[str, Any]) -> list[Row]:
    res, par = rec["results"], rec["params"]
    big, one = res["data_only_big_file"], res["data_only_one_bin_file"]
    goals = res.get("goals", {})
    return [
        (
            f"data-only run, 1 bin of a {par['bins']}-bin {par['frames']}² APS-U file: peak RSS",
            _num(big["peak_rss_mb_max"], ".0f", " MB"),
            f"1-bin file {_num(one['peak_rss_mb_max'], '.0f', ' MB')}",
            f"+{res['peak_rss_difference_mb']:.1f} MB",
            "difference < 150 MB",
            _met(goals.get("peak_rss_difference_under_150_mb")),
        ),
        (
            f"`hpcfit-inspect` on that file ({res['big_file_mb']:.0f} MB)",
            _num(res["inspect_big_file"]["wall_s_median"], ".2f", " s"),
            DASH,
            DASH,
            "< 1.5 s",
            _met(goals.get("inspect_under_1_5_s")),
        ),
    ]


def _warm_start_scale_rows(rec: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    wall_goal = {1000: 30.0, 2000: 120.0}
    for size in rec["results"]["sizes"]:
        n, fits = size["n_frames"], size["fits"]
        points = fits[0]["n_points"] if fits else 0
        goal = f"100 % in basin; < {wall_goal[n]:.0f} s" if n in wall_goal else "100 % in basin"
        met = size["fraction_in_basin"] == 1.0 and size["wall_s_median"] < wall_goal.get(n, 1e99)
        if n >= 2000:  # the memory goal at 6 M points
            goal += "; peak RSS < 2 GB"
            met = met and size["peak_rss_mb"] < 2048.0
        rows.append(
            (
                f"warm start, N = {n} ({points / 1e6:.2f} M points), {len(fits)} seeds: in the "
                "generator's basin; median wall; peak RSS",
                f"{size['fraction_in_basin']:.0%}; {size['wall_s_median']:.1f} s; "
                f"{size['peak_rss_mb']:.0f} MB",
                DASH,
                DASH,
                goal,
                _met(met),
            )
        )
    return rows


def _warm_start_peer_rows(rec: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for size in rec["results"]["sizes"]:
        pairs = [(f, f["peer"]) for f in size["fits"] if "peer" in f]
        if not pairs:
            continue
        ok = [p for _, p in pairs if "wall_s" in p and p.get("wall_s") is not None]
        mine = sorted(f["wall_s"] for f, _ in pairs)
        theirs = sorted(p["wall_s"] for p in ok)
        med = lambda xs: xs[len(xs) // 2] if xs else None  # noqa: E731
        rows.append(
            (
                f"warm start vs heterodyne 2.0.1 NLSQ, N = {size['n_frames']}, {len(pairs)} "
                "seeds: in the basin; median wall",
                f"hpcfit {sum(f['in_basin'] for f, _ in pairs)}/{len(pairs)}, "
                f"{_num(med(mine), '.1f', ' s')}",
                f"{sum(bool(p.get('in_basin')) for _, p in pairs)}/{len(pairs)}, "
                f"{_num(med(theirs), '.1f', ' s')}",
                _ratio(med(theirs), med(mine)),
                "—",
                "—",
            )
        )
    return rows


def _plan_rows(rec: dict[str, Any]) -> list[Row]:
    res = rec["results"]
    est, probe = res["plan"]["estimate"], res["plan"]["probe"]
    what = " ".join(rec["params"]["overrides"])
    plan = (
        f"K = {est['n_shards']}, {est['shards_per_rank']} per rank; "
        f"{est['shard_s'] / 60:.1f} min per shard; job {est['job_s'] / 60:.1f} min; "
        f"{probe['mean_steps']:.0f} leapfrog steps per iteration"
    )
    measured = res.get("measured")
    if measured is None:
        return [(f"plan only (`{what}`)", plan, DASH, DASH, "—", "—")]
    ratio = measured["plan_over_measured"]
    peaks = measured.get("peak_rss_mb") or []
    return [
        (
            f"plan vs run (`{what}`): plan; measured wall; peak RSS per rank",
            f"{plan}; measured {measured['wall_s'] / 60:.1f} min (plan/measured "
            f"{ratio:.2f}); {', '.join(f'{p:.0f}' for p in peaks)} MB "
            f"(plan {est['memory_rank0_mb']:.0f}, {est['memory_rank_mb']:.0f} MB)",
            DASH,
            DASH,
            "plan within 30 %",
            _met(abs(ratio - 1.0) <= 0.3),
        )
    ]


def _calibration_rows(rec: dict[str, Any]) -> list[Row]:
    s = rec["results"]["summary"]
    cmc, full = s["cmc"], s["full"]
    p = rec["params"]
    bad = {key: s[key]["coverage"]["0.95"]["outside_band"] for key in ("cmc", "full")}
    ratio = list(s["sd_cmc_over_full"].values())
    return [
        (
            f"calibration, {cmc['n_datasets']} datasets ({p['n_frames']} frames of {p['dt']} s): "
            "quantities whose 95 % coverage is outside 2 binomial sd; sd_CMC / sd_full range",
            f"CMC K = {p['n_shards']}: {len(bad['cmc'])} of {len(cmc['names'])}; "
            f"{min(ratio):.2f}–{max(ratio):.2f}",
            f"full NUTS: {len(bad['full'])} of {len(full['names'])}",
            DASH,
            "0 outside; ratio within 10 %",
            _met(not bad["cmc"] and all(abs(r - 1.0) <= 0.1 for r in ratio)),
        )
    ]


def calibration_table(rec: dict[str, Any]) -> list[str]:
    """Per quantity: coverage of the 68 % and 95 % intervals (± binomial sd), mean sd / σ_k and
    sd_CMC / sd_full, for CMC and one full NUTS run."""
    s = rec["results"]["summary"]
    cmc, full = s["cmc"], s["full"]
    n = cmc["n_datasets"]

    def cov(block: dict[str, Any], level: str, i: int) -> str:
        c = block["coverage"][level]
        return f"{c['fraction'][i]:.2f} ± {c['stderr'][i]:.2f}"

    band = {lv: cmc["coverage"][lv]["band_2sigma"] for lv in ("0.68", "0.95")}
    lines = [
        "",
        f"**CMC calibration** (`cmc_calibration`, {n} noise seeds of one truth for CMC, "
        f"{full['n_datasets']} for full NUTS): coverage of the "
        f"central 68 % / 95 % intervals (calibrated: 0.68 ± {band['0.68']:.2f}, "
        f"0.95 ± {band['0.95']:.2f} at 2 binomial sd), mean sd / σ_k (σ_k: the NLSQ standard "
        "error) and mean sd_CMC / sd_full.",
        "",
        "| quantity | CMC 68 % | CMC 95 % | full 68 % | full 95 % | CMC sd / σ_k | full sd / σ_k "
        "| sd_CMC / sd_full |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, name in enumerate(cmc["names"]):
        cells = [
            name,
            cov(cmc, "0.68", i),
            cov(cmc, "0.95", i),
            cov(full, "0.68", i),
            cov(full, "0.95", i),
            f"{cmc['sd_over_sigma_k'][i]:.2f}",
            f"{full['sd_over_sigma_k'][i]:.2f}",
            f"{s['sd_cmc_over_full'][name]:.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![coverage of the truth, CMC and full NUTS](img/cmc_calibration.png)"]
    return lines


RENDERERS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "model_cost": _model_rows,
    "nlsq_warm_start": _nlsq_rows,
    "nuts_gradient_cost": _nuts_gradient_rows,
    "cmc_scaling": _scaling_rows,
    "cmc_vs_full": _cmc_vs_full_rows,
    "kuramoto_bench": _kuramoto_rows,
    "nrpt_bench": _nrpt_rows,
    "real_file_io": _real_file_rows,
    "warm_start_scale": _warm_start_scale_rows,
    "warm_start_peer": _warm_start_peer_rows,
    "plan_vs_run": _plan_rows,
    "plan_vs_run_large": _plan_rows,
    "plan_only": _plan_rows,
    "cmc_calibration": _calibration_rows,
}


def _caption(records: dict[str, dict[str, Any]]) -> str:
    """Host (CPU, cores), date, load average at start → end and commit of each record.

    When the records come from more than one host, the hosts are lettered A, B, … and every
    record names its host's letter.
    """
    hosts: list[str] = []
    runs: list[tuple[str, str, str]] = []  # (host, benchmark, date · load · commit)
    for name in BENCHMARKS:
        if name not in records:
            continue
        rec = records[name]
        prov = rec.get("provenance", {})
        host = (
            f"{prov.get('hostname', '?')}: {prov.get('cpu_model') or '?'}, "
            f"{prov.get('cpu_count') or '?'} cores"
        )
        if host not in hosts:
            hosts.append(host)
        commit = _get(prov, "git", "commit")
        dirty = "+" if _get(prov, "git", "dirty") else ""
        detail = (
            f"{str(rec.get('generated_utc', ''))[:10]} "
            f"(load {_num(_get(prov, 'loadavg_start', 0), '.2f')} → "
            f"{_num(_get(prov, 'loadavg', 0), '.2f')}, "
            f"commit {commit[:7] if commit else 'none'}{dirty})"
        )
        runs.append((host, name, detail))
    if len(hosts) == 1:
        listed = ", ".join(f"`{name}` {detail}" for _, name, detail in runs)
        return f"Host {hosts[0]}. Records: {listed}"
    letter = {host: chr(ord("A") + i) for i, host in enumerate(hosts)}
    listed = ", ".join(f"`{name}` [{letter[host]}] {detail}" for host, name, detail in runs)
    named = "; ".join(f"[{letter[h]}] {h}" for h in hosts)
    return f"Hosts {named}. Records: {listed}"


def _peer_notes(records: dict[str, dict[str, Any]]) -> list[str]:
    notes = []
    for name in BENCHMARKS:
        peer = _get(records, name, "peer") or {}
        if peer.get("skipped_reason"):
            notes.append(f"`{name}`: peer skipped ({peer['skipped_reason']}).")
    individual = _get(records, "nlsq_warm_start", "peer", "individual_mode")
    if individual:
        run = _get(individual, "runs", 0) or {}
        ok = run.get("success")
        msg = str(run.get("message", individual.get("error", "")))
        msg = msg.replace("|", "/").replace("\n", " ")[:100]
        state = "succeeded" if ok else f"failed ({msg})"
        notes.append(
            "heterodyne NLSQ with per-angle scaling (`individual`, hpcfit's parameterisation) "
            f"{state}; its `auto` mode (one contrast/offset for all angles) is a different "
            "objective, so its cost is compared in hpcfit's."
        )
    return notes


def render(records: dict[str, dict[str, Any]]) -> str:
    """The Markdown block (ends with a newline) for the newest records."""
    if not records:
        return "_No benchmark records in `benchmarks/results/`._\n"
    lines = [
        f"_{_caption(records)}. Ratio: peer or baseline / hpcfit (> 1: hpcfit faster or lower "
        "cost); scipy FD: `scipy.optimize.least_squares` TRF with a 2-point Jacobian; float64 "
        "on the CPU, medians; 1-min load averages; commit+ = with local changes. "
        "Regenerate: `.venv/bin/python benchmarks/report.py --write`._",
        "",
        "| metric | hpcfit | peer / baseline | ratio | goal | met? |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name in BENCHMARKS:
        if name in records:
            lines += ["| " + " | ".join(row) + " |" for row in RENDERERS[name](records[name])]
    if "cmc_calibration" in records:
        lines += calibration_table(records["cmc_calibration"])
    notes = _peer_notes(records)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


# -- the page holding the block --------------------------------------------------------------
def extract_block(text: str) -> str:
    """The text between the markers, without the newline after the start marker."""
    i, j = text.find(START), text.find(END)
    if i < 0 or j < i:
        raise ValueError(f"no {START} … {END} block")
    return text[i + len(START) :].split(END, 1)[0].removeprefix("\n")


def replace_block(text: str, block: str) -> str:
    """``text`` with the block between the markers replaced (markers kept)."""
    extract_block(text)  # raises without the markers
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{START}\n{block}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--results", type=Path, default=RESULTS, help="folder of the records")
    ap.add_argument("--page", type=Path, default=PAGE, help="Markdown page holding the markers")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="replace the block in the page")
    mode.add_argument("--check", action="store_true", help="exit 1 if the page's block differs")
    args = ap.parse_args(argv)

    block = render(newest_records(args.results))
    if not (args.write or args.check):
        sys.stdout.write(block)
        return 0
    text = args.page.read_text(encoding="utf-8")
    if args.check:
        current = extract_block(text)
        if current != block:
            print(f"{args.page}: performance block out of date", file=sys.stderr)
            return 1
        return 0
    new = replace_block(text, block)
    if new != text:
        args.page.write_text(new, encoding="utf-8")
    print(f"{args.page}: performance block {'updated' if new != text else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
