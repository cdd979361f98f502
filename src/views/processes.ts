// Processes view: the connected target's tasks read from its memory (remote-analysis mode,
// src/kernel/tasks), thread-group leaders with their other threads as children (./processTree).
// Ids are stable across refreshes (target, tgid, pid) so expansion survives and `reveal` works.
import * as vscode from 'vscode';
import type { Sessions } from '../session/sessions';
import { listTasks } from '../kernel/tasks/tasks';
import type { TaskRecord } from '../types/task-record';
import type { CulpritMarks } from './faults';
import { buildProcessTree, processRow, updateProcessTree, type ProcessItem } from './process-tree';

export type { ProcessItem } from './process-tree';

export class ProcessesProvider implements vscode.TreeDataProvider<ProcessItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ProcessItem[] | void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[];
  private processes: ProcessItem[] = [];
  private byId = new Map<string, ProcessItem>();
  private filterText = '';
  /** Why the last listing failed, shown as the view's message. */
  error: string | undefined;
  private loading: Promise<void> | undefined;
  view: vscode.TreeView<ProcessItem> | undefined;
  private autoRefresh: NodeJS.Timeout | undefined;
  private culprits: CulpritMarks = new Map();

  constructor(private readonly sessions: Sessions) {
    this.subscriptions = [
      sessions.onDidChange(() => void this.refresh()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('grass.processes.refreshIntervalSeconds')) this.scheduleAutoRefresh();
      }),
    ];
    this.scheduleAutoRefresh();
  }

  // `grass.processes.refreshIntervalSeconds` (0: only on demand). The next refresh is scheduled
  // after the last one ended, and skipped while the view is hidden or no target is connected.
  private scheduleAutoRefresh(): void {
    clearTimeout(this.autoRefresh);
    const seconds = vscode.workspace.getConfiguration('grass').get<number>('processes.refreshIntervalSeconds', 0);
    if (!(seconds > 0)) return;
    this.autoRefresh = setTimeout(() => {
      const wanted = this.sessions.current !== undefined && this.view?.visible === true;
      void (wanted ? this.refresh() : Promise.resolve()).finally(() => this.scheduleAutoRefresh());
    }, seconds * 1000);
  }

  /** Marks the pids the Faults view blames (active detections); the rows re-render. */
  setCulprits(marks: CulpritMarks): void {
    this.culprits = marks;
    this.changed.fire();
  }

  /** What the Faults view blames a pid for, if anything. */
  culpritOf(pid: number): string | undefined {
    return this.culprits.get(pid);
  }

  get filter(): string {
    return this.filterText;
  }

  /** Shows only processes whose comm contains `text` or whose pid (or a thread's) is `text`. */
  setFilter(text: string): void {
    this.filterText = text.trim();
    if (this.view) this.view.description = this.filterText ? `filter: ${this.filterText}` : undefined;
    this.changed.fire();
  }

  /** Re-reads the task list from the target; resolves when the view has the new list. */
  refresh(): Promise<void> {
    this.loading = this.load();
    return this.loading;
  }

  private async load(): Promise<void> {
    const session = this.sessions.current;
    if (!session) {
      this.processes = [];
      this.byId.clear();
      this.error = undefined;
      this.setMessage(undefined);
      this.changed.fire();
      return;
    }
    try {
      const model = await session.model();
      const { tasks } = await listTasks(model, { threads: true });
      const fresh = buildProcessTree(session.target.name, tasks);
      // Only rows that show something new are re-rendered (a hung kernel's list does not
      // change at all): VS Code's extension host keeps memory for every row it renders until
      // the view is disposed.
      const changed = this.error === undefined ? updateProcessTree({ processes: this.processes, byId: this.byId }, fresh) : undefined;
      this.error = undefined;
      this.setMessage(undefined);
      if (changed) {
        if (changed.length > 0) this.changed.fire(changed);
        return;
      }
      ({ processes: this.processes, byId: this.byId } = fresh);
    } catch (err) {
      this.error = `cannot list the processes of ${session.target.name}: ${(err as Error).message}`;
      this.setMessage(this.error);
    }
    this.changed.fire();
  }

  private setMessage(message: string | undefined): void {
    if (this.view) this.view.message = message;
  }

  /** Every process listed (before filtering), for commands and tests. */
  async allProcesses(): Promise<ProcessItem[]> {
    await this.loading;
    return this.processes;
  }

  /** The item of a pid (a process or a thread), once the list is loaded. */
  async findPid(pid: number): Promise<ProcessItem | undefined> {
    await this.loading;
    for (const p of this.processes) {
      if (p.task.pid === pid) return p;
      const thread = p.kind === 'process' ? p.threads.find((t) => t.task.pid === pid) : undefined;
      if (thread) return thread;
    }
    return undefined;
  }

  private matches(item: ProcessItem): boolean {
    const f = this.filterText;
    if (!f) return true;
    const hit = (t: TaskRecord) => t.comm.includes(f) || String(t.pid) === f;
    return hit(item.task) || (item.kind === 'process' && item.threads.some((t) => hit(t.task)));
  }

  async getChildren(element?: ProcessItem): Promise<ProcessItem[]> {
    if (!element) {
      await this.loading;
      return this.processes.filter((p) => this.matches(p));
    }
    return element.kind === 'process' ? element.threads : [];
  }

  getParent(element: ProcessItem): ProcessItem | undefined {
    return element.kind === 'thread' ? this.byId.get(element.leader.id) : undefined;
  }

  getTreeItem(item: ProcessItem): vscode.TreeItem {
    const row = processRow(item, this.culprits.get(item.task.pid));
    const tree = new vscode.TreeItem(row.label, row.hasChildren ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    tree.id = item.id;
    tree.description = row.description;
    tree.iconPath = row.culprit ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('errorForeground')) : new vscode.ThemeIcon(row.icon);
    tree.tooltip = new vscode.MarkdownString(row.tooltip.join('\n\n'));
    tree.contextValue = item.kind === 'process' ? 'grass.process' : 'grass.thread';
    return tree;
  }

  dispose(): void {
    clearTimeout(this.autoRefresh);
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
  }
}
