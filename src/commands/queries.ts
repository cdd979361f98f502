// Queries answered from the target: process list, kernel log; detection and SHFH metrics wait
// for the detection plugins.
import * as vscode from 'vscode';
import { listTasks, type TaskRecord } from '../kernel/tasks/tasks';
import type { CommandDeps } from './deps';
import { requireSession } from './sessions';

const notYet: [command: string, what: string][] = [
  ['grass.runDetection', 'run detection'],
  ['grass.showShfhMetrics', 'show SHFH metrics'],
];

export function registerQueryCommands(deps: CommandDeps): vscode.Disposable[] {
  return [
    ...notYet.map(([command, what]) =>
      vscode.commands.registerCommand(command, () => {
        if (requireSession(deps.sessions, what)) void vscode.window.showInformationMessage(`GRASS: cannot ${what} yet: the detection plugins do not exist yet.`);
      }),
    ),
    /** Prints the task list (threads too) to the output channel; resolves to it. */
    vscode.commands.registerCommand('grass.showProcessList', async (): Promise<TaskRecord[] | undefined> => {
      const session = requireSession(deps.sessions, 'show the process list');
      if (!session) return undefined;
      try {
        const { tasks } = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'GRASS: reading the task list' }, async () =>
          listTasks(await session.model(), { threads: true }),
        );
        const rows = tasks.map((t) => `${String(t.pid).padStart(7)} ${String(t.tgid).padStart(7)} ${String(t.ppid).padStart(7)} ${String(t.cpu).padStart(3)} ${t.state.padStart(2)} ${String(Number(t.rssBytes) / 1024).padStart(9)} ${t.comm}`);
        deps.output.info(`processes of ${session.target.name} (${tasks.length} tasks):\n    PID    TGID    PPID CPU  S   RSS(kB) COMMAND\n${rows.join('\n')}`);
        deps.output.show(true);
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
