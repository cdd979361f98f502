#!/usr/bin/env bash
# npm run bench [-- --only GROUP[,GROUP] --all --save --list]: the benchmark figures (not part of npm test);
# the default run leaves out the long groups (--list marks them), --all runs them too.
# Sets up first, as npm test does (Debian packages, node_modules, the testbed's kernel, the
# agent's build), so that it runs on a fresh machine; quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
case " $* " in
  *" --list "*) ;;
  *) bash scripts/setup.sh ;;
esac
exec node --import tsx bench/run.ts "$@"
