"""Communication between MPI ranks (the only place mpi4py is used) and work distribution."""
