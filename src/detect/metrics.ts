// SHFH metrics from the agent's metrics plugin (GRASS_OP_METRICS): two samples of the kernel's
// cumulative counters, taken by the monitor one period of its own clock apart, turned into
// per-CPU shares and per-second rates here.
import type { GrassClient } from '../rdma/client';
import * as L from '../rdma/protocol/layout';
import type { MetricsCpuCounters, MetricsSample } from '../rdma/protocol/decode-metrics';

export type { MetricsSample } from '../rdma/protocol/decode-metrics';

/** Parts of the plugin that resolved on this kernel (GRASS_METRICS_PART_*). */
export const METRICS_PARTS: Record<string, number> = {
  core: L.METRICS_PART_CORE, progress: L.METRICS_PART_PROGRESS, preempt: L.METRICS_PART_PREEMPT,
  timer: L.METRICS_PART_TIMER, lockq: L.METRICS_PART_LOCKQ, disks: L.METRICS_PART_DISKS,
};

export function partNames(parts: number): string[] {
  return Object.entries(METRICS_PARTS).filter(([, bit]) => (parts & bit) !== 0).map(([name]) => name);
}

/** Shares of one CPU's time in a window, in percent (sys = system + irq + softirq, usr = user + nice, as sar -u). */
export interface CpuShares {
  cpu: number;
  usr: number;
  sys: number;
  iowait: number;
  idle: number;
  steal: number;
}

/** The SHFH metrics of one window (DESIGN §1), plus what the detectors need. */
export interface MetricsWindow {
  windowSeconds: number;
  /** Monitor-clock seconds at the window's end: which window this is (the detectors' times are on the same clock). */
  windowEnd: number;
  cpus: CpuShares[];
  contextSwitchesPerSecond: number;
  /** Runnable tasks (sum of rq->nr_running, /proc/stat procs_running) at the window's end. */
  run: number;
  /** Tasks in I/O wait (sum of rq->nr_iowait, procs_blocked) at the window's end. */
  blk: number;
  pswpoutPerSecond: number;
  pswpinPerSecond: number;
  memFreeBytes: number;
  memTotalBytes: number;
  swapFreeBytes: number;
  swapTotalBytes: number;
  /** The target's page size (the unit of the pswpin/pswpout rates). */
  pageBytes: number;
  /** Disk busy share per whole disk, percent of the window's target jiffies (iostat %util); [] without the disks part. */
  disks: { name: string; util: number; iosPerSecond: number }[];
  /** Target jiffies elapsed in the window (0: the target's timer did not advance, or no progress part). */
  jiffies: number;
  /** Per CPU: the current task and whether the CPU switched in the window. */
  progress: CpuProgress[];
  /** Plugin parts that resolved on this kernel. */
  parts: string[];
}

export interface CpuProgress {
  cpu: number;
  pid: number;
  comm: string;
  /** Windows this task has been current without a context switch. */
  sameTaskWindows: number;
  switches: number;
  irqs: number;
  timerIrqs: number;
  preemptCount: number;
  lockWaiters: number;
}

function sampleError(s: MetricsSample, which: string): Error | undefined {
  if (s.monitorClockNs === 0n) return undefined;
  if (s.status !== L.Status.Ok) return new Error(`metrics: the ${which} sample failed: ${L.Status[s.status] ?? s.status} at 0x${s.detail.toString(16)}`);
  return undefined;
}

/** Shares and rates between two samples of the same target. */
export function metricsWindow(start: MetricsSample, end: MetricsSample): MetricsWindow {
  const seconds = Number(end.monitorClockNs - start.monitorClockNs) / 1e9;
  if (!(seconds > 0)) throw new Error('metrics: the two samples do not span a window of the monitor clock');
  if (start.cpus.length !== end.cpus.length) throw new Error('metrics: the samples have different CPU counts');
  const cpus = end.cpus.map((e, cpu): CpuShares => {
    const s = start.cpus[cpu];
    const d = (a: bigint, b: bigint): number => Math.max(0, Number(a - b));
    const usr = d(e.userNs, s.userNs) + d(e.niceNs, s.niceNs);
    const sys = d(e.systemNs, s.systemNs) + d(e.irqNs, s.irqNs) + d(e.softirqNs, s.softirqNs);
    const iowait = d(e.iowaitNs, s.iowaitNs);
    const idle = d(e.idleNs, s.idleNs);
    const steal = d(e.stealNs, s.stealNs);
    const total = usr + sys + iowait + idle + steal;
    const pct = (x: number): number => (total > 0 ? (100 * x) / total : 0);
    return { cpu, usr: pct(usr), sys: pct(sys), iowait: pct(iowait), idle: pct(idle), steal: pct(steal) };
  });
  const sum = (xs: MetricsCpuCounters[], pick: (c: MetricsCpuCounters) => bigint): bigint => xs.reduce((a, c) => a + pick(c), 0n);
  const page = Number(end.pageSize);
  return {
    windowSeconds: seconds,
    windowEnd: Number(end.monitorClockNs) / 1e9,
    cpus,
    contextSwitchesPerSecond: Number(sum(end.cpus, (c) => c.nrSwitches) - sum(start.cpus, (c) => c.nrSwitches)) / seconds,
    run: end.cpus.reduce((a, c) => a + c.nrRunning, 0),
    blk: end.cpus.reduce((a, c) => a + c.nrIowait, 0),
    pswpoutPerSecond: Number(end.pswpout - start.pswpout) / seconds,
    pswpinPerSecond: Number(end.pswpin - start.pswpin) / seconds,
    memFreeBytes: Number(end.freePages) * page,
    memTotalBytes: Number(end.totalRamPages) * page,
    swapFreeBytes: Number(end.freeSwapPages) * page,
    swapTotalBytes: Number(end.totalSwapPages) * page,
    pageBytes: page,
    disks: diskWindows(start, end, seconds),
    jiffies: Number(end.jiffies - start.jiffies),
    progress: end.cpus.map((e, cpu): CpuProgress => {
      const s = start.cpus[cpu];
      return {
        cpu, pid: e.curr.pid, comm: e.curr.comm, sameTaskWindows: e.curr.samples, switches: Number(e.nrSwitches - s.nrSwitches),
        irqs: Number(e.irqs - s.irqs), timerIrqs: Number(e.timerIrqs - s.timerIrqs), preemptCount: e.preemptCount, lockWaiters: e.lockWaiters,
      };
    }),
    parts: partNames(end.parts),
  };
}

/** util per disk: io_ticks over the target jiffies of the window (both in the target's jiffies, so no HZ is needed). */
function diskWindows(start: MetricsSample, end: MetricsSample, seconds: number): MetricsWindow['disks'] {
  const jiffies = Number(end.jiffies - start.jiffies);
  return end.disks.flatMap((d) => {
    const s = start.disks.find((x) => x.name === d.name);
    if (!s) return [];
    const util = jiffies > 0 ? Math.min(100, (100 * Number(d.ioTicks - s.ioTicks)) / jiffies) : 0;
    return [{ name: d.name, util, iosPerSecond: Number(d.ios - s.ios) / seconds }];
  });
}

/** The monitor's last two samples; waits (up to ~3 s) while it has not taken two yet. */
export async function fetchMetricsSamples(client: GrassClient): Promise<[MetricsSample, MetricsSample]> {
  for (let attempt = 0; ; attempt++) {
    const [start, end] = await client.metrics();
    const failed = sampleError(end, 'newest') ?? sampleError(start, 'older');
    if (failed) throw failed;
    if (start.monitorClockNs !== 0n && end.monitorClockNs !== 0n) return [start, end];
    if (attempt >= 3) throw new Error('metrics: the monitor has not taken two samples in 3 s (is its loop running?)');
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export async function fetchMetrics(client: GrassClient): Promise<MetricsWindow> {
  const [start, end] = await fetchMetricsSamples(client);
  return metricsWindow(start, end);
}
