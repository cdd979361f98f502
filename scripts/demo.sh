#!/usr/bin/env bash
# npm run demo: sets up everything, then shows what works today.
# (A stub: the walk-through of a real fault comes with later issues and replaces this text.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

cat <<TEXT

GRASS demo: what works today
----------------------------
Set-up is done: node_modules, the build (dist/), Node 24 + code-server + Chromium for the
extension tests, the testbed kernel when testbed/setup.sh provides it.

The demo does not yet walk through a fault by itself. What you can run now:

  npm test                         every suite, ending with "N passed, N failed"
  bin/grass --help                 the CLI's verbs
  bin/grass testbed up --agent --json
                                   boot a Debian kernel in QEMU with an agent on its RAM
                                   (prints its target address and key file)
  bin/grass ps --target TARGET --key-file KEY
                                   that kernel's processes, read through the agent
  bin/grass testbed down ID        stop it

The VS Code extension runs in code-server in the tests (npm test; GRASS_TEST_ONLY=extension):
connect with a key from secret storage, heartbeat in the status bar, the Processes tree, Read
Memory, Decode Struct, the kernel log (docs/extension.md). Detections (the Faults view) are
not there yet.
TEXT
