#!/usr/bin/env bash
# Create the peer venv .peers/heterodyne (Python 3.12) with heterodyne 2.0.1 and the pins
# below. Idempotent: an existing venv whose pins already import is left as is.
# Usage: bash benchmarks/peers/setup_heterodyne.sh [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${HETERODYNE_VENV:-$ROOT/.peers/heterodyne}"
FORCE="${1:-}"
# shellcheck source=benchmarks/peers/venv.sh
source "$ROOT/benchmarks/peers/venv.sh"

PINS=(
  heterodyne==2.0.1
  jax==0.9.2 jaxlib==0.9.2 numpyro==0.20.1
  arviz==1.0.0 arviz-base==1.0.0 arviz-stats==1.0.0
  nlsq==0.6.11 numpy==2.4.3 scipy==1.17.1
  lineax==0.1.0 equinox==0.13.6 interpax==0.3.13 blackjax==1.4
  matplotlib==3.10.8 xarray==2026.2.0 pandas==3.0.1
)

check() {
  "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as md
assert md.version("heterodyne") == "2.0.1", md.version("heterodyne")
assert md.version("jax") == "0.9.2"
assert md.version("nlsq") == "0.6.11"
import heterodyne.core.jax_backend, heterodyne.core.physics_cmc  # noqa: F401
PY
}

exit_if_ready heterodyne

make_venv
"$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
if check; then
  echo "peer venv ready: $VENV"
else
  echo "error: heterodyne does not import in $VENV" >&2
  "$VENV/bin/python" -c 'import heterodyne.core.jax_backend' || true
  exit 1
fi
