#!/usr/bin/env bash
# Usage: testbed/initramfs/build.sh KERNEL_DIR HELPER_BINARY
# Builds KERNEL_DIR/initramfs.cpio.gz: static busybox, /init, the ground-truth script, the guest
# helper, the kernel modules the guest loads (with their dependencies, decompressed, depmod'ed)
# and the fault modules under /lib/grass/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kdir="$(cd "${1:?usage: build.sh KERNEL_DIR HELPER}" && pwd)"
helper="${2:?usage: build.sh KERNEL_DIR HELPER}"
out="$kdir/initramfs.cpio.gz"
inputs=("$here"/* "$helper" "$kdir"/faults/*.ko)
if [ -f "$out" ]; then
  stale=0
  for f in "${inputs[@]}"; do [ "$f" -nt "$out" ] && stale=1; done
  [ "$stale" = 0 ] && exit 0
fi
release="$(ls "$kdir/root/lib/modules" | head -1)"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,mnt,lib/grass,lib/modules/"$release"}
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  # busybox lists itself too: a link named busybox would replace the binary (init fails, -40)
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
# The kernel runs /sbin/modprobe for request_module() (e.g. ext4 asking for crc32c).
ln -s ../bin/busybox "$root/sbin/modprobe"
install -m 0755 "$here/init" "$root/init"
install -m 0755 "$here/grass-truth" "$root/bin/grass-truth"
install -m 0755 "$helper" "$root/bin/grass-guest"
cp "$kdir"/faults/*.ko "$root/lib/grass/"

# Modules the guest may load (virtio disk, pvpanic, qemu_fw_cfg (hands VMCOREINFO to QEMU's
# vmcoreinfo device for dumps), ext4 for the scratch disk, 9p for shares);
# a module built into this kernel is simply absent from the list.
wanted="virtio_pci virtio_blk pvpanic_mmio pvpanic_pci qemu_fw_cfg crc32c_generic ext4 9pnet_virtio 9p"
for m in $wanted; do
  { modprobe -d "$kdir/root" -S "$release" --show-depends "$m" 2>/dev/null || true; } | awk '$1 == "insmod" {print $2}'
done | sort -u | while read -r path; do
  rel="${path#"$kdir/root"}"
  dest="$root${rel%.xz}"; dest="${dest%.zst}"
  mkdir -p "$(dirname "$dest")"
  case "$path" in
    *.xz) xz -dc "$path" > "$dest" ;;
    *.zst) zstd -dcq "$path" > "$dest" ;;
    *) cp "$path" "$dest" ;;
  esac
done
cp "$kdir/root/lib/modules/$release"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$release/" 2>/dev/null || true
depmod -b "$root" "$release"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
