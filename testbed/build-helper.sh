#!/usr/bin/env bash
# Usage: testbed/build-helper.sh OUTDIR
# Builds the static guest-side helper (testbed/guest-helper/grass-guest.c) into OUTDIR,
# only when the source is newer than the binary. It is kernel-independent.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build-helper.sh OUTDIR}"
src="$here/guest-helper/grass-guest.c"
mkdir -p "$out"
if [ ! -x "$out/grass-guest" ] || [ "$src" -nt "$out/grass-guest" ]; then
  gcc -static -O2 -Wall -Wextra -Werror -pthread -o "$out/grass-guest.tmp" "$src"
  mv "$out/grass-guest.tmp" "$out/grass-guest"
fi
