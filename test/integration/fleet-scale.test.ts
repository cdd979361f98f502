// One grass monitor holding 200 targets: real agents (gpu/build/grass-agent, cpu backend), each
// on its own shm buffer over one saved image of a testbed guest (test/integration/fleet-support.ts),
// named in a targets file that the monitor, started with an empty one, reads again when it
// changes. Every target must be held, answer and be observed (detections, process count, kernel
// log read once); one heartbeat sweep to all 200 must take at most 100 ms at the median over 15 s
// of sweeps; the monitor's RSS and CPU per target are printed (the bench's `fleet` group records
// them with 10 and 100 targets beside, and a line for 10 000).
// Needs about 45 MiB of memory per agent (its heap: discovery, BTF, symbols) and 2 GiB more.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENT_MIB, AgentFleet, availableMiB, FleetMonitor, measureSweeps, processMemoryKiB, type SweepWindow } from './fleet-support';
import type { RelayMemory, TargetStatus } from '../../src/relay/wire';

const TARGETS = 200;
const SWEEP_MEDIAN_LIMIT_S = 0.1;

let fleet: AgentFleet | undefined;
let monitor: FleetMonitor | undefined;
let held: TargetStatus[];
let window: SweepWindow;
let rssEmpty: ReturnType<typeof processMemoryKiB>;
let rssFull: ReturnType<typeof processMemoryKiB>;
let heapEmpty: RelayMemory;
let heapFull: RelayMemory;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

before(async () => {
  const need = TARGETS * AGENT_MIB + 2048;
  if (availableMiB() < need) throw new Error(`fleet-scale needs about ${need} MiB available for ${TARGETS} agents; this machine has ${Math.round(availableMiB())} MiB`);
  fleet = await AgentFleet.capture(`/dev/shm/grass-fleet-scale-${process.pid}`);
  const started = Date.now();
  await fleet.grow(TARGETS);
  console.log(`${TARGETS} agents up in ${((Date.now() - started) / 1000).toFixed(1)} s on one ${fleet.release} image`);
  monitor = await FleetMonitor.start(fleet.dir, []);
  await monitor.settle(0, 30_000);
  await sleep(3000);
  heapEmpty = await monitor.memory();
  rssEmpty = processMemoryKiB(monitor.pid);
  const heldAt = Date.now();
  monitor.retarget(fleet.entries(TARGETS));
  held = await monitor.settle(TARGETS, 300_000);
  console.log(`${TARGETS} targets held and observed ${((Date.now() - heldAt) / 1000).toFixed(1)} s after the targets file named them`);
  await sleep(5000); // the first observations (descriptions) are over: steady state
  window = await measureSweeps(monitor, 15_000);
  heapFull = await monitor.memory();
  rssFull = processMemoryKiB(monitor.pid);
});

after(async () => {
  await monitor?.stop();
  await fleet?.stop();
});

test(`one monitor holds ${TARGETS} targets from its targets file, every one answering and observed`, () => {
  assert.equal(held.length, TARGETS);
  assert.deepEqual(held.map((t) => t.name).sort(), fleet!.entries(TARGETS).map((e) => e.name));
  for (const t of held) {
    assert.equal(t.state, 'up', `${t.name}: ${t.failure}`);
    // What the image holds, as every agent found it (the same kernel, the same process count).
    assert.equal(t.last.release, fleet!.release, t.name);
    assert.equal(t.last.processes, held[0].last.processes, t.name);
    assert.equal(t.last.kernelPanicked, false, t.name);
  }
});

test(`a heartbeat sweep to all ${TARGETS} takes at most ${SWEEP_MEDIAN_LIMIT_S * 1000} ms at the median; the monitor's RSS and CPU per target`, () => {
  assert.ok(window.seconds.length >= 10, `only ${window.seconds.length} sweeps in 15 s`);
  assert.ok(window.targets.every((n) => n === TARGETS), `sweeps that left targets out: ${JSON.stringify(window.targets)}`);
  const m = median(window.seconds);
  const perTargetKiB = (rssFull.rss - rssEmpty.rss) / TARGETS;
  console.log(`sweep of ${TARGETS}: median ${(m * 1000).toFixed(1)} ms, min ${(Math.min(...window.seconds) * 1000).toFixed(1)}, max ${(Math.max(...window.seconds) * 1000).toFixed(1)} over ${window.seconds.length} sweeps`);
  console.log(`monitor RSS ${(rssEmpty.rss / 1024).toFixed(1)} MiB empty, ${(rssFull.rss / 1024).toFixed(1)} MiB with ${TARGETS} targets: ${perTargetKiB.toFixed(0)} KiB per target ` +
    `(anonymous ${((rssFull.anon - rssEmpty.anon) / TARGETS).toFixed(0)} KiB, shared memory of the buffers ${((rssFull.shmem - rssEmpty.shmem) / TARGETS).toFixed(0)} KiB); ` +
    `live JS heap after a full collection ${((heapFull.heapUsed - heapEmpty.heapUsed) / 1024 / TARGETS).toFixed(0)} KiB per target`);
  console.log(`monitor CPU ${(window.cpuCores * 100).toFixed(1)} % of a core: ${((window.cpuCores / TARGETS) * 1e6).toFixed(0)} µs per target per second (heartbeat every 1 s, observation every 5 s)`);
  assert.ok(m <= SWEEP_MEDIAN_LIMIT_S, `median sweep ${(m * 1000).toFixed(1)} ms`);
});
