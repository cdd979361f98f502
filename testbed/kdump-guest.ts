// A testbed guest that kdumps: Debian's kernel reserves memory for a crash kernel
// (crashkernel=), the host's kexec-tools (the host's root shared read-only over 9p, run in a
// chroot) load the same kernel and initramfs there, and on panic the capture kernel runs the
// host's makedumpfile on /proc/vmcore into a share the host reads (testbed/initramfs/init,
// grass.kdump=). One panic serves several dumps: each job is one makedumpfile run.
//
// Needs: the testbed kernel (testbed/setup.sh); kexec-tools and makedumpfile on the host
// (installed here). Debian's makedumpfile 1.7.2 is built without snappy and zstd ('-p' and '-z' are
// ignored: those jobs write uncompressed pages; makedumpfile -v).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attachGuest, bootGuest, Guest, GuestOptions } from './guest';
import { prepareKernel } from './kernels';

const repo = path.resolve(__dirname, '..');
const HOST_ROOT = '/host';

/** makedumpfile's page formats: -c zlib, -l lzo, -p snappy, -z zstd, -E ELF. */
export const KDUMP_FORMATS = ['zlib', 'lzo', 'snappy', 'zstd', 'elf'] as const;
export type KdumpFormat = (typeof KDUMP_FORMATS)[number];
const FORMAT_FLAG: Record<KdumpFormat, string> = { zlib: '-c', lzo: '-l', snappy: '-p', zstd: '-z', elf: '-E' };

export interface KdumpJob {
  format: KdumpFormat;
  /** makedumpfile -F: the flattened form (what is sent over ssh). */
  flattened?: boolean;
  /** makedumpfile -d: which pages to leave out (default 31: zero, cache, private cache, user, free). */
  dumpLevel?: number;
}

export interface KdumpResult {
  job: KdumpJob;
  file: string;
  bytes: number;
  /** makedumpfile's run in the capture kernel, by the capture kernel's clock. */
  seconds: number;
}

export interface KdumpRun {
  results: KdumpResult[];
  /** From the panic to the capture kernel's init, wall clock on the host. */
  captureBootSeconds: number;
  /** The capture kernel's console (the first kernel's panic is before it). */
  console: string;
}

export interface KdumpGuestOptions extends GuestOptions {
  /** The crash kernel's reservation (crashkernel=). Default 192. */
  crashKernelMiB?: number;
}

/** What attach() needs to find again, kept in the guest's run directory. */
interface KdumpState {
  dumpDir: string;
  vmlinuz: string;
  initramfs: string;
}

export function makedumpfileArgs(job: KdumpJob): string[] {
  const level = job.dumpLevel ?? 31;
  if (!Number.isInteger(level) || level < 0 || level > 31) throw new Error(`kdump: dump level must be 0..31, got ${level}`);
  return [...(job.flattened ? ['-F'] : []), FORMAT_FLAG[job.format], '-d', String(level)];
}

export function ensureKdumpHostPackages(): void {
  execFileSync(path.join(repo, 'scripts/lib/ensure-debs.sh'), ['kexec-tools', 'makedumpfile'], { stdio: ['ignore', 'inherit', 'inherit'] });
}

/** The capture kernel's command line: its init runs the jobs (testbed/initramfs/init). */
function captureCommandLine(jobs: KdumpJob[]): string {
  const encoded = jobs.map((j) => makedumpfileArgs(j).join(',')).join(':');
  // One CPU and no KASLR keep the capture kernel small and quick; reset_devices and irqpoll as
  // kdump's own scripts pass them (devices were live when the first kernel died).
  return ['console=ttyS0', 'nokaslr', 'nr_cpus=1', 'reset_devices', 'irqpoll', 'panic=0', 'no_timer_check', `grass.kdump=${encoded}`].join(' ');
}

export class KdumpGuest {
  private jobs: KdumpJob[] = [];
  private constructor(
    readonly guest: Guest,
    /** The host directory the capture kernel writes into (the share tagged dump). */
    readonly dumpDir: string,
    private readonly vmlinuz: string,
    private readonly initramfs: string,
  ) {}

  static async boot(options: KdumpGuestOptions = {}): Promise<KdumpGuest> {
    ensureKdumpHostPackages();
    const kernel = await prepareKernel(options.kernel);
    const dumpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'grass-kdump-'));
    const { crashKernelMiB, ...guestOptions } = options;
    const guest = await bootGuest({
      ...guestOptions,
      memMiB: options.memMiB ?? 640,
      append: [...(options.append ?? []), `crashkernel=${crashKernelMiB ?? 192}M`],
      qemuArgs: [
        ...(options.qemuArgs ?? []),
        '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
        '-virtfs', `local,path=${dumpDir},mount_tag=dump,security_model=none,multidevs=remap`,
      ],
    });
    try {
      await guest.exec([
        'modprobe 9pnet_virtio && modprobe 9p',
        `mkdir -p ${HOST_ROOT} && mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot ${HOST_ROOT}`,
        `mount --bind /proc ${HOST_ROOT}/proc && mount --bind /sys ${HOST_ROOT}/sys && mount --bind /dev ${HOST_ROOT}/dev`,
        'grep -q "Crash kernel" /proc/iomem',
      ].join(' && '), { timeoutMs: 60_000 });
    } catch (err) {
      await guest.down();
      fs.rmSync(dumpDir, { recursive: true, force: true });
      throw new Error(`kdump guest: no crash kernel reserved or the host share failed: ${(err as Error).message}`);
    }
    const state: KdumpState = { dumpDir, vmlinuz: kernel.vmlinuz, initramfs: options.initramfs ?? kernel.initramfs };
    fs.writeFileSync(path.join(guest.record.runDir, 'kdump.json'), JSON.stringify(state));
    const kg = new KdumpGuest(guest, dumpDir, state.vmlinuz, state.initramfs);
    await kg.arm([{ format: 'zlib' }]);
    return kg;
  }

  /** A running guest booted by boot() (e.g. by `grass testbed up --kdump`), by id. */
  static attach(id: string): KdumpGuest {
    const kg = KdumpGuest.attachIfKdump(id);
    if (!kg) throw new Error(`testbed guest ${id} was not booted for kdump (grass testbed up --kdump)`);
    return kg;
  }

  /** The guest as a KdumpGuest when boot() made it, else undefined (so `down` removes its share too). */
  static attachIfKdump(id: string): KdumpGuest | undefined {
    const guest = attachGuest(id);
    const stateFile = path.join(guest.record.runDir, 'kdump.json');
    if (!fs.existsSync(stateFile)) return undefined;
    const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as KdumpState;
    return new KdumpGuest(guest, state.dumpDir, state.vmlinuz, state.initramfs);
  }

  /** Loads the capture kernel (kexec -p) to run these jobs on the next panic. */
  async arm(jobs: KdumpJob[]): Promise<void> {
    if (jobs.length === 0) throw new Error('kdump: no job');
    const cmd = `chroot ${HOST_ROOT} /usr/sbin/kexec -p ${this.vmlinuz} --initrd=${this.initramfs} --append='${captureCommandLine(jobs)}'`;
    const r = await this.guest.run(`${cmd} && cat /sys/kernel/kexec_crash_loaded`, { timeoutMs: 120_000 });
    if (r.rc !== 0 || r.stdout.trim().split('\n').pop() !== '1')
      throw new Error(`kdump guest ${this.guest.id}: kexec -p failed (rc ${r.rc}): ${r.stdout.slice(-1500)}`);
    this.jobs = jobs;
  }

  /**
   * Panics the guest (sysrq c), waits for the capture kernel to run every armed job, and moves
   * the dumps to outDir as vmcore-<format>[-flat]. The guest is in its capture kernel after.
   */
  async panicAndDump(outDir: string, timeoutMs = 900_000): Promise<KdumpRun> {
    const consoleBefore = this.guest.console().length;
    const started = Date.now();
    // The shell never answers: the kernel is gone before the echo returns.
    await this.guest.run('echo c > /proc/sysrq-trigger', { timeoutMs: 3000 }).catch(() => undefined);
    await this.guest.waitForConsole(/grass kdump: capture kernel up/, timeoutMs);
    const captureBootSeconds = (Date.now() - started) / 1000;
    await this.guest.waitForConsole(/grass kdump: done/, timeoutMs);
    const text = this.guest.console().slice(consoleBefore);
    fs.mkdirSync(outDir, { recursive: true });
    const results: KdumpResult[] = this.jobs.map((job, i) => {
      const m = new RegExp(`grass kdump: job ${i + 1} \\([^)]*\\) rc=(\\d+) from ([\\d.]+) to ([\\d.]+) s`).exec(text);
      const log = path.join(this.dumpDir, `log.${i + 1}`);
      const logText = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-1500) : '';
      if (!m || m[1] !== '0') throw new Error(`kdump guest ${this.guest.id}: makedumpfile ${makedumpfileArgs(job).join(' ')} failed: ${m ? `rc ${m[1]}` : 'no report'}; ${logText}`);
      const file = path.join(outDir, `vmcore-${job.format}${job.flattened ? '-flat' : ''}${job.dumpLevel !== undefined ? `-d${job.dumpLevel}` : ''}`);
      const written = path.join(this.dumpDir, `vmcore.${i + 1}`);
      fs.copyFileSync(written, file); // outDir may be on another file system than the share
      fs.rmSync(written);
      return { job, file, bytes: fs.statSync(file).size, seconds: Number(m[3]) - Number(m[2]) };
    });
    return { results, captureBootSeconds, console: text };
  }

  async down(): Promise<void> {
    await this.guest.down();
    fs.rmSync(this.dumpDir, { recursive: true, force: true });
  }
}
