#!/usr/bin/env bash
# Create the peer venv .peers/hamon (Python 3.12) with hamon (0.12.0, else 0.4.0) for the NRPT
# benchmark (benchmarks/nrpt_bench.py). Idempotent: an existing venv whose hamon imports is kept.
# Usage: bash benchmarks/peers/setup_hamon.sh [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${HAMON_VENV:-$ROOT/.peers/hamon}"
FORCE="${1:-}"
VERSIONS=(0.12.0 0.4.0)

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
assert md.version("hamon") in ("0.12.0", "0.4.0"), md.version("hamon")
import hamon  # noqa: F401
PY
}

if [[ "$FORCE" != "--force" && -x "$VENV/bin/python" ]] && check; then
  echo "peer venv ready: $VENV ($("$VENV/bin/python" -c 'import importlib.metadata as m; print("hamon", m.version("hamon"))'))"
  exit 0
fi

PY312="$(find_python312)"
echo "creating $VENV with $PY312"
mkdir -p "$(dirname "$VENV")"
if [[ "$FORCE" == "--force" ]]; then rm -rf "$VENV"; fi
[[ -x "$VENV/bin/python" ]] || "$PY312" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
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
