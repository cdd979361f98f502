// The Processes view's model, without VS Code: thread-group leaders with their other threads as
// children, ids stable across refreshes (target, tgid, pid), and what each row shows. The view
// (./processes) renders it; the ui-tree bench measures it.
import type { TaskRecord } from '../types/task-record';

export type ProcessItem = { kind: 'process'; id: string; task: TaskRecord; threads: ProcessItem[] } | { kind: 'thread'; id: string; task: TaskRecord; leader: ProcessItem };

export interface ProcessTree {
  /** Leaders, by pid. */
  processes: ProcessItem[];
  byId: Map<string, ProcessItem>;
}

/** What one row shows: label `pid comm`, description state · CPU · RSS, a codicon by state. */
export interface ProcessRow {
  label: string;
  description: string;
  icon: string;
  /** The Faults view blames this task (an active detection names it). */
  culprit?: string;
  tooltip: string[];
  hasChildren: boolean;
}

const STATE_NAMES: Record<string, [name: string, icon: string]> = {
  R: ['running', 'play-circle'],
  S: ['sleeping', 'watch'],
  D: ['uninterruptible', 'lock'],
  T: ['stopped', 'debug-pause'],
  t: ['traced', 'debug-pause'],
  Z: ['zombie', 'circle-slash'],
  X: ['dead', 'close'],
  P: ['parked', 'debug-stop'],
  I: ['idle', 'circle-outline'],
};

export function stateName(state: string): string {
  return STATE_NAMES[state]?.[0] ?? `state ${state}`;
}

/** Memory sizes in one unit everywhere the extension shows them (Processes, Faults): KiB under 1 MiB, else MiB. */
export function formatBytes(bytes: bigint): string {
  const kib = Number(bytes) / 1024;
  return kib < 1024 ? `${kib.toFixed(0)} KiB` : `${(kib / 1024).toFixed(1)} MiB`;
}

export function buildProcessTree(target: string, tasks: TaskRecord[]): ProcessTree {
  const byId = new Map<string, ProcessItem>();
  const leaders = new Map<number, ProcessItem & { kind: 'process' }>();
  for (const task of tasks) {
    if (task.pid !== task.tgid) continue;
    const item: ProcessItem & { kind: 'process' } = { kind: 'process', id: `grass.process/${target}/${task.pid}`, task, threads: [] };
    leaders.set(task.pid, item);
    byId.set(item.id, item);
  }
  for (const task of tasks) {
    if (task.pid === task.tgid) continue;
    const leader = leaders.get(task.tgid);
    if (!leader) continue; // the leader exited between reads; the next refresh settles it
    const item: ProcessItem = { kind: 'thread', id: `grass.process/${target}/${task.tgid}/${task.pid}`, task, leader };
    leader.threads.push(item);
    byId.set(item.id, item);
  }
  return { processes: [...leaders.values()].sort((a, b) => a.task.pid - b.task.pid), byId };
}

export function processRow(item: ProcessItem, culprit?: string): ProcessRow {
  const t = item.task;
  const [name, icon] = STATE_NAMES[t.state] ?? [`state ${t.state}`, 'question'];
  const description = `${name} · CPU ${t.cpu} · ${t.rssBytes > 0n ? formatBytes(t.rssBytes) : 'no mm'}${item.kind === 'process' && t.threads > 1 ? ` · ${t.threads} threads` : ''}`;
  return {
    label: `${t.pid} ${t.comm}`,
    description: culprit ? `culprit: ${culprit} · ${description}` : description,
    icon,
    culprit,
    tooltip: [
      `**${t.comm}** pid ${t.pid}, tgid ${t.tgid}, parent ${t.ppid}`,
      `state ${t.state} (${name}), last on CPU ${t.cpu}`,
      `user ${(Number(t.utimeNs) / 1e9).toFixed(2)} s, system ${(Number(t.stimeNs) / 1e9).toFixed(2)} s, RSS ${formatBytes(t.rssBytes)}`,
      `task_struct at \`0x${t.taskAddress.toString(16)}\``,
      ...(culprit ? [`**culprit** of ${culprit} (Faults view)`] : []),
    ],
    hasChildren: item.kind === 'process' && item.threads.length > 0,
  };
}

/** The orders the Processes view offers, with what the view's title says of each. */
export const PROCESS_SORTS = { pid: 'pid', cpu: 'CPU time', rss: 'resident memory', state: 'state' } as const;
export type ProcessSort = keyof typeof PROCESS_SORTS;

function cpuTime(t: TaskRecord): bigint {
  return t.utimeNs + t.stimeNs;
}

/** Row order: by pid ascending; CPU time and RSS largest first; state by name. Ties by pid. */
export function compareProcesses(sort: ProcessSort): (a: ProcessItem, b: ProcessItem) => number {
  const byPid = (a: ProcessItem, b: ProcessItem): number => a.task.pid - b.task.pid;
  const descending = (x: bigint, y: bigint): number => (x === y ? 0 : x > y ? -1 : 1);
  switch (sort) {
    case 'pid':
      return byPid;
    case 'cpu':
      return (a, b) => descending(cpuTime(a.task), cpuTime(b.task)) || byPid(a, b);
    case 'rss':
      return (a, b) => descending(a.task.rssBytes, b.task.rssBytes) || byPid(a, b);
    case 'state':
      return (a, b) => stateName(a.task.state).localeCompare(stateName(b.task.state)) || byPid(a, b);
  }
}

/**
 * The processes as a parent/child tree (ppid is the parent's tgid): the roots (a parent not
 * listed, as pid 0 is not) and each listed process's child processes, every list in `sort` order.
 */
export function nestProcesses(processes: ProcessItem[], sort: ProcessSort): { roots: ProcessItem[]; children: Map<number, ProcessItem[]> } {
  const listed = new Set(processes.map((p) => p.task.pid));
  const roots: ProcessItem[] = [];
  const children = new Map<number, ProcessItem[]>();
  for (const p of processes) {
    const parent = p.task.ppid;
    if (parent === p.task.pid || !listed.has(parent)) roots.push(p);
    else children.set(parent, [...(children.get(parent) ?? []), p]);
  }
  const order = compareProcesses(sort);
  roots.sort(order);
  for (const list of children.values()) list.sort(order);
  return { roots, children };
}

/**
 * Brings `current` up to date with a fresh reading when both list the same processes and
 * threads in the same order: the items of rows that show something new take the fresh task
 * (the items themselves stay, so the view can re-render just them) and are returned. Undefined
 * when the lists differ in shape: then the fresh tree replaces the current one.
 */
export function updateProcessTree(current: ProcessTree, fresh: ProcessTree): ProcessItem[] | undefined {
  if (current.processes.length !== fresh.processes.length) return undefined;
  const pairs: [ProcessItem, ProcessItem][] = [];
  for (let i = 0; i < current.processes.length; i++) {
    const [was, now] = [current.processes[i], fresh.processes[i]];
    if (was.kind !== 'process' || now.kind !== 'process' || was.id !== now.id || was.threads.length !== now.threads.length) return undefined;
    pairs.push([was, now]);
    for (let j = 0; j < was.threads.length; j++) {
      if (was.threads[j].id !== now.threads[j].id) return undefined;
      pairs.push([was.threads[j], now.threads[j]]);
    }
  }
  const changed: ProcessItem[] = [];
  for (const [was, now] of pairs) {
    if (JSON.stringify(processRow(was)) === JSON.stringify(processRow(now))) continue;
    was.task = now.task;
    changed.push(was);
  }
  return changed;
}
