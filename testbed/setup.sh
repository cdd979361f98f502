#!/usr/bin/env bash
# Usage: testbed/setup.sh [--kernel PKG] [--quiet]
#
# Prepares everything a testbed guest needs, idempotently, under .cache/testbed/:
#   kernels/<abi>/        vmlinuz, vmlinux (uncompressed ELF), vmlinux.btf (raw .BTF), config,
#                         root/ (the image package, depmod'ed), headers/, faults/*.ko,
#                         initramfs.cpio.gz, kernel.json
#   kernels/by-package/<PKG> -> ../<abi>   (how the TypeScript API finds a kernel by name)
#   helper/grass-guest    a static guest-side helper (kmsg reader, spawner, memory hog)
# PKG is any Debian amd64 kernel image package of this release, or a meta-package that depends
# on one (default: linux-image-amd64). The ABI is resolved with apt-cache, never hard-coded.
# Prints the kernel directory on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="$repo/.cache/testbed"
kernel_pkg="linux-image-amd64"
quiet=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel_pkg="${2:?--kernel needs a package name}"; shift 2 ;;
    --quiet) quiet=1; shift ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "testbed/setup.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
log() { [ "$quiet" = 1 ] || echo "testbed setup: $*" >&2; }
die() { echo "testbed setup: $*" >&2; exit 1; }

"$repo/scripts/lib/ensure-debs.sh" qemu-system-x86 busybox-static cpio xz-utils zstd lz4 bzip2 \
  kmod dwarves bpftool gcc make libc6-dev binutils libelf-dev

# The same set-up may run from several test processes at once: one at a time per cache.
mkdir -p "$cache"
exec 8>"$cache/.setup.lock"
flock 8

# --- Resolve the package to a concrete image package and its ABI ------------------------------
by_package="$cache/kernels/by-package"
mkdir -p "$by_package"

# Follows "Depends: linux-image-..." from a meta-package down to the real image package: the
# one that depends on no other linux-image-* package (names alone cannot tell: 6.12-amd64 is a
# meta-package, 6.12.117+deb12-amd64 an image).
resolve_image_package() {
  local pkg="$1" depth next
  apt-cache show "$pkg" >/dev/null 2>&1 || return 1
  for depth in 1 2 3 4 5; do
    next="$(apt-cache depends "$pkg" 2>/dev/null | awk '$1 ~ /^\|?Depends:$/ && $2 ~ /^linux-image-/ {print $2; exit}')"
    if [ -z "$next" ]; then
      [[ "$pkg" =~ ^linux-image- && ! "$pkg" =~ -dbg$ ]] || return 1
      echo "$pkg"; return 0
    fi
    pkg="$next"
  done
  return 1
}

# The guest helper, fault modules and initramfs: each rebuilt only when its sources changed.
build_guest_parts() {
  "$here/build-helper.sh" "$cache/helper"
  "$here/faults/build.sh" "$1"
  "$here/initramfs/build.sh" "$1" "$cache/helper/grass-guest"
}

# A kernel directory or ABI named directly.
if [ -f "$cache/kernels/$kernel_pkg/.complete" ]; then
  build_guest_parts "$cache/kernels/$kernel_pkg"
  echo "$cache/kernels/$kernel_pkg"
  exit 0
fi

if [ -L "$by_package/$kernel_pkg" ] && [ -f "$by_package/$kernel_pkg/.complete" ] \
   && [ -z "${GRASS_TESTBED_REFRESH:-}" ]; then
  # Cached: no apt-cache round trip (set GRASS_TESTBED_REFRESH=1 to re-resolve a meta-package).
  kdir="$(cd "$by_package/$kernel_pkg" && pwd -P)"
  log "cached: $kdir"
  build_guest_parts "$kdir"
  echo "$kdir"
  exit 0
fi

image_pkg="$(resolve_image_package "$kernel_pkg")" \
  || die "cannot resolve '$kernel_pkg' to a Debian kernel image package (apt-cache depends $kernel_pkg names no linux-image-<abi>; is it an amd64 kernel package of this release, and is the apt index current?)"
abi="${image_pkg#linux-image-}"
abi="${abi%-unsigned}"
kdir="$cache/kernels/$abi"
log "$kernel_pkg -> $image_pkg (ABI $abi)"

if [ -f "$kdir/.complete" ]; then
  ln -sfn "../$abi" "$by_package/$kernel_pkg"
  build_guest_parts "$kdir"
  echo "$kdir"
  exit 0
fi

# --- Download the image and its headers ---------------------------------------------------------
headers_pkg="linux-headers-$abi"
apt-cache show "$headers_pkg" >/dev/null 2>&1 || die "no headers package '$headers_pkg' in the apt index"
# The headers package depends on its -common part and on linux-kbuild-<version>.
header_deps="$(apt-cache depends "$headers_pkg" | awk '$1 ~ /^\|?Depends:$/ && $2 ~ /^linux-(headers|kbuild)-/ && $2 !~ /^</ {print $2}' | sort -u)"
[ -n "$header_deps" ] || die "apt-cache depends $headers_pkg names no linux-headers-*-common / linux-kbuild-* package"

debs="$cache/debs/$abi"
mkdir -p "$debs"
want=("$image_pkg" "$headers_pkg" $header_deps)
missing=()
for p in "${want[@]}"; do
  compgen -G "$debs/${p}_*.deb" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "downloading ${missing[*]}"
  (cd "$debs" && apt-get download -q "${missing[@]}" >&2 2>&1) \
    || die "apt-get download ${missing[*]} failed (is the Debian archive reachable?)"
fi

# --- Extract --------------------------------------------------------------------------------------
tmp="$kdir.partial"
rm -rf "$tmp"
mkdir -p "$tmp/root" "$tmp/headers-root"
log "extracting packages"
dpkg -x "$(ls "$debs/${image_pkg}"_*.deb | head -1)" "$tmp/root"
for p in "$headers_pkg" $header_deps; do
  dpkg -x "$(ls "$debs/${p}"_*.deb | head -1)" "$tmp/headers-root"
done

release="$(ls "$tmp/root/lib/modules" | head -1)"
[ -n "$release" ] || die "$image_pkg has no lib/modules/<release>"
cp "$tmp/root/boot/vmlinuz-$release" "$tmp/vmlinuz"
cp "$tmp/root/boot/config-$release" "$tmp/config"

# The uncompressed vmlinux: the bzImage's payload is compressed as the config says (xz for
# Debian's generic flavour, lz4 for cloud, zstd on some); try each method's magic at every place
# it occurs and keep the first that decompresses to an ELF file.
extract_vmlinux() {
  local img="$1" out="$2" magic tool off
  for pair in "fd377a585a00:xz -dc" "28b52ffd:zstd -dcq" "02214c18:lz4 -dcq" "1f8b0800:gzip -dc" \
              "425a68:bzip2 -dcq" "5d000000:xz -dc --format=lzma"; do
    magic="${pair%%:*}"; tool="${pair#*:}"
    for off in $(LC_ALL=C grep -obUaP "$(echo "$magic" | sed 's/../\\x&/g')" "$img" | cut -d: -f1); do
      tail -c +"$((off + 1))" "$img" | $tool 2>/dev/null > "$out" || true
      if [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' \n')" = "7f454c46" ]; then return 0; fi
    done
  done
  return 1
}
log "extracting vmlinux from vmlinuz"
extract_vmlinux "$tmp/vmlinuz" "$tmp/vmlinux" || die "no xz/zstd/lz4/gzip/bzip2/lzma ELF payload found in vmlinuz-$release"
objcopy -O binary --only-section=.BTF "$tmp/vmlinux" "$tmp/vmlinux.btf"
[ -s "$tmp/vmlinux.btf" ] || die "vmlinux-$release has no .BTF section (CONFIG_DEBUG_INFO_BTF off?)"

log "depmod"
depmod -b "$tmp/root" "$release"

# --- Headers: make the tree usable where it was extracted -----------------------------------------
hdir="$tmp/headers-root/usr/src/linux-headers-$abi"
[ -d "$hdir" ] || die "headers package has no usr/src/linux-headers-$abi"
# Debian's per-flavour Makefile includes the -common tree by absolute /usr/src path; point it here.
sed -i "s|^include /usr/src/|include $kdir/headers-root/usr/src/|" "$hdir/Makefile"
# Some trees also name /usr/src in scripts' symlinks or Makefiles under the common tree.
ln -sfn "headers-root/usr/src/linux-headers-$abi" "$tmp/headers"

mv "$tmp" "$kdir.staged"
rm -rf "$kdir"
mv "$kdir.staged" "$kdir"

# --- Guest helper, fault modules and initramfs ----------------------------------------------------
build_guest_parts "$kdir"

vmlinux_ver="$(strings -n 20 "$kdir/vmlinux" | grep -m1 '^Linux version ' || true)"
cat > "$kdir/kernel.json" <<EOF
{
  "package": "$kernel_pkg",
  "imagePackage": "$image_pkg",
  "abi": "$abi",
  "release": "$release",
  "banner": "$(echo "$vmlinux_ver" | sed 's/["\\]/\\&/g')",
  "vmlinuz": "$kdir/vmlinuz",
  "vmlinux": "$kdir/vmlinux",
  "btf": "$kdir/vmlinux.btf",
  "config": "$kdir/config",
  "initramfs": "$kdir/initramfs.cpio.gz",
  "modulesRoot": "$kdir/root",
  "headers": "$kdir/headers",
  "faults": "$kdir/faults"
}
EOF
touch "$kdir/.complete"
ln -sfn "../$abi" "$by_package/$kernel_pkg"
[ "$image_pkg" = "$kernel_pkg" ] || ln -sfn "../$abi" "$by_package/$image_pkg"
log "ready: $kdir"
echo "$kdir"
