#!/usr/bin/env bash
# Usage: scripts/fetch-kernel-dbg.sh ABI   (e.g. 6.1.0-56-amd64)
# Prints the path of the kernel's DWARF vmlinux, fetching linux-image-ABI-dbg (about 858 MB) with
# apt-get download once and extracting only vmlinux into .cache/kernel-dbg/ABI/. The peers
# (crash, drgn) need it; GRASS does not. Announces the download on stderr.
set -euo pipefail
abi="${1:?usage: fetch-kernel-dbg.sh ABI}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.cache/kernel-dbg/$abi"
vmlinux="$dir/vmlinux"
if [ -s "$vmlinux" ]; then echo "$vmlinux"; exit 0; fi
mkdir -p "$dir"
exec 9>"$dir.lock"
flock 9
if [ -s "$vmlinux" ]; then echo "$vmlinux"; exit 0; fi
pkg="linux-image-$abi-dbg"
echo "grass: fetching $pkg (about 858 MB, once; cached in $dir) for the peers' DWARF" >&2
work="$(mktemp -d "$dir/fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q "$pkg" >&2)
deb="$(ls "$work"/*.deb)"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards "./usr/lib/debug/boot/vmlinux-$abi"
mv "$work/usr/lib/debug/boot/vmlinux-$abi" "$vmlinux.part"
mv "$vmlinux.part" "$vmlinux"
echo "$vmlinux"
