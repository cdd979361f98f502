// The Processes view's commands: refresh, filter, order, tree or flat, and a process's context menu.
import * as vscode from 'vscode';
import type { ProcessItem } from '../views/processes';
import { PROCESS_SORTS, type ProcessSort } from '../views/process-tree';
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
    /** Orders the rows: 'pid', 'cpu' (CPU time), 'rss' or 'state' as the argument, else asked for. */
    vscode.commands.registerCommand('grass.sortProcesses', async (arg?: unknown) => {
      const sorts = Object.keys(PROCESS_SORTS) as ProcessSort[];
      const sort =
        typeof arg === 'string' && (sorts as string[]).includes(arg)
          ? (arg as ProcessSort)
          : (await vscode.window.showQuickPick(sorts.map((key) => ({ label: PROCESS_SORTS[key], key, picked: key === provider.sort })), { title: 'GRASS: sort processes by' }))?.key;
      if (sort) provider.setSort(sort);
    }),
    /** Nests processes under their parents, or lists them flat again (a boolean argument says which). */
    vscode.commands.registerCommand('grass.toggleProcessTree', (nested?: unknown) => provider.setNested(typeof nested === 'boolean' ? nested : !provider.nested)),
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
