// The agent's detectors (GRASS_OP_DETECT): CPU-high-load, memory-leak and the SHFH hang classifier
// (F1-F6), their latest state as the monitor evaluated it on its own clock; the background area
// (latest results and metric history, read with no request); per-detector inline/background mode.
import type { GrassClient } from '../rdma/client';
import * as L from '../rdma/protocol/layout';
import type { DetectionRecord } from '../rdma/protocol/decode-detections';

/** A detector's remote name: the detectors are grass/detectors.h's list (wire.generated.ts), by kind. */
export type DetectorName = (typeof L.detectorTable)[number]['name'];
export const DETECTOR_NAMES: readonly DetectorName[] = L.detectorTable.map((d) => d.name);
export type HangClass = 'F1' | 'F2' | 'F3' | 'F4' | 'F5' | 'F6';

/**
 * What a culprit is to the detection: the task using the CPU (cpu-high-load), the largest
 * consumer (memory-leak, F6), the task a stuck CPU runs (F1 F2 F3 F5), a task waiting (F4), the
 * task that slept holding the lock the CPUs spin on (F5, from the kernel's log); a task, for a
 * detector this file has no reading of.
 */
export type CulpritRole = 'cpu' | 'memory' | 'on-cpu' | 'waiter' | 'lock-holder' | 'task';

export interface Culprit {
  pid: number;
  comm: string;
  role: CulpritRole;
  /** The CPU it is stuck on (hang classes on CPUs), else null. */
  cpu: number | null;
  /** CPU used over the condition's span, in percent of one CPU (CPU high load). */
  cpuPercent: number;
  rssBytes: number;
}

export interface Detection {
  detector: DetectorName;
  /** Detected, and the condition still held at the last evaluation. */
  active: boolean;
  /** Monitor-clock seconds: of the latest detection (null: never), since the condition holds (null: it does not), of the last evaluation. */
  detectedAt: number | null;
  holdsSince: number | null;
  evaluatedAt: number;
  /** Why the last evaluation could not read the target, if it could not. */
  error: string | null;
  /** Background mode (evaluated on every metrics window and published) or inline (evaluated when asked). */
  mode: 'background' | 'inline';
  /** The hang class (hang detector, once detected). */
  hangClass?: HangClass;
  /** A class the agent gave that a panic explains (src/detect/panic.ts): then not active and no hangClass. */
  superseded?: { by: 'panic'; hangClass: HangClass; reason: string };
  figures: Record<string, number | number[]>;
  culprits: Culprit[];
}

const byKind = new Map<number, DetectorName>(L.detectorTable.map((d) => [d.kind, d.name]));

/** CPUs of a bit mask. */
function cpuList(mask: number): number[] {
  const out: number[] = [];
  for (let cpu = 0; cpu < 64; cpu++) if (Number((BigInt(mask) >> BigInt(cpu)) & 1n)) out.push(cpu);
  return out;
}

/** The hang record's figures, per class (docs/detections.md). */
function hangFigures(value: (i: number) => number): { hangClass: HangClass; figures: Record<string, number | number[]> } {
  const cls = value(0);
  if (cls < L.HANG_F1 || cls > L.HANG_F6) throw new Error(`hang record of unknown class ${cls}`);
  const hangClass = `F${cls}` as HangClass;
  if (cls === L.HANG_F4) return { hangClass, figures: { blk: value(1), diskIoTicks: value(2), iowaitPercent: value(3) / 10, disks: value(4), holdsSeconds: value(5) / 1e9 } };
  if (cls === L.HANG_F6) return { hangClass, figures: { pswpinPerSecond: value(1), pswpoutPerSecond: value(2), memFreeBytes: value(3), memTotalBytes: value(4), holdsSeconds: value(5) / 1e9 } };
  return {
    hangClass,
    figures: {
      stuckCpus: cpuList(value(1)), timerStoppedCpus: cpuList(value(2)), preemptOffCpus: cpuList(value(3)), lockWaiters: value(4),
      jiffies: value(5), contextSwitches: value(6), runnableWaiting: value(7),
    },
  };
}

// The detectors read here; another (a new one of grass/detectors.h) shows its values[] as they are.
const roles: Partial<Record<DetectorName, CulpritRole>> = { 'cpu-high-load': 'cpu', 'memory-leak': 'memory', hang: 'on-cpu' };

/** What the agent's detection records mean, per detector; records not evaluated yet are left out. */
export function interpretDetections(records: readonly DetectionRecord[]): Detection[] {
  const out: Detection[] = [];
  for (const r of records) {
    const detector = byKind.get(r.kind);
    if (!detector) {
      if (r.kind === 0) continue; // not evaluated yet (no metrics window)
      throw new Error(`detection record of unknown kind ${r.kind}`);
    }
    const seconds = (ns: bigint): number => Number(ns) / 1e9;
    const value = (i: number): number => Number(r.values[i]);
    const detected = r.detectedNs !== 0n;
    let figures: Record<string, number | number[]> = {};
    let hangClass: HangClass | undefined;
    if (detected && detector === 'cpu-high-load') figures = { leastBusyCpuPercent: value(0) / 10, leastBusyCpu: value(1), spanSeconds: value(2) / 1e9, runnableTasks: value(3), cpuCount: value(4) };
    else if (detected && detector === 'memory-leak') figures = { memFreeBytes: value(0), memTotalBytes: value(1), swapFreeBytes: value(2), swapTotalBytes: value(3) };
    else if (detected && detector === 'hang') ({ hangClass, figures } = hangFigures(value));
    else if (detected) figures = { values: r.values.map(Number) };
    const role: CulpritRole = hangClass === 'F4' ? 'waiter' : hangClass === 'F6' ? 'memory' : (roles[detector] ?? 'task');
    const culprits: Culprit[] = r.culprits.map((c) => ({
      pid: c.pid,
      comm: c.comm,
      role,
      cpu: c.cpu >= 0 ? c.cpu : null,
      cpuPercent: c.cpuPermille / 10,
      rssBytes: Number(c.rssBytes),
    }));
    out.push({
      detector,
      active: r.active,
      detectedAt: detected ? seconds(r.detectedNs) : null,
      holdsSince: r.sinceNs === 0n ? null : seconds(r.sinceNs),
      evaluatedAt: seconds(r.evaluatedNs),
      error: r.status === L.Status.Ok ? null : `${L.Status[r.status] ?? r.status} at 0x${r.detail.toString(16)}`,
      mode: r.background ? 'background' : 'inline',
      ...(hangClass ? { hangClass } : {}),
      figures,
      culprits,
    });
  }
  return out;
}

export async function fetchDetections(client: GrassClient): Promise<Detection[]> {
  return interpretDetections(await client.detections());
}

/** Sets which detectors run in background mode (the others run when asked); returns their state. */
export async function setDetectorModes(client: GrassClient, background: readonly DetectorName[]): Promise<Detection[]> {
  let mask = 0;
  for (const d of L.detectorTable) if (background.includes(d.name)) mask |= 1 << d.bit;
  return interpretDetections(await client.setBackgroundDetectors(mask));
}

/** One metrics window of the history in the background area. */
export interface HistoryPoint {
  /** Monitor-clock seconds at the window's end. */
  at: number;
  windowSeconds: number;
  /** Averaged over CPUs, percent. */
  usr: number; sys: number; iowait: number; idle: number;
  contextSwitchesPerSecond: number;
  pswpinPerSecond: number; pswpoutPerSecond: number;
  memFreeMiB: number;
  run: number; blk: number;
  /** The busiest disk's util, percent. */
  util: number;
  /** Target jiffies elapsed in the window. */
  jiffies: number;
}

export interface BackgroundArea {
  detections: Detection[];
  /** Oldest first. */
  history: HistoryPoint[];
}

/** The background area, read with no request (GrassClient.background), interpreted. */
export async function readBackground(client: GrassClient, timeoutMs = 3000): Promise<BackgroundArea> {
  const area = await client.background(timeoutMs);
  return {
    detections: interpretDetections(area.detections),
    history: area.history.map((p): HistoryPoint => {
      const windowSeconds = p.windowMs / 1000;
      const rate = (x: number): number => (windowSeconds > 0 ? x / windowSeconds : 0);
      return {
        at: Number(p.monitorClockNs) / 1e9,
        windowSeconds,
        usr: p.usrPermille / 10, sys: p.sysPermille / 10, iowait: p.iowaitPermille / 10, idle: p.idlePermille / 10,
        contextSwitchesPerSecond: rate(p.contextSwitches),
        pswpinPerSecond: rate(p.pswpin), pswpoutPerSecond: rate(p.pswpout),
        memFreeMiB: p.freeMib,
        run: p.run, blk: p.blk,
        util: p.utilPermille / 10,
        jiffies: p.jiffies,
      };
    }),
  };
}

export async function readBackgroundDetections(client: GrassClient, timeoutMs = 3000): Promise<Detection[]> {
  return (await readBackground(client, timeoutMs)).detections;
}
