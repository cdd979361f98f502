#!/usr/bin/env bash
# npm run package: builds and packs the extension into .cache/package/grass-vscode-<version>.vsix
# with @vscode/vsce (run on the Node 24 from .cache/tools: vsce needs Node >= 22), then checks
# that koffi's linux-x64 binary is inside and loads from the packed layout.
# The README's links stay relative (docs/ is not in the .vsix; there is no public repository).
# Prints the .vsix path on stdout; progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-vscode.sh
npm run --silent build >&2

node24=$PWD/.cache/tools/node/bin/node
vsce=$PWD/.cache/tools/vscode/node_modules/@vscode/vsce/vsce
version=$(node -p "require('./package.json').version")
out=$PWD/.cache/package/grass-vscode-$version.vsix
mkdir -p "$(dirname "$out")"
rm -f "$out"
echo "grass package: packing $out" >&2
# vsce runs `npm ls` to find the production dependencies: Node 24 first on PATH.
PATH="$(dirname "$node24"):$PATH" "$node24" "$vsce" package --no-update-package-json --skip-license \
  --allow-missing-repository --no-rewrite-relative-links --out "$out" >&2

# The packed layout must load koffi with its native binary, as the extension host will.
check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$out" "$check"
binary=extension/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node
[ -f "$check/$binary" ] || { echo "grass package: $binary is missing from the .vsix" >&2; exit 1; }
"$node24" -e "const k = require(process.argv[1] + '/extension/node_modules/koffi'); if (typeof k.load !== 'function') process.exit(1);" "$check" ||
  { echo "grass package: koffi does not load from the packed layout" >&2; exit 1; }
echo "grass package: $(du -h "$out" | cut -f1) with koffi's linux-x64 binary; koffi loads from the packed layout" >&2
echo "$out"
