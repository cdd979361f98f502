// Shared by the detection tests and test/long/detect-*.ts and bench/figures/detect-latency.ts:
// a testbed guest with an agent, a fault or a healthy load injected, and the monitor's background
// area polled in-process (one seqlocked read per poll, no request) until a detection shows.
import { setTimeout as sleep } from 'node:timers/promises';
import { bootGuest, Guest, type FaultKind } from '../../testbed';
import { connectTarget, type ProtocolSession } from '../../src/rdma/connect';
import { readBackground, type Detection, type HangClass } from '../../src/detect/detections';
import { withLockHolder } from '../../src/detect/lock-holder';
import { startGuestAgent, type GuestAgent } from './agent-harness';

/** What a run is classified as: a hang class, cpu-high-load, memory-leak, or none. */
export type DetectedClass = HangClass | 'cpu-high-load' | 'memory-leak' | 'none';

/** Faults the detectors classify, with the class each must give. */
export const FAULT_CLASSES: Record<string, DetectedClass> = {
  f1: 'F1', f2: 'F2', f3: 'F3', f4: 'F4', f5: 'F5', f6: 'F6', 'cpu-high-load': 'cpu-high-load', 'memory-leak': 'memory-leak',
};

/**
 * Healthy loads: none may give a detection. The two that keep every CPU busy meet GPUSentinel's
 * rule (every CPU >= 90 % busy for 5 s); cpu-high-load also asks for twice as many runnable tasks
 * as CPUs, which one job per CPU never has.
 */
export const HEALTHY_LOADS: Record<string, string> = {
  idle: 'true',
  'user-loop-per-cpu': 'for i in $(seq $(nproc)); do (while :; do :; done) & done',
  'dd-to-disk': '(while :; do dd if=/dev/zero of=/mnt/disk/grass-dd bs=1M count=32 conv=fsync 2>/dev/null; done) >/dev/null 2>&1 &',
  'dd-zero-null-per-cpu': 'for i in $(seq $(nproc)); do dd if=/dev/zero of=/dev/null bs=1M 2>/dev/null & done',
};

/** Guest shapes: every fault on 1 GiB and 2 CPUs; F6 with swap large enough that it thrashes without running out (no memory-leak). */
export function guestShape(kind: string): { memMiB: number; cpus: number; swapMiB?: number; diskMiB?: number; append: string[] } {
  // no_timer_check: on a loaded host TCG can be too slow for the kernel's IO-APIC timer check,
  // which then panics at boot ("IO-APIC + timer doesn't work").
  const append = ['no_timer_check'];
  if (kind === 'f6') return { memMiB: 1024, cpus: 2, swapMiB: 1024, append };
  if (kind === 'memory-leak') return { memMiB: 1024, cpus: 2, swapMiB: 64, append };
  return { memMiB: 1024, cpus: 2, swapMiB: 64, diskMiB: 64, append };
}

export class DetectTarget {
  private constructor(readonly guest: Guest, readonly agent: GuestAgent, readonly session: ProtocolSession) {}

  static async start(shape: Parameters<typeof bootGuest>[0], agentEnv: NodeJS.ProcessEnv = {}): Promise<DetectTarget> {
    const guest = await bootGuest(shape);
    let agent: GuestAgent | undefined;
    try {
      // The agent inherits this process's environment (GRASS_PLUGIN_HIDE is its test hook).
      const saved = { ...process.env };
      Object.assign(process.env, agentEnv);
      try {
        agent = await startGuestAgent(guest);
      } finally {
        for (const k of Object.keys(agentEnv)) if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
      }
      const session = await connectTarget(agent.target, { keyFile: agent.keyFile });
      const t = new DetectTarget(guest, agent, session);
      // The background area appears after the monitor's first two metrics samples.
      for (let tries = 0; ; tries++) {
        try {
          await t.background();
          return t;
        } catch (e) {
          if (tries >= 40) {
            await session.close().catch(() => undefined);
            throw e;
          }
          await sleep(250);
        }
      }
    } catch (e) {
      await agent?.stop();
      await guest.down();
      throw e;
    }
  }

  get args(): string[] {
    return ['--target', this.agent.target, '--key-file', this.agent.keyFile];
  }

  /** The monitor's clock now (CLOCK_MONOTONIC, as the cpu backend's), in seconds. */
  static monitorNow(): number {
    return Number(process.hrtime.bigint()) / 1e9;
  }

  async background(): Promise<Detection[]> {
    return (await readBackground(this.session.client)).detections;
  }

  /** The background area as the remote reports it: F3 refined to F5 from the kernel's log. */
  async reported(): Promise<Detection[]> {
    return withLockHolder(this.session.client, await this.background());
  }

  /** Polls the background area until pick() finds a detection; returns it (F5 refined from the log). */
  async waitFor(pick: (ds: Detection[]) => Detection | undefined, timeoutMs: number): Promise<Detection> {
    const deadline = Date.now() + timeoutMs;
    let last: Detection[] = [];
    while (Date.now() < deadline) {
      last = await this.background();
      const d = pick(last);
      if (d) return (await withLockHolder(this.session.client, [d]))[0];
      await sleep(250);
    }
    throw new Error(`no detection in ${timeoutMs / 1000} s: ${JSON.stringify(last)}`);
  }

  /** Pids of the guest's tasks (threads included) whose comm is this: one grep over every comm file. */
  async pids(comm: string): Promise<number[]> {
    return (await this.comms()).get(comm) ?? [];
  }

  /** Every task's comm (threads included) -> pids, from the guest's /proc in one command. */
  async comms(): Promise<Map<string, number[]>> {
    const out = await this.guest.exec('grep -H "" /proc/[0-9]*/task/[0-9]*/comm 2>/dev/null; true');
    const map = new Map<string, number[]>();
    for (const line of out.split('\n')) {
      const m = /^\/proc\/\d+\/task\/(\d+)\/comm:(.*)$/.exec(line.trimEnd());
      if (m) map.set(m[2], [...(map.get(m[2]) ?? []), Number(m[1])].sort((a, b) => a - b));
    }
    return map;
  }

  async stop(): Promise<void> {
    await this.session.close().catch(() => undefined);
    await this.agent.stop();
    await this.guest.down();
  }
}

/** The class a set of detections names: an active hang first, then memory-leak, then cpu-high-load. */
export function detectedClass(ds: Detection[]): DetectedClass {
  const active = ds.filter((d) => d.active);
  const hang = active.find((d) => d.detector === 'hang');
  if (hang?.hangClass) return hang.hangClass;
  if (active.some((d) => d.detector === 'memory-leak')) return 'memory-leak';
  if (active.some((d) => d.detector === 'cpu-high-load')) return 'cpu-high-load';
  return 'none';
}

export interface FaultRun {
  fault: string;
  expected: DetectedClass;
  detected: DetectedClass;
  detection: Detection;
  /** Injection to first detection, on the monitor's clock (s). */
  latencySeconds: number;
  /** Ground truth from the guest before the fault took it: the pids the culprits must name. */
  truth: { comm: string; pids: number[] }[];
}

const DELAY_MS = 4000; // module hangs start this long after insmod: time to read the fault threads' pids

/** Per fault: the comms of the culprits the guest's own /proc must show (in the detection's order of roles). */
const CULPRIT_COMMS: Record<string, string[]> = {
  f1: ['grass_f1/0', 'grass_f1/1'], f2: ['grass_f2/0', 'grass_f2/1'], f3: ['grass_f3/0', 'grass_f3/1'],
  f5: ['grass_f5_sleepe', 'grass_f5/0', 'grass_f5/1'], f4: ['cat'], f6: ['grass-hog'], 'cpu-high-load': ['yes'], 'memory-leak': ['grass-hog'],
};

/**
 * Injects a fault into a running target and waits for its detection (the expected class, or any
 * detection: then detected names what came instead). Reads the culprits' pids from the guest
 * before the fault can take it.
 */
export async function injectAndDetect(t: DetectTarget, fault: string, timeoutMs: number): Promise<FaultRun> {
  const expected = FAULT_CLASSES[fault];
  const hangModule = ['f1', 'f2', 'f3', 'f5'].includes(fault);
  const before = DetectTarget.monitorNow();
  await t.guest.fault(fault as FaultKind, { delayMs: DELAY_MS });
  const truth: FaultRun['truth'] = [];
  if (fault === 'f5') {
    // F5's threads start only when its delay ends, and the hang follows at once: the truth is the
    // kernel's own report on the serial console (a channel apart from the memory the monitor reads).
    await t.guest.waitForConsole(/BUG: scheduling while atomic: (.{1,15})\/(\d+)\//, DELAY_MS + 30_000);
    const m = /BUG: scheduling while atomic: (.{1,15})\/(\d+)\//.exec(t.guest.console())!;
    truth.push({ comm: m[1], pids: [Number(m[2])] });
  } else if (hangModule || fault === 'f4' || fault === 'cpu-high-load') {
    const comms = await t.comms();
    for (const comm of CULPRIT_COMMS[fault]) truth.push({ comm, pids: comms.get(comm) ?? [] });
  }
  const injectedAt = hangModule ? before + DELAY_MS / 1000 : before;
  const detection = await t.waitFor((ds) => ds.find((d) => d.active || (fault === 'memory-leak' && d.detector === 'memory-leak' && d.detectedAt !== null)), timeoutMs);
  // The OOM killer may end a leak between two polls: the record keeps the detection.
  const detected: DetectedClass = detection.detector === 'hang' ? detection.hangClass ?? 'none' : detection.detector;
  if (fault === 'f6' || fault === 'memory-leak') truth.push({ comm: 'grass-hog', pids: await t.pids('grass-hog').catch(() => []) });
  return { fault, expected, detected, detection, latencySeconds: (detection.detectedAt ?? 0) - injectedAt, truth };
}

/** Runs a healthy load for seconds, polling the background area; returns every detection seen. */
export async function healthyRun(t: DetectTarget, load: string, seconds: number): Promise<{ seen: Detection[]; evaluations: number }> {
  const before = (await t.guest.exec('echo /proc/[0-9]*')).replace(/\/proc\//g, '').trim();
  // Detections already on record (an earlier load's) are not this load's.
  const seen: Detection[] = (await t.background()).filter((d) => d.detectedAt !== null);
  const earlier = seen.length;
  await t.guest.exec(HEALTHY_LOADS[load]);
  const evaluated = new Set<number>();
  const end = Date.now() + seconds * 1000;
  try {
    while (Date.now() < end) {
      for (const d of await t.background()) {
        evaluated.add(d.evaluatedAt);
        // Each detection once (by detector and detection time), with its state when first seen.
        if (d.detectedAt !== null && !seen.some((s) => s.detector === d.detector && s.detectedAt === d.detectedAt && s.hangClass === d.hangClass)) seen.push(d);
      }
      await sleep(500);
    }
  } finally {
    // Ends the load: every process started since (kernel threads ignore the signal).
    await t.guest.exec(`B=" ${before} "; for p in /proc/[0-9]*; do i=\${p#/proc/}; case "$B" in *" $i "*) ;; *) kill -9 $i 2>/dev/null;; esac; done; true`).catch(() => undefined);
  }
  // Let a detection of this load end before the next load starts.
  const quiet = Date.now() + 15_000;
  while (Date.now() < quiet && (await t.background()).some((d) => d.active)) await sleep(500);
  return { seen: seen.slice(earlier), evaluations: evaluated.size };
}
