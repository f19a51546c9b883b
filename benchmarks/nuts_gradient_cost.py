"""Cost of one shard log-density gradient inside NUTS, against a direct timing of the same gradient.

    python benchmarks/nuts_gradient_cost.py                      # embedded data, K = 4 (3713 pts)
    python benchmarks/nuts_gradient_cost.py --n-shards 16 4 1    # several shard sizes M

Set-up (float64, CPU): the embedded dataset with its default model (16 sampled quantities),
shard 0 of an angle-balanced plan of ``--n-shards`` K shards, σ_a known, whitened coordinates
from the NLSQ warm start, exactly as a CMC rank builds them. Two chains on two virtual devices
(``cmc.num_chains`` must be ≥ 2, and ``run_attempt`` with one chain fails: it passes starts with
a chain axis of length 1). The process is pinned to ONE CPU, so the chains share it and their
work adds up: every number is per gradient on one core.

Measured, in ``--rounds`` interleaved rounds (so NUTS and the direct timing see the same load):

* **in NUTS**: two ``hpcfit.cmc.nuts.run_attempt`` calls on the same shard with the same keys and
  warmup, one with ``--samples-short`` and one with ``--samples-long`` post-warmup draws. Their
  first warmup + short iterations are identical (checked: the short run's draws are a prefix of
  the long run's), so the difference of their costs is the cost of the extra draws, and the
  difference of Σ ``AttemptResult.num_steps`` (both chains) is the number of leapfrog steps,
  one potential gradient each, that they took. Fixed costs (tracing, compiling, start points,
  warmup, transfers) cancel. Headline: process CPU time (``time.process_time``, all threads),
  which the other work on a shared host disturbs far less than wall time; the wall time minus
  the JAX compile time inside each call (``jax.monitoring``) is recorded too.
* **direct**: ``jax.value_and_grad`` of the same NumPyro potential (the one NUTS differentiates,
  in the sampler's z coordinates; data passed as arguments), from z = 0 (the warm start):
  (i) ``--loop-evals`` evaluations inside one jitted ``lax.fori_loop`` (z moved by 1e-12·∇ each
  time), which is how the sampler runs it — one XLA program, no per-call overhead; (ii) one
  jitted call per evaluation, which adds XLA's per-execution cost of a large program on top of
  the arithmetic; and, for reference, (iii) single calls of ``value_and_grad`` of the bare
  shard log-likelihood in θ. CPU and wall seconds per evaluation, after a warm-up call.

Reported per shard size M: µs per gradient and µs per point per gradient in NUTS and direct,
and NUTS / direct in a loop (above 1: the sampler's own work per leapfrog step — tree building,
momentum, energy, U-turn checks — on top of the gradient) and NUTS / direct single call. There
is no pass/fail goal; ``model_cost``'s goal of 0.15 µs/point for the bare pooled value +
gradient is quoted for context.

Writes ``benchmarks/results/nuts_gradient_cost-<host>-<date>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _record  # noqa: E402

START = {"D0_ref": 5000.0, "D0_sample": 20000.0}  # configs/model/embedded.yaml
MODEL_COST_GOAL_US = 0.15


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n-shards", type=int, nargs="+", default=[4], help="K values (shard 0 used)")
    ap.add_argument("--warmup", type=int, default=80, help="NUTS warmup iterations")
    ap.add_argument("--samples-short", type=int, default=20, help="draws of the short run")
    ap.add_argument("--samples-long", type=int, default=120, help="draws of the long run")
    ap.add_argument("--rounds", type=int, default=2, help="short/long pairs per shard size")
    ap.add_argument("--chains", type=int, default=2, help="chains (= virtual devices), ≥ 2")
    ap.add_argument("--max-tree-depth", type=int, default=10)
    ap.add_argument("--dense-mass", action="store_true", help="adapt a dense mass matrix")
    ap.add_argument("--target-accept", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0, help="cmc.seed: plan and sampler keys")
    ap.add_argument("--repeats", type=int, default=100, help="minimum direct-timing repeats")
    ap.add_argument("--min-time", type=float, default=1.0, help="minimum seconds per direct block")
    ap.add_argument("--loop-evals", type=int, default=100, help="evaluations per in-loop call")
    args = ap.parse_args(argv)
    if args.samples_long <= args.samples_short:
        ap.error("--samples-long must exceed --samples-short")
    return args


def cpu_block(
    fn: Any, fargs: tuple, repeats: int, min_time_s: float, first: bool
) -> dict[str, Any]:
    """Call ``fn(*fargs)`` (blocking on the result) at least ``repeats`` times and for at least
    ``min_time_s``; the mean wall and process-CPU seconds per call. ``first`` times the first
    (compiling) call on its own and leaves it out."""
    out: dict[str, Any] = {}
    if first:
        t0 = time.perf_counter()
        _record.block(fn(*fargs))
        out["first_call_s"] = time.perf_counter() - t0
    _record.block(fn(*fargs))
    n, c0, t0 = 0, time.process_time(), time.perf_counter()
    while n < repeats or time.perf_counter() - t0 < min_time_s:
        _record.block(fn(*fargs))
        n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {**out, "calls": n, "wall_s_per_call": wall / n, "cpu_s_per_call": cpu / n}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = _record.loadavg()

    import os

    cpu = sorted(os.sched_getaffinity(0))[0]
    os.sched_setaffinity(0, {cpu})  # before JAX starts its threads: one core for everything
    from hpcfit.runtime.process import configure

    configure(device_count=args.chains)

    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import potential_energy

    from hpcfit.cmc.nuts import NutsSettings, run_attempt
    from hpcfit.cmc.plan import plan_shards
    from hpcfit.cmc.target import numpyro_model
    from hpcfit.config import NlsqConfig
    from hpcfit.runtime.compile_meter import CompileMeter
    from hpcfit.xpcs.nlsq import fit
    from hpcfit.xpcs.params import make_space
    from hpcfit.xpcs.posterior import shard_data, shard_target, warm_start_preconditioner
    from hpcfit.xpcs.synthetic import EMBEDDED_FIXED, embedded

    data = embedded()
    space = make_space(fixed=EMBEDDED_FIXED, start=START)
    t0 = time.perf_counter()
    warm = fit(data, space, NlsqConfig())
    warm_s = time.perf_counter() - t0
    if not warm.usable:
        raise SystemExit(f"NLSQ warm start unusable: {warm.flags}")
    # σ_a as the pipeline chooses it (hpcfit.pipelines.xpcs_job.noise_levels)
    sigma = np.asarray(
        warm.extra["sigma_used"] if warm.sigma_known else warm.sigma_hat, dtype=np.float64
    )
    target = shard_target(data.grid(), space, sigma)
    pooled = data.pooled()
    print(
        f"[nuts_gradient_cost] warm start {warm_s:.1f} s; {pooled.size} pooled points, "
        f"{target.size} sampled quantities",
        flush=True,
    )

    per_k: list[dict[str, Any]] = []
    for k in args.n_shards:
        plan = plan_shards(pooled.a, data.n_phi, args.seed, k)
        shard = shard_data(pooled, plan.indices(0), sigma)
        m = int(shard.y.size)
        precond = warm_start_preconditioner(warm, target, k)

        def attempt(n_samples: int, k=k, shard=shard, precond=precond) -> dict[str, Any]:
            settings = NutsSettings(
                num_warmup=args.warmup,
                num_samples=n_samples,
                num_chains=args.chains,
                target_accept=args.target_accept,
                max_tree_depth=args.max_tree_depth,
                dense_mass=args.dense_mass,
            )
            with CompileMeter() as meter:
                c0, t0 = time.process_time(), time.perf_counter()
                res = run_attempt(
                    target,
                    shard,
                    precond,
                    n_shards=k,
                    seed=args.seed,
                    shard_id=0,
                    attempt=0,
                    settings=settings,
                )
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if res.status != "ok":
                raise SystemExit(f"run_attempt failed: {res.status}: {res.message}")
            comp = meter.summary()
            return {
                "num_samples": n_samples,
                "wall_s": wall,
                "cpu_s": cpu,
                "attempt_wall_s": res.wall_s,
                "jax_compile": comp,
                "wall_minus_compile_s": wall - comp["total_s"],
                "sum_num_steps": int(np.sum(res.num_steps)),
                "mean_num_steps": float(np.mean(res.num_steps)),
                "max_num_steps": int(np.max(res.num_steps)),
                "n_divergent": int(np.count_nonzero(res.diverging)),
                "mean_accept_prob": float(np.mean(res.accept_prob)),
                "_draws": res.draws_u,
            }

        # the same gradient, called directly (data passed as arguments)
        model = numpyro_model(target, precond, k, "whiten")

        def potential(z, d, model=model):
            return potential_energy(model, (d,), {}, {"z": z})

        def neg_loglik(theta, d):
            return -target.loglik(theta, d)

        vg_pot = jax.value_and_grad(potential)

        def in_loop(z, d, vg_pot=vg_pot):
            """``--loop-evals`` evaluations in one XLA program, z moved by 1e-12·gradient so
            that no evaluation can be hoisted out of the loop (as inside the sampler)."""

            def body(_, carry):
                z, acc = carry
                v, g = vg_pot(z, d)
                return z + 1e-12 * g, acc + v

            return jax.lax.fori_loop(0, args.loop_evals, body, (z, jnp.zeros((), z.dtype)))

        z0 = jnp.zeros(target.size, dtype=jnp.float64)
        direct_fns = {  # name: (function, arguments, gradient evaluations per call)
            "potential_value_and_grad_in_loop": (jax.jit(in_loop), (z0, shard), args.loop_evals),
            "potential_value_and_grad": (jax.jit(vg_pot), (z0, shard), 1),
            "loglik_value_and_grad": (
                jax.jit(jax.value_and_grad(neg_loglik)),
                (jnp.asarray(warm.theta, dtype=jnp.float64), shard),
                1,
            ),
        }
        direct_blocks: dict[str, list[dict[str, Any]]] = {name: [] for name in direct_fns}

        rounds = []
        for r in range(args.rounds):
            short = attempt(args.samples_short)
            long = attempt(args.samples_long)
            for name, (fn, fargs, evals) in direct_fns.items():
                blk = cpu_block(fn, fargs, args.repeats, args.min_time, first=r == 0)
                blk["evals_per_call"] = evals
                blk["cpu_s_per_eval"] = blk["cpu_s_per_call"] / evals
                blk["wall_s_per_eval"] = blk["wall_s_per_call"] / evals
                direct_blocks[name].append(blk)
            n_short = args.samples_short
            prefix = bool(np.array_equal(short.pop("_draws"), long.pop("_draws")[:, :n_short]))
            d_steps = long["sum_num_steps"] - short["sum_num_steps"]
            d_wall = long["wall_s"] - short["wall_s"]
            d_net = long["wall_minus_compile_s"] - short["wall_minus_compile_s"]
            d_cpu = long["cpu_s"] - short["cpu_s"]
            loop = direct_blocks["potential_value_and_grad_in_loop"][-1]
            call = direct_blocks["potential_value_and_grad"][-1]
            cpu_g, wall_g = d_cpu / d_steps, d_net / d_steps
            rounds.append(
                {
                    "short": short,
                    "long": long,
                    "prefix_identical": prefix,
                    "delta_steps": d_steps,
                    "delta_wall_s": d_wall,
                    "delta_wall_minus_compile_s": d_net,
                    "delta_cpu_s": d_cpu,
                    "cpu_s_per_gradient": cpu_g,
                    "wall_s_per_gradient": wall_g,
                    "wall_s_per_gradient_raw": d_wall / d_steps,
                    "ratio_cpu_vs_in_loop": cpu_g / loop["cpu_s_per_eval"],
                    "ratio_wall_vs_in_loop": wall_g / loop["wall_s_per_eval"],
                    "ratio_cpu_vs_single_call": cpu_g / call["cpu_s_per_eval"],
                    "ratio_wall_vs_single_call": wall_g / call["wall_s_per_eval"],
                    "loadavg_after": _record.loadavg(),
                }
            )
            print(
                f"[nuts_gradient_cost] K={k} M={m} round {r}: {d_steps} extra leapfrog steps, "
                f"{cpu_g * 1e6:.1f} CPU-µs ({wall_g * 1e6:.1f} wall-µs) per gradient in NUTS; "
                f"direct {loop['cpu_s_per_eval'] * 1e6:.1f} CPU-µs in a loop, "
                f"{call['cpu_s_per_eval'] * 1e6:.1f} CPU-µs per single call; prefix identical: "
                f"{prefix}; load {_record.loadavg()}",
                flush=True,
            )

        med = {
            key: statistics.median(x[key] for x in rounds)
            for key in (
                "cpu_s_per_gradient",
                "wall_s_per_gradient",
                "wall_s_per_gradient_raw",
                "ratio_cpu_vs_in_loop",
                "ratio_wall_vs_in_loop",
                "ratio_cpu_vs_single_call",
                "ratio_wall_vs_single_call",
            )
        }
        direct = {}
        for name, blocks in direct_blocks.items():
            cpu_eval = statistics.median(b["cpu_s_per_eval"] for b in blocks)
            wall_eval = statistics.median(b["wall_s_per_eval"] for b in blocks)
            direct[name] = {
                "cpu_us_per_gradient": cpu_eval * 1e6,
                "wall_us_per_gradient": wall_eval * 1e6,
                "cpu_us_per_point": cpu_eval * 1e6 / m,
                "wall_us_per_point": wall_eval * 1e6 / m,
                "blocks": blocks,
            }
        entry = {
            "n_shards": k,
            "n_points": m,
            "rounds": rounds,
            "nuts": {
                "cpu_us_per_gradient": med["cpu_s_per_gradient"] * 1e6,
                "cpu_us_per_point_per_gradient": med["cpu_s_per_gradient"] * 1e6 / m,
                "wall_us_per_gradient": med["wall_s_per_gradient"] * 1e6,
                "wall_us_per_point_per_gradient": med["wall_s_per_gradient"] * 1e6 / m,
                "wall_us_per_gradient_raw": med["wall_s_per_gradient_raw"] * 1e6,
                "all_prefix_identical": all(x["prefix_identical"] for x in rounds),
            },
            "direct": direct,
            "ratio_nuts_over_direct_potential": {
                "in_loop_cpu": med["ratio_cpu_vs_in_loop"],
                "in_loop_wall": med["ratio_wall_vs_in_loop"],
                "single_call_cpu": med["ratio_cpu_vs_single_call"],
                "single_call_wall": med["ratio_wall_vs_single_call"],
            },
        }
        per_k.append(entry)

    payload = {
        "workload": "cmc.nuts_gradient_cost",
        "params": {
            "dataset": "embedded (3 angles × 100 frames, 14850 pooled points)",
            "model": {"fixed": list(EMBEDDED_FIXED), "start": START},
            "sampled_quantities": list(target.names),
            "sigma": sigma.tolist(),
            "n_shards": args.n_shards,
            "shard": "shard 0 of plan_shards(pooled.a, n_phi, seed, K)",
            "precondition": "whiten (warm_start_preconditioner of the NLSQ warm start)",
            "num_chains": args.chains,
            "devices": args.chains,
            "cpu_affinity": sorted(os.sched_getaffinity(0)),
            "warmup": args.warmup,
            "samples_short": args.samples_short,
            "samples_long": args.samples_long,
            "rounds": args.rounds,
            "max_tree_depth": args.max_tree_depth,
            "dense_mass": args.dense_mass,
            "target_accept": args.target_accept,
            "seed": args.seed,
            "direct_repeats_min": args.repeats,
            "direct_loop_evals": args.loop_evals,
            "direct_min_time_s": args.min_time,
            "method": "s/gradient = Δ(process CPU time) / Δ(Σ num_steps over chains) between "
            "two run_attempt calls that differ only in num_samples (identical prefix), median "
            "over rounds; each leapfrog step evaluates the potential's gradient once; one CPU, "
            "so the chains' work adds up; wall-based figures use Δ(wall − JAX compile time)",
        },
        "results": {
            "warm_start_s": warm_s,
            "per_shard_size": per_k,
            "context": {
                "model_cost_goal_us_per_point": MODEL_COST_GOAL_US,
                "note": "model_cost's goal is for the bare pooled value + gradient; the direct "
                "loglik timing here is the same quantity on the shard's points",
            },
        },
    }
    path = _record.write_record("nuts_gradient_cost", payload, load_start=load_start)
    for e in per_k:
        n, d = e["nuts"], e["direct"]
        r = e["ratio_nuts_over_direct_potential"]
        loop, call = d["potential_value_and_grad_in_loop"], d["potential_value_and_grad"]
        print(
            f"K={e['n_shards']} M={e['n_points']}: in NUTS {n['cpu_us_per_gradient']:.1f} CPU-µs "
            f"per gradient = {n['cpu_us_per_point_per_gradient']:.4f} µs/point "
            f"(wall {n['wall_us_per_point_per_gradient']:.4f}); direct, in a loop "
            f"{loop['cpu_us_per_point']:.4f} µs/point, single call {call['cpu_us_per_point']:.4f} "
            f"µs/point, bare loglik single call "
            f"{d['loglik_value_and_grad']['cpu_us_per_point']:.4f} µs/point; NUTS / in-loop "
            f"{r['in_loop_cpu']:.2f}× (CPU), NUTS / single call {r['single_call_cpu']:.2f}×"
        )
    print(f"load average start {load_start} → end {_record.loadavg()}")
    print(f"record: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
