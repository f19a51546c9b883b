#!/usr/bin/env bash
# Run hpcfit from the image inside a Slurm allocation, one container per rank (rank mode):
#   containers/srun.sh [hydra overrides...]        e.g. inside sbatch -n 8 -c 4
# Hybrid model (default): the image's mpich wheel talks PMI2 to srun.
# Bind model: HOST_MPI_DIR=/opt/cray/pe/mpich/default/ofi/gnu/9.1 containers/srun.sh …
#   binds that directory and points mpi4py at its libmpi.so.12 (MPICH ABI).
# SIF (default hpcfit.sif) selects the image.
set -euo pipefail
sif=${SIF:-hpcfit.sif}
[[ -f $sif ]] || { echo "$0: image $sif not found (containers/build.sh builds it)" >&2; exit 2; }
[[ -n ${SLURM_JOB_ID:-} ]] || { echo "$0: run inside a Slurm allocation (sbatch/salloc)" >&2; exit 2; }
export SRUN_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK:-1}   # Slurm 22.05–23.02: srun does not inherit -c
bind=()
if [[ -n ${HOST_MPI_DIR:-} ]]; then
    bind=(--bind "$HOST_MPI_DIR" --env "MPI4PY_LIBMPI=$HOST_MPI_DIR/lib/libmpi.so.12")
fi
# One chain per core for the XPCS fit; the Kuramoto and NRPT jobs have no cmc section.
chains=(cmc.num_chains="${SLURM_CPUS_PER_TASK:-1}")
for arg in "$@"; do [[ $arg == workload=* && $arg != workload=xpcs ]] && chains=(); done
exec srun --mpi=pmi2 --cpu-bind=cores --kill-on-bad-exit=1 \
    apptainer exec "${bind[@]}" "$sif" \
    python -m mpi4py -m hpcfit "${chains[@]}" "$@"
