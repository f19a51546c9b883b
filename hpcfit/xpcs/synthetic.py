"""Synthetic heterodyne data and the embedded default dataset.

The noise-free maps come from the meshgrid evaluator; Gaussian noise σ_a·ε is drawn once per
independent element (upper triangle including the diagonal, slot-major, row-major order) from
``numpy.random.Generator(PCG64(seed))`` and mirrored, so the maps are exactly symmetric.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.xpcs.dataset import XpcsData, normalise_phi, production_grid
from hpcfit.xpcs.params import N_PHYS


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that defines a synthetic dataset; per-slot tuples have one entry per angle."""

    truth: tuple[float, ...]
    phi: tuple[float, ...]
    contrast: tuple[float, ...]
    offset: tuple[float, ...]
    sigma: tuple[float, ...]
    q: float = 0.0054
    n_frames: int = 100
    dt: float = 0.01
    start_frame: int = 1
    seed: int = 12345


EMBEDDED = SyntheticSpec(
    truth=(3000.0, 0.2, 0.0, 30000.0, 0.5, 0.0, 1500.0, 0.3, 0.0, 0.4, -0.8, 0.0, 0.1, 3.0),
    phi=(0.0, 45.0, 90.0),
    contrast=(0.30, 0.28, 0.26),
    offset=(1.00, 1.00, 1.00),
    sigma=(0.002, 0.002, 0.003),
)
"""The embedded default dataset: N = 100, dt = 0.01 s, q = 0.0054 1/Å, three angles."""

EMBEDDED_FIXED = ("f2", "D_offset_ref", "D_offset_sample", "v_offset")
"""Parameters the default run holds at their truth (0) because of the model's degeneracies."""


def generate(spec: SyntheticSpec) -> XpcsData:
    """Generate a noisy symmetric dataset from ``spec`` (deterministic for a given seed)."""
    from hpcfit.xpcs.model import c2_slots

    n_phi = len(spec.phi)
    if len(spec.truth) != N_PHYS:
        raise ValueError(f"truth: expected {N_PHYS} values, got {len(spec.truth)}")
    for name in ("contrast", "offset", "sigma"):
        if len(getattr(spec, name)) != n_phi:
            raise ValueError(f"{name}: expected {n_phi} values (one per angle)")
    t = production_grid(spec.start_frame, spec.n_frames, spec.dt)
    clean = np.asarray(
        c2_slots(
            np.asarray(spec.truth, dtype=np.float64),
            t,
            np.full(n_phi, spec.q),
            spec.dt,
            np.asarray(spec.phi, dtype=np.float64),
            np.asarray(spec.contrast, dtype=np.float64),
            np.asarray(spec.offset, dtype=np.float64),
        )
    )
    n = spec.n_frames
    iu, ju = np.triu_indices(n, k=0)
    rng = np.random.Generator(np.random.PCG64(spec.seed))
    eps = rng.standard_normal(n_phi * iu.size).reshape(n_phi, iu.size)
    noisy = clean.copy()
    sigma = np.asarray(spec.sigma, dtype=np.float64)
    upper = clean[:, iu, ju] + sigma[:, None] * eps
    noisy[:, iu, ju] = upper
    noisy[:, ju, iu] = upper
    return XpcsData(
        c2=noisy,
        q=np.full(n_phi, spec.q, dtype=np.float64),
        phi=normalise_phi(np.asarray(spec.phi)),
        dt=float(spec.dt),
        start_frame=int(spec.start_frame),
        sigma=sigma,
        t_file=None,
        provenance={
            "source": "synthetic",
            "seed": int(spec.seed),
            "truth": [float(x) for x in spec.truth],
            "contrast": [float(x) for x in spec.contrast],
            "offset": [float(x) for x in spec.offset],
            "frame_window": [int(spec.start_frame), int(spec.start_frame + n - 1)],
        },
    )


def embedded() -> XpcsData:
    """The embedded default dataset."""
    data = generate(EMBEDDED)
    return XpcsData(**{**data.__dict__, "provenance": {**data.provenance, "source": "embedded"}})


def write_npz(data: XpcsData, path: str | Path) -> Path:
    """Save ``data`` in the flat NPZ layout (c2, t, q, phi, sigma) plus dt, start_frame, truth."""
    path = Path(path)
    extra: dict[str, Any] = {}  # arrays (typed Any: np.savez's stub types its keywords)
    if data.sigma is not None:
        extra["sigma"] = np.asarray(data.sigma, dtype=np.float64)
    if "truth" in data.provenance:
        extra["truth"] = np.asarray(data.provenance["truth"], dtype=np.float64)
    np.savez(
        path,
        c2=data.c2,
        t=data.t,
        q=data.q,
        phi=data.phi,
        dt=np.float64(data.dt),
        start_frame=np.int64(data.start_frame),
        **extra,
    )
    return path
