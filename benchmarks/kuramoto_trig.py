"""Does the hand-written sine/cosine of the Kuramoto field pay for itself?

    python benchmarks/kuramoto_trig.py            # N = 256, 1024, 4096; 16 members

For each N it times, jitted on the CPU in float64:

* ``pair``: sin θ and cos θ of N phases, ``hpcfit.kuramoto.trig.sincos`` against
  ``jnp.sin``/``jnp.cos``;
* ``field``: the expanded coupling field ω + cos θ ⊙ (K sin θ) − sin θ ⊙ (K cos θ) of
  ``--members`` networks (vmapped), the quantity every RK4 stage evaluates, with either pair;
* ``field_grad``: the gradient of Σ field with respect to K and ω (what the Kuramoto
  gradient workload differentiates), with either pair.

and the largest difference of the two pairs' values in ulps of 1. Ratios are jnp / hpcfit
(> 1: the hand-written pair is faster).
Writes ``benchmarks/results/kuramoto_trig-<host>-<date>.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _record  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--members", type=int, default=16, help="networks in the field batch")
    ap.add_argument("--min-time", type=float, default=0.5, help="minimum seconds per timing")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    from hpcfit.runtime.process import configure

    configure(device_count=1, threads=1)
    import jax
    import jax.numpy as jnp
    import numpy as np

    from hpcfit.kuramoto.trig import sincos

    def library_pair(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jnp.sin(x), jnp.cos(x)

    def field_of(pair):
        def field(theta, omega, K):
            s, c = pair(theta)
            return omega + c * (K @ s) - s * (K @ c)

        return jax.jit(jax.vmap(field))

    def grad_of(pair):
        def total(omega, K, theta):
            s, c = pair(theta)
            out = omega + c * jnp.einsum("mjk,mk->mj", K, s) - s * jnp.einsum("mjk,mk->mj", K, c)
            return jnp.sum(out)

        return jax.jit(jax.grad(total, argnums=(0, 1)))

    rng = np.random.default_rng(args.seed)
    results: dict[str, Any] = {}
    for n in args.sizes:
        m = args.members
        theta = jnp.asarray(rng.uniform(-50.0, 50.0, size=(m, n)))
        omega = jnp.asarray(rng.normal(0.0, 0.7, size=(m, n)))
        K = jnp.asarray(rng.normal(0.0, 1.0 / n, size=(m, n, n)))
        row: dict[str, Any] = {}
        for label, pair in (("hpcfit", sincos), ("jnp", library_pair)):
            row[label] = {
                "pair": _record.time_call(jax.jit(pair), theta[0], min_time_s=args.min_time),
                "field": _record.time_call(
                    field_of(pair), theta, omega, K, min_time_s=args.min_time
                ),
                "field_grad": _record.time_call(
                    grad_of(pair), omega, K, theta, min_time_s=args.min_time
                ),
            }
        s_h, c_h = jax.jit(sincos)(theta)
        s_l, c_l = library_pair(theta)
        eps = float(np.finfo(np.float64).eps)
        row["max_diff_ulp"] = float(
            max(np.max(np.abs(np.asarray(s_h - s_l))), np.max(np.abs(np.asarray(c_h - c_l)))) / eps
        )
        row["ratio_jnp_over_hpcfit"] = {
            k: row["jnp"][k]["p50"] / row["hpcfit"][k]["p50"]
            for k in ("pair", "field", "field_grad")
        }
        results[f"N={n}"] = row
        ratios = ", ".join(f"{k} {v:.2f}" for k, v in row["ratio_jnp_over_hpcfit"].items())
        print(f"N = {n}: jnp / hpcfit median time: {ratios}; max |Δ| {row['max_diff_ulp']:.1f} ulp")
    path = _record.write_record(
        "kuramoto_trig",
        {
            "workload": "sin/cos pair and the Kuramoto coupling field, hand-written vs jnp",
            "params": vars(args),
            "results": results,
        },
    )
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
