#!/usr/bin/env bash
# Build hpcfit.sif from the repository's Apptainer.def (runs its %test at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
exec apptainer build --build-arg HPCFIT_VERSION="$version" "${1:-hpcfit.sif}" Apptainer.def
