// Shared by the BTF tests: real BTF files (this machine's kernel, the testbed's Debian kernel),
// the grass CLI run as a user runs it, and checks for the outside tools used as ground truth.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const HOST_BTF = '/sys/kernel/btf/vmlinux';

export interface DebianKernel {
  dir: string;
  abi: string;
  vmlinuz: string;
  vmlinux: string;
  btf: string;
  modulesRoot: string;
}

let cached: DebianKernel | null | undefined;

/** The testbed's default Debian kernel, prepared by testbed/setup.sh (cached after the first run). */
export function debianKernel(): DebianKernel | undefined {
  if (cached === undefined) {
    try {
      const out = execFileSync(path.join(REPO_ROOT, 'testbed', 'setup.sh'), ['--quiet', '--kernel', 'linux-image-amd64'], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 24 }).toString();
      const dir = out.trim().split('\n').pop() ?? '';
      const info = JSON.parse(readFileSync(path.join(dir, 'kernel.json'), 'utf8')) as Omit<DebianKernel, 'dir'>;
      cached = { dir, ...info };
    } catch (err) {
      process.stderr.write(`# testbed kernel unavailable: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
      cached = null;
    }
  }
  return cached ?? undefined;
}

/** Runs `grass ARGS` from source, as bin/grass does from the build; returns stdout. */
export function runGrass(args: string[], input?: string): string {
  return execFileSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'main.ts'), ...args], {
    cwd: REPO_ROOT,
    maxBuffer: 1 << 30,
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
  }).toString();
}

/** A skip reason when one of the tools is not installed, else false. */
export function toolMissing(...tools: string[]): string | false {
  for (const tool of tools) {
    const found = ['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin'].some((d) => existsSync(path.join(d, tool)));
    if (!found) return `${tool} not installed (scripts/lib/ensure-debs.sh)`;
  }
  return false;
}
