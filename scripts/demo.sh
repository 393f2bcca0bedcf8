#!/usr/bin/env bash
# Set up and run the main job: index this repository with semcode's default model, then search it.
#   bash scripts/demo.sh ["a query"]      (index dir: .semcode-demo-index/, reused by later runs)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
query=${1:-"read the tokenizer and weights of a checkpoint folder"}
index=.semcode-demo-index
echo "== semcode index . (default model; incremental: a second run re-encodes nothing)"
.venv/bin/semcode index . --index-dir "$index"
echo "== semcode search \"$query\""
.venv/bin/semcode search "$query" --index-dir "$index" --limit 5
echo "== semcode related encoder/load.py:$(grep -n '^def resolve' encoder/load.py | cut -d: -f1)"
.venv/bin/semcode related "encoder/load.py:$(grep -n '^def resolve' encoder/load.py | cut -d: -f1)" \
  --index-dir "$index" --limit 5
