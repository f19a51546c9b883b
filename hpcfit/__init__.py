"""hpcfit: MPI batch fitting of XPCS heterodyne two-time correlations.

Importing the package imports neither JAX nor mpi4py. It switches JAX to float64 once, here, for
every module of the package: it sets ``JAX_ENABLE_X64``, which JAX reads when it is imported, or,
when JAX already is, its config. Entry points configure the rest of the process (device count,
platform, threads) with :func:`hpcfit.runtime.process.configure` before JAX starts.
"""

from hpcfit.runtime.process import ensure_x64

__version__ = "0.2.0"

ensure_x64()
