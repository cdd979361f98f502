// A fleet on one host, for test/integration/fleet-scale.test.ts and the bench's `fleet` group:
// one saved image of a real testbed guest (booted, paused, its RAM copied to tmpfs) served by
// many real agents, each on its own shm buffer and all reading the same read-only file (the
// page cache holds it once), and one `grass monitor` (the bundled CLI, as users run it) holding
// them all from a targets file. The agents run with --spin-us 0 --idle-nap-us 20000 so that two
// hundred of them fit this machine's two cores (docs/protocol.md): a heartbeat then waits up to
// one nap for its agent, and what grows with the fleet is the monitor's own cost.
import { ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootGuest, type MemoryMap } from '../../testbed';
import { writeNewKeyFile } from '../../src/rdma/key';
import { startAgent, type RunningAgent } from '../../src/rdma/local-agent';
import { relayMemory, relaySweeps, relayTargets } from '../../src/relay/remote';
import type { RelayMemory, SweepStats, TargetStatus } from '../../src/relay/wire';
import { cliCommand } from '../../bench/figures/btf';

/** Agent memory beyond the shared image (heap: discovery, BTF, symbols; measured 37 MiB), plus room. */
export const AGENT_MIB = 45;
const AGENT_ARGS = ['--spin-us', '0', '--idle-nap-us', '20000', '--slots', '2', '--workers', '1', '--exit-with-parent'];

/** MemAvailable of this machine, MiB. */
export function availableMiB(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** A process's memory from /proc (KiB): resident, of it anonymous and shared memory. */
export function processMemoryKiB(pid: number): { rss: number; anon: number; shmem: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rss: kib('VmRSS'), anon: kib('RssAnon'), shmem: kib('RssShmem') };
}

/** A process's CPU time so far (user + system), seconds. */
export function processCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
}

export class AgentFleet {
  readonly agents: RunningAgent[] = [];
  readonly shmPaths: string[] = [];
  readonly keyFile: string;
  private readonly ramFile: string;
  private readonly mapFile: string;

  private constructor(readonly dir: string, readonly release: string) {
    this.keyFile = path.join(dir, 'key');
    this.ramFile = path.join(dir, 'guest.ram');
    this.mapFile = path.join(dir, 'memory-map.json');
  }

  /** Boots a small guest (128 MiB, 1 CPU), pauses it, keeps a copy of its RAM in `dir` (tmpfs) and shuts it down. */
  static async capture(dir: string): Promise<AgentFleet> {
    mkdirSync(dir, { recursive: true });
    const guest = await bootGuest({ memMiB: 128, cpus: 1 });
    let release: string;
    try {
      release = (await guest.exec('uname -r')).trim();
      await guest.pause();
      const fleet = new AgentFleet(dir, release);
      copyFileSync(guest.ramFile, fleet.ramFile);
      const map: MemoryMap = { ...guest.memoryMap(), ramFile: fleet.ramFile };
      writeFileSync(fleet.mapFile, JSON.stringify(map));
      writeNewKeyFile(fleet.keyFile);
      return fleet;
    } finally {
      await guest.down();
    }
  }

  /** Starts agents until there are `n`, `parallel` at a time (each finds the kernel in the image: ~0.2 s of CPU). */
  async grow(n: number, parallel = 2): Promise<void> {
    let next = this.agents.length;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < n; i = next++) {
        const shm = `/dev/shm/grass-fleet-${process.pid}-${i}`;
        this.shmPaths[i] = shm;
        this.agents[i] = await startAgent(['--memory', `qemu-ram:${this.ramFile}`, '--memory-map', this.mapFile, '--listen', `shm:${shm}`, '--key-file', this.keyFile, ...AGENT_ARGS], 120_000);
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  }

  /** Targets-file entries for the first n agents, named fleet-000… */
  entries(n: number): { name: string; address: string; keyFile: string }[] {
    return this.shmPaths.slice(0, n).map((shm, i) => ({ name: `fleet-${String(i).padStart(3, '0')}`, address: `shm:${shm}`, keyFile: this.keyFile }));
  }

  async stop(): Promise<void> {
    await Promise.all(this.agents.filter(Boolean).map((a) => a.stop()));
    for (const shm of this.shmPaths) rmSync(shm, { force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `grass monitor` (the bundled CLI) holding a targets file, with /metrics on a free port. */
export class FleetMonitor {
  private output = '';
  private constructor(readonly child: ChildProcess, readonly socket: string, readonly targetsFile: string) {
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.output = (this.output + c).slice(-20_000)));
  }

  /** `args`: more monitor flags (e.g. --observe-ms). */
  static async start(dir: string, entries: object[], args: string[] = []): Promise<FleetMonitor> {
    const socket = path.join(dir, 'monitor.sock');
    const targetsFile = path.join(dir, 'targets.json');
    writeFileSync(targetsFile, JSON.stringify(entries));
    // --expose-gc: the `memory` request collects first, so the heap it reports is what is live.
    const child = spawn(process.execPath, ['--expose-gc', ...(await cliCommand()), 'monitor', '--socket', socket, '--targets-file', targetsFile, '--metrics-listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    const m = new FleetMonitor(child, socket, targetsFile);
    for (let i = 0; !m.output.includes('serving clients on'); i++) {
      if (child.exitCode !== null || i > 600) throw new Error(`grass monitor did not start: ${m.output}`);
      await sleep(100);
    }
    return m;
  }

  get pid(): number {
    return this.child.pid!;
  }

  log(): string {
    return this.output;
  }

  /** Rewrites the targets file (renamed over, as an editor saves); the monitor reads it again. */
  retarget(entries: object[]): void {
    writeFileSync(`${this.targetsFile}.tmp`, JSON.stringify(entries));
    copyFileSync(`${this.targetsFile}.tmp`, this.targetsFile);
  }

  targets(): Promise<TargetStatus[]> {
    return relayTargets(this.socket);
  }

  /** The monitor's memory after a full collection (process.memoryUsage()). */
  memory(): Promise<RelayMemory> {
    return relayMemory(this.socket);
  }

  sweeps(): Promise<SweepStats> {
    return relaySweeps(this.socket);
  }

  /** Waits until exactly `n` targets are held, answering, and observed once (detections and log read). */
  async settle(n: number, timeoutMs: number): Promise<TargetStatus[]> {
    const deadline = Date.now() + timeoutMs;
    let held: TargetStatus[] = [];
    while (Date.now() < deadline) {
      held = await this.targets();
      if (held.length === n && held.every((t) => t.state === 'up' && t.last.at && t.last.observedAt && t.last.kernelPanicked !== undefined)) return held;
      await sleep(500);
    }
    const ready = held.filter((t) => t.state === 'up' && t.last.observedAt).length;
    throw new Error(`${n} targets not settled in ${timeoutMs / 1000} s: ${held.length} held, ${ready} answering and observed; monitor: ${this.output.slice(-3000)}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      await exited;
    }
  }
}

export interface SweepWindow {
  /** Sweeps in the window, seconds each. */
  seconds: number[];
  /** Heartbeats each sweep sent. */
  targets: number[];
  /** The monitor's CPU over the window, seconds per second. */
  cpuCores: number;
}

/** Sweeps recorded over `ms` of steady state, with the monitor's CPU over the same time. */
export async function measureSweeps(m: FleetMonitor, ms: number): Promise<SweepWindow> {
  const from = new Date().toISOString();
  const cpu0 = processCpuSeconds(m.pid);
  const t0 = Date.now();
  await sleep(ms);
  const cpuCores = (processCpuSeconds(m.pid) - cpu0) / ((Date.now() - t0) / 1000);
  const recent = (await m.sweeps()).recent.filter((s) => s.at >= from);
  return { seconds: recent.map((s) => s.seconds), targets: recent.map((s) => s.targets), cpuCores };
}
