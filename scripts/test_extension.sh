#!/usr/bin/env bash
# Every check of the VS Code extension: npm ci, eslint + prettier, tsc, unit tests, the .vsix (vsce), and the
# end-to-end test in a real VS Code (code-server from npm, driven by Playwright through Debian's Chromium) against this
# repository's language server (.venv/bin/semcode). Installs what is missing on a Debian machine (apt-get as root);
# code-server is cached in $SEMCODE_CODE_SERVER_DIR (default ~/.cache/semcode/code-server-<version>).
# Usage: scripts/test_extension.sh [--no-e2e]. Environment for the e2e test: see vscode-extension/test/e2e/run.ts
# (SEMCODE_E2E_MODEL picks the model; by default the shipped default model, `tiny` a tiny random checkpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
E2E=1
[ "${1:-}" = "--no-e2e" ] && E2E=0
CODE_SERVER_VERSION=${CODE_SERVER_VERSION:-4.100.3}
CODE_SERVER_DIR=${SEMCODE_CODE_SERVER_DIR:-$HOME/.cache/semcode/code-server-$CODE_SERVER_VERSION}
export CODE_SERVER_VERSION

start=$SECONDS
step() {
  echo "== $1 (after $((SECONDS - start)) s)"
}

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "test_extension.sh: Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 2
fi

if [ "$E2E" = 1 ]; then
  step "system packages"
  need=()
  command -v chromium >/dev/null || need+=(chromium)
  command -v rg >/dev/null || need+=(ripgrep)
  command -v g++ >/dev/null || need+=(build-essential)
  command -v pkg-config >/dev/null || need+=(pkg-config)
  command -v python3 >/dev/null || need+=(python3)
  for dev in krb5-gssapi:libkrb5-dev xkbfile:libxkbfile-dev libsecret-1:libsecret-1-dev; do
    pkg-config --exists "${dev%%:*}" 2>/dev/null || need+=("${dev#*:}")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    echo "installing: ${need[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi

  if [ ! -x .venv/bin/semcode ]; then
    step "python environment (scripts/setup.sh)"
    bash scripts/setup.sh
  fi
fi

cd vscode-extension
step "npm ci"
npm ci --no-audit --no-fund --loglevel=error
step "eslint, prettier"
npx eslint .
npx prettier --check .
step "tsc"
npx tsc -p .
step "unit tests"
node --test --test-reporter=spec out/test/unit/
step "vsce package"
npx vsce package --no-dependencies --out semcode.vsix 2>&1 | tail -n 3

if [ "$E2E" = 1 ]; then
  if [ "$(cat "$CODE_SERVER_DIR/.complete" 2>/dev/null)" != "$CODE_SERVER_VERSION" ]; then
    step "code-server $CODE_SERVER_VERSION into $CODE_SERVER_DIR"
    bash test/e2e/install_code_server.sh "$CODE_SERVER_DIR" > "$ROOT/vscode-extension/install-code-server.log" 2>&1 || {
      tail -n 40 "$ROOT/vscode-extension/install-code-server.log" >&2
      exit 1
    }
    rm -f "$ROOT/vscode-extension/install-code-server.log"
  fi
  step "end-to-end test in code-server (screenshots: vscode-extension/test-results/)"
  SEMCODE_CODE_SERVER="$CODE_SERVER_DIR/node_modules/.bin/code-server" node out/test/e2e/run.js
fi
echo "== extension checks passed in $((SECONDS - start)) s"
