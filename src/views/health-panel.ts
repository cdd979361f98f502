// The Target Health panel's host side: while the panel is visible it polls the connected target's
// metrics (the monitor's latest window) twice per window, so that no window is missed as the
// poll's phase drifts against the monitor's clock, keeps the last HEALTH_RING_WINDOWS of them
// (one entry per window end), the detectors' thresholds for this target and the times their
// detections fired, and sends the page the whole ring each time it changes.
import * as vscode from 'vscode';
import { fetchMetrics, type MetricsWindow } from '../detect/metrics';
import { fetchDetections, readBackgroundDetections, type Detection } from '../detect/detections';
import { detectorThresholds } from '../detect/thresholds';
import {
  HEALTH_RING_WINDOWS,
  isHealthWebviewMessage,
  type HealthHostMessage,
  type HealthMark,
  type HealthWebviewMessage,
  type HealthWindow,
  type Threshold,
} from '../types/health-protocol';
import type { Sessions } from '../session/sessions';
import type { LiveSession } from '../session/live-session';
import { WebviewHost } from './webview-host';

export const HEALTH_VIEW_TYPE = 'grass.targetHealth';

export type HealthPanelHost = WebviewHost<HealthHostMessage, HealthWebviewMessage>;

/** A metrics window as the page plots it. */
export function healthWindow(m: MetricsWindow): HealthWindow {
  return {
    end: m.windowEnd,
    seconds: m.windowSeconds,
    cpus: m.cpus.map((c) => ({ usr: c.usr, sys: c.sys, iowait: c.iowait, busy: c.usr + c.sys + c.steal })),
    run: m.run,
    blk: m.blk,
    contextSwitchesPerSecond: m.contextSwitchesPerSecond,
    pswpoutPerSecond: m.pswpoutPerSecond,
    memFreeBytes: m.memFreeBytes,
    util: m.disks.length > 0 ? Math.max(...m.disks.map((d) => d.util)) : null,
  };
}

/** What a detection's mark says: the detector, with the hang's class. */
function markLabel(d: Detection): string {
  return d.hangClass ? `${d.detector} ${d.hangClass}` : d.superseded ? `${d.detector} (${d.superseded.hangClass}, superseded by the panic)` : d.detector;
}

export class HealthPanel implements vscode.Disposable {
  private host: HealthPanelHost | undefined;
  private session: LiveSession | undefined;
  private windows: HealthWindow[] = [];
  private marks: HealthMark[] = [];
  private thresholds: Threshold[] = [];
  private error: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly sessions: Sessions,
    private readonly output: vscode.LogOutputChannel,
  ) {
    this.subscriptions = [sessions.onDidChange(() => this.restart())];
  }

  /** Opens the panel (or shows the open one); resolves to its host once the page runs. */
  async show(): Promise<HealthPanelHost> {
    if (this.host && !this.host.isDisposed) {
      this.host.panel.reveal();
      return this.host;
    }
    const host = new WebviewHost<HealthHostMessage, HealthWebviewMessage>(
      this.extensionUri,
      { viewType: HEALTH_VIEW_TYPE, title: 'GRASS Target Health', bundle: 'health', isMessage: isHealthWebviewMessage },
      this.output,
    );
    this.host = host;
    host.onMessage((m) => m.type === 'ready' && void this.send());
    host.panel.onDidChangeViewState(() => this.schedule());
    host.onDidDispose(() => {
      if (this.host === host) this.host = undefined;
      this.stop();
    });
    this.restart();
    await host.whenReady(15_000);
    return host;
  }

  /** The windows held now (oldest first). */
  get ring(): readonly HealthWindow[] {
    return this.windows;
  }

  /** Another session (or none): the ring starts over. */
  private restart(): void {
    this.session = this.sessions.current;
    this.windows = [];
    this.marks = [];
    this.thresholds = [];
    this.error = undefined;
    this.stop();
    void this.send();
    this.schedule();
  }

  /** Polls while the panel is visible and a target is connected; stops otherwise. */
  private schedule(): void {
    if (!this.host || this.host.isDisposed || !this.host.panel.visible || !this.session) return this.stop();
    if (this.timer) return;
    const tick = (): void => {
      void this.poll().finally(() => {
        if (this.timer) this.timer = setTimeout(tick, this.period());
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  /** Half the monitor's window (1 s unless it said otherwise). */
  private period(): number {
    const last = this.windows.at(-1);
    return Math.max(100, ((last?.seconds ?? 1) * 1000) / 2);
  }

  private stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    const session = this.session;
    if (!session || this.polling) return;
    this.polling = true;
    try {
      const metrics = await fetchMetrics(session.client);
      if (session !== this.session) return;
      const window = healthWindow(metrics);
      const changed = this.windows.at(-1)?.end !== window.end;
      if (changed) {
        this.windows.push(window);
        if (this.windows.length > HEALTH_RING_WINDOWS) this.windows.splice(0, this.windows.length - HEALTH_RING_WINDOWS);
        this.thresholds = detectorThresholds(metrics);
        this.noteDetections(await readBackgroundDetections(session.client).catch(() => fetchDetections(session.client)));
      }
      const hadError = this.error !== undefined;
      this.error = undefined;
      if (changed || hadError) await this.send();
    } catch (err) {
      if (session !== this.session) return;
      this.error = (err as Error).message;
      await this.send();
    } finally {
      this.polling = false;
    }
  }

  /** Each detection's latest detection time, once, while it lies within the ring. */
  private noteDetections(detections: readonly Detection[]): void {
    for (const d of detections) {
      if (d.detectedAt === null) continue;
      const label = markLabel(d);
      const known = this.marks.find((m) => m.label === label && m.at === d.detectedAt);
      if (known) known.active = d.active;
      else this.marks.push({ at: d.detectedAt, label, active: d.active });
    }
    const first = this.windows[0];
    if (first) this.marks = this.marks.filter((m) => m.at >= first.end - first.seconds);
  }

  private async send(): Promise<void> {
    const host = this.host;
    if (!host || host.isDisposed) return;
    const session = this.session;
    if (!session) {
      await host.post({ type: 'status', connected: false, text: 'Not connected to a target. Run "GRASS: Connect to Target…" first.' });
      return;
    }
    await host.post({
      type: 'health',
      target: `${session.target.name} (${session.target.address})`,
      windows: this.windows,
      thresholds: this.thresholds,
      marks: this.marks,
      ...(this.error !== undefined ? { error: this.error } : {}),
    });
  }

  dispose(): void {
    this.stop();
    for (const s of this.subscriptions) s.dispose();
    this.host?.dispose();
  }
}
