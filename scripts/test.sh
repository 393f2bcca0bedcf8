#!/usr/bin/env bash
# Set up and run every check: ruff (lint + format), mypy, the whole pytest suite, and the VS Code extension
# (npm ci, eslint, tsc, unit tests, .vsix, an end-to-end test in a real VS Code: code-server + Playwright).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest "$@"
echo "== VS Code extension"; bash scripts/test_extension.sh
