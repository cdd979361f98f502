// The remote's decoders of GRASS_OP_METRICS and GRASS_OP_DETECT replies and of the background
// area against bytes laid out by a C program compiled from the real protocol.h (designated
// initialisers, so the struct layout is the compiler's, not the TypeScript mirror's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeMetricsReply } from '../../src/rdma/protocol/decode-metrics';
import { metricsWindow } from '../../src/detect/metrics';
import { decodeBackground } from '../../src/rdma/protocol/decode-background';
import { decodeDetectionRecords } from '../../src/rdma/protocol/decode-detections';
import { interpretDetections } from '../../src/detect/detections';

const includeDir = path.resolve(__dirname, '../../gpu/include');

function cBytes(body: string): Uint8Array {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-detect-'));
  try {
    const source = ['#include <stdio.h>', '#include <string.h>', '#include "grass/protocol.h"',
      'static void out(const void* p, size_t n) { fwrite(p, 1, n, stdout); }', 'int main(void) {', body, '  return 0;', '}', ''].join('\n');
    writeFileSync(path.join(dir, 'p.c'), source);
    execFileSync('gcc', ['-std=c11', '-Wall', '-Werror', '-I', includeDir, '-o', path.join(dir, 'p'), path.join(dir, 'p.c')]);
    return new Uint8Array(execFileSync(path.join(dir, 'p')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a metrics reply decodes and its window gives the shares and rates of the counters', () => {
  const bytes = cBytes(`
  struct grass_metrics_sample a = {.monitor_clock_ns = 5000000000ull, .cpu_count = 2, .pswpout = 100, .pswpin = 7,
    .free_pages = 1000, .total_ram_pages = 4000, .free_swap_pages = 10, .total_swap_pages = 20, .page_size = 4096};
  struct grass_metrics_sample b = a;
  b.monitor_clock_ns = 7000000000ull; b.pswpout = 300; b.free_pages = 900;
  struct grass_metrics_cpu a0 = {.user_ns = 1000, .system_ns = 1000, .idle_ns = 1000, .nr_switches = 50, .nr_running = 1};
  struct grass_metrics_cpu a1 = {.nice_ns = 5, .nr_switches = 10, .nr_iowait = 9};
  struct grass_metrics_cpu b0 = a0, b1 = a1;
  b0.user_ns += 600; b0.system_ns += 200; b0.irq_ns += 50; b0.softirq_ns += 50; b0.idle_ns += 100; b0.nr_switches += 1000; b0.nr_running = 3;
  b1.iowait_ns += 750; b1.steal_ns += 250; b1.nr_switches += 1000; b1.nr_iowait = 4;
  out(&a, sizeof a); out(&a0, sizeof a0); out(&a1, sizeof a1); out(&b, sizeof b); out(&b0, sizeof b0); out(&b1, sizeof b1);`);
  const [start, end] = decodeMetricsReply(bytes);
  assert.equal(start.monitorClockNs, 5_000_000_000n);
  assert.equal(end.cpus[1].nrIowait, 4);
  const w = metricsWindow(start, end);
  assert.equal(w.windowSeconds, 2);
  assert.deepEqual(w.cpus[0], { cpu: 0, usr: 60, sys: 30, iowait: 0, idle: 10, steal: 0 });
  assert.deepEqual(w.cpus[1], { cpu: 1, usr: 0, sys: 0, iowait: 75, idle: 0, steal: 25 });
  assert.equal(w.contextSwitchesPerSecond, 1000);
  assert.equal(w.run, 3);
  assert.equal(w.blk, 4);
  assert.equal(w.pswpoutPerSecond, 100);
  assert.equal(w.memFreeBytes, 900 * 4096);
  assert.equal(w.swapTotalBytes, 20 * 4096);
  assert.throws(() => decodeMetricsReply(bytes.subarray(0, bytes.length - 1)), /too short/);
  assert.throws(() => metricsWindow(end, start), /window/);
});

test('a detection reply decodes: kinds, times, figures and culprits', () => {
  const bytes = cBytes(`
  struct grass_detection d[GRASS_DETECTORS];
  memset(d, 0, sizeof d);
  d[0].kind = GRASS_DETECT_CPU_HIGH_LOAD; d[0].active = 1; d[0].detected_ns = 9000000000ull; d[0].since_ns = 3000000000ull;
  d[0].evaluated_ns = 10000000000ull; d[0].values[0] = 987; d[0].values[1] = 1; d[0].values[2] = 6000000000ull; d[0].values[3] = 9; d[0].values[4] = 2;
  d[0].culprit_count = 2;
  d[0].culprits[0].pid = 321; d[0].culprits[0].cpu_permille = 995; strcpy(d[0].culprits[0].comm, "yes");
  d[0].culprits[1].pid = 322; d[0].culprits[1].cpu_permille = 990; strcpy(d[0].culprits[1].comm, "fifteen-chars-x");
  d[1].kind = GRASS_DETECT_MEMORY_LEAK; d[1].evaluated_ns = 10000000000ull; d[1].status = GRASS_E_UNMAPPED; d[1].detail = 0xffff888000001000ull;
  d[2].kind = GRASS_DETECT_HANG; d[2].active = 1; d[2].background = 1; d[2].detected_ns = 8000000000ull; d[2].evaluated_ns = 10000000000ull;
  d[2].values[0] = GRASS_HANG_F3; d[2].values[1] = 3; d[2].values[2] = 0; d[2].values[3] = 2; d[2].values[5] = 250; d[2].values[6] = 0; d[2].values[7] = 4;
  d[2].culprit_count = 2;
  d[2].culprits[0].pid = 117; d[2].culprits[0].cpu = 0; strcpy(d[2].culprits[0].comm, "grass_f3/0");
  d[2].culprits[1].pid = 118; d[2].culprits[1].cpu = 1; strcpy(d[2].culprits[1].comm, "grass_f3/1");
  out(d, sizeof d);`);
  const [cpu, mem, hang] = interpretDetections(decodeDetectionRecords(bytes));
  assert.equal(cpu.detector, 'cpu-high-load');
  assert.equal(cpu.active, true);
  assert.equal(cpu.detectedAt, 9);
  assert.equal(cpu.holdsSince, 3);
  assert.deepEqual(cpu.figures, { leastBusyCpuPercent: 98.7, leastBusyCpu: 1, spanSeconds: 6, runnableTasks: 9, cpuCount: 2 });
  assert.deepEqual(cpu.culprits.map((c) => [c.pid, c.comm, c.cpuPercent]), [[321, 'yes', 99.5], [322, 'fifteen-chars-x', 99]]);
  assert.equal(mem.detector, 'memory-leak');
  assert.equal(mem.active, false);
  assert.equal(mem.detectedAt, null);
  assert.deepEqual(mem.figures, {});
  assert.equal(mem.error, 'Unmapped at 0xffff888000001000');
  assert.equal(hang.detector, 'hang');
  assert.equal(hang.hangClass, 'F3');
  assert.equal(hang.mode, 'background');
  assert.equal(mem.mode, 'inline');
  assert.deepEqual(hang.figures, { stuckCpus: [0, 1], timerStoppedCpus: [], preemptOffCpus: [1], lockWaiters: 0, jiffies: 250, contextSwitches: 0, runnableWaiting: 4 });
  assert.deepEqual(hang.culprits.map((c) => [c.pid, c.comm, c.cpu, c.role]), [[117, 'grass_f3/0', 0, 'on-cpu'], [118, 'grass_f3/1', 1, 'on-cpu']]);
  assert.throws(() => decodeDetectionRecords(bytes.subarray(8)), /expected 3 records/);
});

test('a background area decodes: its detections, and its history ring oldest first across the wrap', () => {
  const bytes = cBytes(`
  struct grass_background b;
  memset(&b, 0, sizeof b);
  b.layout = GRASS_BACKGROUND_LAYOUT; b.history_count = 3; b.history_next = 1;
  b.history[GRASS_HISTORY_POINTS - 2].monitor_clock_ns = 1000000000ull; b.history[GRASS_HISTORY_POINTS - 2].context_switches = 500;
  b.history[GRASS_HISTORY_POINTS - 1].monitor_clock_ns = 2000000000ull; b.history[GRASS_HISTORY_POINTS - 1].usr_permille = 250;
  b.history[0].monitor_clock_ns = 3000000000ull; b.history[0].window_ms = 500; b.history[0].pswpout = 40; b.history[0].free_mib = 77;
  b.history[0].run = 5; b.history[0].blk = 6; b.history[0].util_permille = 999; b.history[0].jiffies = 125;
  b.history[5].monitor_clock_ns = 9000000000ull; /* outside the 3 valid points */
  b.detections[0].kind = GRASS_DETECT_CPU_HIGH_LOAD; b.detections[0].background = 1; b.detections[0].evaluated_ns = 3000000000ull;
  out(&b, sizeof b);`);
  const area = decodeBackground(bytes);
  assert.deepEqual(area.history.map((p) => p.monitorClockNs), [1_000_000_000n, 2_000_000_000n, 3_000_000_000n]);
  assert.equal(area.history[0].contextSwitches, 500);
  assert.equal(area.history[1].usrPermille, 250);
  assert.deepEqual(area.history[2], {
    monitorClockNs: 3_000_000_000n, windowMs: 500, usrPermille: 0, sysPermille: 0, iowaitPermille: 0, idlePermille: 0,
    contextSwitches: 0, pswpin: 0, pswpout: 40, freeMib: 77, run: 5, blk: 6, utilPermille: 999, jiffies: 125,
  });
  assert.deepEqual(area.detections.map((d) => [d.kind, d.background, d.evaluatedNs]), [[1, true, 3_000_000_000n], [0, false, 0n], [0, false, 0n]]);
  const [cpu] = interpretDetections(area.detections);
  assert.equal(cpu.mode, 'background');
  assert.throws(() => decodeBackground(bytes.subarray(1)), /background area of \d+ bytes, expected/);
  const otherLayout = bytes.slice();
  otherLayout[0] ^= 0xff;
  assert.throws(() => decodeBackground(otherLayout), /this remote reads layout 2/);
});
