// Messages between the extension host and the Target Health page (webview/health/), and how the
// page writes the metrics' values (shared, so that what the page shows can be checked against
// `grass metrics --json`).
import type { CommonWebviewMessage, PanelStatusMessage } from './webview-protocol';

/** Windows the panel keeps: five minutes of the monitor's 1 s windows. */
export const HEALTH_RING_WINDOWS = 300;
/** Windows in the page's table of recent values (what a screen reader gets instead of the plots). */
export const HEALTH_TABLE_ROWS = 10;

/**
 * The plots a threshold belongs on: each CPU's (usr, sys, iowait and busy = 100 - idle - iowait,
 * the share cpu-high-load judges), run/blk, cs/s, pswpout/s, memfree, util.
 */
export type MetricPlot = 'cpu' | 'runBlk' | 'contextSwitches' | 'pswpout' | 'memFree' | 'util';

export interface Threshold {
  plot: MetricPlot;
  /** In the plot's unit (percent, tasks, pages/s, bytes). */
  value: number;
  /** Which detector's condition, and on which side: "cpu-high-load: every CPU busy ≥ 90 %". */
  label: string;
}

/** One metrics window as the page plots it (from the host's MetricsWindow). */
export interface HealthWindow {
  /** Monitor-clock seconds at the window's end (the x axis; detections are on the same clock). */
  end: number;
  seconds: number;
  /** Percent of each CPU's time; busy = usr + sys + steal. */
  cpus: { usr: number; sys: number; iowait: number; busy: number }[];
  run: number;
  blk: number;
  contextSwitchesPerSecond: number;
  /** Pages per second. */
  pswpoutPerSecond: number;
  memFreeBytes: number;
  /** The busiest disk's util, percent; null when the disks part of the plugin did not resolve. */
  util: number | null;
}

/** A detection that fired (its latest detection time) within the plotted span. */
export interface HealthMark {
  at: number;
  label: string;
  active: boolean;
}

export type HealthHostMessage =
  | PanelStatusMessage
  | { type: 'health'; target: string; windows: HealthWindow[]; thresholds: Threshold[]; marks: HealthMark[]; error?: string };

/** The page only says ready and answers ping. */
export type HealthWebviewMessage = CommonWebviewMessage;

export function isHealthWebviewMessage(value: unknown): value is HealthWebviewMessage {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return m.type === 'ready' || (m.type === 'pong' && typeof m.id === 'number' && typeof m.heading === 'string' && Array.isArray(m.components));
}

const pct = (x: number): string => `${x.toFixed(1)} %`;

/** A window's values as the page writes them, by column (HEALTH_COLUMNS). */
export function healthCells(w: HealthWindow): string[] {
  return [
    w.end.toFixed(3),
    ...w.cpus.flatMap((c) => [pct(c.usr), pct(c.sys), pct(c.iowait)]),
    String(w.run),
    String(w.blk),
    w.contextSwitchesPerSecond.toFixed(0),
    w.pswpoutPerSecond.toFixed(1),
    `${(w.memFreeBytes / 1048576).toFixed(1)} MiB`,
    w.util === null ? 'none' : pct(w.util),
  ];
}

/** The table's column names for a target of `cpus` CPUs. */
export function healthColumns(cpus: number): string[] {
  return [
    'window end (s)',
    ...Array.from({ length: cpus }, (_, cpu) => [`cpu${cpu} usr`, `cpu${cpu} sys`, `cpu${cpu} iowait`]).flat(),
    'run',
    'blk',
    'cs/s',
    'pswpout/s',
    'memfree',
    'util',
  ];
}
