"""Non-reversible parallel tempering (NRPT) on Ising models.

Pigeons.jl's design (Syed, Bouchard-Côté, Deligiannidis, Doucet, JRSS-B 2022; Surjanovic et al.
2023): deterministic even-odd swaps of chain indices, Rao–Blackwellised rejection rates, rounds of
2^r scans with schedule adaptation after each, stepping-stone log Z, bitwise invariance in the
number of MPI ranks.

    from hpcfit.nrpt import IsingTarget, grid_model, run
    result = run(IsingTarget(grid_model(4)), n_chains=8, n_rounds=10, n_expl=2)

Its files (``summary.json``, ``rounds.h5``, ...) are written by :mod:`hpcfit.io.nrpt_out`.
"""

from hpcfit.nrpt.model import IsingModel, grid_model, load_model_file
from hpcfit.nrpt.result import NrptResult
from hpcfit.nrpt.run import run
from hpcfit.nrpt.targets import AbstractTarget, GaussianPathTarget, IsingTarget

__all__ = [
    "AbstractTarget",
    "GaussianPathTarget",
    "IsingModel",
    "IsingTarget",
    "NrptResult",
    "grid_model",
    "load_model_file",
    "run",
]
