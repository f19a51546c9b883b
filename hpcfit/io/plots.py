"""PNG figures: data, model and normalised residual c2 maps per angle slot."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def interpolate_diagonal(c2: np.ndarray) -> np.ndarray:
    """For display only: c2_ii ← mean of c2_{i,i+1} and c2_{i−1,i} (one neighbour at the edges)."""
    out = np.array(c2, dtype=np.float64, copy=True)
    n = out.shape[-1]
    if n < 2:
        return out
    upper = np.diagonal(out, offset=1, axis1=-2, axis2=-1)
    diag = np.empty(out.shape[:-2] + (n,))
    diag[..., 0] = upper[..., 0]
    diag[..., -1] = upper[..., -1]
    diag[..., 1:-1] = 0.5 * (upper[..., 1:] + upper[..., :-1])
    idx = np.arange(n)
    out[..., idx, idx] = diag
    return out


def c2_maps(
    out_dir: str | Path,
    t: np.ndarray,
    data: np.ndarray,
    model: np.ndarray | None,
    sigma: np.ndarray,
    labels: list[str],
) -> list[Path]:
    """Write ``c2_slot<a>.png`` per slot: data | model | (data − model)/σ; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    extent = (t[0], t[-1], t[0], t[-1])
    paths = []
    for a, label in enumerate(labels):
        shown = interpolate_diagonal(data[a])
        panels = [("data", shown, "viridis")]
        if model is not None:
            lo, hi = np.percentile(shown, [1, 99])
            panels.append(("model", interpolate_diagonal(model[a]), "viridis"))
            resid = (data[a] - model[a]) / sigma[a]
            np.fill_diagonal(resid, np.nan)
            panels.append(("(data − model)/σ", resid, "RdBu_r"))
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
        for ax, (title, image, cmap) in zip(axes[0], panels, strict=True):
            kwargs = {"vmin": -4, "vmax": 4} if cmap == "RdBu_r" else {}
            if cmap == "viridis" and model is not None:
                kwargs = {"vmin": lo, "vmax": hi}
            im = ax.imshow(image, origin="lower", extent=extent, cmap=cmap, **kwargs)
            ax.set_title(title)
            ax.set_xlabel("t₂ (s)")
            ax.set_ylabel("t₁ (s)")
            fig.colorbar(im, ax=ax, shrink=0.85)
        fig.suptitle(label)
        fig.tight_layout()
        path = out_dir / f"c2_slot{a}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
