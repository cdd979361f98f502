// The Processes view's commands: refresh, filter, and a process's context menu.
import * as vscode from 'vscode';
import type { ProcessItem } from '../views/processes';
import type { CommandDeps } from './deps';

function taskExpression(item: ProcessItem): string {
  return `*(struct task_struct *)0x${item.task.taskAddress.toString(16)}`;
}

export function registerProcessCommands(deps: CommandDeps): vscode.Disposable[] {
  const provider = deps.views.processesProvider;
  return [
    vscode.commands.registerCommand('grass.refreshProcesses', () => provider.refresh()),
    vscode.commands.registerCommand('grass.filterProcesses', async (text?: unknown) => {
      const filter =
        typeof text === 'string'
          ? text
          : await vscode.window.showInputBox({ title: 'GRASS: filter processes', prompt: 'Part of a name, or a pid (empty: show all)', value: provider.filter });
      if (filter !== undefined) provider.setFilter(filter);
    }),
    vscode.commands.registerCommand('grass.process.decodeTask', (item: ProcessItem) => vscode.commands.executeCommand('grass.decodeStruct', taskExpression(item))),
    vscode.commands.registerCommand('grass.process.openMemory', (item: ProcessItem) =>
      vscode.commands.executeCommand('grass.readMemory', `0x${item.task.taskAddress.toString(16)}`, 256),
    ),
    vscode.commands.registerCommand('grass.process.copyPid', (item: ProcessItem) => vscode.env.clipboard.writeText(String(item.task.pid))),
    /** Reveals the parent process in the tree; resolves to it. */
    vscode.commands.registerCommand('grass.process.showParent', async (item: ProcessItem): Promise<ProcessItem | undefined> => {
      const parent = await provider.findPid(item.task.ppid);
      if (!parent) {
        void vscode.window.showInformationMessage(`GRASS: the parent of ${item.task.pid} (pid ${item.task.ppid}) is not listed.`);
        return undefined;
      }
      await deps.views.processes.reveal(parent, { select: true, focus: true });
      return parent;
    }),
  ];
}
