#!/usr/bin/env bash
# Put `semcode` on your PATH: set up .venv (scripts/setup.sh) and link .venv/bin/semcode into a folder on the PATH.
#   bash scripts/install.sh [BIN_DIR]     (default: ~/.local/bin, the user's own bin folder on most Linux systems)
# The link points into this checkout's .venv: keep the checkout (or install elsewhere with `pipx install .` or
# `uv tool install .` from it, after `pip install torch==2.13.0` in that tool's environment).
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=${1:-"$HOME/.local/bin"}
[ -x .venv/bin/semcode ] || bash scripts/setup.sh
mkdir -p "$bin_dir"
ln -sfn "$PWD/.venv/bin/semcode" "$bin_dir/semcode"
echo "linked $bin_dir/semcode -> $PWD/.venv/bin/semcode"
case ":$PATH:" in
  *":$bin_dir:"*) echo "semcode is on your PATH: try \`semcode --help\`" ;;
  *) echo "$bin_dir is not on your PATH; add it (then open a new shell):"
     echo "  echo 'export PATH=\"$bin_dir:\$PATH\"' >> ~/.bashrc" ;;
esac
