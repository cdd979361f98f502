#!/usr/bin/env bash
# npm run bench [-- --only GROUP[,GROUP] --save --list]: the benchmark figures (not part of npm test).
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx bench/run.ts "$@"
