#!/usr/bin/env bash
# Create the peer venv .peers/oscillatools (Python 3.12) with oscillatools 0.1.0 and its two
# runtime dependencies (numpy, scipy): the pure-NumPy floor of its Kuramoto RK4 integrator is the
# peer of benchmarks/kuramoto_bench.py (see /work/shared/peers.md). oscillatools is AGPL-licensed:
# it lives only in this venv, is driven as a subprocess and is never imported by hpcfit.
# Idempotent: an existing venv whose package imports is left as is.
# Usage: bash benchmarks/peers/setup_oscillatools.sh [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${OSCILLATOOLS_VENV:-$ROOT/.peers/oscillatools}"
FORCE="${1:-}"

PINS=(oscillatools==0.1.0)

find_python312() {
  if [[ -n "${PYTHON312:-}" ]]; then echo "$PYTHON312"; return; fi
  local c
  for c in /root/.pyenv/versions/3.12.*/bin/python3 "$(command -v python3.12 || true)"; do
    if [[ -n "$c" && -x "$c" ]] && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      echo "$c"; return
    fi
  done
  echo "error: no Python 3.12 found (set PYTHON312=/path/to/python3.12)" >&2
  exit 1
}

check() {
  "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as md
assert md.version("oscillatools") == "0.1.0", md.version("oscillatools")
from oscillatools.accel.diff_kuramoto_rk4 import kuramoto_rk4_trajectory, kuramoto_rk4_vjp  # noqa: F401
PY
}

if [[ "$FORCE" != "--force" && -x "$VENV/bin/python" ]] && check; then
  echo "peer venv ready: $VENV ($("$VENV/bin/python" -c 'import importlib.metadata as m; print("oscillatools", m.version("oscillatools"))'))"
  exit 0
fi

PY312="$(find_python312)"
echo "creating $VENV with $PY312"
mkdir -p "$(dirname "$VENV")"
if [[ "$FORCE" == "--force" ]]; then rm -rf "$VENV"; fi
[[ -x "$VENV/bin/python" ]] || "$PY312" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
if check; then
  echo "peer venv ready: $VENV"
else
  echo "error: oscillatools does not import in $VENV" >&2
  "$VENV/bin/python" -c 'import oscillatools.accel.diff_kuramoto_rk4' || true
  exit 1
fi
