#!/usr/bin/env bash
# Usage: testbed/faults/build.sh KERNEL_DIR
# Builds the fault modules against KERNEL_DIR/headers into KERNEL_DIR/faults/ (skipped when the
# modules are newer than every source here).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kdir="$(cd "${1:?usage: build.sh KERNEL_DIR}" && pwd)"
out="$kdir/faults"
if [ -f "$out/.built" ] && [ -z "$(find "$here" -newer "$out/.built" -type f)" ]; then exit 0; fi
rm -rf "$out"
mkdir -p "$out"
cp "$here"/*.c "$here"/*.h "$here/Kbuild" "$out/"
# The kernel's own compiler: Debian's headers name it in CONFIG_CC_VERSION_TEXT (gcc-12 on bookworm).
cc="$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\(gcc-[0-9]*\).*/\1/p' "$kdir/config")"
command -v "${cc:-gcc}" >/dev/null 2>&1 || cc=gcc
# (No vmlinux in a headers tree, so kbuild skips the modules' BTF; that notice is dropped.)
if ! make -s -C "$kdir/headers/" M="$out" CC="${cc:-gcc}" modules > "$out/build.log" 2>&1; then
  cat "$out/build.log" >&2
  echo "testbed: building fault modules against $kdir/headers failed" >&2
  exit 1
fi
grep -v '^Skipping BTF generation' "$out/build.log" >&2 || true
touch "$out/.built"
