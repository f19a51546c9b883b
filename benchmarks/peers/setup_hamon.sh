#!/usr/bin/env bash
# Create the peer venv .peers/hamon (Python 3.12) with hamon (0.12.0, else 0.4.0) for the NRPT
# benchmark (benchmarks/nrpt_bench.py). Idempotent: an existing venv whose hamon imports is kept.
# Usage: bash benchmarks/peers/setup_hamon.sh [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${HAMON_VENV:-$ROOT/.peers/hamon}"
FORCE="${1:-}"
# shellcheck source=benchmarks/peers/venv.sh
source "$ROOT/benchmarks/peers/venv.sh"
VERSIONS=(0.12.0 0.4.0)

check() {
  "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as md
assert md.version("hamon") in ("0.12.0", "0.4.0"), md.version("hamon")
import hamon  # noqa: F401
PY
}

exit_if_ready hamon

make_venv
for v in "${VERSIONS[@]}"; do
  if "$VENV/bin/python" -m pip install --quiet "hamon==$v" && check; then
    echo "peer venv ready: $VENV (hamon $v)"
    exit 0
  fi
  echo "hamon $v did not install or import; trying the next version" >&2
done
echo "error: no hamon version of ${VERSIONS[*]} installs and imports in $VENV" >&2
"$VENV/bin/python" -c 'import hamon' || true
exit 1
