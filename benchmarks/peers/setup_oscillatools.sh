#!/usr/bin/env bash
# Create the peer venv .peers/oscillatools (Python 3.12) with oscillatools 0.1.0 and its two
# runtime dependencies (numpy, scipy): the pure-NumPy floor of its Kuramoto RK4 integrator is the
# peer of benchmarks/kuramoto_bench.py. oscillatools is AGPL-licensed:
# it lives only in this venv, is driven as a subprocess and is never imported by hpcfit.
# Idempotent: an existing venv whose package imports is left as is.
# Usage: bash benchmarks/peers/setup_oscillatools.sh [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${OSCILLATOOLS_VENV:-$ROOT/.peers/oscillatools}"
FORCE="${1:-}"
# shellcheck source=benchmarks/peers/venv.sh
source "$ROOT/benchmarks/peers/venv.sh"

PINS=(oscillatools==0.1.0)

check() {
  "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as md
assert md.version("oscillatools") == "0.1.0", md.version("oscillatools")
from oscillatools.accel.diff_kuramoto_rk4 import kuramoto_rk4_trajectory, kuramoto_rk4_vjp  # noqa: F401
PY
}

exit_if_ready oscillatools

make_venv
"$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
if check; then
  echo "peer venv ready: $VENV"
else
  echo "error: oscillatools does not import in $VENV" >&2
  "$VENV/bin/python" -c 'import oscillatools.accel.diff_kuramoto_rk4' || true
  exit 1
fi
