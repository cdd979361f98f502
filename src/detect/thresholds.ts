// The detectors' thresholds on the SHFH metrics, as lines to draw on their plots (the health
// panel). The monitor's detectors (llview-plugins/detect/) are C; these mirror their #defines,
// and test/unit/detector-thresholds.test.ts reads the headers to keep the two equal.
import type { MetricPlot, Threshold } from '../types/health-protocol';
import type { MetricsWindow } from './metrics';

export type { MetricPlot, Threshold };

/** cpu-high-load: every CPU at least this busy (percent; GRASS_DETECT_BUSY_PERMILLE / 10)... */
export const BUSY_PERCENT = 90;
/** ... with this many runnable tasks per CPU (GRASS_DETECT_OVERLOAD_FACTOR). */
export const OVERLOAD_FACTOR = 2;
/** memory-leak: free RAM (and free swap) under this share of the total (GRASS_DETECT_FREE_PERCENT). */
export const LEAK_FREE_PERCENT = 30;
/** F4: at least max(this, CPU count) tasks in I/O wait (GRASS_HANG_BLK_MIN)... */
export const F4_BLK_MIN = 4;
/** ... while no disk is busy this share of the window (percent; GRASS_HANG_IDLE_DISK_PERMILLE / 10). */
export const F4_IDLE_DISK_PERCENT = 10;
/** F6: swap-out (and swap-in) of at least MemTotal / this pages per second (GRASS_HANG_SWAP_RATE_DIVISOR)... */
export const F6_SWAP_DIVISOR = 512;
/** ... with free RAM under this share of MemTotal (percent; GRASS_HANG_FREE_PERMILLE / 10). */
export const F6_FREE_PERCENT = 10;

/** Each detector condition's line, for a target of this window's CPU count and memory. */
export function detectorThresholds(w: MetricsWindow): Threshold[] {
  const cpus = w.cpus.length;
  const memTotalPages = w.pageBytes > 0 ? w.memTotalBytes / w.pageBytes : 0;
  return [
    { plot: 'cpu', value: BUSY_PERCENT, label: `cpu-high-load: every CPU busy ≥ ${BUSY_PERCENT} %` },
    { plot: 'runBlk', value: OVERLOAD_FACTOR * cpus, label: `cpu-high-load: run ≥ ${OVERLOAD_FACTOR} × ${cpus} CPUs` },
    { plot: 'runBlk', value: Math.max(F4_BLK_MIN, cpus), label: `F4: blk ≥ max(${F4_BLK_MIN}, CPUs)` },
    { plot: 'util', value: F4_IDLE_DISK_PERCENT, label: `F4: every disk util < ${F4_IDLE_DISK_PERCENT} %` },
    { plot: 'pswpout', value: Math.floor(memTotalPages / F6_SWAP_DIVISOR), label: `F6: pswpout ≥ MemTotal/${F6_SWAP_DIVISOR} pages/s` },
    { plot: 'memFree', value: (w.memTotalBytes * LEAK_FREE_PERCENT) / 100, label: `memory-leak: free < ${LEAK_FREE_PERCENT} % of MemTotal` },
    { plot: 'memFree', value: (w.memTotalBytes * F6_FREE_PERCENT) / 100, label: `F6: free < ${F6_FREE_PERCENT} % of MemTotal` },
  ];
}
