// Modules view: the connected target's loaded modules, read from its memory (the kernel's
// `modules` list: src/kernel/modules), as /proc/modules has them: name, size, refcount, used by,
// state, core text base, taint letters. Read when the view is first shown for a session and on
// refresh (a module list changes rarely, and a dead kernel's never: ./lazy-read). Each row's
// context menu decodes its `struct module` or opens its text in the memory inspector.
import * as vscode from 'vscode';
import { listModules, procModulesLine, type ModuleRecord } from '../kernel/modules/modules';
import type { Sessions } from '../session/sessions';
import { LazyRead } from './lazy-read';
import { formatBytes } from './process-tree';

export type ModuleItem = { kind: 'module'; id: string; module: ModuleRecord } | { kind: 'message'; id: string; label: string };

export class ModulesProvider implements vscode.TreeDataProvider<ModuleItem>, vscode.Disposable {
  readonly list: LazyRead<ModuleRecord[]>;
  readonly onDidChangeTreeData: vscode.Event<void>;

  constructor(private readonly sessions: Sessions) {
    this.list = new LazyRead(sessions, 'grass.modules', 'reading the module list', async (session) => listModules(await session.model()));
    this.onDidChangeTreeData = this.list.onDidChange;
  }

  getChildren(element?: ModuleItem): ModuleItem[] {
    const session = this.sessions.current;
    if (element || !session) return [];
    const modules = this.list.shown;
    if (this.list.error) return [{ kind: 'message', id: 'grass.module/error', label: this.list.error }];
    if (!modules) return [];
    if (modules.length === 0) return [{ kind: 'message', id: 'grass.module/none', label: 'No modules loaded.' }];
    return modules.map((module) => ({ kind: 'module', id: `grass.module/${session.target.name}/${module.name}`, module }));
  }

  getTreeItem(item: ModuleItem): vscode.TreeItem {
    const tree = new vscode.TreeItem(item.kind === 'module' ? item.module.name : item.label);
    tree.id = item.id;
    if (item.kind === 'message') return tree;
    const m = item.module;
    tree.description = [formatBytes(BigInt(m.size)), m.state, m.taints ? `(${m.taints})` : '', `0x${m.address.toString(16)}`].filter(Boolean).join(' · ');
    // /proc/modules' line, and what the row's menu acts on.
    tree.tooltip = new vscode.MarkdownString()
      .appendCodeblock(procModulesLine(m), 'text')
      .appendMarkdown(`\n\n\`struct module\` at \`0x${m.structAddress.toString(16)}\`; used by ${m.usedBy.length ? m.usedBy.join(', ') : 'none'}; refcount ${m.refcount}.`);
    tree.iconPath = new vscode.ThemeIcon('package', m.taints ? new vscode.ThemeColor('list.warningForeground') : undefined);
    tree.contextValue = 'grass.module';
    return tree;
  }

  dispose(): void {
    this.list.dispose();
  }
}
