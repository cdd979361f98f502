// npm run test:long: every fault 3 times (a fresh guest each) and every healthy load for 10
// minutes, then the confusion matrix (injected x detected, healthy rows included), which must be
// diagonal: each fault detected as its class and nothing else, each healthy load as none (the two
// loads that keep every CPU busy as cpu-high-load, GPUSentinel's rule: HEALTHY_EXPECTED).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DetectedClass, DetectTarget, detectedClass, FAULT_CLASSES, guestShape, HEALTHY_EXPECTED, HEALTHY_LOADS, healthyRun, injectAndDetect,
} from '../integration/detect-support';

const REPEATS = Number(process.env.GRASS_LONG_DETECT_REPEATS ?? 3);
const HEALTHY_SECONDS = Number(process.env.GRASS_LONG_DETECT_HEALTHY_SECONDS ?? 600);
const COLUMNS: DetectedClass[] = ['F1', 'F2', 'F3', 'F4', 'F5', 'F6', 'cpu-high-load', 'memory-leak', 'none'];

test(`confusion matrix: every fault ${REPEATS} times, every healthy load ${HEALTHY_SECONDS} s`, { timeout: 4 * 3600_000 }, async () => {
  const matrix = new Map<string, Map<DetectedClass, number>>();
  const count = (row: string, col: DetectedClass): void => {
    const r = matrix.get(row) ?? new Map<DetectedClass, number>();
    r.set(col, (r.get(col) ?? 0) + 1);
    matrix.set(row, r);
  };
  const latencies: string[] = [];
  for (const fault of Object.keys(FAULT_CLASSES)) {
    for (let i = 0; i < REPEATS; i++) {
      const t = await DetectTarget.start(guestShape(fault));
      try {
        const run = await injectAndDetect(t, fault, fault === 'f6' || fault === 'memory-leak' ? 240_000 : 60_000);
        // What else the monitor reports a few windows later counts too (a second class off the diagonal).
        await new Promise((r) => setTimeout(r, 3000));
        const later = detectedClass(await t.background());
        count(fault, run.detected);
        if (later !== 'none' && later !== run.detected && !(fault === 'memory-leak')) count(fault, later);
        latencies.push(`${fault} ${run.latencySeconds.toFixed(1)}`);
      } catch (e) {
        console.log(`${fault} run ${i + 1}: ${(e as Error).message.slice(0, 300)}`);
        count(fault, 'none');
      } finally {
        await t.stop();
      }
    }
  }
  const t = await DetectTarget.start(guestShape('healthy'));
  try {
    for (const load of Object.keys(HEALTHY_LOADS)) {
      const { seen } = await healthyRun(t, load, HEALTHY_SECONDS);
      if (seen.length === 0) count(load, 'none');
      for (const d of seen) count(load, d.detector === 'hang' ? d.hangClass ?? 'none' : d.detector);
    }
  } finally {
    await t.stop();
  }
  const rows = [...Object.keys(FAULT_CLASSES), ...Object.keys(HEALTHY_LOADS)];
  const width = 15;
  const lines = [['injected \\ detected', ...COLUMNS].map((c) => c.padStart(width)).join('')];
  for (const row of rows) lines.push([row, ...COLUMNS.map((c) => String(matrix.get(row)?.get(c) ?? 0))].map((c) => c.padStart(width)).join(''));
  console.log(lines.join('\n'));
  console.log(`latencies (s, monitor clock): ${latencies.join(', ')}`);
  for (const row of rows) {
    const want: DetectedClass = FAULT_CLASSES[row] ?? HEALTHY_EXPECTED[row];
    const cells = matrix.get(row) ?? new Map();
    for (const [col, n] of cells) assert.equal(col, want, `${row} detected as ${col} ${n} time(s)`);
  }
});
