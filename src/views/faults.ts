// Faults view: first what the kernel itself said, the fault reports of its log (panic, oops,
// lockups, hung tasks, RCU stalls, warnings: src/kernel/log/faults.ts), the log followed through
// the agent's reads with panic_cpu (src/detect/panic.ts); then the agent's detection results
// (src/detect) for the connected target, read from the buffer header's background area (no
// request, so it answers while the target's monitor is stuck; falls back to a DETECT request
// before the first background results), polled every `grass.faults.pollIntervalSeconds`. A
// panicked kernel is said to be panicked, and the hang classes its stopped CPUs match are shown
// as explained by the panic, not as a hang. Each detection: class, evidence (its figures),
// culprits, since when; a notification when a new one appears; culprit pids go to the Processes tree.
import * as vscode from 'vscode';
import type { Sessions } from '../session/sessions';
import type { LiveSession } from '../session/live-session';
import { detectionTitle, HANG_CLASSES, hangClassMeaning } from '../detect/detection-title';
import { fetchDetections, readBackgroundDetections, type Culprit, type Detection } from '../detect/detections';
import { explainByPanic, panicHeadline, PanicWatch, type PanicState } from '../detect/panic';
import type { FaultReport } from '../kernel/log/faults';
import { loadModules } from '../kernel/modules/modules';
import { FrameResolver, parseFrame } from '../kernel/stacks/frame-address';
import { formatTimestamp } from '../kernel/log/format';
import { formatBytes } from './process-tree';

export type FaultItem =
  | { kind: 'report'; id: string; report: FaultReport; /** The report of the panic that stopped the kernel. */ stopped: boolean }
  | { kind: 'detection'; id: string; detection: Detection; firstSeen: Date; /** Active when last seen before the kernel panicked (the agent's record has moved on since). */ beforePanic?: boolean }
  | { kind: 'detail'; id: string; label: string; description?: string; culprit?: Culprit; /** A task a report is about. */ pid?: number; /** An evidence figure's key, as the detector names it. */ key?: string }
  | { kind: 'frame'; id: string; /** As the log prints it: `sysrq_handle_crash+0x16/0x20 [mod]`, a leading `? ` for an unreliable one. */ text: string }
  | { kind: 'message'; id: string; label: string };

/** What the Faults view tells the other views of the connected target's panic (undefined: it did not panic). */
export interface PanicShown {
  target: string;
  headline: string;
  cpu?: number;
  pid?: number;
  comm?: string;
}

/** Reports shown at most (newest kept): a log full of warnings is not a list to scroll. */
const MAX_REPORTS = 50;

/** What a culprit pid is blamed for, for the Processes tree. */
export type CulpritMarks = ReadonlyMap<number, string>;

function figureText(value: number | number[]): string {
  if (Array.isArray(value)) return value.length ? value.join(', ') : 'none';
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

const FIGURE_WORDS: Record<string, string> = { cpu: 'CPU', cpus: 'CPUs', rss: 'RSS', percent: '%' };

/** A detector's figure key in words (`leastBusyCpuPercent` → `least busy CPU %`); the key stays in the tooltip. */
export function figureLabel(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(' ')
    .map((w) => FIGURE_WORDS[w] ?? w)
    .join(' ');
}

function culpritText(c: Culprit): string {
  const parts = [c.cpuPercent > 0 ? `${c.cpuPercent.toFixed(1)} % CPU` : '', c.rssBytes > 0 ? `${formatBytes(BigInt(Math.round(c.rssBytes)))} resident` : ''];
  const role = (c as Culprit & { role?: string }).role;
  return [role, ...parts].filter(Boolean).join(' · ');
}

export class FaultsProvider implements vscode.TreeDataProvider<FaultItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly panicChanged = new vscode.EventEmitter<PanicShown | undefined>();
  /** Fires when the connected target is seen panicked (or a new session clears it). */
  readonly onDidChangePanic = this.panicChanged.event;
  private readonly culpritsChanged = new vscode.EventEmitter<CulpritMarks>();
  /** Fires with the pids blamed by active detections after each poll that changed them. */
  readonly onDidChangeCulprits = this.culpritsChanged.event;
  private readonly subscriptions: vscode.Disposable[];
  private detections: Detection[] = [];
  /** The kernel's own reports and whether it panicked (undefined until read). */
  private panicState: PanicState | undefined;
  private panicWatch: { session: LiveSession; watch: Promise<PanicWatch> } | undefined;
  private panicKey = '';
  private frames: { session: LiveSession; resolver: Promise<FrameResolver> } | undefined;
  /** Why the kernel's log or panic state could not be read, if it could not. */
  logError: string | undefined;
  /**
   * Per target: the detections active at the last poll that saw its kernel alive, and those
   * it had when it was first seen panicked. A panic stops the CPUs, and the agent's hang record
   * then says F1 (which the panic explains) instead of the F4 or F6 that may have led to it:
   * what held before the panic is kept to show beside the panic. Kept across sessions of the
   * same target (a reconnect after the panic), dropped once it is seen alive again.
   */
  private readonly lastAlive = new Map<string, Detection[]>();
  private readonly beforePanic = new Map<string, Detection[]>();
  /** Detections seen so far by (detector, detection time): when each was first seen here. */
  private readonly seen = new Map<string, Date>();
  private culpritKey = '';
  /** The detection results as last rendered, to tell whether a poll changed any. */
  private shown = '';
  private timer: NodeJS.Timeout | undefined;
  private generation = 0;
  error: string | undefined;
  /** Notifications shown, newest last (for the output channel's reader and tests). */
  readonly notified: string[] = [];
  view: vscode.TreeView<FaultItem> | undefined;

  constructor(
    private readonly sessions: Sessions,
    private readonly output: vscode.LogOutputChannel,
  ) {
    this.subscriptions = [
      sessions.onDidChange(() => this.restart()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('grass.faults.pollIntervalSeconds')) this.restart();
      }),
    ];
  }

  private restart(): void {
    clearTimeout(this.timer);
    this.generation++;
    this.detections = [];
    this.panicState = undefined;
    this.panicWatch = undefined;
    this.logError = undefined;
    this.publishPanic();
    this.seen.clear();
    this.shown = '';
    this.error = undefined;
    this.publishCulprits();
    this.changed.fire();
    if (this.sessions.current) void this.pollLoop(this.generation);
  }

  // setTimeout after each poll ends: a slow target never piles up reads.
  private async pollLoop(generation: number): Promise<void> {
    await this.poll();
    if (generation !== this.generation || !this.sessions.current) return;
    const seconds = vscode.workspace.getConfiguration('grass').get<number>('faults.pollIntervalSeconds', 2);
    this.timer = setTimeout(() => void this.pollLoop(generation), Math.max(0.2, seconds) * 1000);
  }

  /** Reads the detection results once now; resolves when the view shows them. */
  async poll(): Promise<Detection[]> {
    const session = this.sessions.current;
    if (!session) return [];
    const generation = this.generation;
    let detections: Detection[];
    try {
      detections = await readBackgroundDetections(session.client).catch(() => fetchDetections(session.client));
    } catch (err) {
      if (generation !== this.generation) return [];
      const error = `cannot read the detection results of ${session.target.name}: ${(err as Error).message}`;
      if (this.view) this.view.message = error;
      const changed = error !== this.error;
      this.error = error;
      this.shown = ''; // the next results re-render, replacing the error
      if (changed) this.changed.fire();
      return this.detections;
    }
    if (generation !== this.generation) return [];
    const panic = await this.pollPanic(session);
    if (generation !== this.generation) return [];
    if (panic) detections = explainByPanic(detections, panic);
    this.rememberBeforePanic(session.target.name, detections, panic);
    this.error = undefined;
    if (this.view) this.view.message = undefined;
    for (const d of detections) {
      if (!d.active || d.detectedAt === null) continue;
      const key = `${d.detector}@${d.detectedAt}`;
      if (this.seen.has(key)) continue;
      this.seen.set(key, new Date());
      this.notify(session.target.name, d);
    }
    // Re-rendered only when a result changed (each re-render costs VS Code's extension host
    // memory it keeps while the view lives); the time of the evaluation alone is not a change
    // unless a row counts seconds from it.
    const shown = JSON.stringify([
      detections.map((d) => (d.holdsSince === null && d.detectedAt === null ? { ...d, evaluatedAt: 0 } : d)),
      panic ? [panic.panicked, panic.panicCpu, panic.reports.map((r) => `${r.firstSeq}-${r.lastSeq}`)] : this.logError,
    ]);
    const changed = shown !== this.shown;
    this.shown = shown;
    this.detections = detections;
    this.publishCulprits();
    this.publishPanic();
    if (changed) this.changed.fire();
    return detections;
  }

  private rememberBeforePanic(target: string, detections: readonly Detection[], panic: PanicState | undefined): void {
    if (!panic) return; // unknown: neither alive nor panicked
    if (!panic.panicked) {
      this.lastAlive.set(target, detections.filter((d) => d.active));
      this.beforePanic.delete(target);
      return;
    }
    // What was active before and is no longer (the same detection, still active in the agent's
    // first windows after the panic, shows as it is until the agent reclassifies).
    const still = (d: Detection): boolean => detections.some((x) => x.active && x.detector === d.detector && x.detectedAt === d.detectedAt);
    this.beforePanic.set(target, (this.lastAlive.get(target) ?? []).filter((d) => !still(d)));
  }

  /** Detections active before the connected target's kernel panicked and not since (empty when it did not panic). */
  get activeBeforePanic(): readonly Detection[] {
    const target = this.sessions.current?.target.name;
    return (target && this.panicState?.panicked && this.beforePanic.get(target)) || [];
  }

  /** The kernel's log and panic_cpu, read through the agent (a failure is kept, the detections still shown). */
  private async pollPanic(session: LiveSession): Promise<PanicState | undefined> {
    if (this.panicWatch?.session !== session) this.panicWatch = { session, watch: session.model().then((m) => new PanicWatch(m, session.client)) };
    const { watch } = this.panicWatch;
    try {
      const state = await (await watch).poll();
      this.panicState = state;
      this.logError = state.errors.length ? state.errors.join('; ') : undefined;
      return state;
    } catch (err) {
      if (this.panicWatch?.watch === watch) this.panicWatch = undefined; // a model that failed is built again next poll
      this.logError = `cannot read the kernel's log and panic state: ${(err as Error).message}`;
      return this.panicState;
    }
  }

  private publishPanic(): void {
    const p = this.panicState;
    const target = this.sessions.current?.target.name;
    const shown: PanicShown | undefined =
      p?.panicked && target ? { target, headline: panicHeadline(p), cpu: p.report?.cpu ?? p.panicCpu ?? undefined, pid: p.report?.pid, comm: p.report?.comm } : undefined;
    const key = JSON.stringify(shown ?? null);
    if (key === this.panicKey) return;
    this.panicKey = key;
    if (this.view) this.view.description = shown ? 'panicked' : undefined;
    this.panicChanged.fire(shown);
  }

  /**
   * The address a printed frame names on the connected target (`panic+0x118/0x2f4`,
   * `f+0x1/0x20 [mod]`): the symbols of vmlinux and its modules, read once per session.
   */
  async frameAddress(text: string): Promise<bigint> {
    const session = this.sessions.current;
    if (!session) throw new Error('not connected to a target');
    if (this.frames?.session !== session) {
      const resolver = session.model().then(async (m) => new FrameResolver(m, await loadModules(m, { btf: false })));
      this.frames = { session, resolver };
      resolver.catch(() => this.frames?.resolver === resolver && (this.frames = undefined));
    }
    return (await this.frames.resolver).address(text);
  }

  /** The kernel's panic state and reports as last read (undefined: not read yet). */
  get panic(): PanicState | undefined {
    return this.panicState;
  }

  private notify(target: string, d: Detection): void {
    const culprits = d.culprits.slice(0, 3).map((c) => `${c.pid} ${c.comm}`).join(', ');
    const text = `${target}: ${detectionTitle(d)} detected${culprits ? ` — culprits ${culprits}` : ''}`;
    this.notified.push(text);
    this.output.warn(text);
    void vscode.window.showWarningMessage(`GRASS: ${text}`, 'Show Faults').then((choice) => {
      if (choice) void vscode.commands.executeCommand('grass.faults.focus');
    });
  }

  /** Pids blamed by the active detections (and the task that panicked), with what for. */
  culprits(): CulpritMarks {
    const marks = new Map<number, string>();
    const panicked = this.panicState?.panicked ? this.panicState.report?.pid : undefined;
    if (panicked !== undefined) marks.set(panicked, 'panic');
    for (const d of this.activeBeforePanic) for (const c of d.culprits) marks.set(c.pid, [marks.get(c.pid), `${detectionTitle(d)} before the panic`].filter(Boolean).join(', '));
    for (const d of this.detections) {
      if (!d.active) continue;
      for (const c of d.culprits) marks.set(c.pid, [marks.get(c.pid), detectionTitle(d)].filter(Boolean).join(', '));
    }
    return marks;
  }

  private publishCulprits(): void {
    const marks = this.culprits();
    const key = [...marks].map(([pid, what]) => `${pid}:${what}`).join(';');
    if (key === this.culpritKey) return;
    this.culpritKey = key;
    this.culpritsChanged.fire(marks);
  }

  /** The latest detection results (every detector, active or not). */
  get current(): readonly Detection[] {
    return this.detections;
  }

  getChildren(element?: FaultItem): FaultItem[] {
    if (!element) {
      if (!this.sessions.current) return [];
      const reports = this.reportItems();
      const log: FaultItem[] = this.logError ? [{ kind: 'message', id: 'grass.fault/log-error', label: this.logError }] : [];
      if (this.detections.length === 0) return [...reports, ...log, { kind: 'message', id: 'grass.fault/none', label: this.error ?? 'No detection results yet (the detectors need two metrics windows).' }];
      // The kernel's own reports, what held before the panic, then the detections: active first, then the rest.
      return [
        ...reports,
        ...log,
        ...this.activeBeforePanic.map((d): FaultItem => ({ kind: 'detection', id: `grass.fault/before-panic/${d.detector}`, detection: d, firstSeen: this.seen.get(`${d.detector}@${d.detectedAt}`) ?? new Date(), beforePanic: true })),
        ...[...this.detections]
          .sort((a, b) => Number(b.active) - Number(a.active))
          .map((d): FaultItem => ({ kind: 'detection', id: `grass.fault/${d.detector}`, detection: d, firstSeen: this.seen.get(`${d.detector}@${d.detectedAt}`) ?? new Date() })),
      ];
    }
    if (element.kind === 'report') return this.reportChildren(element);
    if (element.kind !== 'detection') return [];
    const d = element.detection;
    const details: FaultItem[] = [];
    const id = (s: string): string => `${element.id}/${s}`;
    if (d.error) details.push({ kind: 'detail', id: id('error'), label: 'could not evaluate', description: d.error });
    if (d.superseded) details.push({ kind: 'detail', id: id('superseded'), label: `not ${d.superseded.hangClass}`, description: d.superseded.reason });
    const hangClass = (d as Detection & { hangClass?: string }).hangClass;
    if (hangClass) details.push({ kind: 'detail', id: id('class'), label: `class ${hangClass}`, description: hangClassMeaning(hangClass) ?? 'a class this extension does not know' });
    if (d.active && d.holdsSince !== null) {
      details.push({
        kind: 'detail',
        id: id('since'),
        label: 'since',
        description: `holds for ${(d.evaluatedAt - d.holdsSince).toFixed(0)} s; first seen here ${element.firstSeen.toLocaleTimeString()}`,
      });
    } else if (d.detectedAt !== null) {
      details.push({ kind: 'detail', id: id('since'), label: 'last detected', description: `${(d.evaluatedAt - d.detectedAt).toFixed(0)} s before the last evaluation` });
    }
    for (const [name, value] of Object.entries(d.figures)) details.push({ kind: 'detail', id: id(`figure/${name}`), label: figureLabel(name), description: figureText(value), key: name });
    for (const c of d.culprits) details.push({ kind: 'detail', id: id(`culprit/${c.pid}`), label: `culprit ${c.pid} ${c.comm}`, description: culpritText(c), culprit: c });
    return details;
  }

  /** The panic that stopped the kernel first, then the other reports, newest first. */
  private reportItems(): FaultItem[] {
    const p = this.panicState;
    if (!p) return [];
    const stopped = p.report;
    const others = p.reports.filter((r) => r !== stopped).reverse();
    return [...(stopped ? [stopped] : []), ...others].slice(0, MAX_REPORTS).map((report) => ({ kind: 'report', id: `grass.fault/report/${report.firstSeq}`, report, stopped: report === stopped }));
  }

  private reportChildren(element: Extract<FaultItem, { kind: 'report' }>): FaultItem[] {
    const r = element.report;
    const id = (s: string): string => `${element.id}/${s}`;
    const out: FaultItem[] = [];
    // A header of several lines (BUG: … then Oops: …): the lines after the first.
    for (const [i, line] of r.message.split('\n').slice(1).entries()) out.push({ kind: 'detail', id: id(`message/${i}`), label: line });
    if (r.pid !== undefined) out.push({ kind: 'detail', id: id('task'), label: `task ${r.pid} ${r.comm ?? ''}`.trimEnd(), description: r.cpu !== undefined ? `on CPU ${r.cpu}` : undefined, pid: r.pid });
    else if (r.cpu !== undefined) out.push({ kind: 'detail', id: id('cpu'), label: `CPU ${r.cpu}` });
    if (r.rip) out.push({ kind: 'detail', id: id('rip'), label: 'RIP', description: r.rip });
    if (r.taint) out.push({ kind: 'detail', id: id('taint'), label: 'taint', description: r.taint });
    // The call trace's frames as printed ("<TASK>"/"<IRQ>" markers and register dumps left out).
    r.callTrace.forEach((line, i) => {
      if (parseFrame(line)) out.push({ kind: 'frame', id: id(`frame/${i}`), text: line.trim() });
    });
    return out;
  }

  getTreeItem(item: FaultItem): vscode.TreeItem {
    if (item.kind === 'report') {
      const r = item.report;
      const [headline] = r.message.split('\n');
      const tree = new vscode.TreeItem(item.stopped ? `panicked: ${headline}` : `${r.kind}: ${headline}`, vscode.TreeItemCollapsibleState.Collapsed);
      tree.id = item.id;
      const who = [r.cpu !== undefined ? `CPU ${r.cpu}` : '', r.pid !== undefined ? `${r.comm ?? '?'} (${r.pid})` : ''].filter(Boolean).join(' · ');
      tree.description = [who, formatTimestamp(r.timestampNs)].filter(Boolean).join(' · ');
      tree.tooltip = new vscode.MarkdownString().appendCodeblock(r.lines.join('\n'), 'text');
      const severe = r.kind === 'panic' || r.kind === 'oops' || r.kind === 'bug' || r.kind === 'hard-lockup';
      tree.iconPath = new vscode.ThemeIcon(severe ? 'error' : 'warning', severe ? new vscode.ThemeColor('errorForeground') : undefined);
      tree.contextValue = 'grass.fault.report';
      return tree;
    }
    if (item.kind === 'frame') {
      const tree = new vscode.TreeItem(item.text);
      tree.id = item.id;
      tree.iconPath = new vscode.ThemeIcon('debug-stackframe');
      tree.contextValue = 'grass.fault.frame';
      tree.tooltip = `${item.text}: open its return address in the memory inspector`;
      tree.command = { command: 'grass.faults.openFrame', title: 'Open in Memory Inspector', arguments: [item.text] };
      return tree;
    }
    if (item.kind === 'message') {
      const tree = new vscode.TreeItem(item.label);
      tree.id = item.id;
      return tree;
    }
    if (item.kind === 'detail') {
      const tree = new vscode.TreeItem(item.label);
      tree.id = item.id;
      tree.description = item.description;
      if (item.key) tree.tooltip = `${item.label}: ${item.description ?? ''} (the detector's figure ${item.key})`;
      const pid = item.culprit?.pid ?? item.pid;
      if (pid !== undefined) {
        tree.iconPath = new vscode.ThemeIcon('person');
        tree.contextValue = 'grass.fault.culprit';
        tree.command = { command: 'grass.faults.revealCulprit', title: 'Show in Processes', arguments: [pid] };
      }
      return tree;
    }
    const d = item.detection;
    const tree = new vscode.TreeItem(detectionTitle(d), vscode.TreeItemCollapsibleState.Collapsed);
    tree.id = item.id;
    tree.description = item.beforePanic ? `before the panic · ${d.culprits.length} culprit${d.culprits.length === 1 ? '' : 's'}` : d.error ? 'could not evaluate' : d.superseded ? `not ${d.superseded.hangClass}: the kernel panicked` : d.active ? `detected · ${d.culprits.length} culprit${d.culprits.length === 1 ? '' : 's'}` : d.detectedAt !== null ? 'cleared' : 'not detected';
    tree.iconPath = d.active || item.beforePanic ? new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground')) : d.error ? new vscode.ThemeIcon('warning') : new vscode.ThemeIcon('pass');
    tree.contextValue = d.active ? 'grass.fault.active' : 'grass.fault';
    // The hang detector's classes, so that a person reading "hang F3" knows what F3 is.
    if (d.detector === 'hang') tree.tooltip = new vscode.MarkdownString(['The SHFH hang classifier; its classes:', '', ...HANG_CLASSES.map((c) => `- **${c.name}**: ${c.meaning}`)].join('\n'));
    return tree;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.generation++;
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
    this.culpritsChanged.dispose();
    this.panicChanged.dispose();
  }
}
