// The detectors against real faults and healthy loads on testbed guests (cpu backend, 1 GiB, 2
// CPUs): each of F1-F6, cpu-high-load and memory-leak injected once is detected with the right
// class and the culprits the guest's own /proc named before the fault; 60 s of each healthy load
// (idle, a user loop per CPU, dd to a virtio disk, dd /dev/zero -> /dev/null per CPU) gives no
// detection at all. The healthy guest runs its four loads back to back while the fault guests come and
// go one at a time beside it (two guests at most), so the whole file takes about five minutes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Detection } from '../../src/detect/detections';
import { grassJson } from './agent-harness';
import { DetectTarget, FaultRun, guestShape, HEALTHY_LOADS, healthyRun, injectAndDetect } from './detect-support';

const HEALTHY_SECONDS = 60;

interface HealthyResult { load: string; seen: Detection[]; evaluations: number }
let healthy: Promise<HealthyResult[] | Error>;
const started: DetectTarget[] = [];

before(() => {
  healthy = (async () => {
    const t = await DetectTarget.start(guestShape('healthy'));
    started.push(t);
    const results: HealthyResult[] = [];
    for (const load of Object.keys(HEALTHY_LOADS)) results.push({ load, ...(await healthyRun(t, load, HEALTHY_SECONDS)) });
    return results;
  })().catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
});

after(async () => {
  await Promise.all(started.map((t) => t.stop()));
});

/** Boots a guest for one fault, injects it, returns the run; the guest goes down after (`then` runs on it before). */
async function faultRun(fault: string, timeoutMs: number, also?: (t: DetectTarget) => Promise<void>, then?: (t: DetectTarget) => Promise<void>): Promise<FaultRun> {
  const t = await DetectTarget.start(guestShape(fault));
  try {
    await also?.(t);
    const run = await injectAndDetect(t, fault, timeoutMs);
    console.log(`${fault}: ${run.detected} after ${run.latencySeconds.toFixed(1)} s (monitor clock); culprits ${run.detection.culprits.map((c) => `${c.pid}/${c.comm}`).join(' ')}`);
    await then?.(t);
    return run;
  } finally {
    await t.stop();
  }
}

const pidsOf = (run: FaultRun, comm: string): number[] => run.truth.filter((x) => x.comm === comm).flatMap((x) => x.pids);

for (const fault of ['f1', 'f2', 'f3'] as const) {
  test(`${fault.toUpperCase()}: classified ${fault.toUpperCase()}, each CPU's looping thread named on its CPU${fault === 'f1' ? '; grass detect: not panicked, F1' : ''}`, async () => {
    let cli: { panic: { panicked: boolean; panicCpu: number | null; report: unknown }; detections: Detection[] } | undefined;
    // F1 stops every CPU as a panic does: the remote's panic check (src/detect/panic.ts) must not take it for one.
    const run = await faultRun(fault, 60_000, undefined, fault === 'f1' ? async (t) => void (cli = await grassJson(['detect', ...t.args, '--background'])) : undefined);
    if (cli) {
      assert.deepEqual({ panicked: cli.panic.panicked, panicCpu: cli.panic.panicCpu, report: cli.panic.report }, { panicked: false, panicCpu: null, report: null });
      const hang = cli.detections.find((d) => d.detector === 'hang');
      assert.deepEqual([hang?.active, hang?.hangClass, hang?.superseded], [true, 'F1', undefined], JSON.stringify(hang));
    }
    assert.equal(run.detected, run.expected, JSON.stringify(run.detection));
    const expected = [0, 1].map((cpu) => ({ pid: pidsOf(run, `grass_${fault}/${cpu}`)[0], comm: `grass_${fault}/${cpu}`, cpu }));
    assert.ok(expected.every((e) => e.pid > 0), JSON.stringify(run.truth));
    const onCpu = run.detection.culprits.map((c) => ({ pid: c.pid, comm: c.comm, cpu: c.cpu }));
    assert.deepEqual(onCpu, expected);
    assert.deepEqual(run.detection.figures.stuckCpus, [0, 1]);
    if (fault === 'f1') assert.deepEqual(run.detection.figures.timerStoppedCpus, [0, 1]);
    else assert.ok((run.detection.figures.jiffies as number) > 0, 'jiffies advance: interrupts are on');
    if (fault === 'f3') assert.deepEqual(run.detection.figures.preemptOffCpus, [0, 1]);
    if (fault === 'f2') assert.deepEqual(run.detection.figures.preemptOffCpus, []);
  });
}

test('F5: classified F5; the task that slept holding the lock (as the serial console names it) first, then the spinning threads', async () => {
  const run = await faultRun('f5', 60_000);
  assert.equal(run.detected, 'F5', JSON.stringify(run.detection));
  const [holder, ...spinners] = run.detection.culprits;
  // comm is TASK_COMM_LEN - 1 characters, as the kernel prints it.
  const truth = run.truth[0];
  assert.equal(truth.comm, 'grass_f5_sleepe');
  assert.deepEqual({ pid: holder.pid, comm: holder.comm, role: holder.role }, { pid: truth.pids[0], comm: truth.comm, role: 'lock-holder' });
  // The spinners start after the sleeper, one per CPU, and the hang follows before /proc can be read.
  assert.deepEqual(spinners.map((c) => [c.comm, c.cpu, c.role]), [['grass_f5/0', 0, 'on-cpu'], ['grass_f5/1', 1, 'on-cpu']]);
  assert.ok(spinners.every((c) => c.pid > holder.pid), JSON.stringify(spinners));
});

test('cpu-high-load, then F4 on the same guest: the yes processes (four per CPU) as the culprits; the blocked readers of /dev/grass_f4 as F4\'s waiters', async () => {
  let cpu: FaultRun | undefined;
  const f4 = await faultRun('f4', 60_000, async (t) => {
    cpu = await injectAndDetect(t, 'cpu-high-load', 60_000);
    console.log(`cpu-high-load: after ${cpu.latencySeconds.toFixed(1)} s (monitor clock)`);
    await t.guest.exec('kill -9 $(for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = yes ] && echo ${p#/proc/}; done) 2>/dev/null; true');
    await t.waitFor((ds) => (ds.some((d) => d.active) ? undefined : ds[0]), 20_000); // the load is gone
  });
  assert.ok(cpu);
  assert.equal(cpu.detected, 'cpu-high-load', JSON.stringify(cpu.detection));
  const yes = new Set(pidsOf(cpu, 'yes'));
  assert.equal(yes.size, 8);
  assert.deepEqual(cpu.detection.culprits.map((c) => c.pid).filter((pid) => yes.has(pid)).length, 8, JSON.stringify(cpu.detection.culprits));
  const f = cpu.detection.figures as Record<string, number>;
  assert.ok(f.runnableTasks >= 2 * f.cpuCount && f.cpuCount === 2, JSON.stringify(f));
  assert.equal(f4.detected, 'F4', JSON.stringify(f4.detection));
  assert.ok((f4.detection.figures.blk as number) >= 32, JSON.stringify(f4.detection.figures));
  const cats = new Set(pidsOf(f4, 'cat'));
  assert.equal(cats.size, 32);
  assert.equal(f4.detection.culprits.length, 8);
  for (const c of f4.detection.culprits) assert.ok(c.comm === 'cat' && cats.has(c.pid) && c.role === 'waiter', JSON.stringify(c));
});

test('memory-leak: a growing allocation is detected with grass-hog as the top consumer', async () => {
  const run = await faultRun('memory-leak', 150_000);
  assert.equal(run.detected, 'memory-leak', JSON.stringify(run.detection));
  assert.equal(run.detection.culprits[0]?.comm, 'grass-hog');
  const f = run.detection.figures as Record<string, number>;
  assert.ok(f.memFreeBytes < 0.3 * f.memTotalBytes && f.swapFreeBytes < 0.3 * f.swapTotalBytes, JSON.stringify(f));
});

test('F6: a working set beyond RAM rewritten without end is classified F6 (swap both ways), grass-hog the top consumer', async () => {
  // The hog first allocates RAM + swap/2 under TCG: 155 s on an idle host, past 180 s on a loaded one.
  const run = await faultRun('f6', 300_000);
  assert.equal(run.detected, 'F6', JSON.stringify(run.detection));
  assert.equal(run.detection.culprits[0]?.comm, 'grass-hog');
  assert.deepEqual([run.detection.culprits[0].pid], pidsOf(run, 'grass-hog'));
  const f = run.detection.figures as Record<string, number>;
  assert.ok(f.pswpinPerSecond > 0 && f.pswpoutPerSecond > 0 && f.memFreeBytes < 0.1 * f.memTotalBytes, JSON.stringify(f));
});

test(`healthy loads, ${HEALTHY_SECONDS} s each: no detection`, async () => {
  const results = await healthy;
  if (results instanceof Error) throw results;
  for (const r of results) {
    console.log(`healthy ${r.load}: ${r.evaluations} evaluations; detections: ${r.seen.map((d) => `${d.detector}${d.hangClass ?? ''} (${d.culprits.slice(0, 2).map((c) => c.comm).join(',')})`).join(' ') || 'none'}`);
  }
  for (const r of results) {
    assert.ok(r.evaluations >= HEALTHY_SECONDS * 0.6, `${r.load}: only ${r.evaluations} evaluations`);
    const classes = [...new Set(r.seen.map((d) => (d.detector === 'hang' ? d.hangClass : d.detector)))];
    assert.deepEqual(classes, [], `${r.load}: ${JSON.stringify(r.seen)}`);
  }
  // The CLI reads the same area: no detection now either.
  const t = started[0];
  const cli = await grassJson<{ detections: Detection[] }>(['detect', ...t.args, '--background']);
  assert.deepEqual(cli.detections.filter((d) => d.active), []);
});
