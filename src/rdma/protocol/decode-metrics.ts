// The GRASS_OP_METRICS reply: two samples of the kernel's cumulative counters (the window's start,
// then its end), each a grass_metrics_sample, its grass_metrics_cpu[cpu_count] and its
// grass_metrics_disk[disk_count]. Shares and rates from them are src/detect/metrics.ts's part.
import * as L from './layout';
import { StructView } from './struct-view';

export interface MetricsCpuCounters {
  userNs: bigint; niceNs: bigint; systemNs: bigint; irqNs: bigint; softirqNs: bigint;
  idleNs: bigint; iowaitNs: bigint; stealNs: bigint;
  nrSwitches: bigint; nrRunning: number; nrIowait: number;
  /** Evidence of progress (zeros where the part did not resolve): device and local-timer interrupts, the current task. */
  irqs: bigint; timerIrqs: bigint;
  curr: { task: bigint; pid: number; tgid: number; comm: string; utimeNs: bigint; stimeNs: bigint; samples: number };
  preemptCount: number;
  lockWaiters: number;
}

/** A whole disk's cumulative counters. */
export interface MetricsDiskCounters {
  name: string;
  /** Jiffies with I/O in flight (/proc/diskstats field 10, there in ms). */
  ioTicks: bigint;
  /** Completed requests of every direction. */
  ios: bigint;
}

/** One sample as the monitor took it (cumulative counters, pages). */
export interface MetricsSample {
  monitorClockNs: bigint;
  status: number;
  detail: bigint;
  pswpin: bigint; pswpout: bigint;
  freePages: bigint; totalRamPages: bigint; freeSwapPages: bigint; totalSwapPages: bigint;
  pageSize: bigint;
  /** The target's jiffies (0 without the progress part). */
  jiffies: bigint;
  parts: number;
  cpus: MetricsCpuCounters[];
  disks: MetricsDiskCounters[];
}

function decodeCpu(c: StructView): MetricsCpuCounters {
  return {
    userNs: c.u64('user_ns'), niceNs: c.u64('nice_ns'), systemNs: c.u64('system_ns'), irqNs: c.u64('irq_ns'),
    softirqNs: c.u64('softirq_ns'), idleNs: c.u64('idle_ns'), iowaitNs: c.u64('iowait_ns'), stealNs: c.u64('steal_ns'),
    nrSwitches: c.u64('nr_switches'), nrRunning: c.u32('nr_running'), nrIowait: c.u32('nr_iowait'),
    irqs: c.u64('irqs'), timerIrqs: c.u64('timer_irqs'),
    curr: {
      task: c.u64('curr_task'), pid: c.i32('curr_pid'), tgid: c.i32('curr_tgid'), comm: c.text('curr_comm'),
      utimeNs: c.u64('curr_utime_ns'), stimeNs: c.u64('curr_stime_ns'), samples: c.u32('curr_samples'),
    },
    preemptCount: c.i32('preempt_count'),
    lockWaiters: c.u32('lock_waiters'),
  };
}

function decodeSample(bytes: Uint8Array, at: number): { sample: MetricsSample; end: number } {
  if (at + L.metricsSample.size > bytes.length) throw new Error(`metrics reply of ${bytes.length} bytes ends inside a sample header at ${at}`);
  const s = StructView.at(bytes, L.metricsSample, at);
  const cpuCount = s.u32('cpu_count');
  const diskCount = s.u32('disk_count');
  if (diskCount > L.METRICS_MAX_DISKS) throw new Error(`metrics reply names ${diskCount} disks (at most ${L.METRICS_MAX_DISKS})`);
  const cpusAt = at + L.metricsSample.size;
  const disksAt = cpusAt + cpuCount * L.metricsCpu.size;
  const end = disksAt + diskCount * L.metricsDisk.size;
  if (end > bytes.length) throw new Error(`metrics reply of ${bytes.length} bytes is too short for ${cpuCount} CPUs and ${diskCount} disks`);
  const sample: MetricsSample = {
    monitorClockNs: s.u64('monitor_clock_ns'),
    status: s.u32('status'),
    detail: s.u64('detail'),
    pswpin: s.u64('pswpin'), pswpout: s.u64('pswpout'),
    freePages: s.u64('free_pages'), totalRamPages: s.u64('total_ram_pages'),
    freeSwapPages: s.u64('free_swap_pages'), totalSwapPages: s.u64('total_swap_pages'),
    pageSize: s.u64('page_size'),
    jiffies: s.u64('jiffies'),
    parts: s.u32('parts'),
    cpus: StructView.array(bytes, L.metricsCpu, cpuCount, cpusAt).map(decodeCpu),
    disks: StructView.array(bytes, L.metricsDisk, diskCount, disksAt).map((d) => ({ name: d.text('name'), ioTicks: d.u64('io_ticks'), ios: d.u64('ios') })),
  };
  return { sample, end };
}

/** The reply's two samples: the window's start, then its end. */
export function decodeMetricsReply(bytes: Uint8Array): [MetricsSample, MetricsSample] {
  const first = decodeSample(bytes, 0);
  const second = decodeSample(bytes, first.end);
  if (second.end !== bytes.length) throw new Error(`metrics reply has ${bytes.length - second.end} bytes after its two samples`);
  return [first.sample, second.sample];
}
