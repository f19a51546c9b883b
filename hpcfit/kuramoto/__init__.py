"""Networked Kuramoto oscillators: RK4 trajectories, ensembles and gradients.

    dθ_j/dt = ω_j + Σ_k K_jk sin(θ_k − θ_j)

Pure numerics (no MPI, no Hydra), float64. Public API:

* :func:`trajectory`, :func:`final_state`, :func:`gradient` — one network;
* :func:`ensemble`, :func:`ensemble_gradient` — B networks, shared or per-member ω and K;
* :func:`order_parameter` — r = |mean_j e^{iθ_j}| over the last axis;
* :func:`init`, :func:`step`, :func:`vector_field` — the building blocks;
* :mod:`hpcfit.kuramoto.network` — the bench network, all-to-all couplings, frequency samples.

Modules: ``trig`` (sin/cos), ``dynamics`` (vector field, r), ``rk4`` (init/step/scan), ``chunks``
(jitted batch kernels), ``validate`` (argument checks), ``entry`` (checks, device routing),
``integrate`` and ``ensemble`` (public entry points), ``network``.
"""

from hpcfit.kuramoto.dynamics import mask_diagonal, order_parameter, vector_field
from hpcfit.kuramoto.ensemble import ensemble, ensemble_gradient
from hpcfit.kuramoto.integrate import final_state, gradient, trajectory
from hpcfit.kuramoto.rk4 import RECORDS, Carry, init, step

__all__ = [
    "RECORDS",
    "Carry",
    "ensemble",
    "ensemble_gradient",
    "final_state",
    "gradient",
    "init",
    "mask_diagonal",
    "order_parameter",
    "step",
    "trajectory",
    "vector_field",
]
