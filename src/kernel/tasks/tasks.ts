// The process list in remote-analysis mode (DESIGN §6 `grass ps` fields) from memory reads
// alone. Tasks are found through the PID IDR of init_pid_ns (an XArray walked a level per
// round trip) rather than by following init_task.tasks one pointer at a time, then every field
// of every task is fetched in one batch, and parents, signal_structs and mm_structs in one
// batch each: a few round trips whatever the number of tasks. Kernel-version differences come
// from BTF: `__state` (5.14+) vs `state`, `cpu` in task_struct vs thread_info, RSS counters as
// atomic_long_t (≤ 6.1) or percpu_counter (6.2+).
//
// The numbers match what the agent's process-list plugin reports: ppid = real_parent's tgid,
// a process's times are its signal_struct's (dead threads) plus every live thread's, RSS =
// file + anon + shmem pages (each counter clamped at 0), threads = signal->nr_threads.

import type { Btf } from '../btf/btf';
import type { KernelModel } from '../model';
import { hex, Kernel, type KObject, ObjectError } from '../objects/object';
import type { Range } from '../objects/reader';
import { xarrayEntries } from '../objects/xarray';
import type { TaskRecord } from '../../types/task-record';

export interface TaskListOptions {
  /** Every thread, not only thread-group leaders. */
  threads?: boolean;
  /** The idle tasks (pid 0): init_task and each other CPU's rq->idle. */
  idle?: boolean;
  /** Retries when the task set changed while it was read (default 2). */
  retries?: number;
}

export interface TaskListResult {
  tasks: TaskRecord[];
  /** Reads made: rounds (dependent round trips), readBatch calls, ranges, bytes; attempts made. */
  stats: { rounds: number; batches: number; ranges: number; bytes: number; attempts: number };
}

export class TaskListError extends ObjectError {
  constructor(message: string) {
    super(message);
    this.name = 'TaskListError';
  }
}

interface Field {
  offset: number;
  size: number;
}

/** Where the fields live on this kernel, from its BTF. */
export interface TaskLayout {
  pid: Field;
  tgid: Field;
  comm: Field;
  state: Field;
  exitState: Field;
  realParent: Field;
  signal: Field;
  mm: Field;
  utime: Field;
  stime: Field;
  cpu: Field;
  /** task_struct.pid_links[PIDTYPE_PID]: the hlist node on struct pid's task list. */
  pidLink: Field;
  signalNrThreads: Field;
  signalUtime: Field;
  signalStime: Field;
  /** Offsets in mm_struct of the counters to sum (8-byte signed each). */
  rssCounters: number[];
  /** struct pid.tasks[PIDTYPE_PID]. */
  pidTasks: Field;
  /** pid_namespace.idr's xarray, from the start of pid_namespace. */
  nsIdrXarray: number;
  rqIdle: Field | undefined;
}

function field(btf: Btf, struct: string, paths: string[]): Field {
  const id = btf.findByName(struct, 'struct');
  if (id === undefined) throw new TaskListError(`the target's BTF has no struct ${struct}`);
  for (const p of paths) {
    let bits = 0;
    let current = id;
    let ok = true;
    for (const part of p.split('.')) {
      const m = btf.findMember(current, part);
      if (!m) {
        ok = false;
        break;
      }
      bits += m.bitsOffset;
      current = m.member.type;
    }
    if (ok) return { offset: bits / 8, size: btf.sizeof(current) };
  }
  throw new TaskListError(`struct ${struct} has none of ${paths.join(', ')} in the target's BTF`);
}

function enumerator(btf: Btf, name: string): bigint {
  const found = btf.enumerator(name);
  if (!found) throw new TaskListError(`the target's BTF has no enumerator ${name}`);
  return found.value;
}

const layouts = new WeakMap<Btf, TaskLayout>();

export function taskLayout(btf: Btf): TaskLayout {
  const cached = layouts.get(btf);
  if (cached) return cached;
  const ts = 'task_struct';
  const pidType = Number(enumerator(btf, 'PIDTYPE_PID'));
  const pidLinks = field(btf, ts, ['pid_links']);
  const hlistNode = btf.sizeof(btf.findByName('hlist_node', 'struct')!);
  const pidTasks = field(btf, 'pid', ['tasks']);
  const hlistHead = btf.sizeof(btf.findByName('hlist_head', 'struct')!);

  // RSS: ≤ 6.1 mm->rss_stat.count[] (atomic_long_t); 6.2+ mm->rss_stat[] (percpu_counter),
  // whose shared `count` is what /proc reports.
  const mm = btf.findByName('mm_struct', 'struct');
  if (mm === undefined) throw new TaskListError("the target's BTF has no struct mm_struct");
  const rssStat = btf.findMember(mm, 'rss_stat');
  if (!rssStat) throw new TaskListError('struct mm_struct has no rss_stat in the target\'s BTF');
  let rssBase: number;
  let stride: number;
  const rssType = btf.resolve(rssStat.member.type);
  if (rssType.kind === 'array') {
    const counter = btf.findByName('percpu_counter', 'struct');
    const count = counter === undefined ? undefined : btf.findMember(counter, 'count');
    if (!count) throw new TaskListError('mm_struct.rss_stat is an array but percpu_counter.count is missing');
    stride = btf.sizeof(rssType.type);
    rssBase = rssStat.bitsOffset / 8 + count.bitsOffset / 8;
  } else {
    const count = btf.findMember(rssStat.member.type, 'count');
    if (!count) throw new TaskListError('mm_struct.rss_stat has no count[]');
    const arr = btf.resolve(count.member.type);
    if (arr.kind !== 'array') throw new TaskListError('mm_struct.rss_stat.count is not an array');
    stride = btf.sizeof(arr.type);
    rssBase = rssStat.bitsOffset / 8 + count.bitsOffset / 8;
  }
  const rssCounters = ['MM_FILEPAGES', 'MM_ANONPAGES', 'MM_SHMEMPAGES'].map((name) => rssBase + Number(enumerator(btf, name)) * stride);

  const idr = field(btf, 'pid_namespace', ['idr']);
  const idrRt = field(btf, 'idr', ['idr_rt']);
  let rqIdle: Field | undefined;
  try {
    rqIdle = field(btf, 'rq', ['idle']);
  } catch {
    rqIdle = undefined;
  }
  const layout: TaskLayout = {
    pid: field(btf, ts, ['pid']),
    tgid: field(btf, ts, ['tgid']),
    comm: field(btf, ts, ['comm']),
    state: field(btf, ts, ['__state', 'state']),
    exitState: field(btf, ts, ['exit_state']),
    realParent: field(btf, ts, ['real_parent']),
    signal: field(btf, ts, ['signal']),
    mm: field(btf, ts, ['mm']),
    utime: field(btf, ts, ['utime']),
    stime: field(btf, ts, ['stime']),
    cpu: field(btf, ts, ['cpu', 'thread_info.cpu']),
    pidLink: { offset: pidLinks.offset + pidType * hlistNode, size: hlistNode },
    signalNrThreads: field(btf, 'signal_struct', ['nr_threads']),
    signalUtime: field(btf, 'signal_struct', ['utime']),
    signalStime: field(btf, 'signal_struct', ['stime']),
    rssCounters,
    pidTasks: { offset: pidTasks.offset + pidType * hlistHead, size: hlistHead },
    nsIdrXarray: idr.offset + idrRt.offset,
    rqIdle,
  };
  layouts.set(btf, layout);
  return layout;
}

/**
 * The state letter, as the kernel's task_state_index() derives it: the TASK_REPORT bits of
 * state|exit_state, TASK_IDLE shown as 'I', an rtlock wait as 'D'. These bit values are the
 * kernel's reporting ABI (fs/proc/array.c), not structure layout.
 */
export function stateLetter(state: number, exitState: number): string {
  const REPORT = 0x7f;
  const TASK_IDLE = 0x402;
  const RTLOCK_WAIT = 0x1000;
  if (state === TASK_IDLE) return 'I';
  let bits = (state | exitState) & REPORT;
  if (state === RTLOCK_WAIT) bits = 0x2;
  let index = 0;
  while (bits) {
    index++;
    bits >>= 1;
  }
  return 'RSDTtXZPI'[index];
}

/**
 * The task_struct fields a walk reads, as ranges relative to the task: fields less than
 * two cache lines apart share one range, so a task costs a few ranges to ask for, not one per
 * field.
 */
function taskSpans(l: TaskLayout): Field[] {
  const fields = [l.pid, l.tgid, l.comm, l.state, l.exitState, l.realParent, l.signal, l.mm, l.utime, l.stime, l.cpu, l.pidLink].sort((a, b) => a.offset - b.offset);
  const spans: Field[] = [];
  for (const f of fields) {
    const last = spans[spans.length - 1];
    if (last && f.offset <= last.offset + last.size + 128) last.size = Math.max(last.size, f.offset + f.size - last.offset);
    else spans.push({ offset: f.offset, size: f.size });
  }
  return spans;
}

/** An object's address split once into page number and offset (see MemoryReader.cachedAt). */
interface At {
  address: bigint;
  page: number;
  offset: number;
}

const at = (address: bigint): At => ({ address, page: Number(address >> 12n), offset: Number(address & 4095n) });

const commDecoder = new TextDecoder('utf-8', { fatal: false });

class Snapshot {
  constructor(
    readonly kernel: Kernel,
    readonly layout: TaskLayout,
  ) {}

  private bytes(o: At, f: Field, what: string): Uint8Array {
    try {
      return this.kernel.reader.cachedAt(o.page, o.offset + f.offset, f.size);
    } catch (err) {
      throw new TaskListError(`${what} at ${hex(o.address)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** An unsigned field of up to 8 bytes, little-endian (no DataView per field: thousands of tasks). */
  uint(o: At, f: Field, what: string): bigint {
    const b = this.bytes(o, f, what);
    if (b.length === 8) {
      const lo = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
      const hi = (b[4] | (b[5] << 8) | (b[6] << 16) | (b[7] << 24)) >>> 0;
      return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
    }
    return BigInt(this.small(b, o, what));
  }

  /** A signed field of up to 4 bytes as a number (8-byte ones through uint). */
  int(o: At, f: Field, what: string): number {
    if (f.size === 8) return Number(BigInt.asIntN(64, this.uint(o, f, what)));
    const v = this.small(this.bytes(o, f, what), o, what);
    const bits = f.size * 8;
    return bits === 32 ? v | 0 : v >= 2 ** (bits - 1) ? v - 2 ** bits : v;
  }

  private small(b: Uint8Array, o: At, what: string): number {
    switch (b.length) {
      case 4:
        return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
      case 2:
        return b[0] | (b[1] << 8);
      case 1:
        return b[0];
      default:
        throw new TaskListError(`${what} at ${hex(o.address)}: unexpected field size ${b.length}`);
    }
  }

  comm(o: At): string {
    const b = this.bytes(o, this.layout.comm, 'task comm');
    let end = 0;
    let ascii = true;
    while (end < b.length && b[end] !== 0) {
      if (b[end] >= 0x80) ascii = false;
      end++;
    }
    return ascii ? String.fromCharCode(...b.subarray(0, end)) : commDecoder.decode(b.subarray(0, end));
  }

  /** Asks for these fields of these objects, all in one round. */
  async prefetch(...groups: [Iterable<bigint>, Field[]][]): Promise<void> {
    const ranges: Range[] = [];
    for (const [addresses, fields] of groups) for (const a of addresses) for (const f of fields) ranges.push({ address: a + BigInt(f.offset), length: f.size });
    await this.kernel.reader.prefetch(ranges);
  }
}

/** Task addresses found through init_pid_ns's IDR, checked against the pid numbers they hold; the task fields fetched. */
async function tasksFromPidIdr(s: Snapshot): Promise<{ tasks: At[]; changed: string[] }> {
  const k = s.kernel;
  const l = s.layout;
  const ns = k.symbols.address('init_pid_ns');
  const entries = await xarrayEntries(k, ns + BigInt(l.nsIdrXarray), 'init_pid_ns.idr');
  await s.prefetch([entries.map((e) => e.entry), [l.pidTasks]]);
  const tasks: At[] = [];
  const pidNumbers: number[] = [];
  const firstTask: Field = { offset: l.pidTasks.offset, size: 8 };
  for (const e of entries) {
    const first = s.uint(at(e.entry), firstTask, `struct pid of pid ${e.index}`);
    // A pid whose task is gone (kept by a reference, or only a group/session id) has none.
    if (first === 0n) continue;
    tasks.push(at(first - BigInt(l.pidLink.offset)));
    pidNumbers.push(Number(e.index));
  }
  await s.prefetch([tasks.map((t) => t.address), taskSpans(l)]);
  const changed: string[] = [];
  tasks.forEach((t, i) => {
    const pid = s.int(t, l.pid, 'task pid');
    if (pid !== pidNumbers[i]) changed.push(`pid ${pidNumbers[i]} leads to task ${hex(t.address)} whose pid is ${pid}`);
  });
  return { tasks, changed };
}

async function idleTasks(s: Snapshot): Promise<At[]> {
  const k = s.kernel;
  const initTask = k.symbols.address('init_task');
  const out = [initTask];
  const rq = k.symbols.get('runqueues');
  if (rq && s.layout.rqIdle) {
    const cpus = await k.cpuCount();
    const offsets: bigint[] = [];
    for (let cpu = 1; cpu < cpus; cpu++) offsets.push(await k.perCpuOffset(cpu));
    const rqs = offsets.map((o) => rq.address + o);
    await s.prefetch([rqs, [s.layout.rqIdle]]);
    for (const r of rqs) {
      const idle = s.uint(at(r), s.layout.rqIdle, 'rq->idle');
      if (idle !== 0n && idle !== initTask) out.push(idle);
    }
  }
  await s.prefetch([out, taskSpans(s.layout)]);
  return out.map(at);
}

/** One task's fields, read once from the cache. */
interface TaskFields {
  at: At;
  pid: number;
  tgid: number;
  comm: string;
  state: string;
  cpu: number;
  realParent: bigint;
  signal: bigint;
  mm: bigint;
  utime: bigint;
  stime: bigint;
}

function readTask(s: Snapshot, t: At): TaskFields {
  const l = s.layout;
  return {
    at: t,
    pid: s.int(t, l.pid, 'task pid'),
    tgid: s.int(t, l.tgid, 'task tgid'),
    comm: s.comm(t),
    state: stateLetter(Number(BigInt.asUintN(32, s.uint(t, l.state, 'task state'))), s.int(t, l.exitState, 'task exit_state')),
    cpu: s.int(t, l.cpu, 'task cpu'),
    realParent: s.uint(t, l.realParent, 'task real_parent'),
    signal: s.uint(t, l.signal, 'task signal'),
    mm: s.uint(t, l.mm, 'task mm'),
    utime: s.uint(t, l.utime, 'task utime'),
    stime: s.uint(t, l.stime, 'task stime'),
  };
}

async function attempt(model: KernelModel, options: TaskListOptions): Promise<{ result: TaskRecord[]; changed: string[]; kernel: Kernel }> {
  const kernel = new Kernel(model);
  const layout = taskLayout(model.btf);
  const s = new Snapshot(kernel, layout);
  // The idle tasks (per-CPU runqueues) do not depend on the IDR: both walks at once.
  const [{ tasks: found, changed }, idleAddresses] = await Promise.all([tasksFromPidIdr(s), options.idle ? idleTasks(s) : []]);
  const all = found.map((t) => readTask(s, t));
  const idle = idleAddresses.map((t) => readTask(s, t));

  // Parents (for ppid), signal_structs and mm_structs: one round, the addresses all known now.
  const parents = new Set<bigint>();
  const signals = new Set<bigint>();
  const mms = new Set<bigint>();
  for (const t of [...idle, ...all]) {
    if (t.realParent) parents.add(t.realParent);
    if (t.signal) signals.add(t.signal);
    if (t.mm) mms.add(t.mm);
  }
  const rssFields = layout.rssCounters.map((offset) => ({ offset, size: 8 }));
  await s.prefetch([parents, [layout.tgid]], [signals, [layout.signalNrThreads, layout.signalUtime, layout.signalStime]], [mms, rssFields]);

  const pageSize = BigInt(model.pageSize);
  const record = (t: TaskFields, groupTimes?: { utime: bigint; stime: bigint }): TaskRecord => {
    let rssPages = 0n;
    if (t.mm) {
      const mm = at(t.mm);
      for (const f of rssFields) {
        const v = BigInt.asIntN(64, s.uint(mm, f, 'mm rss counter'));
        if (v > 0n) rssPages += v;
      }
    }
    return {
      pid: t.pid,
      tgid: t.tgid,
      ppid: t.realParent && t.realParent !== t.at.address && t.pid !== 0 ? s.int(at(t.realParent), layout.tgid, 'parent tgid') : 0,
      comm: t.comm,
      state: t.state,
      cpu: t.cpu,
      utimeNs: groupTimes?.utime ?? t.utime,
      stimeNs: groupTimes?.stime ?? t.stime,
      rssBytes: rssPages * pageSize,
      threads: t.signal ? s.int(at(t.signal), layout.signalNrThreads, 'signal nr_threads') : 1,
      taskAddress: t.at.address,
    };
  };

  const result: TaskRecord[] = idle.map((t) => record(t));
  if (options.threads) {
    for (const t of all) result.push(record(t));
  } else {
    // A process's times: the group's dead threads (signal_struct) plus each live thread.
    const groups = new Map<number, TaskFields[]>();
    for (const t of all) {
      const g = groups.get(t.tgid);
      if (g) g.push(t);
      else groups.set(t.tgid, [t]);
    }
    for (const t of all) {
      if (t.pid !== t.tgid) continue;
      let times: { utime: bigint; stime: bigint } | undefined;
      if (t.signal) {
        const signal = at(t.signal);
        times = { utime: s.uint(signal, layout.signalUtime, 'signal utime'), stime: s.uint(signal, layout.signalStime, 'signal stime') };
        for (const member of groups.get(t.tgid) ?? []) {
          times.utime += member.utime;
          times.stime += member.stime;
        }
      }
      result.push(record(t, times));
    }
  }
  return { result, changed, kernel };
}

/** A task as drgn's helpers hand it out: its task_struct, to read any member of, and the ps fields read with it. */
export interface Task {
  /** `struct task_struct` at `record.taskAddress`, read through the same cache as the walk. */
  object: KObject;
  record: TaskRecord;
}

type TaskReadStats = TaskListResult['stats'];

/** The records of one consistent reading of the task set (read again while it changes), with the reads added to `stats`. */
async function readTasks(model: KernelModel, options: TaskListOptions, stats: TaskReadStats): Promise<{ records: TaskRecord[]; kernel: Kernel }> {
  const retries = options.retries ?? 2;
  for (;;) {
    stats.attempts++;
    const { result, changed, kernel } = await attempt(model, options);
    stats.rounds += kernel.reader.stats.rounds;
    stats.batches += kernel.reader.stats.batches;
    stats.ranges += kernel.reader.stats.ranges;
    stats.bytes += kernel.reader.stats.bytes;
    if (changed.length === 0) return { records: result, kernel };
    if (stats.attempts > retries) {
      throw new TaskListError(`the task set changed during each of ${stats.attempts} reads (pause the target for an exact list): ${changed.slice(0, 3).join('; ')}`);
    }
  }
}

const noReads = (): TaskReadStats => ({ rounds: 0, batches: 0, ranges: 0, bytes: 0, attempts: 0 });

/**
 * Every task, as drgn's for_each_task(): found through init_pid_ns's IDR (thread-group
 * leaders, or every thread with `threads`; the idle tasks first with `idle`). The whole set is
 * read in a few batches before the first task is yielded, so it is one consistent reading.
 * `stats`, when given, gets the reads made added to it.
 */
export async function* forEachTask(model: KernelModel, options: TaskListOptions = {}, stats: TaskReadStats = noReads()): AsyncGenerator<Task> {
  const { records, kernel } = await readTasks(model, options, stats);
  for (const record of records) yield { object: kernel.object('struct task_struct', record.taskAddress, `task ${record.pid}`), record };
}

/** The task with this pid (a thread's too; 0: init_task), as drgn's find_task(); undefined when there is none. */
export async function findTask(model: KernelModel, pid: number): Promise<Task | undefined> {
  for await (const task of forEachTask(model, { threads: true, idle: pid === 0 })) if (task.record.pid === pid) return task;
  return undefined;
}

/** The target's tasks, read from its memory through the model (remote-analysis mode). */
export async function listTasks(model: KernelModel, options: TaskListOptions = {}): Promise<TaskListResult> {
  const stats = noReads();
  const tasks: TaskRecord[] = [];
  for await (const task of forEachTask(model, options, stats)) tasks.push(task.record);
  return { tasks, stats };
}
