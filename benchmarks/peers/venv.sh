# Shared steps of the setup_*.sh scripts (sourced, not run). The sourcing script sets VENV and
# FORCE and defines check(), which exits 0 when the venv's peer package imports at its pin.

find_python312() {
  if [[ -n "${PYTHON312:-}" ]]; then echo "$PYTHON312"; return; fi
  local c
  for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3 "$(command -v python3.12 || true)"; do
    if [[ -n "$c" && -x "$c" ]] && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      echo "$c"; return
    fi
  done
  echo "error: no Python 3.12 found (set PYTHON312=/path/to/python3.12)" >&2
  exit 1
}

# exit_if_ready PACKAGE: leave the script when the venv exists and check() passes (no --force).
exit_if_ready() {
  if [[ "$FORCE" != "--force" && -x "$VENV/bin/python" ]] && check; then
    echo "peer venv ready: $VENV ($1 $("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))"))"
    exit 0
  fi
}

# make_venv: a Python 3.12 venv at $VENV (recreated with --force) with a current pip.
make_venv() {
  local py312
  py312="$(find_python312)"
  echo "creating $VENV with $py312"
  mkdir -p "$(dirname "$VENV")"
  if [[ "$FORCE" == "--force" ]]; then rm -rf "$VENV"; fi
  [[ -x "$VENV/bin/python" ]] || "$py312" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
}
