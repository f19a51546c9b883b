"""Calibration of the NRPT z-tests over many seeds (not collected by pytest).

    .venv/bin/python tests/nrpt/calibrate_nrpt.py --seeds 20

For the published example (open 4×4 grid, N = 8, R = 12, n_expl = 2) it prints, over the
seeds, the mean and standard deviation of the z-scores of ⟨H⟩, ⟨|M|⟩, ⟨M²⟩ and the marginals
(z ≈ N(0, 1) when the batch-means standard errors are honest), the spread of log Ẑ, Λ̂, round
trips and τ_obs/τ̄.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from hpcfit.nrpt import IsingTarget, grid_model, run
from hpcfit.nrpt.exact import enumerate_ising


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    model = grid_model(4)
    exact = enumerate_ising(model)
    target = IsingTarget(model)
    rows = []
    for seed in range(args.seeds):
        res = run(target, n_chains=8, n_rounds=args.rounds, n_expl=2, seed=seed)
        z = {
            "H": (res.mean_energy - exact.mean_energy) / res.mean_energy_se,
            "|M|": (res.mean_abs_magnetisation - exact.mean_abs_magnetisation)
            / res.mean_abs_magnetisation_se,
            "M2": (res.mean_sq_magnetisation - exact.mean_sq_magnetisation)
            / res.mean_sq_magnetisation_se,
            "marg": float(np.mean((res.marginals - exact.marginals) / res.marginals_se)),
        }
        rows.append(
            {
                **z,
                "dlogZ": res.log_Z - exact.log_Z,
                "Lambda": res.Lambda,
                "trips": res.round_trips,
                "eff": res.efficiency,
            }
        )
    for key in rows[0]:
        values = np.array([r[key] for r in rows], dtype=np.float64)
        worst = values[np.argmax(np.abs(values))]
        print(
            f"{key:>7}: mean {values.mean():+.4f}  sd {values.std(ddof=1):.4f}  "
            f"worst {worst:+.4f}  (n = {len(values)})"
        )
    zs = np.array([[r[k] for k in ("H", "|M|", "M2")] for r in rows])
    print(f"max |z| over H, |M|, M²: {np.max(np.abs(zs)):.2f}; sd {zs.std(ddof=1):.2f}")
    assert math.isfinite(float(zs.std()))


if __name__ == "__main__":
    main()
