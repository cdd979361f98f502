// Parses the output of the guest's /bin/grass-truth (testbed/initramfs/grass-truth): the guest's
// own view of its tasks, counters and kernel log, taken in one pass over the serial console.
import { gunzipSync } from 'node:zlib';

export interface TruthTask {
  /** Thread-group id (the process id as ps prints it). */
  tgid: number;
  /** The thread's own id (PID in kernel terms). */
  pid: number;
  ppid: number;
  /** One of R S D T t Z X I (P, W, K on some kernels), as /proc/<pid>/stat prints it. */
  state: string;
  /** Threads in the thread group (num_threads). */
  threads: number;
  utimeTicks: number;
  stimeTicks: number;
  rssPages: number;
  /** CPU the task last ran on. */
  cpu: number;
  comm: string;
}

/** Jiffies-based CPU times from one /proc/stat "cpu" line, in USER_HZ ticks. */
export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
  guest: number;
  guestNice: number;
}

export interface ProcStat {
  total: CpuTimes;
  /** Per CPU, indexed by CPU number. */
  cpus: CpuTimes[];
  contextSwitches: number;
  bootTime: number;
  processesForked: number;
  procsRunning: number;
  procsBlocked: number;
}

export interface LoadAvg {
  one: number;
  five: number;
  fifteen: number;
  runnable: number;
  total: number;
  lastPid: number;
}

export interface KmsgRecord {
  seq: number;
  /** Syslog level 0 (emerg) .. 7 (debug). */
  level: number;
  facility: number;
  timestampUs: number;
  text: string;
  /** Continuation lines (" SUBSYSTEM=...", " DEVICE=..."). */
  fields: Record<string, string>;
}

export interface GroundTruth {
  uptimeSeconds: number;
  /** Every thread of every process, kernel threads included; pid 0 (idle) is not in /proc. */
  tasks: TruthTask[];
  stat: ProcStat;
  /** /proc/meminfo, values as printed (kB for most). */
  meminfo: Record<string, number>;
  vmstat: Record<string, number>;
  loadavg: LoadAvg;
  kmsg: KmsgRecord[];
  /** /proc/kallsyms text, when asked for. */
  kallsyms?: string;
  /** The raw files, for comparisons the parsed form does not cover. */
  raw: { stat: string; meminfo: string; vmstat: string; loadavg: string; uptime: string };
}

export class TruthParseError extends Error {}

function sections(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = text.split(/^@@/m);
  for (const part of parts.slice(1)) {
    const nl = part.indexOf('\n');
    const name = (nl < 0 ? part : part.slice(0, nl)).trim();
    out.set(name, nl < 0 ? '' : part.slice(nl + 1));
  }
  return out;
}

function cpuTimes(fields: string[]): CpuTimes {
  const n = (i: number) => Number(fields[i] ?? 0);
  return {
    user: n(0), nice: n(1), system: n(2), idle: n(3), iowait: n(4),
    irq: n(5), softirq: n(6), steal: n(7), guest: n(8), guestNice: n(9),
  };
}

export function parseProcStat(text: string): ProcStat {
  const stat: ProcStat = {
    total: cpuTimes([]), cpus: [], contextSwitches: 0, bootTime: 0,
    processesForked: 0, procsRunning: 0, procsBlocked: 0,
  };
  let sawTotal = false;
  for (const line of text.split('\n')) {
    const [key, ...rest] = line.trim().split(/\s+/);
    if (key === 'cpu') {
      stat.total = cpuTimes(rest);
      sawTotal = true;
    } else if (/^cpu\d+$/.test(key)) stat.cpus[Number(key.slice(3))] = cpuTimes(rest);
    else if (key === 'ctxt') stat.contextSwitches = Number(rest[0]);
    else if (key === 'btime') stat.bootTime = Number(rest[0]);
    else if (key === 'processes') stat.processesForked = Number(rest[0]);
    else if (key === 'procs_running') stat.procsRunning = Number(rest[0]);
    else if (key === 'procs_blocked') stat.procsBlocked = Number(rest[0]);
  }
  if (!sawTotal) throw new TruthParseError('ground truth: /proc/stat has no "cpu" line');
  return stat;
}

function keyValues(text: string, separator: RegExp): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = separator.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

export function parseKmsg(text: string): KmsgRecord[] {
  const records: KmsgRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith(' ')) {
      const last = records[records.length - 1];
      const eq = line.indexOf('=');
      if (last && eq > 0) last.fields[line.slice(1, eq)] = line.slice(eq + 1);
      continue;
    }
    const semi = line.indexOf(';');
    if (semi < 0) continue;
    const [prio, seq, ts] = line.slice(0, semi).split(',');
    const p = Number(prio);
    if (!Number.isInteger(p) || !/^\d+$/.test(seq ?? '')) continue;
    records.push({ seq: Number(seq), level: p & 7, facility: p >> 3, timestampUs: Number(ts), text: line.slice(semi + 1), fields: {} });
  }
  return records;
}

export function parseTasks(text: string): TruthTask[] {
  const tasks: TruthTask[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const m = /^(\d+) (\d+) (\d+) (\S) (\d+) (\d+) (\d+) (-?\d+) (\d+) (.*)$/.exec(line);
    if (!m) throw new TruthParseError(`ground truth: malformed task line: ${line.slice(0, 200)}`);
    tasks.push({
      tgid: Number(m[1]), pid: Number(m[2]), ppid: Number(m[3]), state: m[4], threads: Number(m[5]),
      utimeTicks: Number(m[6]), stimeTicks: Number(m[7]), rssPages: Number(m[8]), cpu: Number(m[9]), comm: m[10],
    });
  }
  return tasks;
}

export function parseTruth(output: string): GroundTruth {
  const s = sections(output);
  const need = (name: string) => {
    const v = s.get(name);
    if (v === undefined) throw new TruthParseError(`ground truth: section @@${name} missing (guest output truncated?)`);
    return v;
  };
  if (!s.has('end')) throw new TruthParseError('ground truth: output ends before @@end (guest output truncated?)');
  const load = need('loadavg').trim().split(/\s+/);
  const [runnable, total] = (load[3] ?? '0/0').split('/').map(Number);
  const truth: GroundTruth = {
    uptimeSeconds: Number(need('uptime').trim().split(/\s+/)[0]),
    tasks: parseTasks(need('tasks')),
    stat: parseProcStat(need('stat')),
    meminfo: keyValues(need('meminfo'), /^(\S+):\s+(\d+)/),
    vmstat: keyValues(need('vmstat'), /^(\S+)\s+(\d+)$/),
    loadavg: { one: Number(load[0]), five: Number(load[1]), fifteen: Number(load[2]), runnable, total, lastPid: Number(load[4]) },
    kmsg: parseKmsg(need('kmsg')),
    raw: { stat: need('stat'), meminfo: need('meminfo'), vmstat: need('vmstat'), loadavg: need('loadavg'), uptime: need('uptime') },
  };
  const ksyms = s.get('kallsyms.gz.base64');
  if (ksyms !== undefined) truth.kallsyms = gunzipSync(Buffer.from(ksyms.replace(/\s+/g, ''), 'base64')).toString('utf8');
  return truth;
}
