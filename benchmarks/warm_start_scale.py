"""Does the default warm start land in the right basin at real sizes, and what does it cost?

Synthetic data as ``hpcfit data=synthetic data.n_frames=N`` makes it (3 angles, the embedded
truth, known σ), for each N in ``--sizes`` and each noise seed in ``--seeds``; the default model
space (only f2 fixed) and the default ``nlsq`` settings (coarse-to-fine above 256 frames). A fit
is **in the generator's basin** when every free quantity lies within 5 σ_k of its truth and
χ²_red within 1 ± 5/√dof. Each size runs in its own process, so its peak RSS is its own.

    .venv/bin/python benchmarks/warm_start_scale.py                      # ≈ 30–60 min on 2 cores
    .venv/bin/python benchmarks/warm_start_scale.py --sizes 100 300 --seeds 0 1   # a quick look
    .venv/bin/python benchmarks/warm_start_scale.py --peer-seeds 2    # heterodyne beside it

With ``--peer-seeds n`` the first n seeds of each size are also fitted by heterodyne 2.0.1's
joint NLSQ in its default per-angle mode ``auto``, in its own venv
(``bash benchmarks/peers/setup_heterodyne.sh``), and judged by the same basin rule in hpcfit's
objective; that run is recorded as ``warm_start_peer``. (``auto`` fits one contrast and offset
shared by the angles, which is the truth of this synthetic data. Its ``individual`` mode, the
parameterisation hpcfit fits, fails in heterodyne 2.0.1 with nlsq 0.6.11 before its first
evaluation: a ``TracerArrayConversionError`` inside its jitted residual.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _record  # noqa: E402


def compose(*overrides: str):
    """The Config that ``hpcfit OVERRIDES`` composes."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from hpcfit import config

    os.environ.setdefault("HPCFIT_RUN_ID", "bench")
    config.register()
    with initialize_config_dir(config_dir=str(config.config_dir()), version_base=None):
        from hpcfit.validation import to_config

        return to_config(hydra_compose(config_name="config", overrides=list(overrides)))


PEER_MODE = "auto"


def peer_fit(peer: Any, data: Any, space: Any, cfg: Any, res: Any, truth: dict) -> dict[str, Any]:
    """heterodyne 2.0.1's joint NLSQ (``auto`` per-angle mode) on the same data, judged by
    hpcfit's objective: its χ²_red and its distance to the truth in the σ_k
    of hpcfit's own fit."""
    import numpy as np

    from hpcfit.xpcs.nlsq import chi2_band
    from hpcfit.xpcs.params import NAMES
    from hpcfit.xpcs.problem import Problem

    path = peer.workdir / "inputs.npz"
    np.savez(
        path, c2=data.c2, phi=data.phi, sigma=data.sigma, q=float(data.q[0]), dt=data.dt,
        start_frame=data.start_frame, names=np.asarray(NAMES), start=space.start, lo=space.lo,
        hi=space.hi, vary=space.vary, tol=cfg.ftol, max_nfev=cfg.max_nfev,
    )  # fmt: skip
    reply = peer.call("nlsq", npz=str(path), mode=PEER_MODE, repeats=1)
    run = reply["runs"][-1]
    if "params" not in run:
        return {"error": run.get("error", "no result"), "wall_s": run.get("wall_s")}
    free = space.free_index
    theta = np.concatenate([np.asarray(run["params"])[free], run["contrast"], run["offset"]])
    problem = Problem.from_data(data, space)
    weights = 1.0 / np.asarray(data.sigma)
    dof = problem.size - theta.size
    chi2 = 2.0 * problem.cost(theta, weights, fit_mode=True) / dof
    z = {
        name: (float(theta[k]) - truth[name]) / float(res.sigma_k[k])
        for k, name in enumerate(res.theta_names)
    }
    ok = abs(chi2 - 1.0) <= chi2_band(dof) and all(
        np.isfinite(v) and abs(v) <= 5 for v in z.values()
    )
    return {
        "wall_s": run["wall_s"],
        "success": run["success"],
        "chi2_red": chi2,
        "in_basin": bool(ok),
        "max_abs_z": max(abs(v) for v in z.values()),
        "nfev": run.get("nfev"),
        "mode": PEER_MODE,
        "optimizer": run.get("optimizer"),
        "message": run.get("message"),
    }


def fit_size(n_frames: int, seeds: list[int], peer_seeds: int = 0) -> dict[str, Any]:
    """All seeds at one size, in this process (called in a child process); the first
    ``peer_seeds`` seeds also by the heterodyne peer, where its venv exists."""
    from hpcfit.runtime.process import configure

    configure()
    import numpy as np

    from hpcfit.io.sources import load_configured
    from hpcfit.xpcs.coarse import fit_warm_start
    from hpcfit.xpcs.nlsq import chi2_band

    peer, peer_reason = None, None
    if peer_seeds:
        from peers.client import open_peer

        peer, _, _, peer_reason = open_peer(
            _record.peer_python("heterodyne"),
            "heterodyne",
            "bash benchmarks/peers/setup_heterodyne.sh",
            {},
        )
    rows = []
    for seed in seeds:
        cfg = compose("data=synthetic", f"data.n_frames={n_frames}", f"data.seed={seed}")
        syn, space = cfg.data, cfg.model.space()
        n_phi = len(syn.phi)
        data = load_configured(syn)
        t0 = time.perf_counter()
        res = fit_warm_start(data, space, cfg.nlsq)
        wall = time.perf_counter() - t0
        truth = dict(zip(space.free_names, np.asarray(syn.truth)[space.free_index], strict=True))
        truth |= {f"contrast_{a}": syn.contrast[0] for a in range(n_phi)}
        truth |= {f"offset_{a}": syn.offset[0] for a in range(n_phi)}
        z = {
            name: (float(res.theta[k]) - truth[name]) / float(res.sigma_k[k])
            for k, name in enumerate(res.theta_names)
        }
        chi2_ok = res.chi2_red is not None and abs(res.chi2_red - 1.0) <= chi2_band(res.dof)
        in_basin = bool(chi2_ok and all(np.isfinite(v) and abs(v) <= 5.0 for v in z.values()))
        rows.append(
            {
                "seed": seed,
                "in_basin": in_basin,
                "chi2_red": res.chi2_red,
                "usable": res.usable,
                "flags": [f.name for f in res.flags],
                "max_abs_z": max(abs(v) for v in z.values()),
                "z": z,
                "wall_s": wall,
                "nfev_fine": res.nfev,
                "coarse": res.extra.get("coarse"),
                "n_points": res.extra["n_points"],
            }
        )
        line = f"N={n_frames} seed={seed}: in_basin={in_basin} χ²={res.chi2_red:.4f}"
        line += f" max|z|={rows[-1]['max_abs_z']:.2f} {wall:.1f} s"
        if peer is not None and len(rows) <= peer_seeds:
            rows[-1]["peer"] = peer_fit(peer, data, space, cfg.nlsq, res, truth)
            line += f"; heterodyne {rows[-1]['peer']}"
        print(line, file=sys.stderr, flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if peer is not None:
        peer.close()
    out = {"n_frames": n_frames, "peak_rss_mb": peak_mb, "fits": rows}
    return out | ({"peer_skipped": peer_reason} if peer_reason else {})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 2000])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument(
        "--large-seeds", type=int, default=None, help="only this many seeds at N ≥ 2000"
    )
    ap.add_argument(
        "--peer-seeds", type=int, default=0, help="fit this many seeds also with heterodyne"
    )
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(fit_size(args.child, args.seeds, args.peer_seeds)))
        return 0
    load_start = _record.loadavg()
    sizes = []
    for n in args.sizes:
        seeds = args.seeds[: args.large_seeds] if n >= 2000 and args.large_seeds else args.seeds
        cmd = [sys.executable, __file__, "--child", str(n), "--seeds", *map(str, seeds)]
        cmd += ["--peer-seeds", str(args.peer_seeds)]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ})
        if proc.returncode != 0:
            raise SystemExit(f"N = {n}: the child exited {proc.returncode}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        fits = out["fits"]
        walls = sorted(f["wall_s"] for f in fits)
        out["fraction_in_basin"] = sum(f["in_basin"] for f in fits) / len(fits)
        out["wall_s_median"] = walls[len(walls) // 2]
        out["wall_s_max"] = walls[-1]
        sizes.append(out)
        line = f"N = {n}: {out['fraction_in_basin']:.0%} in the basin, median "
        line += f"{out['wall_s_median']:.1f} s, peak RSS {out['peak_rss_mb']:.0f} MB"
        print(line, flush=True)
    path = _record.write_record(
        "warm_start_peer" if args.peer_seeds else "warm_start_scale",
        {
            "workload": "NLSQ warm start on synthetic data (3 angles, embedded truth)",
            "params": {
                "sizes": args.sizes,
                "seeds": args.seeds,
                "large_seeds": args.large_seeds,
                "peer_seeds": args.peer_seeds,
            },
            "results": {"sizes": sizes},
        },
        load_start=load_start,
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
