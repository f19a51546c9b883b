"""Cost of one shard log-density gradient inside NUTS, against a direct timing of the same gradient.

    python benchmarks/nuts_gradient_cost.py                      # embedded data, K = 4 (3713 pts)
    python benchmarks/nuts_gradient_cost.py --n-shards 16 4 1    # several shard sizes M

Measured (float64, CPU, the embedded dataset with its default model: 16 sampled quantities,
shard 0 of an angle-balanced plan of ``--n-shards`` K shards, σ_a known, whitened coordinates
from the NLSQ warm start, exactly as a CMC rank builds them). Two chains on two virtual devices
(``cmc.num_chains`` must be ≥ 2, and ``run_attempt`` with one chain fails: it passes starts with
a chain axis of length 1), with the process pinned to ONE CPU, so the chains share it and the
wall time is the sum of both chains' work: the numbers are per gradient on one core.

* **in NUTS**: two ``hpcfit.cmc.nuts.run_attempt`` calls on the same shard with the same keys and
  warmup, one with ``--samples-short`` and one with ``--samples-long`` post-warmup draws. Their
  first warmup + short iterations are identical (checked: the short run's draws are a prefix of
  the long run's), so the difference of their wall times, minus the JAX compile time inside each
  call (``jax.monitoring``), is the cost of the extra draws, and the difference of
  Σ ``AttemptResult.num_steps`` (both chains) is the number of leapfrog steps (one gradient each) they took.
  Seconds per gradient = Δ(wall − compile) / Δ(Σ num_steps); fixed costs (tracing, compiling,
  start-point draws, transfers) cancel. ``--rounds`` repeats the pair; the median is reported.
* **direct**: ``jax.jit(jax.value_and_grad(potential))`` of the same NumPyro potential (the one
  NUTS differentiates, in the sampler's z coordinates) on the same shard, at z = 0 (the warm
  start), many repeats after warm-up; and, for reference, ``value_and_grad`` of the bare shard
  log-likelihood in θ.

Reported per shard size: seconds per gradient and µs per point per gradient in NUTS and direct,
and their ratio (NUTS / direct − 1 is the sampler's own overhead per leapfrog step: tree
building, momentum, energy, bookkeeping). There is no pass/fail goal; ``model_cost``'s goal of
0.15 µs/point for the bare pooled value + gradient is quoted for context.

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
    ap.add_argument("--warmup", type=int, default=100, help="NUTS warmup iterations")
    ap.add_argument("--samples-short", type=int, default=50, help="draws of the short run")
    ap.add_argument("--samples-long", type=int, default=250, help="draws of the long run")
    ap.add_argument("--rounds", type=int, default=2, help="short/long pairs per shard size")
    ap.add_argument("--chains", type=int, default=2, help="chains (= virtual devices), ≥ 2")
    ap.add_argument("--max-tree-depth", type=int, default=10)
    ap.add_argument("--target-accept", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0, help="cmc.seed: plan and sampler keys")
    ap.add_argument("--repeats", type=int, default=50, help="minimum direct-timing repeats")
    ap.add_argument("--min-time", type=float, default=1.0, help="minimum seconds per direct block")
    args = ap.parse_args(argv)
    if args.samples_long <= args.samples_short:
        ap.error("--samples-long must exceed --samples-short")
    return args


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
    # σ_a as the pipeline chooses it (hpcfit.pipelines.xpcs.noise_levels)
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
            )
            with _record.CompileMeter() as meter:
                t0 = time.perf_counter()
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
                wall = time.perf_counter() - t0
            if res.status != "ok":
                raise SystemExit(f"run_attempt failed: {res.status}: {res.message}")
            comp = meter.summary()
            return {
                "num_samples": n_samples,
                "wall_s": wall,
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

        rounds = []
        for r in range(args.rounds):
            short = attempt(args.samples_short)
            long = attempt(args.samples_long)
            n_short = args.samples_short
            prefix = bool(np.array_equal(short.pop("_draws"), long.pop("_draws")[:, :n_short]))
            d_steps = long["sum_num_steps"] - short["sum_num_steps"]
            d_wall = long["wall_s"] - short["wall_s"]
            d_net = long["wall_minus_compile_s"] - short["wall_minus_compile_s"]
            rounds.append(
                {
                    "short": short,
                    "long": long,
                    "prefix_identical": prefix,
                    "delta_steps": d_steps,
                    "delta_wall_s": d_wall,
                    "delta_wall_minus_compile_s": d_net,
                    "s_per_gradient": d_net / d_steps,
                    "s_per_gradient_raw_wall": d_wall / d_steps,
                }
            )
            print(
                f"[nuts_gradient_cost] K={k} M={m} round {r}: {d_steps} extra leapfrog steps in "
                f"{d_net:.2f} s (net of compile) → {d_net / d_steps * 1e6:.1f} µs/gradient; "
                f"prefix identical: {prefix}",
                flush=True,
            )
        s_grad = statistics.median(x["s_per_gradient"] for x in rounds)
        s_grad_raw = statistics.median(x["s_per_gradient_raw_wall"] for x in rounds)

        # -- direct timing of the same gradient -------------------------------------------------
        model = numpyro_model(target, precond, k, "whiten")

        def potential(z, d):
            return potential_energy(model, (d,), {}, {"z": z})

        def neg_loglik(theta, d):
            return -target.loglik(theta, d)

        vg_pot = jax.jit(jax.value_and_grad(potential))
        vg_ll = jax.jit(jax.value_and_grad(neg_loglik))
        z0 = jnp.zeros(target.size, dtype=jnp.float64)
        theta0 = jnp.asarray(warm.theta, dtype=jnp.float64)
        direct = {
            "potential_value_and_grad": _record.time_call(
                vg_pot, z0, shard, repeats=args.repeats, min_time_s=args.min_time
            ),
            "loglik_value_and_grad": _record.time_call(
                vg_ll, theta0, shard, repeats=args.repeats, min_time_s=args.min_time
            ),
        }
        pot_s = direct["potential_value_and_grad"]["p50"] * 1e-6
        entry = {
            "n_shards": k,
            "n_points": m,
            "rounds": rounds,
            "nuts": {
                "s_per_gradient": s_grad,
                "us_per_gradient": s_grad * 1e6,
                "us_per_point_per_gradient": s_grad * 1e6 / m,
                "s_per_gradient_raw_wall": s_grad_raw,
                "us_per_point_per_gradient_raw_wall": s_grad_raw * 1e6 / m,
                "all_prefix_identical": all(x["prefix_identical"] for x in rounds),
            },
            "direct": {
                "timings_us": direct,
                "per_point_us": {kk: _record.per_point(v, m) for kk, v in direct.items()},
            },
            "ratio_nuts_over_direct_potential": s_grad / pot_s,
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
            "target_accept": args.target_accept,
            "seed": args.seed,
            "direct_repeats_min": args.repeats,
            "direct_min_time_s": args.min_time,
            "method": "s/gradient = Δ(wall − JAX compile) / Δ(Σ num_steps over chains) between "
            "two run_attempt calls that differ only in num_samples (identical prefix); each "
            "leapfrog step evaluates the potential's gradient once; one CPU, so the chains' "
            "work adds up in the wall time",
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
        n, d = e["nuts"], e["direct"]["per_point_us"]
        print(
            f"K={e['n_shards']} M={e['n_points']}: in NUTS {n['us_per_gradient']:.1f} µs/gradient "
            f"= {n['us_per_point_per_gradient']:.4f} µs/point; direct potential "
            f"{d['potential_value_and_grad']['p50']:.4f} µs/point, bare loglik "
            f"{d['loglik_value_and_grad']['p50']:.4f} µs/point (p50); NUTS/direct "
            f"{e['ratio_nuts_over_direct_potential']:.2f}×"
        )
    print(f"load average start {load_start} → end {_record.loadavg()}")
    print(f"record: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
