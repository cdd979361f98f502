// The soak shared by test/integration/soak.test.ts (short, in `npm test`) and
// test/long/soak.test.ts (one million heartbeats and ten minutes of load): a real agent on a
// paused testbed guest (its memory holds still, so every answer has one right value), back-to-back
// heartbeats, then heartbeats, `ps` and physical reads at once. Every read is checked against the
// guest's RAM file at a different address each time (a stale or misrouted reply cannot match),
// every process list against the first one. A `grass monitor` holds the same agent and polls it
// (every 100 ms) throughout. The agent's, the monitor's and this process's memory is measured
// after a warm-up and at the end.
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { bootGuest, Guest } from '../../testbed';
import { GrassClient } from '../../src/rdma/client';
import { readKeyFile } from '../../src/rdma/key';
import { openShmTransport } from '../../src/rdma/shm';
import { relayMemory, relayTargets } from '../../src/relay/remote';
import type { TargetStatus } from '../../src/relay/wire';
import { GuestAgent, root, startGuestAgent } from './agent-harness';

export interface SoakOptions {
  heartbeats: number;
  /** Stop the heartbeat phase early after this long (bounds `npm test` on a loaded host). */
  heartbeatSecondsAtMost?: number;
  loadSeconds: number;
  /** Called every 100 000 heartbeats and every minute of load (a long run shows it is alive). */
  progress?: (line: string) => void;
}

/**
 * RssAnon is what a leak grows: VmRSS also counts the pages of the guest's RAM file (the agent
 * maps it; random reads touch more of it) and of the shm buffer (both processes map it).
 */
export interface Memory {
  agentRssKiB: number;
  agentAnonKiB: number;
  clientRssKiB: number;
  clientAnonKiB: number;
  monitorRssKiB: number;
  monitorAnonKiB: number;
  /** The monitor's V8 heap in use after a full collection (it runs with --expose-gc). */
  monitorHeapKiB: number;
  /** This process's V8 heap in use after a full collection. */
  clientHeapKiB: number;
  /** What V8 holds for its heap (it keeps pages it grew into: part of RssAnon, not a leak). */
  clientHeapTotalKiB: number;
  /** ArrayBuffers (Buffers) alive in this process after a full collection. */
  clientBuffersKiB: number;
}

export interface SoakResult {
  heartbeats: number;
  loadHeartbeats: number;
  processLists: number;
  reads: number;
  readBytes: number;
  /** Requests that got no answer, a wrong answer, or an error. */
  lost: string[];
  wrong: string[];
  servedByAgent: bigint;
  refusedByAgent: bigint;
  before: Memory;
  after: Memory;
  /** Memory at every progress point (every 100 000 heartbeats, every minute of load), in order. */
  series: { at: string; memory: Memory }[];
  /**
   * Memory after the first part of the mixed load (settlingSeconds): the client's allocator
   * grows its arenas once as four request loops start (measured: +22 MiB in the first minute,
   * then about 1 MiB a minute, levelling off), so a leak shows as growth after it.
   */
  settled: Memory;
  settledAfterSeconds: number;
  /** The monitor's view of the target at the end. */
  monitorTarget: TargetStatus;
  slowestHeartbeatMs: number;
}

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

function statusKiB(pid: number, field: 'VmRSS' | 'RssAnon'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `no ${field} for process ${pid}`);
  return Number(m[1]);
}

async function memory(agentPid: number, monitorPid: number, relaySocket: string): Promise<Memory> {
  collectGarbage();
  const monitor = await relayMemory(relaySocket);
  assert.ok(monitor.collected, 'the monitor runs with --expose-gc');
  return {
    monitorHeapKiB: Math.round(monitor.heapUsed / 1024),
    monitorRssKiB: statusKiB(monitorPid, 'VmRSS'),
    monitorAnonKiB: statusKiB(monitorPid, 'RssAnon'),
    agentRssKiB: statusKiB(agentPid, 'VmRSS'),
    agentAnonKiB: statusKiB(agentPid, 'RssAnon'),
    clientRssKiB: statusKiB(process.pid, 'VmRSS'),
    clientAnonKiB: statusKiB(process.pid, 'RssAnon'),
    clientHeapKiB: Math.round(process.memoryUsage().heapUsed / 1024),
    clientHeapTotalKiB: Math.round(process.memoryUsage().heapTotal / 1024),
    clientBuffersKiB: Math.round(process.memoryUsage().arrayBuffers / 1024),
  };
}

/** A deterministic pseudo-random sequence (xorshift), so a failing address can be found again. */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export async function soak(options: SoakOptions): Promise<SoakResult> {
  let guest: Guest | undefined;
  let agent: GuestAgent | undefined;
  let client: GrassClient | undefined;
  let monitor: ChildProcess | undefined;
  let monitorOutput = '';
  try {
    guest = await bootGuest({ memMiB: 256, cpus: 1 });
    agent = await startGuestAgent(guest);
    await guest.pause();
    const g = guest;
    client = await GrassClient.attach(await openShmTransport(agent.shmPath), readKeyFile(agent.keyFile), { timeoutMs: 10_000 });
    const c = client;
    const agentPid = Number(agent.ready.pid);
    const socket = path.join(path.dirname(agent.keyFile), 'monitor.sock');
    monitor = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'src/cli/main.ts', 'monitor', '--connect', agent.target, '--socket', socket, '--key-file', agent.keyFile, '--poll-ms', '100'],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    monitor.stdout!.setEncoding('utf8').on('data', (c: string) => (monitorOutput += c));
    monitor.stderr!.setEncoding('utf8').on('data', (c: string) => (monitorOutput += c));
    const monitorPid = monitor.pid!;
    const heldUp = async (): Promise<TargetStatus | undefined> => (await relayTargets(socket).catch(() => [])).find((t) => t.state === 'up' && t.last.processes !== undefined);
    for (let i = 0; i < 300 && !(await heldUp()); i++) await new Promise((r) => setTimeout(r, 200));
    assert.ok(await heldUp(), `the monitor holds the agent: ${monitorOutput}`);
    const ranges = g.memoryMap().ranges.map((r) => ({ start: BigInt(r.physStart), length: Number(BigInt(r.length)) }));
    const reference = (await c.processList({ threads: true })).map((t) => `${t.pid}:${t.comm}:${t.state}`).join(',');
    const random = xorshift(0x9e3779b9);
    const lost: string[] = [];
    const wrong: string[] = [];
    let slowestHeartbeatMs = 0;

    const readOnce = async (): Promise<number> => {
      const range = ranges[random() % ranges.length];
      const length = 1 + (random() % (64 << 10));
      const offset = random() % (range.length - length);
      const phys = range.start + BigInt(offset);
      try {
        const got = Buffer.from(await c.read({ kind: 'physical' }, phys, length));
        if (!got.equals(g.readPhysical(phys, length))) wrong.push(`read of ${length} bytes at 0x${phys.toString(16)}`);
      } catch (err) {
        lost.push(`read of ${length} bytes at 0x${phys.toString(16)}: ${String(err)}`);
      }
      return length;
    };
    const psOnce = async (): Promise<void> => {
      try {
        const listed = (await c.processList({ threads: true })).map((t) => `${t.pid}:${t.comm}:${t.state}`).join(',');
        if (listed !== reference) wrong.push('a process list differs from the first');
      } catch (err) {
        lost.push(`ps: ${String(err)}`);
      }
    };
    const heartbeatOnce = async (): Promise<void> => {
      const start = process.hrtime.bigint();
      try {
        await c.heartbeat();
      } catch (err) {
        lost.push(`heartbeat: ${String(err)}`);
      }
      slowestHeartbeatMs = Math.max(slowestHeartbeatMs, Number(process.hrtime.bigint() - start) / 1e6);
    };
    /** Heartbeats, ps and reads at once for `seconds`. */
    const load = async (seconds: number): Promise<{ heartbeats: number; lists: number; reads: number; bytes: number }> => {
      const end = Date.now() + seconds * 1000;
      const counts = { heartbeats: 0, lists: 0, reads: 0, bytes: 0 };
      await Promise.all([
        (async () => { while (Date.now() < end) { await heartbeatOnce(); counts.heartbeats++; } })(),
        (async () => { while (Date.now() < end) { await psOnce(); counts.lists++; } })(),
        (async () => { while (Date.now() < end) { counts.bytes += await readOnce(); counts.reads++; } })(),
        (async () => { while (Date.now() < end) { counts.bytes += await readOnce(); counts.reads++; } })(),
      ]);
      return counts;
    };

    // Warm-up: every kind of request once over, so the agent's arenas and the client's caches
    // are in place before memory is measured.
    for (let i = 0; i < 500; i++) await heartbeatOnce();
    await load(Math.min(5, options.loadSeconds));
    const servedBefore = (await c.liveness()).requestsServed;
    const before = await memory(agentPid, monitorPid, socket);
    const series: { at: string; memory: Memory }[] = [];
    const checkpoint = async (at: string, counts = ''): Promise<void> => {
      const m = await memory(agentPid, monitorPid, socket);
      series.push({ at, memory: m });
      options.progress?.(`soak: ${at}${counts ? `: ${counts}` : ''}, lost ${lost.length}, wrong ${wrong.length}; anonymous KiB: agent ${m.agentAnonKiB}, client ${m.clientAnonKiB} (V8 heap ${m.clientHeapKiB} of ${m.clientHeapTotalKiB}), monitor ${m.monitorAnonKiB} (V8 heap ${m.monitorHeapKiB})`);
    };

    // Four heartbeats in flight (slot 0 and whichever others are free): a loaded host schedules
    // the agent's thread late, and one at a time would take minutes there.
    let sent = 0;
    const stopAt = Date.now() + (options.heartbeatSecondsAtMost ?? Infinity) * 1000;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (sent < options.heartbeats && Date.now() < stopAt) {
        sent++;
        if (sent % 100_000 === 0) await checkpoint(`${sent} heartbeats`);
        await heartbeatOnce();
      }
    }));
    const served = (await c.liveness()).requestsServed - servedBefore;
    assert.ok(served >= BigInt(sent), `the agent served ${served} requests for ${sent} heartbeats`);
    const counts = { heartbeats: 0, lists: 0, reads: 0, bytes: 0 };
    let settled = before;
    const partSeconds = settlingSeconds(options.loadSeconds);
    for (let left = options.loadSeconds; left > 0; left -= partSeconds) {
      const part = await load(Math.min(partSeconds, left));
      counts.heartbeats += part.heartbeats;
      counts.lists += part.lists;
      counts.reads += part.reads;
      counts.bytes += part.bytes;
      await checkpoint(`load ${options.loadSeconds - left + Math.min(partSeconds, left)} s`, `${counts.heartbeats} heartbeats, ${counts.lists} lists, ${counts.reads} reads`);
      if (left === options.loadSeconds && left > partSeconds) settled = series[series.length - 1].memory;
    }
    const after = await memory(agentPid, monitorPid, socket);
    const liveness = await c.liveness();
    const monitorTarget = (await relayTargets(socket))[0];
    return {
      heartbeats: sent,
      loadHeartbeats: counts.heartbeats,
      processLists: counts.lists,
      reads: counts.reads,
      readBytes: counts.bytes,
      lost,
      wrong,
      servedByAgent: liveness.requestsServed,
      refusedByAgent: liveness.requestsRefused,
      before,
      after,
      series,
      settled,
      settledAfterSeconds: options.loadSeconds > partSeconds ? partSeconds : 0,
      monitorTarget,
      slowestHeartbeatMs,
    };
  } finally {
    if (monitor && monitor.exitCode === null) {
      const exited = new Promise<void>((resolve) => monitor!.once('exit', () => resolve()));
      monitor.kill('SIGTERM');
      await exited;
    }
    await client?.close();
    await agent?.stop();
    await guest?.down();
  }
}

/**
 * The mixed load runs in parts with a checkpoint after each; memory growth is counted from the
 * first. A minute for a long load; a third of a short one, whose arenas grow in its first
 * seconds (the 15 s form measured +30 MiB from its warm-up on, half of it beyond V8's heap).
 */
function settlingSeconds(loadSeconds: number): number {
  return loadSeconds > 180 ? 60 : Math.max(1, Math.ceil(loadSeconds / 3));
}

/** The report line both soak tests print. */
export function describeSoak(r: SoakResult): string {
  const mem = (m: Memory): string => `agent RSS ${m.agentRssKiB} KiB (anonymous ${m.agentAnonKiB}), client RSS ${m.clientRssKiB} KiB ` +
    `(anonymous ${m.clientAnonKiB}), client heap ${m.clientHeapKiB} KiB (of ${m.clientHeapTotalKiB}), client buffers ${m.clientBuffersKiB} KiB, ` +
    `monitor RSS ${m.monitorRssKiB} KiB (anonymous ${m.monitorAnonKiB}, heap ${m.monitorHeapKiB})`;
  return `soak: ${r.heartbeats} heartbeats (four in flight), then ${r.loadHeartbeats} heartbeats, ${r.processLists} process lists and ` +
    `${r.reads} reads (${(r.readBytes / 1048576).toFixed(1)} MiB) at once; lost ${r.lost.length}, wrong or stale ${r.wrong.length}; ` +
    `agent served ${r.servedByAgent}, refused ${r.refusedByAgent}; slowest heartbeat ${r.slowestHeartbeatMs.toFixed(1)} ms; ` +
    `memory before: ${mem(r.before)}; ${r.settled !== r.before ? `after the first ${r.settledAfterSeconds} s of load: ${mem(r.settled)}; ` : ''}after: ${mem(r.after)}; ` +
    `KiB at each checkpoint (agent anonymous/client anonymous/monitor anonymous/monitor heap): ${r.series.map((s) => `${s.at} ${s.memory.agentAnonKiB}/${s.memory.clientAnonKiB}/${s.memory.monitorAnonKiB}/${s.memory.monitorHeapKiB}`).join(', ')}; ` +
    `the monitor's target at the end: ${r.monitorTarget.state}, last good ${r.monitorTarget.last.at}`;
}

/**
 * Zero lost or wrong replies, no refusals, and no growth beyond the bounds given (KiB).
 * clientNativeKiB bounds this process's anonymous memory growth beyond what V8's heap grew into
 * (a native leak, e.g. in a koffi call, would show there), counted from `settled`.
 */
export function assertSoakClean(r: SoakResult, bounds: { agentAnonKiB: number; clientHeapKiB: number; clientNativeKiB: number; clientBuffersKiB: number; monitorAnonKiB: number; monitorHeapKiB: number }): void {
  assert.equal(r.monitorTarget.state, 'up', `the monitor's target: ${JSON.stringify(r.monitorTarget)}`);
  assert.ok(r.after.monitorAnonKiB - r.before.monitorAnonKiB <= bounds.monitorAnonKiB, `monitor anonymous RSS grew ${r.after.monitorAnonKiB - r.before.monitorAnonKiB} KiB`);
  assert.ok(r.after.monitorHeapKiB - r.settled.monitorHeapKiB <= bounds.monitorHeapKiB, `monitor heap grew ${r.after.monitorHeapKiB - r.settled.monitorHeapKiB} KiB after the first ${r.settledAfterSeconds} s of load`);
  assert.deepEqual(r.lost.slice(0, 5), [], `${r.lost.length} requests lost`);
  assert.deepEqual(r.wrong.slice(0, 5), [], `${r.wrong.length} wrong or stale replies`);
  assert.equal(r.refusedByAgent, 0n, 'the agent refused none of an honest client\'s requests');
  assert.ok(r.reads > 0 && r.processLists > 0 && r.loadHeartbeats > 0, 'every kind of request ran under load');
  assert.ok(r.after.agentAnonKiB - r.before.agentAnonKiB <= bounds.agentAnonKiB, `agent anonymous RSS grew ${r.after.agentAnonKiB - r.before.agentAnonKiB} KiB`);
  assert.ok(r.after.clientHeapKiB - r.before.clientHeapKiB <= bounds.clientHeapKiB, `client heap grew ${r.after.clientHeapKiB - r.before.clientHeapKiB} KiB`);
  assert.ok(r.after.clientBuffersKiB - r.before.clientBuffersKiB <= bounds.clientBuffersKiB, `client buffers grew ${r.after.clientBuffersKiB - r.before.clientBuffersKiB} KiB`);
  const native = r.after.clientAnonKiB - r.settled.clientAnonKiB - (r.after.clientHeapTotalKiB - r.settled.clientHeapTotalKiB);
  assert.ok(native <= bounds.clientNativeKiB, `client anonymous RSS grew ${native} KiB beyond V8's heap after the first ${r.settledAfterSeconds} s of load`);
}
