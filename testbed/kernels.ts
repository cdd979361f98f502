// Finds (and on first use prepares, through testbed/setup.sh) a Debian kernel for the testbed.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..');
/** The kernel guests boot when none is named: $GRASS_TESTBED_KERNEL, else linux-image-amd64. */
export const DEFAULT_KERNEL_PACKAGE = process.env.GRASS_TESTBED_KERNEL || 'linux-image-amd64';

/** What testbed/setup.sh wrote to .cache/testbed/kernels/<abi>/kernel.json. */
export interface KernelDir {
  /** The directory holding all of it. */
  dir: string;
  /** The package it was asked for by (may be a meta-package). */
  package: string;
  imagePackage: string;
  /** e.g. "6.1.0-56-amd64". */
  abi: string;
  /** `uname -r` of the guest (the lib/modules directory name). */
  release: string;
  /** The "Linux version ..." banner found in vmlinux. */
  banner: string;
  vmlinuz: string;
  /** Uncompressed ELF kernel image (bootable directly, through PVH). */
  vmlinux: string;
  /** The raw .BTF section of vmlinux. */
  btf: string;
  config: string;
  initramfs: string;
  modulesRoot: string;
  headers: string;
  /** Built fault modules (*.ko). */
  faults: string;
}

/**
 * Returns the kernel named by a Debian package (default DEFAULT_KERNEL_PACKAGE) or an ABI, running
 * testbed/setup.sh to download and prepare it when needed (minutes the first time, a fraction of
 * a second when cached).
 */
export async function prepareKernel(kernel: string = DEFAULT_KERNEL_PACKAGE): Promise<KernelDir> {
  const setup = path.join(REPO_ROOT, 'testbed', 'setup.sh');
  const dir = await new Promise<string>((resolve, reject) => {
    execFile(setup, ['--quiet', '--kernel', kernel], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`testbed: ${setup} --kernel ${kernel} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout.trim().split('\n').pop() ?? '');
    });
  });
  const info = JSON.parse(readFileSync(path.join(dir, 'kernel.json'), 'utf8')) as Omit<KernelDir, 'dir'>;
  return { dir, ...info };
}
