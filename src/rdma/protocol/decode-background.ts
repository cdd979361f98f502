// The background area (grass_background): the detectors' latest records and the metric history
// that the monitor republishes after every evaluation, read with no request. What the figures
// mean is src/detect/detections.ts's part.
import { decodeDetectionRecords, DetectionRecord } from './decode-detections';
import * as L from './layout';
import { StructView } from './struct-view';

/** One metrics window, as the monitor summarised it (grass_history_point). */
export interface HistoryPointRecord {
  /** The window's end (monitor clock). */
  monitorClockNs: bigint;
  windowMs: number;
  /** Averaged over CPUs. */
  usrPermille: number; sysPermille: number; iowaitPermille: number; idlePermille: number;
  /** Counts in the window. */
  contextSwitches: number; pswpin: number; pswpout: number;
  freeMib: number;
  run: number; blk: number;
  /** The busiest disk. */
  utilPermille: number;
  /** Target jiffies elapsed in the window (capped). */
  jiffies: number;
}

export interface BackgroundRecord {
  detections: DetectionRecord[];
  /** Oldest first. */
  history: HistoryPointRecord[];
}

export function decodeBackground(bytes: Uint8Array): BackgroundRecord {
  if (bytes.length !== L.background.size) throw new Error(`background area of ${bytes.length} bytes, expected ${L.background.size} (layout ${L.BACKGROUND_LAYOUT})`);
  const area = StructView.at(bytes, L.background);
  const layout = area.u32('layout');
  if (layout !== L.BACKGROUND_LAYOUT) throw new Error(`background area of layout ${layout}; this remote reads layout ${L.BACKGROUND_LAYOUT}`);
  const count = Math.min(area.u32('history_count'), L.HISTORY_POINTS);
  const next = area.u32('history_next') % L.HISTORY_POINTS;
  const f = L.background.fields;
  const detections = decodeDetectionRecords(bytes.subarray(f.detections.offset, f.detections.offset + f.detections.size));
  // The history is a ring: `next` is where the next point goes, so the oldest of `count` is `count` before it.
  const ring = area.elements('history', L.historyPoint, L.HISTORY_POINTS);
  const history = Array.from({ length: count }, (_, k) => {
    const p = ring[(next - count + k + 2 * L.HISTORY_POINTS) % L.HISTORY_POINTS];
    return {
      monitorClockNs: p.u64('monitor_clock_ns'),
      windowMs: p.u32('window_ms'),
      usrPermille: p.u16('usr_permille'), sysPermille: p.u16('sys_permille'), iowaitPermille: p.u16('iowait_permille'), idlePermille: p.u16('idle_permille'),
      contextSwitches: p.u32('context_switches'), pswpin: p.u32('pswpin'), pswpout: p.u32('pswpout'),
      freeMib: p.u32('free_mib'),
      run: p.u16('run'), blk: p.u16('blk'),
      utilPermille: p.u16('util_permille'),
      jiffies: p.u16('jiffies'),
    };
  });
  return { detections, history };
}
