// Processes view: the connected target's tasks read from its memory (remote-analysis mode,
// src/kernel/tasks), thread-group leaders with their other threads as children (./process-tree),
// flat or nested under their parent processes, sorted by pid, CPU time, RSS or state; the view's
// title says when the list was read ("as of") and which filter and order apply.
// Ids are stable across refreshes (target, tgid, pid) so expansion survives and `reveal` works.
// Every task row has a "kernel stack" child: expanded, the task's stack is unwound from memory
// (src/kernel/stacks: ORC from its saved registers, or inferred when it is on a CPU), its frames
// as children (click: the memory inspector at the return address).
import * as vscode from 'vscode';
import type { Sessions } from '../session/sessions';
import { frameText, StackContext, type StackFrame, type StackTrace } from '../kernel/stacks/stacks';
import { listTasks } from '../kernel/tasks/tasks';
import type { TaskRecord } from '../types/task-record';
import type { CulpritMarks } from './faults';
import { buildProcessTree, compareProcesses, nestProcesses, PROCESS_SORTS, processRow, updateProcessTree, type ProcessItem, type ProcessSort } from './process-tree';

export type { ProcessItem } from './process-tree';

/** A row of the Processes view: a task, its "kernel stack" row, a frame or a note of that stack. */
export type ProcessNode =
  | ProcessItem
  | { kind: 'stack'; id: string; owner: ProcessItem }
  | { kind: 'frame'; id: string; owner: ProcessItem; frame: StackFrame }
  | { kind: 'stack-note'; id: string; owner: ProcessItem; label: string };

export class ProcessesProvider implements vscode.TreeDataProvider<ProcessNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ProcessItem[] | void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[];
  private processes: ProcessItem[] = [];
  private byId = new Map<string, ProcessItem>();
  private filterText = '';
  /** The target the filter was set for: another target starts unfiltered. */
  private filterTarget: string | undefined;
  private sortKey: ProcessSort = 'pid';
  private nestedView = false;
  /** Nested: the roots and each process's child processes, in sort order. */
  private nesting: ReturnType<typeof nestProcesses> | undefined;
  /** When the rows were last read from the target. */
  private readAt: Date | undefined;
  /** Why the last listing failed, shown as the view's message. */
  error: string | undefined;
  /** The latest refresh asked for (what readers of the list wait for). */
  private loading: Promise<void> | undefined;
  /** The read in progress, and the one waiting for it to end. */
  private reading: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  view: vscode.TreeView<ProcessNode> | undefined;
  private autoRefresh: NodeJS.Timeout | undefined;
  private culprits: CulpritMarks = new Map();

  constructor(private readonly sessions: Sessions) {
    this.subscriptions = [
      sessions.onDidChange(() => {
        this.traces.clear();
        if (this.filterText && sessions.current?.target.name !== this.filterTarget) this.setFilter('');
        void this.refresh();
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('grass.processes.refreshIntervalSeconds')) this.scheduleAutoRefresh();
      }),
    ];
    this.scheduleAutoRefresh();
  }

  // `grass.processes.refreshIntervalSeconds` (default 5; 0: only on demand). The next refresh is
  // scheduled after the last one ended, and skipped while the view is hidden or no live target
  // is connected (an offline image does not change).
  private scheduleAutoRefresh(): void {
    clearTimeout(this.autoRefresh);
    const seconds = vscode.workspace.getConfiguration('grass').get<number>('processes.refreshIntervalSeconds', 5);
    if (!(seconds > 0)) return;
    this.autoRefresh = setTimeout(() => {
      const kind = this.sessions.current?.target.parsed.kind;
      const wanted = (kind === 'shm' || kind === 'rdma') && this.view?.visible === true;
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

  /** Shows only processes whose comm contains `text` or whose pid (or a thread's) is `text` (flat, in sort order). */
  setFilter(text: string): void {
    this.filterText = text.trim();
    this.filterTarget = this.sessions.current?.target.name;
    this.describe();
    this.changed.fire();
  }

  get sort(): ProcessSort {
    return this.sortKey;
  }

  get nested(): boolean {
    return this.nestedView;
  }

  /** Orders the rows (and every process's child processes). */
  setSort(sort: ProcessSort): void {
    this.sortKey = sort;
    this.arrange();
  }

  /** Nests processes under their parents (true) or lists them flat (false). */
  setNested(nested: boolean): void {
    this.nestedView = nested;
    this.arrange();
  }

  private arrange(): void {
    this.processes.sort(compareProcesses(this.sortKey));
    this.nesting = this.nestedView ? nestProcesses(this.processes, this.sortKey) : undefined;
    this.describe();
    this.changed.fire();
  }

  // The title's description: the filter and order in effect, and when the rows were read.
  private describe(): void {
    if (!this.view) return;
    // (What hides or moves rows first: a narrow side bar cuts the end.)
    const parts = [
      this.filterText ? `filter: ${this.filterText}` : '',
      this.nestedView ? 'tree' : '',
      this.sortKey !== 'pid' ? `by ${PROCESS_SORTS[this.sortKey]}` : '',
      this.readAt ? `as of ${this.readAt.toTimeString().slice(0, 8)}` : '',
    ];
    this.view.description = parts.filter(Boolean).join(' · ') || undefined;
  }

  /**
   * Re-reads the task list from the target; resolves when the view has the new list. Reads never
   * overlap: asked during one, a second read starts after it (and every other request meanwhile
   * shares that second read).
   */
  refresh(): Promise<void> {
    if (this.queued) return this.queued;
    const next = (): Promise<void> => {
      this.reading = this.load().finally(() => (this.reading = undefined));
      return this.reading;
    };
    this.loading = this.reading
      ? (this.queued = this.reading.then(() => {
          this.queued = undefined;
          return next();
        }))
      : next();
    return this.loading;
  }

  private async load(): Promise<void> {
    const session = this.sessions.current;
    if (!session) {
      this.processes = [];
      this.byId.clear();
      this.nesting = undefined;
      this.readAt = undefined;
      this.error = undefined;
      this.setMessage(undefined);
      this.describe();
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
      // (updateProcessTree compares in pid order, the order buildProcessTree gives.)
      this.processes.sort(compareProcesses('pid'));
      const changed = this.error === undefined ? updateProcessTree({ processes: this.processes, byId: this.byId }, fresh) : undefined;
      this.error = undefined;
      this.setMessage(undefined);
      this.readAt = new Date();
      if (changed && this.sortKey === 'pid' && !this.nestedView) {
        this.describe();
        if (changed.length > 0) this.changed.fire(changed);
        return;
      }
      // Another order or the tree: a changed row may move, so the whole list is arranged again.
      if (!changed) ({ processes: this.processes, byId: this.byId } = fresh);
      this.arrange();
      return;
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

  /** The traces read for "kernel stack" rows, by the stack row's id, until the task's row is read again. */
  private readonly traces = new Map<string, { task: ProcessItem['task']; trace: Promise<StackTrace> }>();

  async getChildren(): Promise<ProcessItem[]>;
  async getChildren(element: ProcessNode): Promise<ProcessNode[]>;
  async getChildren(element?: ProcessNode): Promise<ProcessNode[]> {
    if (!element) {
      await this.loading;
      if (this.filterText) return this.processes.filter((p) => this.matches(p));
      return this.nesting?.roots ?? this.processes;
    }
    if (element.kind === 'stack') return this.stackChildren(element);
    if (element.kind !== 'process' && element.kind !== 'thread') return [];
    const stack: ProcessNode = { kind: 'stack', id: `${element.id}/stack`, owner: element };
    if (element.kind === 'thread') return [stack];
    return [stack, ...(this.filterText ? element.threads : [...element.threads, ...this.childProcesses(element)])];
  }

  /** The stack of a task, unwound when its row is expanded (a task read anew is unwound anew). */
  private async stackChildren(element: Extract<ProcessNode, { kind: 'stack' }>): Promise<ProcessNode[]> {
    const session = this.sessions.current;
    if (!session) return [];
    const task = element.owner.task;
    let cached = this.traces.get(element.id);
    if (!cached || cached.task !== task) {
      const trace = vscode.window.withProgress({ location: { viewId: 'grass.processes' }, title: `unwinding the stack of ${task.pid}` }, async () => {
        // (The ORC tables and symbols are read per unwind: a module loaded since is covered.)
        const ctx = await StackContext.create(await session.model());
        return ctx.trace(task);
      });
      cached = { task, trace: Promise.resolve(trace) };
      this.traces.set(element.id, cached);
    }
    let trace: StackTrace;
    try {
      trace = await cached.trace;
    } catch (err) {
      this.traces.delete(element.id);
      return [{ kind: 'stack-note', id: `${element.id}/error`, owner: element.owner, label: `cannot unwind: ${(err as Error).message}` }];
    }
    return [
      ...trace.frames.map((frame, i): ProcessNode => ({ kind: 'frame', id: `${element.id}/${i}`, owner: element.owner, frame })),
      ...(trace.note ? [{ kind: 'stack-note' as const, id: `${element.id}/note`, owner: element.owner, label: trace.note }] : []),
    ];
  }

  private childProcesses(item: ProcessItem): ProcessItem[] {
    return this.nesting?.children.get(item.task.pid) ?? [];
  }

  getParent(element: ProcessNode): ProcessNode | undefined {
    if (element.kind === 'stack') return element.owner;
    if (element.kind === 'frame' || element.kind === 'stack-note') return { kind: 'stack', id: `${element.owner.id}/stack`, owner: element.owner };
    if (element.kind === 'thread') return this.byId.get(element.leader.id);
    if (!this.nesting || this.filterText) return undefined;
    const parent = this.processes.find((p) => p.task.pid === element.task.ppid);
    return parent && parent !== element ? parent : undefined;
  }

  getTreeItem(item: ProcessNode): vscode.TreeItem {
    if (item.kind === 'stack') {
      const t = item.owner.task;
      const tree = new vscode.TreeItem('kernel stack', vscode.TreeItemCollapsibleState.Collapsed);
      tree.id = item.id;
      // What the unwind starts from: a task on a CPU has no saved registers (its frames are inferred).
      tree.description = t.state === 'D' ? 'uninterruptible: where it waits' : t.state === 'R' ? 'running: inferred if on a CPU' : undefined;
      tree.iconPath = new vscode.ThemeIcon('debug-stackframe');
      tree.contextValue = 'grass.process.stack';
      return tree;
    }
    if (item.kind === 'frame') {
      const tree = new vscode.TreeItem(frameText(item.frame));
      tree.id = item.id;
      tree.tooltip = `return address 0x${item.frame.address.toString(16)}: open it in the memory inspector`;
      tree.command = { command: 'grass.readMemory', title: 'Open in Memory Inspector', arguments: [`0x${item.frame.address.toString(16)}`] };
      return tree;
    }
    if (item.kind === 'stack-note') {
      const tree = new vscode.TreeItem(item.label);
      tree.id = item.id;
      tree.tooltip = item.label;
      return tree;
    }
    const row = processRow(item, this.culprits.get(item.task.pid));
    // Every task has its kernel stack as a child.
    const tree = new vscode.TreeItem(row.label, vscode.TreeItemCollapsibleState.Collapsed);
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
