// Kernel queries of the command palette, each result a read-only document of its own (pids and
// symbols in it are links): stack traces of a task (picked from the process list), tasks
// blocked in D with each CPU's current task, loaded modules, and what the target is. Each runs
// under a progress notification with Cancel: a cancelled query's reads in flight finish, its
// result is dropped.
import * as vscode from 'vscode';
import { listModules, procModulesLine } from '../kernel/modules/modules';
import { blockedTasks, frameText, stackTraces, type BlockedReport, type StackFrame, type StackTrace } from '../kernel/stacks/stacks';
import { kernelSummary, type KernelSummary } from '../kernel/summary/summary';
import type { TargetStatus } from '../relay/wire';
import { QueryText, type QueryLink } from '../views/query-documents';
import type { ProcessItem } from '../views/processes';
import type { FaultItem } from '../views/faults';
import type { ModuleItem } from '../views/modules';
import type { CommandDeps } from './deps';
import { requireSession } from './require-session';
import type { LiveSession } from '../session/live-session';

/** Runs `work` under a cancellable progress notification; undefined when cancelled or failed (the error is shown). */
export async function cancellableQuery<T>(session: LiveSession, title: string, work: () => Promise<T>): Promise<T | undefined> {
  try {
    return await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `GRASS: ${title} (${session.target.name})`, cancellable: true }, (_progress, token) =>
      Promise.race([work(), new Promise<undefined>((resolve) => token.onCancellationRequested(() => resolve(undefined)))]),
    );
  } catch (err) {
    void vscode.window.showErrorMessage(`GRASS: ${title} on ${session.target.name} failed: ${(err as Error).message}`);
    return undefined;
  }
}

/** A pid from the argument (a number, or a Processes tree item), else picked from the tree's list. */
async function pickPid(deps: CommandDeps, arg: unknown, purpose: string): Promise<number | undefined> {
  if (typeof arg === 'number') return arg;
  if (typeof arg === 'object' && arg !== null && 'task' in arg) return (arg as ProcessItem).task.pid;
  // A Faults view row naming a task (a culprit, the task of a fault report).
  if (typeof arg === 'object' && arg !== null && (arg as FaultItem).kind === 'detail') {
    const row = arg as Extract<FaultItem, { kind: 'detail' }>;
    if ((row.culprit?.pid ?? row.pid) !== undefined) return row.culprit?.pid ?? row.pid;
  }
  const provider = deps.views.processesProvider;
  let processes = await provider.allProcesses();
  if (processes.length === 0) {
    await provider.refresh();
    processes = await provider.allProcesses();
  }
  const items = processes.flatMap((p) => [p, ...(p.kind === 'process' ? p.threads : [])]).map((p) => ({
    label: `${p.task.pid} ${p.task.comm}`,
    description: p.kind === 'thread' ? `thread of ${p.task.tgid}` : `state ${p.task.state}`,
    pid: p.task.pid,
  }));
  const picked = await vscode.window.showQuickPick(items, { title: `GRASS: ${purpose}`, placeHolder: 'pid or name', matchOnDescription: true });
  return picked?.pid;
}

/** A frame's line: its symbol (a link to the memory inspector) and the rest as printed. */
function frameParts(f: StackFrame): (string | [string, QueryLink])[] {
  const name = /^[A-Za-z_.$][\w.$]*/.exec(f.symbol)?.[0];
  const text = frameText(f);
  return name ? ['  ', [name, { symbol: name }], text.slice(name.length)] : [`  ${text}`];
}

function addTrace(out: QueryText, t: StackTrace, prefix = ''): void {
  out.line(prefix, [String(t.pid), { pid: t.pid }], ` ${t.comm} (state ${t.state}, ${t.method === 'orc' ? 'unwound' : 'running: stack scanned'})`);
  for (const f of t.frames) out.line(...frameParts(f));
  if (t.note) out.line(`  [${t.note}]`);
}

/** `4000 s (01:06:40)`: seconds, and as days and a clock. */
const durationText = (s: number): string => {
  const d = Math.floor(s / 86400);
  const clock = new Date((s % 86400) * 1000).toISOString().slice(11, 19);
  return `${s} s (${d ? `${d} d ` : ''}${clock})`;
};

/** The summary's lines, label and value, as Describe Target shows them. */
function summaryLines(s: KernelSummary): [string, string][] {
  const unknown = (e: { error: string }): string => `unknown (${e.error})`;
  const mib = (b: bigint): string => `${(Number(b) / 2 ** 20).toFixed(0)} MiB`;
  return [
    ['release', s.release],
    ['KASLR offset', s.kaslrOffset === 0n ? '0x0 (none)' : `0x${s.kaslrOffset.toString(16)}`],
    ['uptime', typeof s.uptimeSeconds === 'number' ? durationText(s.uptimeSeconds) : unknown(s.uptimeSeconds)],
    ['tainted', 'error' in s.taint ? unknown(s.taint) : s.taint.mask === 0n ? 'no (0)' : `${s.taint.letters} (${s.taint.mask})`],
    ['panicked', 'error' in s.panic ? unknown(s.panic) : s.panic.cpu === undefined ? 'no' : `yes, on CPU ${s.panic.cpu}`],
    ['CPUs', String(s.cpus)],
    ['memory', `${mib(s.ramBytes)} RAM, ${typeof s.managedBytes === 'bigint' ? mib(s.managedBytes) : unknown(s.managedBytes)} managed by the kernel`],
  ];
}

export function registerKernelQueryCommands(deps: CommandDeps): vscode.Disposable[] {
  const show = (session: LiveSession, query: string, text: QueryText): Promise<vscode.TextDocument> => deps.views.queryDocuments.show(session.target.name, query, text);
  return [
    /** The kernel stack of a task (argument: a pid or a Processes tree item); resolves to the trace. */
    vscode.commands.registerCommand('grass.showStackTrace', async (arg?: unknown): Promise<StackTrace | undefined> => {
      const session = requireSession(deps.sessions, 'show a stack trace');
      if (!session) return undefined;
      const pid = await pickPid(deps, arg, 'stack trace of');
      if (pid === undefined) return undefined;
      const [trace] = (await cancellableQuery(session, `stack of ${pid}`, async () => stackTraces(await session.model(), [pid]))) ?? [];
      if (trace) {
        const out = new QueryText().line(`stack of ${session.target.name} task:`);
        addTrace(out, trace);
        await show(session, `stack ${pid}`, out);
      }
      return trace;
    }),
    /** Tasks in D grouped by stack, and each CPU's current task; resolves to the report. */
    vscode.commands.registerCommand('grass.showBlockedTasks', async (): Promise<BlockedReport | undefined> => {
      const session = requireSession(deps.sessions, 'show blocked tasks');
      if (!session) return undefined;
      const report = await cancellableQuery(session, 'blocked tasks', async () => blockedTasks(await session.model()));
      if (!report) return undefined;
      const out = new QueryText().line(`blocked tasks of ${session.target.name}:`);
      if (report.groups.length === 0) out.line('', 'no task in D state');
      for (const g of report.groups) {
        out.line('');
        const tasks: (string | [string, QueryLink])[] = [`${g.tasks.length} task(s) in D: `];
        g.tasks.forEach((t, i) => tasks.push(i ? ', ' : '', [String(t.pid), { pid: t.pid }], ` (${t.comm})`));
        out.line(...tasks);
        for (const f of g.frames) out.line(...frameParts(f));
      }
      for (const c of report.cpus) {
        out.line('');
        addTrace(out, c, `CPU ${c.cpu}: `);
      }
      await show(session, 'blocked tasks', out);
      return report;
    }),
    /** Loaded modules as /proc/modules prints them; resolves to the lines. */
    /** The Modules view's list read again; resolves to it. */
    vscode.commands.registerCommand('grass.refreshModules', () => deps.views.modulesProvider.list.refresh()),
    /** The Blocked Tasks view's groups read again; resolves to them. */
    vscode.commands.registerCommand('grass.refreshBlockedTasks', () => deps.views.blockedTasksProvider.groups.refresh()),
    /** A Modules view row: its struct module decoded (Struct Decoder), or its core text in the memory inspector. */
    vscode.commands.registerCommand('grass.module.decodeStruct', (item: ModuleItem) =>
      item?.kind === 'module' ? vscode.commands.executeCommand('grass.decodeStruct', `0x${item.module.structAddress.toString(16)}`, 'struct module') : undefined,
    ),
    vscode.commands.registerCommand('grass.module.openMemory', (item: ModuleItem) =>
      item?.kind === 'module' ? vscode.commands.executeCommand('grass.readMemory', `0x${item.module.address.toString(16)}`) : undefined,
    ),
    vscode.commands.registerCommand('grass.showModules', async (): Promise<string[] | undefined> => {
      const session = requireSession(deps.sessions, 'list modules');
      if (!session) return undefined;
      const modules = await cancellableQuery(session, 'modules', async () => listModules(await session.model()));
      if (!modules) return undefined;
      const lines = modules.map(procModulesLine);
      const out = new QueryText().line(`modules of ${session.target.name} (${lines.length}):`);
      for (const l of lines) out.line(l);
      await show(session, 'modules', out);
      return lines;
    }),
    /** What the target is: a summary (release, KASLR, uptime, taint, panicked, CPUs, memory), the agent, the monitor's view. Resolves to the text. */
    vscode.commands.registerCommand('grass.describeTarget', async (): Promise<string | undefined> => {
      const session = requireSession(deps.sessions, 'describe the target');
      if (!session) return undefined;
      const out = await cancellableQuery(session, 'describe', async () => {
        const [summary, held] = await Promise.all([kernelSummary(await session.model()), session.relayStatus().catch((err: Error) => ({ error: err.message }))]);
        const rows: [string, string][] = [
          ...summaryLines(summary),
          ['agent', `${session.client.backend} backend, writes ${session.client.writesAllowed ? 'allowed' : 'refused'}`],
          ['monitor', monitorLine(session, held)],
        ];
        const width = Math.max(...rows.map(([label]) => label.length)) + 2;
        const text = new QueryText().line(`${session.target.name} (${session.target.address})`).line('');
        for (const [label, value] of rows) text.line(label.padEnd(width), value);
        return text;
      });
      if (!out) return undefined;
      await show(session, 'describe', out);
      return out.lines.join('\n');
    }),
  ];
}

/** The monitor's view of the session in words: its state, since when, its last heartbeat. */
function monitorLine(session: LiveSession, held: TargetStatus | { error: string } | undefined): string {
  if (!session.heldBy) return 'not held (offline image, opened directly)';
  if (!held) return `the monitor at ${session.heldBy.socketPath} does not list this target`;
  if ('error' in held) return `the monitor at ${session.heldBy.socketPath} does not answer (${held.error})`;
  const last = held.last.heartbeatUs !== undefined ? `, last heartbeat ${held.last.heartbeatUs.toFixed(0)} µs at ${held.last.at ?? '?'}` : '';
  return `${held.state}${held.failure ? ` (${held.failure})` : ''} since ${held.since}${last}; at ${session.heldBy.socketPath}`;
}
