#!/usr/bin/env bash
# Install code-server (a real VS Code, from npm) into DEST without downloads outside the npm registry.
# Usage: install_code_server.sh DEST   (CODE_SERVER_VERSION overrides the version)
# Needs Node 20, root or a writable DEST, and the Debian packages
#   build-essential pkg-config python3 libkrb5-dev libxkbfile-dev libsecret-1-dev ripgrep
# 4.100.x (VS Code 1.100) is the last line that runs on Node 20. Its install scripts would download things:
#  - postinstall refuses root unless npm_config_unsafe_perm=true;
#  - node-gyp would download Node headers: npm_config_nodedir=/usr (nodesource ships /usr/include/node);
#  - node-pty's post-install runs `npx node-gyp`, which waits for a "y" without a TTY: npm_config_yes=true;
#  - @vscode/ripgrep's postinstall downloads rg from GitHub: bin/rg is seeded from Debian's ripgrep instead;
#  - argon2's node-pre-gyp would fetch a binary from GitHub: built from source.
# Writes DEST/.complete last, so a half-finished install is redone.
set -euo pipefail
DEST="$(mkdir -p "$1" && cd "$1" && pwd)"
VER="${CODE_SERVER_VERSION:-4.100.3}"
export npm_config_unsafe_perm=true npm_config_nodedir=/usr npm_config_audit=false npm_config_fund=false
export npm_config_yes=true npm_config_update_notifier=false npm_config_loglevel=error
rm -f "$DEST/.complete"
cd "$DEST"
[ -f package.json ] || npm init -y >/dev/null
npm install --ignore-scripts "code-server@$VER"
npm rebuild argon2 --build-from-source
cd node_modules/code-server/lib/vscode
npm install --omit=dev --ignore-scripts
mkdir -p node_modules/@vscode/ripgrep/bin && cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
npm rebuild
ln -sfn node_modules node_modules.asar
(cd bin/remote-cli && ln -sfn code-linux.sh code-server)
(cd bin/helpers && ln -sfn browser-linux.sh browser.sh)
(cd extensions && npm install --omit=dev)
echo "$VER" > "$DEST/.complete"
echo "code-server $VER installed: $DEST/node_modules/.bin/code-server"
