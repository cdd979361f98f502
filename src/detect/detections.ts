// The agent's detectors (GRASS_OP_DETECT): CPU-high-load, memory-leak and the SHFH hang classifier
// (F1-F6), their latest state as the monitor evaluated it on its own clock; the background area
// (latest results and metric history, read with no request); per-detector inline/background mode.
import type { GrassClient } from '../rdma/client';
import * as L from '../rdma/protocol/layout';
import { dataCrc32 } from '../rdma/protocol/codec';
import { decodeDetectionRecords, type DetectionRecord } from '../rdma/protocol/decode-detections';

export type DetectorName = 'cpu-high-load' | 'memory-leak' | 'hang';
export const DETECTOR_NAMES: readonly DetectorName[] = ['cpu-high-load', 'memory-leak', 'hang'];
export type HangClass = 'F1' | 'F2' | 'F3' | 'F4' | 'F5' | 'F6';

/**
 * What a culprit is to the detection: the task using the CPU (cpu-high-load), the largest
 * consumer (memory-leak, F6), the task a stuck CPU runs (F1 F2 F3 F5), a task waiting (F4), the
 * task that slept holding the lock the CPUs spin on (F5, from the kernel's log).
 */
export type CulpritRole = 'cpu' | 'memory' | 'on-cpu' | 'waiter' | 'lock-holder';

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
  figures: Record<string, number | number[]>;
  culprits: Culprit[];
}

const names: Record<number, DetectorName> = { [L.DETECT_CPU_HIGH_LOAD]: 'cpu-high-load', [L.DETECT_MEMORY_LEAK]: 'memory-leak', [L.DETECT_HANG]: 'hang' };

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

const roles: Record<DetectorName, CulpritRole> = { 'cpu-high-load': 'cpu', 'memory-leak': 'memory', hang: 'on-cpu' };

/** What the agent's detection records mean, per detector; records not evaluated yet are left out. */
function interpretDetections(records: readonly DetectionRecord[]): Detection[] {
  const out: Detection[] = [];
  for (const r of records) {
    const detector = names[r.kind];
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
    else if (detected) ({ hangClass, figures } = hangFigures(value));
    const role: CulpritRole = hangClass === 'F4' ? 'waiter' : hangClass === 'F6' ? 'memory' : roles[detector];
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

/** A DETECT reply's (or the background area's) grass_detection records, interpreted. */
export function decodeDetections(bytes: Uint8Array): Detection[] {
  return interpretDetections(decodeDetectionRecords(bytes));
}

export async function fetchDetections(client: GrassClient): Promise<Detection[]> {
  return interpretDetections(await client.detections());
}

/** Sets which detectors run in background mode (the others run when asked); returns their state. */
export async function setDetectorModes(client: GrassClient, background: readonly DetectorName[]): Promise<Detection[]> {
  let mask = 0;
  for (const name of background) mask |= 1 << DETECTOR_NAMES.indexOf(name);
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

export function decodeBackground(bytes: Uint8Array): BackgroundArea {
  if (bytes.length !== L.background.size) throw new Error(`background area of ${bytes.length} bytes, expected ${L.background.size} (layout ${L.BACKGROUND_LAYOUT})`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const f = L.background.fields;
  const layout = v.getUint32(f.layout.offset, true);
  if (layout !== L.BACKGROUND_LAYOUT) throw new Error(`background area of layout ${layout}; this remote reads layout ${L.BACKGROUND_LAYOUT}`);
  const count = Math.min(v.getUint32(f.history_count.offset, true), L.HISTORY_POINTS);
  const next = v.getUint32(f.history_next.offset, true) % L.HISTORY_POINTS;
  const detections = decodeDetections(bytes.subarray(f.detections.offset, f.detections.offset + f.detections.size));
  const h = L.historyPoint.fields;
  const history: HistoryPoint[] = [];
  for (let k = 0; k < count; k++) {
    const index = (next - count + k + 2 * L.HISTORY_POINTS) % L.HISTORY_POINTS;
    const b = f.history.offset + index * L.historyPoint.size;
    const u16 = (o: number): number => v.getUint16(b + o, true);
    const u32 = (o: number): number => v.getUint32(b + o, true);
    const windowSeconds = u32(h.window_ms.offset) / 1000;
    const rate = (x: number): number => (windowSeconds > 0 ? x / windowSeconds : 0);
    history.push({
      at: Number(v.getBigUint64(b + h.monitor_clock_ns.offset, true)) / 1e9,
      windowSeconds,
      usr: u16(h.usr_permille.offset) / 10, sys: u16(h.sys_permille.offset) / 10, iowait: u16(h.iowait_permille.offset) / 10, idle: u16(h.idle_permille.offset) / 10,
      contextSwitchesPerSecond: rate(u32(h.context_switches.offset)),
      pswpinPerSecond: rate(u32(h.pswpin.offset)), pswpoutPerSecond: rate(u32(h.pswpout.offset)),
      memFreeMiB: u32(h.free_mib.offset),
      run: u16(h.run.offset), blk: u16(h.blk.offset),
      util: u16(h.util_permille.offset) / 10,
      jiffies: u16(h.jiffies.offset),
    });
  }
  return { detections, history };
}

/**
 * Background mode: the area the monitor republishes in the buffer header after every evaluation
 * (latest results, metric history), read with no request (seqlock: version, area, version; CRC
 * checked), so it can be read while the monitor's request handling is stuck or slow.
 */
export async function readBackground(client: GrassClient, timeoutMs = 3000): Promise<BackgroundArea> {
  const h = L.bufferHeader.fields;
  const transport = client.transport;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const version = await transport.readWord(h.background_version.offset);
    if (version === 0n) throw new Error(`${transport.name}: no background results yet (the detectors run after the monitor's first two metrics samples)`);
    if (version % 2n === 0n) {
      const fields = await transport.read(h.background_offset.offset, h.reserved0.offset - h.background_offset.offset);
      const v = new DataView(fields.buffer, fields.byteOffset, fields.byteLength);
      const offset = Number(v.getBigUint64(0, true));
      const bytes = v.getUint32(h.background_bytes.offset - h.background_offset.offset, true);
      const crc = v.getUint32(h.background_crc32.offset - h.background_offset.offset, true);
      const area = await transport.read(offset, bytes);
      if ((await transport.readWord(h.background_version.offset)) === version && dataCrc32(area) === crc) return decodeBackground(area);
    }
    if (Date.now() > deadline) throw new Error(`${transport.name}: the background area changed during every read for ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

export async function readBackgroundDetections(client: GrassClient, timeoutMs = 3000): Promise<Detection[]> {
  return (await readBackground(client, timeoutMs)).detections;
}
