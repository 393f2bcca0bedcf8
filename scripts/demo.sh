#!/usr/bin/env bash
# Set up and run the main job. For now: encode a few texts with a tiny ModernBERT and print their similarities.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/semcode demo "$@"
