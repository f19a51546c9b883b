"""hpcfit: MPI batch fitting of XPCS heterodyne two-time correlations.

Importing the package imports neither JAX nor mpi4py; entry points configure the process first.
"""

__version__ = "0.2.0"
