// The CPU-high-load and memory-leak detectors on a testbed guest (2 CPUs, 512 MiB, 64 MiB swap):
// an idle guest gives no detection; the testbed's faults are detected with their culprits named
// (the comm the guest's own ps shows) and the figures the guest's /proc/meminfo shows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootGuest, Guest } from '../../testbed';
import type { Detection } from '../../src/detect/detections';
import { grassJson, GuestAgent, startGuestAgent } from './agentHarness';

let guest: Guest;
let agent: GuestAgent;
let args: string[];

before(async () => {
  guest = await bootGuest({ memMiB: 512, cpus: 2, swapMiB: 64 });
  agent = await startGuestAgent(guest);
  args = ['--target', agent.target, '--key-file', agent.keyFile];
});

after(async () => {
  await agent?.stop();
  await guest?.down();
});

/** Pids of the guest's processes with this comm (the guest has no pgrep). */
async function guestPids(comm: string): Promise<number[]> {
  const out = await guest.exec(`for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = "${comm}" ] && echo \${p#/proc/}; done; true`);
  return out.trim().split(/\s+/).filter(Boolean).map(Number);
}

async function killGuest(comm: string): Promise<void> {
  const pids = await guestPids(comm);
  if (pids.length) await guest.exec(`kill ${pids.join(' ')}; true`);
}

async function detections(): Promise<Detection[]> {
  return (await grassJson<{ detections: Detection[] }>(['detect', ...args, '--json'])).detections;
}

/**
 * Polls until the detector is active (or, with latched, has a detection on record: the OOM killer
 * may end a leak between two polls); returns it and the seconds waited.
 */
async function waitFor(detector: Detection['detector'], timeoutMs: number, latched = false): Promise<{ d: Detection; seconds: number }> {
  const start = Date.now();
  let last: Detection[] = [];
  while (Date.now() - start < timeoutMs) {
    last = await detections();
    const d = last.find((x) => x.detector === detector && (x.active || (latched && x.detectedAt !== null)));
    if (d) return { d, seconds: (Date.now() - start) / 1000 };
    await sleep(1000);
  }
  throw new Error(`${detector} not detected in ${timeoutMs / 1000} s: ${JSON.stringify(last)}`);
}

test('an idle guest gives no detection for 20 s while the detectors keep evaluating', async () => {
  const first = await detections();
  let evaluated = 0;
  for (let i = 0; i < 10; i++) {
    await sleep(2000);
    const now = await detections();
    assert.deepEqual(now.filter((d) => d.active || d.detectedAt !== null), [], JSON.stringify(now));
    assert.ok(now.every((d) => d.error === null), JSON.stringify(now));
    evaluated = Math.max(...now.map((d) => d.evaluatedAt));
    const background = (await grassJson<{ detections: Detection[] }>(['detect', ...args, '--background', '--json'])).detections;
    assert.deepEqual(background.filter((d) => d.active || d.detectedAt !== null), [], JSON.stringify(background));
    assert.ok(Math.max(...background.map((d) => d.evaluatedAt)) >= evaluated - 2, 'the background area follows the evaluations');
  }
  assert.ok(evaluated > Math.max(0, ...first.map((d) => d.evaluatedAt)) + 10, 'the detectors evaluated during the idle period');
});

test('cpu-high-load: every CPU busy with yes is detected, with yes as the culprits', async () => {
  await guest.fault('cpu-high-load');
  try {
    const { d, seconds } = await waitFor('cpu-high-load', 40_000);
    console.log(`cpu-high-load detected after ${seconds.toFixed(1)} s of polling (paper: 6.6 s)`);
    const yesPids = await guestPids('yes');
    assert.equal(yesPids.length, 2);
    assert.ok(d.figures.spanSeconds >= 5 && d.figures.leastBusyCpuPercent >= 90, JSON.stringify(d));
    const top = d.culprits.slice(0, 2);
    assert.deepEqual(top.map((c) => c.comm), ['yes', 'yes'], JSON.stringify(d.culprits));
    assert.deepEqual(top.map((c) => c.pid).sort(), yesPids.sort());
    for (const c of top) assert.ok(c.cpuPercent > 40 && c.cpuPercent < 130, JSON.stringify(c));
    // Background mode: the same detection from the header's background area, with no request.
    const background = (await grassJson<{ detections: Detection[] }>(['detect', ...args, '--background', '--json'])).detections;
    const b = background.find((x) => x.detector === 'cpu-high-load');
    assert.equal(b?.active, true, JSON.stringify(background));
    assert.deepEqual(b?.culprits.slice(0, 2).map((c) => c.pid).sort(), yesPids.sort());
  } finally {
    await killGuest('yes');
  }
  // The condition clears once the load is gone.
  await sleep(3000);
  const after = await detections();
  assert.equal(after.find((d) => d.detector === 'cpu-high-load')?.active, false, JSON.stringify(after));
});

test('memory-leak: a growing allocation is detected with grass-hog as the top consumer', async () => {
  await guest.fault('memory-leak');
  try {
    // No memory-leak detection is on record before (the idle test checked).
    const { d } = await waitFor('memory-leak', 120_000, true);
    const f = d.figures;
    assert.ok(f.memFreeBytes < 0.3 * f.memTotalBytes && f.swapFreeBytes < 0.3 * f.swapTotalBytes, JSON.stringify(d));
    assert.equal(d.culprits[0]?.comm, 'grass-hog', JSON.stringify(d.culprits));
    const meminfo = (await guest.truth()).meminfo;
    assert.equal(f.memTotalBytes, meminfo.MemTotal * 1024);
    assert.equal(f.swapTotalBytes, meminfo.SwapTotal * 1024);
  } finally {
    await killGuest('grass-hog');
  }
});
