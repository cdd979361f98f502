#!/usr/bin/env bash
# Everything `npm test` and `npm run demo` need on a fresh Debian 12 machine, idempotently:
# Debian packages, node_modules, the VS Code test tools (Node 24, code-server,
# playwright-core, vsce), the testbed (guest kernel, initramfs) when testbed/setup.sh
# exists, then the build. Quick when all is there. Progress on stderr, nothing on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "grass setup: $*" >&2; }
started=$(date +%s)

# chromium, libkrb5-dev (code-server's kerberos module), a toolchain and python3 for native
# modules; libbpf, OpenSSL and rdma-core headers for the agent in gpu/; zlib, lzo, snappy and
# zstd for the pages of kdump-compressed dumps (gpu/src/memory/kdump_source.cpp).
bash scripts/lib/ensure-debs.sh chromium libkrb5-dev build-essential python3 pkg-config \
  libbpf-dev libssl-dev libibverbs-dev librdmacm-dev \
  zlib1g-dev liblzo2-dev libsnappy-dev libzstd-dev

# Debian's Prometheus (`prometheus` and `promtool`) for the fleet tests and docs/prometheus/'s rule
# tests, which start their own server on 127.0.0.1 with a temporary config and data folder. The
# package's own service must not be left running or enabled: while it installs, policy-rc.d
# forbids starting services (unless the machine has one already, as containers do), and the
# service is disabled and stopped after.
if ! dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q 'install ok installed'; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# grass setup: no service starts while prometheus is installed\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${as_root[@]}" chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  installed=0
  bash scripts/lib/ensure-debs.sh prometheus || installed=$?
  [ "$made_policy" -eq 0 ] || "${as_root[@]}" rm -f /usr/sbin/policy-rc.d
  if [ -d /run/systemd/system ]; then
    "${as_root[@]}" systemctl disable --now prometheus.service >&2 || true
  else
    # No systemd running (a container): update-rc.d disables the init script and, through
    # `systemctl --root=/`, removes the unit's enablement links the package made.
    "${as_root[@]}" update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
  [ "$installed" -eq 0 ] || exit "$installed"
fi

# node_modules: `npm ci` on a fresh clone; when node_modules exists but does not match
# package-lock.json, `npm install` (reconciles without deleting a shared tree's node_modules).
node_modules_current() {
  node -e '
    const fs = require("fs");
    const want = JSON.parse(fs.readFileSync("package-lock.json", "utf8")).packages;
    let have;
    try { have = JSON.parse(fs.readFileSync("node_modules/.package-lock.json", "utf8")).packages; }
    catch { process.exit(1); }
    for (const [where, pkg] of Object.entries(want)) {
      if (where === "" || !where.startsWith("node_modules/")) continue;
      const got = have[where];
      if (got ? got.version !== pkg.version : !pkg.optional) { console.error(`${where}: want ${pkg.version}, have ${got ? got.version : "none"}`); process.exit(1); }
    }' 2>/dev/null
}
if [ ! -d node_modules ]; then
  say "npm ci (node_modules is missing)"
  npm ci --no-audit --no-fund --loglevel=error >&2
elif ! node_modules_current; then
  say "npm install (node_modules does not match package-lock.json)"
  flock /tmp/grass-npm.lock npm install --no-audit --no-fund --loglevel=error >&2
fi

bash scripts/setup-vscode.sh

if [ -f testbed/setup.sh ]; then
  bash testbed/setup.sh >&2
fi

npm run --silent build >/dev/null
say "ready in $(($(date +%s) - started)) s"
