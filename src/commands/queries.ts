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
    /**
     * Opens the kernel log document at the header line of the log's last panic, oops or BUG (the
     * Faults view's reports, read now); resolves to that line (0-based), undefined when none.
     */
    vscode.commands.registerCommand('grass.kernelLog.goToLastPanic', async (): Promise<number | undefined> => {
      const session = requireSession(deps.sessions, 'go to the last panic');
      if (!session) return undefined;
      await deps.views.faultsProvider.poll();
      const report = [...(deps.views.faultsProvider.panic?.reports ?? [])].reverse().find((r) => r.kind === 'panic' || r.kind === 'oops' || r.kind === 'bug');
      if (!report) {
        void vscode.window.showInformationMessage(`GRASS: no panic, oops or BUG in the kernel log of ${session.target.name}${deps.views.faultsProvider.logError ? ` (${deps.views.faultsProvider.logError})` : ''}.`);
        return undefined;
      }
      const doc = await vscode.commands.executeCommand<vscode.TextDocument | undefined>('grass.showKernelLog');
      if (!doc) return undefined;
      // A document open before has the record once its next poll (a second) read it.
      let first = deps.views.kernelLog.lineOf(doc.uri, report.firstSeq);
      for (let tries = 0; first === undefined && tries < 30; tries++) {
        await new Promise((r) => setTimeout(r, 100));
        first = deps.views.kernelLog.lineOf(doc.uri, report.firstSeq);
      }
      if (first === undefined || first >= doc.lineCount) {
        void vscode.window.showInformationMessage(`GRASS: the ${report.kind} (record ${report.firstSeq}) is not in the log document yet.`);
        return undefined;
      }
      // The header is the first line of its record's text that ends with the report's message.
      const header = report.message.split('\n')[0];
      let line = first;
      while (line + 1 < doc.lineCount && line - first < 64 && !doc.lineAt(line).text.endsWith(header)) line++;
      if (!doc.lineAt(line).text.endsWith(header)) line = first;
      const editor = await vscode.window.showTextDocument(doc, { preview: false });
      const at = new vscode.Position(line, 0);
      editor.selection = new vscode.Selection(at, doc.lineAt(line).range.end);
      editor.revealRange(new vscode.Range(at, at), vscode.TextEditorRevealType.InCenter);
      return line;
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
