// Faults view: the agent's detection results (src/detect) for the connected target, read from
// the buffer header's background area (no request, so it answers while the target's monitor
// is stuck; falls back to a DETECT request before the first background results), polled every
// `grass.faults.pollIntervalSeconds`. Each detection: class, evidence (its figures), culprits,
// since when; a notification when a new one appears; culprit pids go to the Processes tree.
import * as vscode from 'vscode';
import type { Sessions } from '../session/sessions';
import { detectionTitle, HANG_CLASSES, hangClassMeaning } from '../detect/detection-title';
import { fetchDetections, readBackgroundDetections, type Culprit, type Detection } from '../detect/detections';
import { formatBytes } from './process-tree';

export type FaultItem =
  | { kind: 'detection'; id: string; detection: Detection; firstSeen: Date }
  | { kind: 'detail'; id: string; label: string; description?: string; culprit?: Culprit; /** An evidence figure's key, as the detector names it. */ key?: string }
  | { kind: 'message'; id: string; label: string };

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
  private readonly culpritsChanged = new vscode.EventEmitter<CulpritMarks>();
  /** Fires with the pids blamed by active detections after each poll that changed them. */
  readonly onDidChangeCulprits = this.culpritsChanged.event;
  private readonly subscriptions: vscode.Disposable[];
  private detections: Detection[] = [];
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
    const shown = JSON.stringify(detections.map((d) => (d.holdsSince === null && d.detectedAt === null ? { ...d, evaluatedAt: 0 } : d)));
    const changed = shown !== this.shown;
    this.shown = shown;
    this.detections = detections;
    this.publishCulprits();
    if (changed) this.changed.fire();
    return detections;
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

  /** Pids blamed by the active detections, with what for. */
  culprits(): CulpritMarks {
    const marks = new Map<number, string>();
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
      if (this.detections.length === 0) return [{ kind: 'message', id: 'grass.fault/none', label: this.error ?? 'No detection results yet (the detectors need two metrics windows).' }];
      // Active first, then the rest.
      return [...this.detections]
        .sort((a, b) => Number(b.active) - Number(a.active))
        .map((d) => ({ kind: 'detection', id: `grass.fault/${d.detector}`, detection: d, firstSeen: this.seen.get(`${d.detector}@${d.detectedAt}`) ?? new Date() }));
    }
    if (element.kind !== 'detection') return [];
    const d = element.detection;
    const details: FaultItem[] = [];
    const id = (s: string): string => `${element.id}/${s}`;
    if (d.error) details.push({ kind: 'detail', id: id('error'), label: 'could not evaluate', description: d.error });
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

  getTreeItem(item: FaultItem): vscode.TreeItem {
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
      if (item.culprit) {
        tree.iconPath = new vscode.ThemeIcon('person');
        tree.contextValue = 'grass.fault.culprit';
        tree.command = { command: 'grass.faults.revealCulprit', title: 'Show in Processes', arguments: [item.culprit.pid] };
      }
      return tree;
    }
    const d = item.detection;
    const tree = new vscode.TreeItem(detectionTitle(d), vscode.TreeItemCollapsibleState.Collapsed);
    tree.id = item.id;
    tree.description = d.error ? 'could not evaluate' : d.active ? `detected · ${d.culprits.length} culprit${d.culprits.length === 1 ? '' : 's'}` : d.detectedAt !== null ? 'cleared' : 'not detected';
    tree.iconPath = d.active ? new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground')) : d.error ? new vscode.ThemeIcon('warning') : new vscode.ThemeIcon('pass');
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
  }
}
