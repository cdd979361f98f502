#!/usr/bin/env bash
# npm run demo [-- --check]: sets up everything, then runs the product on the testbed guest
# (scripts/demo.ts): live kernel, then a panicked one. Default interactive (Ctrl-C stops it);
# --check verifies each step and exits 0 only if all passed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
# The .vsix code-server installs: packed again each time, so it is this tree's extension.
bash scripts/package.sh >/dev/null
exec node --import tsx scripts/demo.ts "$@"
