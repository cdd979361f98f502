// A Debian kernel in QEMU (TCG) with its RAM in a shared file: boot, drive, fault, dump, stop.
//
// Every guest has a run directory (<tmp>/grass-testbed/<id>/) holding guest.json (all that is
// needed to find it again from another process: `grass testbed` verbs attach by id), its sockets,
// logs and disk images. Its RAM is /dev/shm/grass-testbed-<id>.ram. Guests owned by a process
// (the default for the API) die with it: QEMU runs under a parent-death signal, exit hooks remove
// the files, and reapStaleGuests() cleans up after processes that were killed outright.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KernelDir, prepareKernel } from './kernels';
import { qmp, qmpExecute, qmpStatus } from './qmp';
import { RunResult, SerialTimeoutError, serialRun } from './serial';
import { GroundTruth, parseTruth } from './truth';

export type PreemptModel = 'none' | 'voluntary' | 'full';

/** The formats of QMP dump-guest-memory this testbed writes (QEMU 7.2's, less win-dmp). */
export const QEMU_DUMP_FORMATS = ['elf', 'kdump-zlib', 'kdump-lzo', 'kdump-snappy'] as const;
export type QemuDumpFormat = (typeof QEMU_DUMP_FORMATS)[number];

export interface GuestOptions {
  /** Debian kernel image package (or meta-package, or ABI); default linux-image-amd64. */
  kernel?: string;
  /** KASLR on: boots the bzImage (PVH boot of vmlinux would not slide the image). Default off. */
  kaslr?: boolean;
  /** Guest RAM in MiB (default 512). At 2816 MiB and more, q35 puts RAM above 2 GiB at 4 GiB. */
  memMiB?: number;
  cpus?: number;
  /** QEMU -cpu model; "max" gives 5-level paging (la57) and 1 GiB pages under TCG. */
  cpuModel?: string;
  /** preempt= on the kernel command line (the kernel must be PREEMPT_DYNAMIC; Debian's are). */
  preempt?: PreemptModel;
  /** A virtio disk used as swap, in MiB. */
  swapMiB?: number;
  /** A virtio disk with an ext2 file system mounted at /mnt/disk, in MiB. */
  diskMiB?: number;
  /** More kernel command-line words. */
  append?: string[];
  /** Another initramfs instead of the testbed's (e.g. testbed/rdma-guest.ts adds modules). */
  initramfs?: string;
  /** More QEMU arguments (e.g. a -virtfs share). */
  qemuArgs?: string[];
  /** Keep the guest after this process exits (what `grass testbed up` does). Default false. */
  persistent?: boolean;
  bootTimeoutMs?: number;
}

export interface MemoryRange {
  physStart: string;
  length: string;
  fileOffset: string;
}

/** The memory map file's shape (the agent reads it; keep it exactly). */
export interface MemoryMap {
  ramFile: string;
  ranges: MemoryRange[];
}

export type FaultKind =
  | 'f1' | 'f2' | 'f3' | 'f4' | 'f5' | 'f6'
  | 'oops' | 'softlockup' | 'cpu-high-load' | 'memory-leak' | 'panic';

export const FAULT_KINDS: FaultKind[] = [
  'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'oops', 'softlockup', 'cpu-high-load', 'memory-leak', 'panic',
];

export interface FaultResult {
  kind: FaultKind;
  /** The shell command that injected it. */
  command: string;
  /** Whether the guest answered the command (hang faults answer before the hang starts). */
  answered: boolean;
  /** What the command printed. */
  output: string;
  /**
   * Functions in the fault module's .text, placed where the guest loaded it (its
   * /sys/module/<name>/sections/.text, read before the fault started, plus each function's offset
   * and size from the .ko file): a vCPU's RIP inside one shows the fault at work.
   */
  functions: ModuleFunction[];
}

export interface ModuleFunction {
  name: string;
  address: bigint;
  size: number;
}

/** FUNC symbols of a module's .text section, relative to the section (readelf on the .ko). */
function moduleTextFunctions(koFile: string): { name: string; offset: bigint; size: number }[] {
  const sections = execFileSync('readelf', ['-SW', koFile], { encoding: 'utf8' });
  const text = /^\s*\[\s*(\d+)\] \.text\s/m.exec(sections);
  if (!text) throw new Error(`testbed: ${koFile} has no .text section`);
  const symbols = execFileSync('readelf', ['-sW', koFile], { encoding: 'utf8' });
  const out: { name: string; offset: bigint; size: number }[] = [];
  for (const m of symbols.matchAll(/^\s*\d+: ([0-9a-f]+)\s+(\d+) FUNC\s+\S+\s+\S+\s+(\d+) (\S+)$/gm)) {
    if (m[3] === text[1]) out.push({ name: m[4], offset: BigInt('0x' + m[1]), size: Number(m[2]) });
  }
  return out;
}

export interface CpuRegisters {
  cpu: number;
  rip: bigint;
  rflags: number;
  /** Interrupts enabled (RFLAGS.IF). */
  interruptsOn: boolean;
  cpl: number;
  halted: boolean;
}

/** guest.json: what another process needs to drive a running guest. */
export interface GuestRecord {
  id: string;
  qemuPid: number;
  /** The process that owns the guest (it dies with it), or null for a persistent guest. */
  ownerPid: number | null;
  runDir: string;
  ramFile: string;
  memoryMapFile: string;
  serialLog: string;
  shellLog: string;
  shellSocket: string;
  qmpSocket: string;
  kernel: KernelDir;
  options: Required<Omit<GuestOptions, 'append' | 'bootTimeoutMs' | 'cpuModel' | 'preempt' | 'initramfs' | 'qemuArgs'>> & {
    cpuModel: string | null;
    preempt: PreemptModel | null;
    append: string[];
  };
  kernelCommandLine: string;
  bootMs: number;
}

export const RUN_ROOT = process.env.GRASS_TESTBED_RUN_DIR ?? path.join(os.tmpdir(), 'grass-testbed');
const RAM_DIR = '/dev/shm';
const GUEST_ID = /^[0-9a-z]+-[0-9a-f]{6}$/;

/** Whether a process runs (a zombie, dead but not yet waited for, does not). */
function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** True if `pid` is the QEMU of the guest in runDir (guards against pid reuse). */
function isQemuOf(pid: number, runDir: string): boolean {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    // setpriv execs QEMU; an agent started on the guest names the run directory too.
    return /^(qemu-system-|setpriv$)/.test(path.basename(argv[0])) && argv.some((a) => a.includes(runDir));
  } catch {
    return false;
  }
}

function removeGuestFiles(record: Pick<GuestRecord, 'ramFile' | 'runDir'>): void {
  fs.rmSync(record.ramFile, { force: true });
  fs.rmSync(record.runDir, { recursive: true, force: true });
}

function killAndRemoveSync(record: GuestRecord): void {
  if (isQemuOf(record.qemuPid, record.runDir)) {
    try {
      process.kill(record.qemuPid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  removeGuestFiles(record);
}

const ownedGuests = new Map<string, GuestRecord>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  const cleanup = () => {
    for (const record of ownedGuests.values()) killAndRemoveSync(record);
    ownedGuests.clear();
  };
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanup();
      process.kill(process.pid, signal);
    });
  }
}

/**
 * Removes guests left behind by processes that died (their QEMU is killed) and files of guests
 * whose QEMU is gone. Returns the ids it removed.
 */
export function reapStaleGuests(): string[] {
  const reaped: string[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync(RUN_ROOT);
  } catch {
    return reaped;
  }
  for (const id of entries) {
    if (!GUEST_ID.test(id)) continue; // not ours
    const runDir = path.join(RUN_ROOT, id);
    let record: GuestRecord;
    try {
      record = JSON.parse(fs.readFileSync(path.join(runDir, 'guest.json'), 'utf8')) as GuestRecord;
    } catch {
      // A guest still booting has no guest.json yet; its booting.json names the booting process
      // (persistent or not). A directory without either is left alone while it is new.
      let booter: number | undefined;
      try {
        booter = (JSON.parse(fs.readFileSync(path.join(runDir, 'booting.json'), 'utf8')) as { ownerPid: number }).ownerPid;
      } catch {
        booter = undefined;
      }
      let age = 0;
      try {
        age = Date.now() - fs.statSync(runDir).mtimeMs;
      } catch {
        continue; // removed meanwhile
      }
      if (booter === undefined ? age > 60_000 : !pidAlive(booter)) {
        for (const pid of qemuPidsOf(runDir)) process.kill(pid, 'SIGKILL');
        removeGuestFiles({ runDir, ramFile: ramFileFor(id) });
        reaped.push(id);
      }
      continue;
    }
    const qemuAlive = isQemuOf(record.qemuPid, record.runDir);
    const ownerDead = record.ownerPid !== null && !pidAlive(record.ownerPid);
    if (!qemuAlive || ownerDead) {
      killAndRemoveSync(record);
      reaped.push(id);
    }
  }
  return reaped;
}

function qemuPidsOf(runDir: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (/^\d+$/.test(entry) && isQemuOf(Number(entry), runDir)) pids.push(Number(entry));
  }
  return pids.filter((pid) => pid !== process.pid);
}

function ramFileFor(id: string): string {
  return path.join(RAM_DIR, `grass-testbed-${id}.ram`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Parses `info mtree` into the ranges of guest-physical space backed by the RAM backend. */
export function parseMemoryMap(mtree: string, backendId: string, ramFile: string): MemoryMap {
  const ranges = new Map<string, MemoryRange>();
  let inSystemSpace = false;
  for (const line of mtree.split('\n')) {
    if (/^(address-space|memory-region): /.test(line)) {
      inSystemSpace = line.trim() === 'address-space: memory';
      continue;
    }
    if (!inSystemSpace) continue;
    // "0000000100000000-000000013fffffff (prio 0, ram): alias ram-above-4g @mem 0000000080000000-00000000bfffffff"
    const m = /^\s*([0-9a-f]+)-([0-9a-f]+) \(prio 0, ram\): alias (ram-\S+) @(\S+) ([0-9a-f]+)-([0-9a-f]+)/.exec(line);
    if (!m || m[4] !== backendId) continue;
    const start = BigInt('0x' + m[1]);
    const length = BigInt('0x' + m[2]) - start + 1n;
    ranges.set(m[1], { physStart: '0x' + start.toString(16), length: '0x' + length.toString(16), fileOffset: '0x' + BigInt('0x' + m[5]).toString(16) });
  }
  if (ranges.size === 0) throw new Error(`testbed: QEMU's memory tree shows no RAM alias of backend '${backendId}'`);
  return { ramFile, ranges: [...ranges.values()].sort((a, b) => (BigInt(a.physStart) < BigInt(b.physStart) ? -1 : 1)) };
}

export class Guest {
  constructor(readonly record: GuestRecord) {}

  get id(): string { return this.record.id; }
  get ramFile(): string { return this.record.ramFile; }
  get memoryMapFile(): string { return this.record.memoryMapFile; }
  /** The kernel console (ttyS0): boot messages, oopses, panics. */
  get serialLog(): string { return this.record.serialLog; }
  /** Transcript of the root shell (ttyS1). */
  get shellLog(): string { return this.record.shellLog; }
  get qmpSocket(): string { return this.record.qmpSocket; }
  get kernelDir(): KernelDir { return this.record.kernel; }
  get qemuPid(): number { return this.record.qemuPid; }
  get bootMs(): number { return this.record.bootMs; }

  memoryMap(): MemoryMap {
    return JSON.parse(fs.readFileSync(this.record.memoryMapFile, 'utf8')) as MemoryMap;
  }

  /** Reads guest-physical memory from the RAM file through the memory map. */
  readPhysical(phys: bigint, length: number): Buffer {
    const range = this.memoryMap().ranges.find((r) => phys >= BigInt(r.physStart) && phys + BigInt(length) <= BigInt(r.physStart) + BigInt(r.length));
    if (!range) throw new Error(`testbed ${this.id}: physical 0x${phys.toString(16)}+${length} is not in guest RAM`);
    const offset = Number(phys - BigInt(range.physStart) + BigInt(range.fileOffset));
    const fd = fs.openSync(this.record.ramFile, 'r');
    try {
      const buf = Buffer.alloc(length);
      const n = fs.readSync(fd, buf, 0, length, offset);
      if (n !== length) throw new Error(`testbed ${this.id}: short read of the RAM file at 0x${offset.toString(16)}`);
      return buf;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** The kernel console output so far. */
  console(): string {
    try {
      return fs.readFileSync(this.record.serialLog, 'utf8');
    } catch {
      return '';
    }
  }

  /** Waits until the kernel console shows `pattern`; returns the match. */
  async waitForConsole(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.console());
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`testbed ${this.id}: kernel console did not show ${pattern} within ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  private queue: Promise<unknown> = Promise.resolve();

  /** Runs a shell command in the guest (as root); stdout and stderr come back together. */
  run(command: string, opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    const next = this.queue.then(() => serialRun(this.record.shellSocket, command, opts.timeoutMs ?? 30_000));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Like run(), but a non-zero exit status is an error. */
  async exec(command: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.run(command, opts);
    if (r.rc !== 0) throw new Error(`testbed ${this.id}: '${command.slice(0, 200)}' exited ${r.rc}: ${r.stdout.slice(-2000)}`);
    return r.stdout;
  }

  /** Ground truth from the guest itself (one pass of /bin/grass-truth over the serial line). */
  async truth(opts: { kallsyms?: boolean; timeoutMs?: number } = {}): Promise<GroundTruth> {
    const out = await this.exec(opts.kallsyms ? 'grass-truth kallsyms' : 'grass-truth', { timeoutMs: opts.timeoutMs ?? 60_000 });
    return parseTruth(out);
  }

  /** Starts n sleeping processes (or threads of one process) in the guest. */
  async spawn(n: number, opts: { threads?: boolean; timeoutMs?: number } = {}): Promise<{ holderPid: number; created: number }> {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`testbed: spawn needs a positive count, got ${n}`);
    const out = await this.exec(`grass-guest spawn ${n}${opts.threads ? ' threads' : ''}`, {
      timeoutMs: opts.timeoutMs ?? 30_000 + n * 20,
    });
    const m = /holder=(\d+) created=(\d+)/.exec(out);
    if (!m) throw new Error(`testbed ${this.id}: spawn printed no holder line: ${out.slice(0, 500)}`);
    return { holderPid: Number(m[1]), created: Number(m[2]) };
  }

  /**
   * Injects a fault. Module hang faults (f1 f2 f3 f5) return once the module is loaded and placed;
   * the hang starts delayMs later (default 1.5 s).
   */
  async fault(kind: FaultKind, opts: { delayMs?: number } = {}): Promise<FaultResult> {
    const delay = opts.delayMs ?? 1500;
    const textBase = (mod: string) => `echo "text=$(cat /sys/module/${mod}/sections/.text)"`;
    const hangModule = (mod: string) => `insmod /lib/grass/${mod}.ko delay_ms=${delay} && ${textBase(mod)}`;
    const commands: Record<FaultKind, string> = {
      f1: hangModule('grass_f1'),
      f2: hangModule('grass_f2'),
      f3: hangModule('grass_f3'),
      f5: hangModule('grass_f5'),
      // 32 readers stuck in io_schedule() (the paper's blk >= 32).
      f4: `insmod /lib/grass/grass_f4.ko && ${textBase('grass_f4')} && for i in $(seq 32); do cat /dev/grass_f4 >/dev/null & done`,
      // A working set of RAM plus half the swap, rewritten without end: the system thrashes.
      f6: `[ "$(awk '/SwapTotal/{print $2}' /proc/meminfo)" -gt 0 ] || { echo 'f6 needs swap (swapMiB)'; exit 1; }; ` +
        `grass-guest hog $(awk '/MemTotal/{m=$2}/SwapTotal/{s=$2}END{print int((m+s/2)/1024)}' /proc/meminfo) 0 retouch >/dev/null 2>&1 &`,
      oops: `insmod /lib/grass/grass_oops.ko; echo "insmod rc=$?"`,
      // The watchdog reports a soft lockup after 2 * watchdog_thresh seconds.
      softlockup: `echo 2 > /proc/sys/kernel/watchdog_thresh && insmod /lib/grass/grass_softlockup.ko seconds=8 && ${textBase('grass_softlockup')}`,
      // More CPU hogs than CPUs (four per CPU): demand the CPUs cannot meet, unlike a healthy job per CPU.
      'cpu-high-load': `for i in $(seq $(( $(nproc) * 4 ))); do yes >/dev/null & done`,
      'memory-leak': `grass-guest hog 0 16 >/dev/null 2>&1 &`,
      panic: `echo c > /proc/sysrq-trigger`,
    };
    const command = commands[kind];
    if (!command) throw new Error(`testbed: unknown fault '${kind}' (known: ${FAULT_KINDS.join(', ')})`);
    let output = '';
    let answered = true;
    try {
      const r = await this.run(command, { timeoutMs: kind === 'panic' ? 3000 : delay + 20_000 });
      output = r.stdout;
      if (r.rc !== 0 && kind !== 'oops') throw new Error(`testbed ${this.id}: fault ${kind} failed (rc ${r.rc}): ${output.slice(-1000)}`);
    } catch (e) {
      if (!(e instanceof SerialTimeoutError) || kind !== 'panic') throw e;
      answered = false;
      output = e.partialOutput;
    }
    const functions: ModuleFunction[] = [];
    const base = /^text=0x([0-9a-f]+)$/m.exec(output);
    const module = /insmod \/lib\/grass\/(\S+)\.ko/.exec(command)?.[1];
    if (base && module) {
      for (const f of moduleTextFunctions(path.join(this.record.kernel.faults, `${module}.ko`))) {
        functions.push({ name: f.name, address: BigInt('0x' + base[1]) + f.offset, size: f.size });
      }
    }
    return { kind, command, answered, output, functions };
  }

  /** Stops the guest's CPUs (QMP stop): its RAM holds still. */
  async pause(): Promise<void> {
    await qmp(this.record.qmpSocket, 'stop');
  }

  async resume(): Promise<void> {
    await qmp(this.record.qmpSocket, 'cont');
  }

  /** QEMU's run state: running, paused, guest-panicked, ... */
  status(): Promise<string> {
    return qmpStatus(this.record.qmpSocket);
  }

  /** Every vCPU's RIP, RFLAGS, CPL and halt state (HMP `info registers -a`). */
  async cpuRegisters(): Promise<CpuRegisters[]> {
    const text = (await qmp(this.record.qmpSocket, 'human-monitor-command', { 'command-line': 'info registers -a' })) as string;
    const cpus: CpuRegisters[] = [];
    for (const block of text.split(/^CPU#/m).slice(1)) {
      const num = /^(\d+)/.exec(block);
      const m = /RIP=([0-9a-f]+) RFL=([0-9a-f]+) .*CPL=(\d) .*HLT=(\d)/.exec(block);
      if (!num || !m) throw new Error(`testbed ${this.id}: cannot parse 'info registers' block: ${block.slice(0, 300)}`);
      const rflags = parseInt(m[2], 16);
      cpus.push({ cpu: Number(num[1]), rip: BigInt('0x' + m[1]), rflags, interruptsOn: (rflags & 0x200) !== 0, cpl: Number(m[3]), halted: m[4] === '1' });
    }
    return cpus;
  }

  /**
   * Writes a vmcore of the guest (QMP dump-guest-memory; VMCOREINFO note included): ELF by
   * default, or makedumpfile's kdump-compressed format (flattened, as QEMU 7.2 writes it) with
   * zlib, lzo or snappy pages.
   */
  async dump(file: string, format: QemuDumpFormat = 'elf'): Promise<void> {
    const target = path.resolve(file);
    const timeoutMs = 60_000 + this.record.options.memMiB * 100;
    await qmp(this.record.qmpSocket, 'dump-guest-memory', { paging: false, protocol: `file:${target}`, format }, timeoutMs);
  }

  /** Stops QEMU and removes the RAM file and the run directory. */
  async down(): Promise<void> {
    const { qemuPid, runDir } = this.record;
    if (isQemuOf(qemuPid, runDir)) {
      try {
        await qmpExecute(this.record.qmpSocket, [{ execute: 'quit' }], 2000);
      } catch {
        // QMP unresponsive or gone: the signal below does it
      }
      const deadline = Date.now() + 3000;
      while (isQemuOf(qemuPid, runDir) && Date.now() < deadline) await sleep(50);
      if (isQemuOf(qemuPid, runDir)) process.kill(qemuPid, 'SIGKILL');
      while (isQemuOf(qemuPid, runDir)) await sleep(20);
    }
    removeGuestFiles(this.record);
    ownedGuests.delete(this.id);
  }
}

/** Finds a running guest by id (from any process). */
export function attachGuest(id: string): Guest {
  const file = path.join(RUN_ROOT, id, 'guest.json');
  let record: GuestRecord;
  try {
    record = JSON.parse(fs.readFileSync(file, 'utf8')) as GuestRecord;
  } catch {
    throw new Error(`testbed: no guest '${id}' (no ${file})`);
  }
  if (!isQemuOf(record.qemuPid, record.runDir)) throw new Error(`testbed: guest '${id}' is not running (QEMU pid ${record.qemuPid} gone)`);
  return new Guest(record);
}

/** Lists the guests whose QEMU runs. */
export function listGuests(): GuestRecord[] {
  reapStaleGuests();
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(RUN_ROOT);
  } catch {
    return [];
  }
  const out: GuestRecord[] = [];
  for (const id of entries) {
    try {
      out.push(attachGuest(id).record);
    } catch {
      // booting or gone
    }
  }
  return out;
}

export async function bootGuest(options: GuestOptions = {}): Promise<Guest> {
  const memMiB = options.memMiB ?? 512;
  const cpus = options.cpus ?? 2;
  const kaslr = options.kaslr ?? false;
  if (!Number.isInteger(memMiB) || memMiB < 128) throw new Error(`testbed: memMiB must be an integer >= 128, got ${memMiB}`);
  if (!Number.isInteger(cpus) || cpus < 1) throw new Error(`testbed: cpus must be a positive integer, got ${cpus}`);
  reapStaleGuests();
  const kernel = await prepareKernel(options.kernel);

  const id = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const runDir = path.join(RUN_ROOT, id);
  fs.mkdirSync(runDir, { recursive: true });
  const persistent = options.persistent ?? false;
  // Until guest.json exists, the guest belongs to the process booting it (persistent or not).
  fs.writeFileSync(path.join(runDir, 'booting.json'), JSON.stringify({ ownerPid: process.pid }));
  const ramFile = ramFileFor(id);
  const serialLog = path.join(runDir, 'console.log');
  const shellLog = path.join(runDir, 'shell.log');
  const shellSocket = path.join(runDir, 'shell.sock');
  const qmpSocket = path.join(runDir, 'qmp.sock');
  const memoryMapFile = path.join(runDir, 'memory-map.json');
  fs.rmSync(ramFile, { force: true }); // QEMU refuses an existing file of another size

  const cmdline = ['console=ttyS0', 'panic=0', kaslr ? 'kaslr' : 'nokaslr'];
  if (options.preempt) cmdline.push(`preempt=${options.preempt}`);
  const args = [
    '-name', `grass-testbed-${id}`,
    '-accel', 'tcg',
    '-machine', 'q35,memory-backend=ram0',
    '-m', `${memMiB}M`,
    '-object', `memory-backend-file,id=ram0,size=${memMiB}M,mem-path=${ramFile},share=on`,
    '-smp', String(cpus),
    ...(options.cpuModel ? ['-cpu', options.cpuModel] : []),
    '-nographic', '-nodefaults', '-no-user-config', '-no-reboot',
    // KASLR needs the bzImage's decompressor; without it the uncompressed vmlinux boots faster (PVH).
    '-kernel', kaslr ? kernel.vmlinuz : kernel.vmlinux,
    '-initrd', options.initramfs ?? kernel.initramfs,
    '-chardev', `file,id=console,path=${serialLog}`, '-serial', 'chardev:console',
    '-chardev', `socket,id=shell,path=${shellSocket},server=on,wait=off,logfile=${shellLog}`, '-serial', 'chardev:shell',
    '-qmp', `unix:${qmpSocket},server=on,wait=off`,
    // A panic pauses the guest (QMP status guest-panicked) instead of spinning a host core.
    '-device', 'pvpanic', '-action', 'panic=pause',
    '-device', 'vmcoreinfo',
  ];
  const disks: string[] = [];
  for (const [name, mib] of [['swap', options.swapMiB], ['disk', options.diskMiB]] as const) {
    if (!mib) continue;
    const image = path.join(runDir, `${name}.img`);
    fs.closeSync(fs.openSync(image, 'w'));
    fs.truncateSync(image, mib * 1024 * 1024);
    args.push('-drive', `file=${image},if=none,id=${name},format=raw,cache=unsafe`, '-device', `virtio-blk-pci,drive=${name}`);
    // virtio disks are named in the order their PCI functions are found: vda, vdb.
    cmdline.push(`grass.${name}=vd${String.fromCharCode(97 + disks.length)}`);
    disks.push(name);
  }
  cmdline.push(...(options.append ?? []));
  args.push('-append', cmdline.join(' '), ...(options.qemuArgs ?? []));

  const stderrFile = path.join(runDir, 'qemu.stderr');
  const stderrFd = fs.openSync(stderrFile, 'w');
  const started = Date.now();
  // An owned guest gets SIGKILL when this process dies, however it dies.
  const child = persistent
    ? spawn('qemu-system-x86_64', args, { detached: true, stdio: ['ignore', 'ignore', stderrFd] })
    : spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', ...args], { stdio: ['ignore', 'ignore', stderrFd] });
  fs.closeSync(stderrFd);
  if (persistent) child.unref();
  let exited: string | null = null;
  child.on('exit', (code, signal) => {
    exited = `QEMU exited (${signal ?? code}): ${fs.existsSync(stderrFile) ? fs.readFileSync(stderrFile, 'utf8').trim().slice(-2000) : ''}`;
  });
  const qemuPid = child.pid;
  if (qemuPid === undefined) throw new Error('testbed: could not start qemu-system-x86_64');

  const record: GuestRecord = {
    id, qemuPid, ownerPid: persistent ? null : process.pid, runDir, ramFile, memoryMapFile, serialLog, shellLog,
    shellSocket, qmpSocket, kernel,
    options: {
      kernel: kernel.package, kaslr, memMiB, cpus, cpuModel: options.cpuModel ?? null, preempt: options.preempt ?? null,
      swapMiB: options.swapMiB ?? 0, diskMiB: options.diskMiB ?? 0, append: options.append ?? [], persistent,
    },
    kernelCommandLine: cmdline.join(' '),
    bootMs: 0,
  };
  if (!persistent) {
    installExitHooks();
    ownedGuests.set(id, record);
  }
  const guest = new Guest(record);
  try {
    const deadline = started + (options.bootTimeoutMs ?? 120_000);
    const failIfGone = () => {
      if (exited) throw new Error(`testbed: guest ${id} failed to boot: ${exited}`);
      if (Date.now() > deadline) {
        throw new Error(`testbed: guest ${id} did not boot within ${options.bootTimeoutMs ?? 120_000} ms; console ends: ${guest.console().slice(-1500)}`);
      }
    };
    while (!guest.console().includes('grass init: ready')) {
      failIfGone();
      await sleep(50);
    }
    // The shell opens its serial port just after; probe until it answers.
    for (;;) {
      failIfGone();
      try {
        const r = await serialRun(shellSocket, 'echo grass-ready', 1500);
        if (r.stdout.includes('grass-ready')) break;
      } catch (e) {
        if (!(e instanceof SerialTimeoutError) && !/ENOENT|ECONNREFUSED/.test(String(e))) throw e;
        await sleep(100);
      }
    }
    record.bootMs = Date.now() - started;
    const mtree = (await qmp(qmpSocket, 'human-monitor-command', { 'command-line': 'info mtree' })) as string;
    fs.writeFileSync(memoryMapFile, JSON.stringify(parseMemoryMap(mtree, 'ram0', ramFile), null, 2) + '\n');
    fs.writeFileSync(path.join(runDir, 'guest.json'), JSON.stringify(record, null, 2) + '\n');
    fs.rmSync(path.join(runDir, 'booting.json'), { force: true });
  } catch (e) {
    await guest.down();
    throw e;
  }
  return guest;
}
