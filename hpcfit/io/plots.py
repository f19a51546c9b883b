"""PNG figures: data, model and normalised residual c2 maps per angle slot."""

from __future__ import annotations

from collections.abc import Sequence
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
        try:
            _save_png(path, fig, dpi=90)
        finally:
            plt.close(fig)
        paths.append(path)
    return paths


def _figure(width_in: float, height_in: float):
    """A pyplot-free Agg figure (no global state, nothing to close)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), layout="constrained")


def _save_png(path: str | Path, fig, dpi: int = 80) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically (temp file in the same directory)."""
    from hpcfit.io.atomic import write_atomic

    return write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi))


def _check_draws(draws_theta: np.ndarray, names: Sequence[str]) -> np.ndarray:
    draws = np.asarray(draws_theta, dtype=np.float64)
    if draws.ndim != 3:
        raise ValueError(f"draws_theta must have shape (chains, samples, P), got {draws.shape}")
    if draws.shape[2] != len(names):
        raise ValueError(f"draws_theta has {draws.shape[2]} parameters but {len(names)} names")
    if min(draws.shape) < 1:
        raise ValueError(f"draws_theta must be non-empty, got shape {draws.shape}")
    return draws


def _bin_edges(values: np.ndarray, max_bins: int = 40) -> np.ndarray | None:
    """Common histogram edges for the finite ``values``; None when there are none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    bins = int(np.clip(np.sqrt(finite.size), 5, max_bins))
    return np.histogram_bin_edges(finite, bins=bins)


def trace_plot(path: str | Path, draws_theta: np.ndarray, names: Sequence[str]) -> Path:
    """Trace plot PNG: one row per parameter, draws vs draw index (left) and histograms (right).

    Args:
        path: PNG file to write (atomically); parent directories are created.
        draws_theta: draws of shape ``(chains, samples, P)`` in the parameters' own units.
        names: the ``P`` parameter names (row labels).

    Each chain has its own colour in both panels; histograms are density-normalised step
    histograms on common bins, non-finite draws are left out of them.
    """
    names = list(names)
    draws = _check_draws(draws_theta, names)
    chains, samples, n_par = draws.shape
    fig = _figure(10.0, 1.9 * n_par + 0.4)
    axes = fig.subplots(n_par, 2, squeeze=False, width_ratios=[3, 1])
    index = np.arange(samples)
    for p, name in enumerate(names):
        left, right = axes[p]
        edges = _bin_edges(draws[:, :, p])
        for c in range(chains):
            color = f"C{c % 10}"
            left.plot(index, draws[c, :, p], lw=0.6, alpha=0.8, color=color)
            finite = draws[c, :, p][np.isfinite(draws[c, :, p])]
            if edges is not None and finite.size:
                right.hist(finite, bins=edges, density=True, histtype="step", color=color)
        left.set_ylabel(name)
        right.set_yticks([])
    axes[-1, 0].set_xlabel("draw")
    axes[-1, 1].set_xlabel("value")
    axes[0, 0].set_title(f"traces ({chains} chains × {samples} draws)")
    axes[0, 1].set_title("marginals")
    return _save_png(path, fig)


def corner_plot(
    path: str | Path,
    draws_theta: np.ndarray,
    names: Sequence[str],
    *,
    truth: Sequence[float | None] | None = None,
    max_points: int = 2000,
) -> Path:
    """Corner plot PNG: pairwise scatter below the diagonal, marginal histograms on it.

    Args:
        path: PNG file to write (atomically); parent directories are created.
        draws_theta: draws of shape ``(chains, samples, P)`` (chains are pooled) or ``(n, P)``.
        names: the ``P`` parameter names (axis labels).
        truth: optional length-``P`` sequence of reference values (``None`` entries skipped),
            drawn as red lines, e.g. the generating parameters of synthetic data.
        max_points: the scatter panels show at most this many draws, thinned deterministically
            on an evenly spaced index grid over the pooled draws; histograms use all draws.
    """
    names = list(names)
    draws = np.asarray(draws_theta, dtype=np.float64)
    if draws.ndim not in (2, 3):
        raise ValueError(
            f"draws_theta must have shape (chains, samples, P) or (n, P), got {draws.shape}"
        )
    if draws.ndim == 2:
        draws = draws[None]
    draws = _check_draws(draws, names)
    pooled = draws.reshape(-1, draws.shape[2])
    n_par = pooled.shape[1]
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    if truth is None:
        truth = [None] * n_par
    truth = list(truth)
    if len(truth) != n_par:
        raise ValueError(f"truth has {len(truth)} entries but there are {n_par} parameters")
    if len(pooled) > max_points:
        shown = pooled[np.linspace(0, len(pooled) - 1, max_points).round().astype(int)]
    else:
        shown = pooled

    fig = _figure(1.8 * n_par + 0.8, 1.8 * n_par + 0.8)
    axes = fig.subplots(n_par, n_par, squeeze=False, sharex="col")
    for i in range(n_par):
        for j in range(n_par):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                edges = _bin_edges(pooled[:, i])
                if edges is not None:
                    finite = pooled[:, i][np.isfinite(pooled[:, i])]
                    ax.hist(finite, bins=edges, histtype="stepfilled", color="C0", alpha=0.6)
                ax.set_yticks([])
            else:
                ax.scatter(shown[:, j], shown[:, i], s=2, alpha=0.3, color="C0", linewidths=0)
                if (row_truth := truth[i]) is not None:
                    ax.axhline(float(row_truth), color="C3", lw=0.8)
                if j > 0:
                    ax.tick_params(labelleft=False)
                else:
                    ax.set_ylabel(names[i])
            if (column_truth := truth[j]) is not None:
                ax.axvline(float(column_truth), color="C3", lw=0.8)
            if i == n_par - 1:
                ax.set_xlabel(names[j])
            ax.tick_params(labelsize=7)
    fig.suptitle(f"posterior ({len(pooled)} draws, {len(shown)} shown in scatter)")
    return _save_png(path, fig)


def ppc_maps(
    path: str | Path,
    t: np.ndarray,
    c2: np.ndarray,
    model_draws: np.ndarray,
    labels: Sequence[str],
    *,
    n_rows: int = 3,
) -> Path:
    """Posterior-predictive check PNG: one row of four panels per angle slot.

    Panels: data c2 map | posterior-mean model map | residual (data − model mean) | c2 against
    lag τ = t₂ − t₁ (s) along ``n_rows`` rows t₁ = t_i (i evenly spaced over the first half of
    the run), with the data as points, the model mean as a line and the model's 2.5–97.5 % band
    across draws. The diagonal (τ = 0) is interpolated for display in the maps, blanked in the
    residual and left out of the lag panel. The band covers only the spread of the model c2 over
    posterior draws (no measurement noise).

    Args:
        path: PNG file to write (atomically); parent directories are created.
        t: frame times, shape ``(N,)``, in seconds.
        c2: measured two-time correlation, shape ``(n_phi, N, N)``.
        model_draws: model c2 evaluated at ``D`` posterior draws, shape ``(D, n_phi, N, N)``
            (a few dozen draws suffice; the array is held in memory in full).
        labels: ``n_phi`` slot labels (row titles), e.g. ``"φ = 12.5°"``.
        n_rows: number of t₁ rows shown in the lag panel.
    """
    t = np.asarray(t, dtype=np.float64)
    c2 = np.asarray(c2, dtype=np.float64)
    model_draws = np.asarray(model_draws, dtype=np.float64)
    labels = list(labels)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"t must have shape (N,) with N >= 2, got {t.shape}")
    n = t.size
    if c2.ndim != 3 or c2.shape[1:] != (n, n) or c2.shape[0] < 1:
        raise ValueError(f"c2 must have shape (n_phi, {n}, {n}), got {c2.shape}")
    if model_draws.ndim != 4 or model_draws.shape[1:] != c2.shape or model_draws.shape[0] < 1:
        raise ValueError(
            f"model_draws must have shape (D, {', '.join(map(str, c2.shape))}), "
            f"got {model_draws.shape}"
        )
    if len(labels) != c2.shape[0]:
        raise ValueError(f"{len(labels)} labels for {c2.shape[0]} slots")
    if n_rows < 1:
        raise ValueError(f"n_rows must be >= 1, got {n_rows}")

    # t₁ rows over the first half of the run, so each shows at least N/2 lags
    rows = np.unique(np.linspace(0, (n - 1) // 2, n_rows).round().astype(int))
    extent = (t[0], t[-1], t[0], t[-1])
    n_phi = c2.shape[0]
    fig = _figure(16.0, 3.4 * n_phi + 0.4)
    axes = fig.subplots(n_phi, 4, squeeze=False)
    for a, label in enumerate(labels):
        data = interpolate_diagonal(c2[a])
        mean = model_draws[:, a].mean(axis=0)
        resid = c2[a] - mean
        np.fill_diagonal(resid, np.nan)
        lo, hi = np.nanpercentile(data, [1, 99])
        r_max = float(np.nanmax(np.abs(resid))) if np.isfinite(resid).any() else 1.0
        r_max = r_max if r_max > 0 else 1.0
        panels = [
            ("data", data, "viridis", lo, hi),
            ("model (posterior mean)", interpolate_diagonal(mean), "viridis", lo, hi),
            ("data − model", resid, "RdBu_r", -r_max, r_max),
        ]
        for ax, (title, image, cmap, vmin, vmax) in zip(axes[a, :3], panels, strict=True):
            im = ax.imshow(image, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set_title(f"{label}: {title}", fontsize=9)
            ax.set_xlabel("t₂ (s)")
            ax.set_ylabel("t₁ (s)")
            fig.colorbar(im, ax=ax, shrink=0.85)
        ax = axes[a, 3]
        for k, i in enumerate(rows):
            color = f"C{k % 10}"
            tau = t[i + 1 :] - t[i]
            band = np.percentile(model_draws[:, a, i, i + 1 :], [2.5, 97.5], axis=0)
            ax.fill_between(tau, band[0], band[1], color=color, alpha=0.25, linewidth=0)
            ax.plot(tau, mean[i, i + 1 :], color=color, lw=1.0)
            ax.plot(tau, c2[a, i, i + 1 :], ".", color=color, ms=3, label=f"t₁ = {t[i]:.3g} s")
        ax.set_xlabel("τ = t₂ − t₁ (s)")
        ax.set_ylabel("c2")
        ax.set_title("data (points), model mean and 95 % band", fontsize=9)
        ax.legend(fontsize=7)
    return _save_png(path, fig)
