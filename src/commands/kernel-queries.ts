// Kernel queries of the command palette that print to the output channel: stack traces of a
// task (picked from the process list), tasks blocked in D with each CPU's current task, loaded
// modules, and what the target is. Each runs under a progress notification with Cancel: a
// cancelled query's reads in flight finish, its result is dropped.
import * as vscode from 'vscode';
import { listModules, procModulesLine } from '../kernel/modules/modules';
import { blockedTasks, frameText, stackTraces, type BlockedReport, type StackTrace } from '../kernel/stacks/stacks';
import type { ProcessItem } from '../views/processes';
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

function traceText(t: StackTrace, prefix = ''): string {
  const head = `${prefix}${t.pid} ${t.comm} (state ${t.state}, ${t.method === 'orc' ? 'unwound' : 'running: stack scanned'})`;
  return [head, ...t.frames.map((f) => `  ${frameText(f)}`), ...(t.note ? [`  [${t.note}]`] : [])].join('\n');
}

export function registerKernelQueryCommands(deps: CommandDeps): vscode.Disposable[] {
  const print = (text: string): void => {
    deps.output.info(text);
    deps.output.show(true);
  };
  return [
    /** The kernel stack of a task (argument: a pid or a Processes tree item); resolves to the trace. */
    vscode.commands.registerCommand('grass.showStackTrace', async (arg?: unknown): Promise<StackTrace | undefined> => {
      const session = requireSession(deps.sessions, 'show a stack trace');
      if (!session) return undefined;
      const pid = await pickPid(deps, arg, 'stack trace of');
      if (pid === undefined) return undefined;
      const [trace] = (await cancellableQuery(session, `stack of ${pid}`, async () => stackTraces(await session.model(), [pid]))) ?? [];
      if (trace) print(`stack of ${session.target.name} task ${traceText(trace)}`);
      return trace;
    }),
    /** Tasks in D grouped by stack, and each CPU's current task; resolves to the report. */
    vscode.commands.registerCommand('grass.showBlockedTasks', async (): Promise<BlockedReport | undefined> => {
      const session = requireSession(deps.sessions, 'show blocked tasks');
      if (!session) return undefined;
      const report = await cancellableQuery(session, 'blocked tasks', async () => blockedTasks(await session.model()));
      if (!report) return undefined;
      const groups = report.groups.map((g) => [`${g.tasks.length} task(s) in D: ${g.tasks.map((t) => `${t.pid} (${t.comm})`).join(', ')}`, ...g.frames.map((f) => `  ${frameText(f)}`)].join('\n'));
      print([`blocked tasks of ${session.target.name}:`, ...(groups.length ? groups : ['no task in D state']), ...report.cpus.map((c) => traceText(c, `CPU ${c.cpu}: `))].join('\n\n'));
      return report;
    }),
    /** Loaded modules as /proc/modules prints them; resolves to the lines. */
    vscode.commands.registerCommand('grass.showModules', async (): Promise<string[] | undefined> => {
      const session = requireSession(deps.sessions, 'list modules');
      if (!session) return undefined;
      const modules = await cancellableQuery(session, 'modules', async () => listModules(await session.model()));
      if (!modules) return undefined;
      const lines = modules.map(procModulesLine);
      print(`modules of ${session.target.name} (${lines.length}):\n${lines.join('\n')}`);
      return lines;
    }),
    /** What the target is: kernel, CPUs, agent, and the monitor's view of the session. */
    vscode.commands.registerCommand('grass.describeTarget', async (): Promise<string | undefined> => {
      const session = requireSession(deps.sessions, 'describe the target');
      if (!session) return undefined;
      const text = await cancellableQuery(session, 'describe', async () => {
        const d = await session.client.describe();
        const held = await session.relayStatus().catch((err: Error) => ({ error: err.message }));
        return [
          `${session.target.name} (${session.target.address})`,
          `kernel ${d.release}, ${d.cpuCount} CPUs, ${d.symbols.length} symbols, BTF ${d.btf.length} bytes`,
          `agent: ${session.client.backend} backend, writes ${session.client.writesAllowed ? 'allowed' : 'refused'}`,
          session.heldBy ? `held by the monitor at ${session.heldBy.socketPath}: ${JSON.stringify(held)}` : 'opened directly (offline image), not held by a monitor',
        ].join('\n');
      });
      if (text) print(text);
      return text;
    }),
  ];
}
