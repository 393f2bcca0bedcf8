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
# torch first, pinned: 2.13.0 is the CPU wheel this workplace carries on disk; an open spec pulls a CUDA build.
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install --quiet "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install --quiet -e "$spec" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import encoder, torch; print('semcode ready: torch', torch.__version__)"
