// The process list in remote-analysis mode (DESIGN §6 `grass ps` fields) from memory reads
// alone. Tasks are found through the PID IDR of init_pid_ns (an XArray walked a level per
// round trip) rather than by following init_task.tasks one pointer at a time, then every field
// of every task is fetched in one batch, and parents, signal_structs and mm_structs together in
// one more: a few round trips whatever the number of tasks (7 for 10 000 processes: the IDR's
// head and three levels, the struct pids, the tasks, the rest). Kernel-version differences come
// from BTF: `__state` (5.14+) vs `state`, `cpu` in task_struct vs thread_info, RSS counters as
// atomic_long_t (≤ 6.1) or percpu_counter (6.2+).
//
// The numbers match what the agent's process-list plugin reports: ppid = real_parent's tgid,
// a process's times are its signal_struct's (dead threads) plus every live thread's, RSS =
// file + anon + shmem pages (each counter clamped at 0), threads = signal->nr_threads.

import type { Btf } from '../btf/btf';
import type { KernelModel } from '../model';
import { hex, Kernel, type KObject, ObjectError } from '../objects/object';
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
 * Fields of one structure as the ranges to ask for: fields less than SPAN_GAP bytes apart share
 * one, so an object costs a range or two, not one per field (a range costs the agent a
 * translation and both sides an entry to code; a few hundred bytes more cost less).
 */
const SPAN_GAP = 512;

function spans(fields: Field[]): Field[] {
  const out: Field[] = [];
  for (const f of [...fields].sort((a, b) => a.offset - b.offset)) {
    const last = out[out.length - 1];
    if (last && f.offset <= last.offset + last.size + SPAN_GAP) last.size = Math.max(last.size, f.offset + f.size - last.offset);
    else out.push({ offset: f.offset, size: f.size });
  }
  return out;
}

const taskSpans = (l: TaskLayout): Field[] => spans([l.pid, l.tgid, l.comm, l.state, l.exitState, l.realParent, l.signal, l.mm, l.utime, l.stime, l.cpu, l.pidLink]);

/**
 * An object's address as its page number (address >> 12) and its offset in that page, plain
 * numbers (see MemoryReader.cachedAt): a walk of thousands of tasks reads their fields and
 * follows their pointers without BigInt arithmetic.
 */
interface At {
  page: number;
  offset: number;
}

const at = (address: bigint): At => ({ page: Number(address >> 12n), offset: Number(address & 4095n) });
const addressOf = (o: At): bigint => (BigInt(o.page) << 12n) + BigInt(o.offset);
const sameAt = (a: At, b: At): boolean => a.page === b.page && a.offset === b.offset;

const commDecoder = new TextDecoder('utf-8', { fatal: false });

class Snapshot {
  constructor(
    readonly kernel: Kernel,
    readonly layout: TaskLayout,
  ) {}

  private fail(o: At, what: string, err: unknown): TaskListError {
    return new TaskListError(`${what} at ${hex(addressOf(o))}: ${err instanceof Error ? err.message : String(err)}`);
  }

  /** The low 32 bits (unsigned) of a field of 4 or 8 bytes, or a field of 1 or 2. */
  u32(o: At, f: Field, what: string, skip = 0): number {
    try {
      return this.kernel.reader.uintAt(o.page, o.offset + f.offset + skip, f.size >= 4 ? 4 : (f.size as 1 | 2));
    } catch (err) {
      throw this.fail(o, what, err);
    }
  }

  /** A signed field as a number (8-byte ones exact below 2^53). */
  int(o: At, f: Field, what: string): number {
    const v = this.u32(o, f, what);
    switch (f.size) {
      case 8:
        return (this.u32(o, f, what, 4) | 0) * 2 ** 32 + v;
      case 4:
        return v | 0;
      case 2:
        return v >= 0x8000 ? v - 0x10000 : v;
      case 1:
        return v >= 0x80 ? v - 0x100 : v;
      default:
        throw new TaskListError(`${what} at ${hex(addressOf(o))}: unexpected field size ${f.size}`);
    }
  }

  /** An unsigned 8-byte field. */
  u64(o: At, f: Field, what: string): bigint {
    const lo = this.u32(o, f, what);
    const hi = this.u32(o, f, what, 4);
    return hi < 0x200000 ? BigInt(hi * 2 ** 32 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** The object a pointer field points into, `minus` bytes before where it points (container_of); undefined for NULL. */
  pointer(o: At, f: Field, what: string, minus = 0): At | undefined {
    const lo = this.u32(o, f, what);
    const hi = this.u32(o, f, what, 4);
    if (lo === 0 && hi === 0) return undefined;
    let page = hi * 2 ** 20 + (lo >>> 12);
    let offset = (lo & 4095) - minus;
    if (offset < 0) {
      const back = Math.ceil(-offset / 4096);
      page -= back;
      offset += back * 4096;
    }
    return { page, offset };
  }

  comm(o: At): string {
    let b: Uint8Array;
    try {
      b = this.kernel.reader.cachedAt(o.page, o.offset + this.layout.comm.offset, this.layout.comm.size);
    } catch (err) {
      throw this.fail(o, 'task comm', err);
    }
    let end = 0;
    let ascii = true;
    while (end < b.length && b[end] !== 0) {
      if (b[end] >= 0x80) ascii = false;
      end++;
    }
    return ascii ? String.fromCharCode(...b.subarray(0, end)) : commDecoder.decode(b.subarray(0, end));
  }

  /** Asks for these fields of these objects, all in one round. */
  async prefetch(...groups: [Iterable<At | undefined>, Field[]][]): Promise<void> {
    const plan = this.kernel.reader.plan();
    for (const [objects, fields] of groups) for (const o of objects) if (o) for (const f of fields) plan.add(o.page, o.offset + f.offset, f.size);
    await plan.fetch();
  }
}

/** Task addresses found through init_pid_ns's IDR, checked against the pid numbers they hold; the task fields fetched. */
async function tasksFromPidIdr(s: Snapshot): Promise<{ tasks: At[]; changed: string[] }> {
  const k = s.kernel;
  const l = s.layout;
  const ns = k.symbols.address('init_pid_ns');
  const entries = await xarrayEntries(k, ns + BigInt(l.nsIdrXarray), 'init_pid_ns.idr');
  const pids = entries.map((e) => at(e.entry));
  await s.prefetch([pids, [l.pidTasks]]);
  const tasks: At[] = [];
  const pidNumbers: number[] = [];
  const firstTask: Field = { offset: l.pidTasks.offset, size: 8 };
  entries.forEach((e, i) => {
    const task = s.pointer(pids[i], firstTask, `struct pid of pid ${e.index}`, l.pidLink.offset);
    // A pid whose task is gone (kept by a reference, or only a group/session id) has none.
    if (!task) return;
    tasks.push(task);
    pidNumbers.push(Number(e.index));
  });
  await s.prefetch([tasks, taskSpans(l)]);
  const changed: string[] = [];
  tasks.forEach((t, i) => {
    const pid = s.int(t, l.pid, 'task pid');
    if (pid !== pidNumbers[i]) changed.push(`pid ${pidNumbers[i]} leads to task ${hex(addressOf(t))} whose pid is ${pid}`);
  });
  return { tasks, changed };
}

async function idleTasks(s: Snapshot): Promise<At[]> {
  const k = s.kernel;
  const initTask = at(k.symbols.address('init_task'));
  const out = [initTask];
  const rq = k.symbols.get('runqueues');
  if (rq && s.layout.rqIdle) {
    const cpus = await k.cpuCount();
    const offsets: bigint[] = [];
    for (let cpu = 1; cpu < cpus; cpu++) offsets.push(await k.perCpuOffset(cpu));
    const rqs = offsets.map((o) => at(rq.address + o));
    await s.prefetch([rqs, [s.layout.rqIdle]]);
    for (const r of rqs) {
      const idle = s.pointer(r, s.layout.rqIdle, 'rq->idle');
      if (idle && !sameAt(idle, initTask)) out.push(idle);
    }
  }
  await s.prefetch([out, taskSpans(s.layout)]);
  return out;
}

/** One task's fields, read once from the cache. */
interface TaskFields {
  at: At;
  pid: number;
  tgid: number;
  comm: string;
  state: string;
  cpu: number;
  realParent: At | undefined;
  signal: At | undefined;
  mm: At | undefined;
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
    state: stateLetter(s.u32(t, l.state, 'task state'), s.int(t, l.exitState, 'task exit_state')),
    cpu: s.int(t, l.cpu, 'task cpu'),
    realParent: s.pointer(t, l.realParent, 'task real_parent'),
    signal: s.pointer(t, l.signal, 'task signal'),
    mm: s.pointer(t, l.mm, 'task mm'),
    utime: s.u64(t, l.utime, 'task utime'),
    stime: s.u64(t, l.stime, 'task stime'),
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

  // Parents (for ppid), signal_structs and mm_structs: one round, the addresses all known now
  // (the reader asks once for a line however many tasks share it).
  const rssFields = layout.rssCounters.map((offset) => ({ offset, size: 8 }));
  const tasks = [...idle, ...all];
  await s.prefetch(
    [tasks.map((t) => t.realParent), [layout.tgid]],
    [tasks.map((t) => t.signal), spans([layout.signalNrThreads, layout.signalUtime, layout.signalStime])],
    [tasks.map((t) => t.mm), spans(rssFields)],
  );

  const pageSize = BigInt(model.pageSize);
  const record = (t: TaskFields, groupTimes?: { utime: bigint; stime: bigint }): TaskRecord => {
    let rssPages = 0;
    if (t.mm) {
      for (const f of rssFields) {
        const v = s.int(t.mm, f, 'mm rss counter');
        if (v > 0) rssPages += v;
      }
    }
    return {
      pid: t.pid,
      tgid: t.tgid,
      ppid: t.realParent && !sameAt(t.realParent, t.at) && t.pid !== 0 ? s.int(t.realParent, layout.tgid, 'parent tgid') : 0,
      comm: t.comm,
      state: t.state,
      cpu: t.cpu,
      utimeNs: groupTimes?.utime ?? t.utime,
      stimeNs: groupTimes?.stime ?? t.stime,
      rssBytes: BigInt(rssPages) * pageSize,
      threads: t.signal ? s.int(t.signal, layout.signalNrThreads, 'signal nr_threads') : 1,
      taskAddress: addressOf(t.at),
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
        times = { utime: s.u64(t.signal, layout.signalUtime, 'signal utime'), stime: s.u64(t.signal, layout.signalStime, 'signal stime') };
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
