// Queries answered from the target: process list, kernel log, detection results, SHFH metrics.
import * as vscode from 'vscode';
import { fetchDetections, type Detection } from '../detect/detections';
import { fetchMetrics, type MetricsWindow } from '../detect/metrics';
import { listTasks } from '../kernel/tasks/tasks';
import type { TaskRecord } from '../types/task-record';
import { detectionTitle } from '../detect/detection-title';
import type { CommandDeps } from './deps';
import { requireSession } from './require-session';
import { QueryText, type QueryLink } from '../views/query-documents';

export function registerQueryCommands(deps: CommandDeps): vscode.Disposable[] {
  return [
    /** Asks the agent for its detectors' state now (a DETECT request), shows it in a query
     * document and refreshes the Faults view; resolves to the detections. */
    vscode.commands.registerCommand('grass.runDetection', async (): Promise<Detection[] | undefined> => {
      const session = requireSession(deps.sessions, 'run detection');
      if (!session) return undefined;
      try {
        const detections = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'GRASS: detection' }, () => fetchDetections(session.client));
        const out = new QueryText().line(`detection on ${session.target.name}:`);
        for (const d of detections) {
          const head = `  ${detectionTitle(d)}: `;
          if (d.error || !d.active) {
            out.line(head, d.error ? `could not evaluate (${d.error})` : 'not detected');
            continue;
          }
          const culprits: (string | [string, QueryLink])[] = [];
          d.culprits.forEach((c, i) => culprits.push(i ? ', ' : '', [String(c.pid), { pid: c.pid }], ` ${c.comm}`));
          out.line(head, 'DETECTED; culprits ', ...(culprits.length ? culprits : ['none']));
        }
        await deps.views.queryDocuments.show(session.target.name, 'detection', out);
        await deps.views.faultsProvider.poll();
        return detections;
      } catch (err) {
        void vscode.window.showErrorMessage(`GRASS: cannot run detection on ${session.target.name}: ${(err as Error).message}`);
        return undefined;
      }
    }),
    /** The SHFH metrics of the agent's latest window (per CPU shares, rates, memory), in a query document. */
    vscode.commands.registerCommand('grass.showShfhMetrics', async (): Promise<MetricsWindow | undefined> => {
      const session = requireSession(deps.sessions, 'show SHFH metrics');
      if (!session) return undefined;
      try {
        const window = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'GRASS: metrics' }, () => fetchMetrics(session.client));
        const out = new QueryText().line(`SHFH metrics of ${session.target.name} (${window.windowSeconds.toFixed(2)} s window):`);
        for (const l of JSON.stringify(window, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2).split('\n')) out.line(l);
        await deps.views.queryDocuments.show(session.target.name, 'metrics', out);
        return window;
      } catch (err) {
        void vscode.window.showErrorMessage(`GRASS: cannot read the metrics of ${session.target.name}: ${(err as Error).message}`);
        return undefined;
      }
    }),
    vscode.commands.registerCommand('grass.refreshFaults', () => deps.views.faultsProvider.poll()),
    /** Reveals a culprit pid in the Processes tree; resolves to its item. */
    vscode.commands.registerCommand('grass.faults.revealCulprit', async (pid: unknown) => {
      const item = typeof pid === 'number' ? await deps.views.processesProvider.findPid(pid) : undefined;
      if (!item) {
        void vscode.window.showInformationMessage(`GRASS: pid ${String(pid)} is not in the Processes tree (refresh it).`);
        return undefined;
      }
      await deps.views.processes.reveal(item, { select: true, focus: true });
      return item;
    }),
    /** A frame of a fault report's call trace, at its return address in the memory inspector; resolves to the panel. */
    vscode.commands.registerCommand('grass.faults.openFrame', async (text: unknown) => {
      if (typeof text !== 'string') return undefined;
      let address: bigint;
      try {
        address = await deps.views.faultsProvider.frameAddress(text);
      } catch (err) {
        void vscode.window.showErrorMessage(`GRASS: cannot open ${text}: ${(err as Error).message}`);
        return undefined;
      }
      return vscode.commands.executeCommand('grass.readMemory', `0x${address.toString(16)}`);
    }),
    /** The task list (threads too) in a query document, pids linked to Processes; resolves to it. */
    vscode.commands.registerCommand('grass.showProcessList', async (): Promise<TaskRecord[] | undefined> => {
      const session = requireSession(deps.sessions, 'show the process list');
      if (!session) return undefined;
      try {
        const { tasks } = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'GRASS: reading the task list' }, async () =>
          listTasks(await session.model(), { threads: true }),
        );
        const out = new QueryText().line(`processes of ${session.target.name} (${tasks.length} tasks):`).line('    PID    TGID    PPID CPU  S   RSS(kB) COMMAND');
        const pid = (n: number): [string, QueryLink] => [String(n), { pid: n }];
        for (const t of tasks) {
          out.line(' '.repeat(Math.max(0, 7 - String(t.pid).length)), pid(t.pid), ' '.repeat(Math.max(1, 8 - String(t.tgid).length)), pid(t.tgid), ` ${String(t.ppid).padStart(7)} ${String(t.cpu).padStart(3)} ${t.state.padStart(2)} ${String(Number(t.rssBytes) / 1024).padStart(9)} ${t.comm}`);
        }
        await deps.views.queryDocuments.show(session.target.name, 'processes', out);
        return tasks;
      } catch (err) {
        void vscode.window.showErrorMessage(`GRASS: cannot list the processes of ${session.target.name}: ${(err as Error).message}`);
        return undefined;
      }
    }),
    /** Opens the kernel log document (followed while open); resolves to it. */
    vscode.commands.registerCommand('grass.showKernelLog', async (): Promise<vscode.TextDocument | undefined> => {
      const session = requireSession(deps.sessions, 'show the kernel log');
      if (!session) return undefined;
      try {
        const doc = await vscode.workspace.openTextDocument(deps.views.kernelLog.uriFor(session.target.name));
        await vscode.window.showTextDocument(doc, { preview: false });
        return doc;
      } catch (err) {
        void vscode.window.showErrorMessage(`GRASS: cannot read the kernel log of ${session.target.name}: ${(err as Error).message}`);
        return undefined;
      }
    }),
  ];
}
