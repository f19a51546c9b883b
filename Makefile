# hpcfit: two commands do all set-up on a fresh machine.
#   make run    builds .venv (Python >= 3.12, found automatically) and runs the main job
#   make test   builds .venv and runs the whole test suite (serial, then MPI)
SHELL := /bin/bash
.DEFAULT_GOAL := run

VENV      ?= .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
RUN_ARGS  ?= mpi.ranks=2 cmc.num_chains=2  # sized for a 2-core machine: 2 ranks × 2 chains
MPI_TIMEOUT ?= 1200

# First interpreter >= 3.12 among: $(PYTHON), python3.13, python3.12, python3, pyenv's versions.
PYTHON_FOUND := $(shell for c in $(PYTHON) python3.13 python3.12 python3 \
    $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do \
    command -v $$c >/dev/null 2>&1 || [ -x "$$c" ] || continue; \
    $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$c || echo $$c; } && break; \
    done | head -n 1)

.PHONY: run test test-fast test-serial test-mpi slurm-deps lint bench venv clean

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON_FOUND)" ]; then echo "make: no Python >= 3.12 found (set PYTHON=/path/to/python3.12)" >&2; exit 1; fi
	@echo "using $(PYTHON_FOUND) ($$($(PYTHON_FOUND) --version))"
	$(PYTHON_FOUND) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/hpcfit $(RUN_ARGS)

test: test-serial test-mpi

# The quick local loop: serial tests not marked slow (whole-pipeline runs, launcher and Slurm
# jobs, long samplers); stops at the first failure. CI runs the full `make test`.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not slurm" -x -q

# CI (CI=true) must run the Slurm tests: HPCFIT_REQUIRE_SLURM=1 turns their skip into a failure.
test-serial: $(STAMP) slurm-deps
	$(if $(CI),HPCFIT_REQUIRE_SLURM=$${HPCFIT_REQUIRE_SLURM:-1} )$(PY) -m pytest --durations=20

# Debian's slurm-wlm and munge for tests/slurm/ (a one-node Slurm started by the tests): installed
# when missing, as root with apt-get; without root or apt the Slurm tests skip and say why.
SLURM_BINS := /usr/sbin/slurmd /usr/sbin/slurmctld /usr/sbin/munged /usr/bin/sbatch
slurm-deps:
	@if ls $(SLURM_BINS) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" != 0 ]; then echo "make: not root, so no slurm-wlm/munge install: the Slurm tests will skip"; \
	elif ! command -v apt-get >/dev/null 2>&1; then echo "make: no apt-get: the Slurm tests will skip"; \
	else echo "make: installing slurm-wlm and munge for the Slurm tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends slurm-wlm munge >/dev/null; } || echo "make: apt-get failed: the Slurm tests will skip"; \
	fi

test-mpi: $(STAMP)
	@if ls tests/mpi/test_*.py >/dev/null 2>&1; then \
	  PATH=$(abspath $(VENV))/bin:$$PATH timeout $(MPI_TIMEOUT) $(VENV)/bin/mpiexec -n 2 $(PY) -m pytest -p no:cacheprovider --with-mpi --timeout=300 tests/mpi && \
	  PATH=$(abspath $(VENV))/bin:$$PATH timeout $(MPI_TIMEOUT) $(VENV)/bin/mpiexec -n 4 $(PY) -m pytest -p no:cacheprovider --with-mpi --timeout=300 tests/mpi; \
	else echo "no MPI tests yet"; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check hpcfit tests benchmarks
	$(VENV)/bin/ruff format --check hpcfit tests benchmarks
	$(PY) -m pytest -q -p no:cacheprovider tests/test_layers.py
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/model_cost.py
	$(PY) benchmarks/nlsq_warm_start.py
	$(PY) benchmarks/nuts_gradient_cost.py
	$(PY) benchmarks/cmc_scaling.py
	$(PY) benchmarks/cmc_vs_full.py
	$(PY) benchmarks/kuramoto_bench.py
	$(PY) benchmarks/nrpt_bench.py --scale-sizes 16 48
	$(PY) benchmarks/device_crossover.py
	$(PY) benchmarks/real_file_io.py
	$(PY) benchmarks/malloc_arenas.py
	$(PY) benchmarks/cmc_calibration.py
	$(PY) benchmarks/kuramoto_trig.py
	$(PY) benchmarks/report.py --write

clean:
	rm -rf $(VENV) runs outputs multirun .pytest_cache
