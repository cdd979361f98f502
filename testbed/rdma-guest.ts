// A testbed guest where verbs run for real: Debian's kernel with Soft-RoCE (rdma_rxe) on a
// dummy Ethernet device holding the guest's only RDMA address (RDMA_ADDRESS), and this machine's own file system shared read-only over 9p, so the guest
// runs the host's node, rdma-core userspace, gpu/build/grass-agent and this project unchanged
// (in a chroot at /host with the guest's own /proc, /sys, /dev, /tmp and /dev/shm).
//
// Needs: the testbed kernel (testbed/setup.sh), Debian's rdma-core userspace on the host
// (libibverbs1 ibverbs-providers librdmacm1, plus perftest for the benchmark). The guest needs
// ≥ 512 MiB (node + rxe); the default here is 1024.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootGuest, Guest } from './guest';
import { KernelDir, prepareKernel } from './kernels';

const repo = path.resolve(__dirname, '..');
/** The kernel modules Soft-RoCE needs (their dependencies follow from modules.dep). */
export const RXE_MODULES = ['rdma_rxe', 'rdma_ucm', 'ib_uverbs', 'crc32_generic', 'dummy'];
/**
 * The guest's RDMA address. Not on lo: rdma_cm resolves a loopback-type device to an IB GID,
 * which a RoCE device has not (ENODEV); on a dummy Ethernet device rxe delivers packets to its
 * own address internally.
 */
export const RDMA_ADDRESS = '10.11.12.1';
/** Where the host's root is mounted in the guest. */
const HOST_ROOT = '/host';

export interface RdmaGuestOptions {
  memMiB?: number;
  cpus?: number;
}

export interface RdmaGuest {
  guest: Guest;
  /** The rxe device's name (rxe0). */
  device: string;
  /** Runs a command in the guest's chroot of the host's file system; stdout+stderr and rc. */
  run(command: string, opts?: { timeoutMs?: number }): Promise<{ rc: number; stdout: string }>;
  /** Like run(), but a non-zero exit status is an error. */
  exec(command: string, opts?: { timeoutMs?: number }): Promise<string>;
  down(): Promise<void>;
}

/** Host packages the guest uses through the share. */
export function ensureRdmaHostPackages(): void {
  execFileSync(path.join(repo, 'scripts/lib/ensure-debs.sh'), ['libibverbs1', 'ibverbs-providers', 'librdmacm1', 'rdma-core', 'iproute2', 'perftest', 'ibverbs-utils', 'libpci3'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/**
 * The testbed's initramfs plus the Soft-RoCE modules and a modules.dep covering both, rebuilt
 * when the testbed's initramfs changes. Fails naming a module Debian's kernel does not ship.
 */
export function buildRdmaInitramfs(kernel: KernelDir): string {
  const outDir = path.join(repo, '.cache', 'rdma-guest', kernel.abi);
  const out = path.join(outDir, 'initramfs.cpio.gz');
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= fs.statSync(kernel.initramfs).mtimeMs) return out;
  fs.mkdirSync(outDir, { recursive: true });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'grass-rdma-initramfs-'));
  try {
    execFileSync('sh', ['-c', `zcat "${kernel.initramfs}" | cpio -idm --quiet`], { cwd: root });
    const modulesRoot = kernel.modulesRoot;
    for (const module of RXE_MODULES) {
      let deps: string;
      try {
        deps = execFileSync('modprobe', ['-d', modulesRoot, '-S', kernel.release, '--show-depends', module], { encoding: 'utf8' });
      } catch {
        throw new Error(`rdma guest: Debian's kernel ${kernel.release} has no module '${module}' (looked with modprobe -d ${modulesRoot} --show-depends)`);
      }
      for (const line of deps.split('\n')) {
        const m = /^insmod (\S+)/.exec(line);
        if (!m) continue;
        const rel = path.relative(modulesRoot, m[1]).replace(/\.(xz|zst)$/, '');
        const dest = path.join(root, rel);
        fs.mkdirSync(path.dirname(dest), { recursive: true });
        if (m[1].endsWith('.xz')) fs.writeFileSync(dest, execFileSync('xz', ['-dc', m[1]], { maxBuffer: 1 << 28 }));
        else if (m[1].endsWith('.zst')) fs.writeFileSync(dest, execFileSync('zstd', ['-dcq', m[1]], { maxBuffer: 1 << 28 }));
        else fs.copyFileSync(m[1], dest);
      }
    }
    execFileSync('depmod', ['-b', root, kernel.release]);
    const tmp = `${out}.tmp`;
    execFileSync('sh', ['-c', `find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1 > "${tmp}"`], { cwd: root });
    fs.renameSync(tmp, out);
    return out;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export async function bootRdmaGuest(options: RdmaGuestOptions = {}): Promise<RdmaGuest> {
  ensureRdmaHostPackages();
  const kernel = await prepareKernel();
  const initramfs = buildRdmaInitramfs(kernel);
  const guest = await bootGuest({
    memMiB: options.memMiB ?? 1024,
    cpus: options.cpus ?? 2,
    initramfs,
    qemuArgs: [
      '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
      // The project again, mounted at its own path after the guest's /tmp and /run: a checkout
      // under /tmp (CI clones anywhere) would otherwise be hidden by the guest's tmpfs.
      '-virtfs', `local,path=${repo},mount_tag=project,security_model=none,readonly=on,multidevs=remap`,
    ],
  });
  const device = 'rxe0';
  try {
    await guest.exec([
      'modprobe 9pnet_virtio && modprobe 9p',
      `mkdir -p ${HOST_ROOT} && mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot ${HOST_ROOT}`,
      `mount --bind /proc ${HOST_ROOT}/proc && mount --bind /sys ${HOST_ROOT}/sys && mount --bind /dev ${HOST_ROOT}/dev`,
      `mount -t devpts devpts ${HOST_ROOT}/dev/pts; mkdir -p /dev/shm && mount -t tmpfs shm ${HOST_ROOT}/dev/shm`,
      `mount -t tmpfs tmp ${HOST_ROOT}/tmp && mount -t tmpfs run ${HOST_ROOT}/run`,
      `mkdir -p ${HOST_ROOT}${repo} && mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 project ${HOST_ROOT}${repo}`,
      ...RXE_MODULES.map((m) => `modprobe ${m}`),
      'ip link set lo up && ip link add grass0 type dummy',
      `ip addr add ${RDMA_ADDRESS}/24 dev grass0 && ip link set grass0 up`,
      // After the address: rxe takes its GIDs from the device's addresses when it is added.
      `chroot ${HOST_ROOT} rdma link add ${device} type rxe netdev grass0`,
      `cat /sys/class/infiniband/${device}/ports/1/state`,
    ].join(' && '), { timeoutMs: 60_000 });
  } catch (err) {
    await guest.down();
    throw err;
  }
  const run = async (command: string, opts: { timeoutMs?: number } = {}) => {
    const r = await guest.run(`chroot ${HOST_ROOT} /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/tmp /bin/sh -c ${quote(command)}`, opts);
    return { rc: r.rc, stdout: r.stdout };
  };
  return {
    guest,
    device,
    run,
    async exec(command, opts) {
      const r = await run(command, opts);
      if (r.rc !== 0) throw new Error(`rdma guest ${guest.id}: '${command.slice(0, 200)}' exited ${r.rc}: ${r.stdout.slice(-2000)}`);
      return r.stdout;
    },
    down: () => guest.down(),
  };
}
