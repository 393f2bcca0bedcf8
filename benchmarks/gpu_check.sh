#!/usr/bin/env bash
# GPU check on an NVIDIA Hopper machine (H100/H200), self-contained, a few minutes:
#   parity of semcode's flash-attn and torch CUDA paths with transformers, and tokens/s at 512 and 8192.
# Needs python3 with CUDA torch, transformers, tokenizers, safetensors. flash-attn is not on PyPI as a wheel:
# put its wheel (and any other missing wheels) in .whl/ beside this repo's root and they are installed first.
# Usage: bash benchmarks/gpu_check.sh [--layers N] [--smoke]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/semcode-site .whl/*.whl
  export PYTHONPATH="/tmp/semcode-site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
exec "$PY" benchmarks/gpu_check.py "$@"
