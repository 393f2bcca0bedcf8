#!/usr/bin/env bash
# Create .venv (if missing) and install semcode into it. Usage: scripts/setup.sh [extras, e.g. dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras=${1:-}
spec="."
[ -n "$extras" ] && spec=".[$extras]"
# pip's output goes to .venv/setup.log, shown only when a step fails
log=.venv/setup.log
: > "$log"
pip_install() {
  if ! .venv/bin/python -m pip install --quiet "$@" >> "$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2
    echo "setup: pip install $* failed (log: $log)" >&2
    exit 1
  fi
}
pip_install --upgrade pip
# torch first, pinned: 2.13.0 is the CPU wheel this workplace carries on disk; an open spec pulls a CUDA build.
pip_install "torch==2.13.0"
pip_install -e "$spec"
.venv/bin/python -c "import encoder, torch; print('semcode ready: torch', torch.__version__)"
if ! command -v semcode >/dev/null 2>&1; then
  echo "semcode is installed at $PWD/.venv/bin/semcode, not on your PATH. To type \`semcode\`, either:"
  echo "  source .venv/bin/activate          # this shell only"
  echo "  bash scripts/install.sh            # link it into ~/.local/bin"
fi
