// Blocked Tasks view: the connected target's tasks in uninterruptible sleep (D), grouped by
// identical kernel stacks with their count, largest group first (src/kernel/stacks
// blockedTasks, as `grass bt --blocked`): where the system waits, and how many wait there. A
// group's children are its frames (click: the memory inspector at the return address) and its
// tasks (click: revealed in Processes). Read when the view is first shown for a session and on
// refresh, under a progress in the view (./lazy-read; unwinding every D task is the longest of the queries).
import * as vscode from 'vscode';
import { blockedTasks, frameText, type BlockedGroup, type StackFrame } from '../kernel/stacks/stacks';
import type { Sessions } from '../session/sessions';
import { LazyRead } from './lazy-read';

export type BlockedItem =
  | { kind: 'group'; id: string; group: BlockedGroup }
  | { kind: 'frame'; id: string; frame: StackFrame }
  | { kind: 'task'; id: string; pid: number; comm: string }
  | { kind: 'message'; id: string; label: string };

export class BlockedTasksProvider implements vscode.TreeDataProvider<BlockedItem>, vscode.Disposable {
  readonly groups: LazyRead<BlockedGroup[]>;
  readonly onDidChangeTreeData: vscode.Event<void>;

  constructor(private readonly sessions: Sessions) {
    this.groups = new LazyRead(sessions, 'grass.blockedTasks', 'unwinding the blocked tasks', async (session) => (await blockedTasks(await session.model())).groups);
    this.onDidChangeTreeData = this.groups.onDidChange;
  }

  getChildren(element?: BlockedItem): BlockedItem[] {
    if (!this.sessions.current) return [];
    if (!element) {
      const groups = this.groups.shown;
      if (this.groups.error) return [{ kind: 'message', id: 'grass.blocked/error', label: this.groups.error }];
      if (!groups) return [];
      if (groups.length === 0) return [{ kind: 'message', id: 'grass.blocked/none', label: 'No task in uninterruptible sleep (D).' }];
      // A group is named by its lowest pid: stable while its tasks stay blocked.
      return groups.map((group) => ({ kind: 'group', id: `grass.blocked/${Math.min(...group.tasks.map((t) => t.pid))}`, group }));
    }
    if (element.kind !== 'group') return [];
    const g = element.group;
    return [
      ...g.frames.map((frame, i): BlockedItem => ({ kind: 'frame', id: `${element.id}/frame/${i}`, frame })),
      ...(g.note ? [{ kind: 'message' as const, id: `${element.id}/note`, label: g.note }] : []),
      ...g.tasks.map((t): BlockedItem => ({ kind: 'task', id: `${element.id}/task/${t.pid}`, pid: t.pid, comm: t.comm })),
    ];
  }

  getTreeItem(item: BlockedItem): vscode.TreeItem {
    switch (item.kind) {
      case 'message': {
        const tree = new vscode.TreeItem(item.label);
        tree.id = item.id;
        return tree;
      }
      case 'group': {
        const g = item.group;
        const comms = [...new Set(g.tasks.map((t) => t.comm))];
        const tree = new vscode.TreeItem(`${g.tasks.length} × ${comms.slice(0, 3).join(', ')}${comms.length > 3 ? ', …' : ''}`, vscode.TreeItemCollapsibleState.Collapsed);
        tree.id = item.id;
        // Where they wait: the innermost frame (the scheduler's own left out, as /proc/PID/stack).
        tree.description = g.frames.length ? frameText(g.frames[0]) : (g.note ?? 'no frames');
        tree.tooltip = `${g.tasks.length} task${g.tasks.length === 1 ? '' : 's'} in D with this stack: ${g.tasks.map((t) => `${t.pid} ${t.comm}`).join(', ')}`;
        tree.iconPath = new vscode.ThemeIcon('debug-pause');
        tree.contextValue = 'grass.blocked.group';
        return tree;
      }
      case 'frame': {
        const tree = new vscode.TreeItem(frameText(item.frame));
        tree.id = item.id;
        tree.iconPath = new vscode.ThemeIcon('debug-stackframe');
        tree.tooltip = `return address 0x${item.frame.address.toString(16)}: open it in the memory inspector`;
        tree.command = { command: 'grass.readMemory', title: 'Open in Memory Inspector', arguments: [`0x${item.frame.address.toString(16)}`] };
        return tree;
      }
      case 'task': {
        const tree = new vscode.TreeItem(`${item.pid} ${item.comm}`);
        tree.id = item.id;
        tree.iconPath = new vscode.ThemeIcon('person');
        tree.contextValue = 'grass.blocked.task';
        tree.command = { command: 'grass.faults.revealCulprit', title: 'Show in Processes', arguments: [item.pid] };
        return tree;
      }
    }
  }

  dispose(): void {
    this.groups.dispose();
  }
}
