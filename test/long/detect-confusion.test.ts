// npm run test:long: every fault 3 times (a fresh guest each) and every healthy load for 10
// minutes, then the confusion matrix (injected x detected, healthy rows included), which must be
// diagonal: each fault detected as its class and nothing else, each healthy load as none. The
// healthy guest runs its loads while the fault guests come and go beside it (two guests at once,
// as in test/integration/detect.test.ts). Each result is logged as it comes (test/long/log.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DetectedClass, DetectTarget, detectedClass, FAULT_CLASSES, guestShape, HEALTHY_LOADS, healthyRun, injectAndDetect,
} from '../integration/detect-support';
import { longLog } from './log';

const REPEATS = Number(process.env.GRASS_LONG_DETECT_REPEATS ?? 3);
const HEALTHY_SECONDS = Number(process.env.GRASS_LONG_DETECT_HEALTHY_SECONDS ?? 600);
// GRASS_LONG_DETECT_ONLY=f6,idle: only these rows (to repeat one); the matrix then says so.
const ONLY = process.env.GRASS_LONG_DETECT_ONLY?.split(',');
const FAULTS = Object.keys(FAULT_CLASSES).filter((f) => !ONLY || ONLY.includes(f));
const LOADS = Object.keys(HEALTHY_LOADS).filter((l) => !ONLY || ONLY.includes(l));
const COLUMNS: DetectedClass[] = ['F1', 'F2', 'F3', 'F4', 'F5', 'F6', 'cpu-high-load', 'memory-leak', 'none'];

test(`confusion matrix: every fault ${REPEATS} times, every healthy load ${HEALTHY_SECONDS} s`, { timeout: 4 * 3600_000 }, async () => {
  const matrix = new Map<string, Map<DetectedClass, number>>();
  const count = (row: string, col: DetectedClass): void => {
    const r = matrix.get(row) ?? new Map<DetectedClass, number>();
    r.set(col, (r.get(col) ?? 0) + 1);
    matrix.set(row, r);
  };
  const latencies: string[] = [];
  const healthy = (async () => {
    if (LOADS.length === 0) return;
    const t = await DetectTarget.start(guestShape('healthy'));
    try {
      for (const load of LOADS) {
        const { seen, evaluations } = await healthyRun(t, load, HEALTHY_SECONDS);
        longLog(`healthy ${load}: ${evaluations} evaluations, detections: ${seen.map((d) => d.detector === 'hang' ? d.hangClass : d.detector).join(' ') || 'none'}`);
        if (seen.length === 0) count(load, 'none');
        for (const d of seen) count(load, d.detector === 'hang' ? d.hangClass ?? 'none' : d.detector);
      }
    } finally {
      await t.stop();
    }
  })();
  try {
    for (const fault of FAULTS) {
      for (let i = 0; i < REPEATS; i++) {
        const t = await DetectTarget.start(guestShape(fault));
        try {
          const run = await injectAndDetect(t, fault, fault === 'f6' ? 300_000 : fault === 'memory-leak' ? 240_000 : 60_000);
          // What else the monitor reports a few windows later counts too (a second class off the diagonal).
          await new Promise((r) => setTimeout(r, 3000));
          const later = detectedClass(await t.reported());
          count(fault, run.detected);
          if (later !== 'none' && later !== run.detected && !(fault === 'memory-leak')) count(fault, later);
          latencies.push(`${fault} ${run.latencySeconds.toFixed(1)}`);
          longLog(`${fault} run ${i + 1}: ${run.detected}${later !== 'none' && later !== run.detected ? ` then ${later}` : ''} after ${run.latencySeconds.toFixed(1)} s`);
        } catch (e) {
          longLog(`${fault} run ${i + 1}: ${(e as Error).message.slice(0, 300)}`);
          count(fault, 'none');
        } finally {
          await t.stop();
        }
      }
    }
  } finally {
    await healthy.catch(() => undefined); // its error is thrown below
  }
  await healthy;
  const rows = [...FAULTS, ...LOADS];
  if (ONLY) longLog(`only the rows ${rows.join(', ')} (GRASS_LONG_DETECT_ONLY)`);
  const width = 15;
  const lines = [['injected \\ detected', ...COLUMNS].map((c) => c.padStart(width)).join('')];
  for (const row of rows) lines.push([row, ...COLUMNS.map((c) => String(matrix.get(row)?.get(c) ?? 0))].map((c) => c.padStart(width)).join(''));
  longLog(lines.join('\n'));
  longLog(`latencies (s, monitor clock): ${latencies.join(', ')}`);
  for (const row of rows) {
    const want: DetectedClass = FAULT_CLASSES[row] ?? 'none';
    const cells = matrix.get(row) ?? new Map();
    for (const [col, n] of cells) assert.equal(col, want, `${row} detected as ${col} ${n} time(s)`);
  }
});
