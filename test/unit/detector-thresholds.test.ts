// The health panel's threshold lines (src/detect/thresholds.ts) are the monitor's detector
// conditions: each constant equals its #define in the C headers the agent is built from.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import * as T from '../../src/detect/thresholds';
import type { MetricsWindow } from '../../src/detect/metrics';

const ROOT = path.resolve(__dirname, '../..');
const headers = ['detect.h', 'cpu-high-load/cpu_high_load.h', 'memory-leak/memory_leak.h', 'hang/hang.h']
  .map((f) => readFileSync(path.join(ROOT, 'llview-plugins/detect', f), 'utf8'))
  .join('\n');

function define(name: string): number {
  const m = new RegExp(`^#define ${name} (\\d+)u?l{0,2}\\b`, 'm').exec(headers);
  if (!m) throw new Error(`${name} is not #defined in llview-plugins/detect/`);
  return Number(m[1]);
}

test('each threshold equals the detector header it mirrors', () => {
  assert.equal(T.BUSY_PERCENT * 10, define('GRASS_DETECT_BUSY_PERMILLE'));
  assert.equal(T.OVERLOAD_FACTOR, define('GRASS_DETECT_OVERLOAD_FACTOR'));
  assert.equal(T.LEAK_FREE_PERCENT, define('GRASS_DETECT_FREE_PERCENT'));
  assert.equal(T.F4_BLK_MIN, define('GRASS_HANG_BLK_MIN'));
  assert.equal(T.F4_IDLE_DISK_PERCENT * 10, define('GRASS_HANG_IDLE_DISK_PERMILLE'));
  assert.equal(T.F6_SWAP_DIVISOR, define('GRASS_HANG_SWAP_RATE_DIVISOR'));
  assert.equal(T.F6_FREE_PERCENT * 10, define('GRASS_HANG_FREE_PERMILLE'));
});

test('the lines scale with the window: CPUs for run and blk, MemTotal for memfree and pswpout', () => {
  const w = { cpus: [0, 1, 2, 3, 4, 5].map((cpu) => ({ cpu })), memTotalBytes: 1 << 30, pageBytes: 4096 } as unknown as MetricsWindow;
  const lines = T.detectorThresholds(w);
  const at = (plot: T.MetricPlot): number[] => lines.filter((l) => l.plot === plot).map((l) => l.value);
  assert.deepEqual(at('runBlk'), [12, 6]);
  assert.deepEqual(at('pswpout'), [512]);
  assert.deepEqual(at('memFree'), [(1 << 30) * 0.3, (1 << 30) * 0.1]);
  assert.deepEqual(at('cpu'), [90]);
  assert.deepEqual(at('util'), [10]);
});
