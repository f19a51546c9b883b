#!/usr/bin/env bash
# Create the peer venv .peers/heterodyne (Python 3.12) with heterodyne 2.0.1 and the pins of
# /work/shared/peers.md. Idempotent: an existing venv whose pins already import is left as is.
# Usage: bash benchmarks/peers/setup_heterodyne.sh [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${HETERODYNE_VENV:-$ROOT/.peers/heterodyne}"
FORCE="${1:-}"

PINS=(
  heterodyne==2.0.1
  jax==0.9.2 jaxlib==0.9.2 numpyro==0.20.1
  arviz==1.0.0 arviz-base==1.0.0 arviz-stats==1.0.0
  nlsq==0.6.11 numpy==2.4.3 scipy==1.17.1
  lineax==0.1.0 equinox==0.13.6 interpax==0.3.13 blackjax==1.4
  matplotlib==3.10.8 xarray==2026.2.0 pandas==3.0.1
)

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
assert md.version("heterodyne") == "2.0.1", md.version("heterodyne")
assert md.version("jax") == "0.9.2"
assert md.version("nlsq") == "0.6.11"
import heterodyne.core.jax_backend, heterodyne.core.physics_cmc  # noqa: F401
PY
}

if [[ "$FORCE" != "--force" && -x "$VENV/bin/python" ]] && check; then
  echo "peer venv ready: $VENV ($("$VENV/bin/python" -c 'import importlib.metadata as m; print("heterodyne", m.version("heterodyne"))'))"
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
  echo "error: heterodyne does not import in $VENV" >&2
  "$VENV/bin/python" -c 'import heterodyne.core.jax_backend' || true
  exit 1
fi
