// Dead parts, one at a time, against a real agent on a testbed guest over shm: the monitor loop
// stalled (SIGSTOP, SIGUSR1), the guest frozen (QMP stop), the target panicked while `ps` walks
// it, the agent killed mid-request, the transport closed (buffer removed) and the agent started
// again at the same path. For each: the CLI fails within its timeout with an exit status and a
// message that name the part (3: monitor; 4: agent or transport), nothing already fetched is
// lost, and the CLI answers again once the part is back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootGuest, Guest } from '../../testbed';
import { GrassClient, GrassTimeoutError } from '../../src/rdma/client';
import { readKeyFile } from '../../src/rdma/key';
import { openShmTransport } from '../../src/rdma/shm';
import { TransportError } from '../../src/rdma/transport';
import { relayTargets } from '../../src/relay/remote';
import type { TargetStatus } from '../../src/relay/wire';
import { grass, grassJson, GuestAgent, PsTask, root, startGuestAgent } from './agent-harness';

const TIMEOUT_MS = 1500;
// A failure is reported after the request timeout plus two liveness reads 200 ms apart (checked
// on the waited time the message names); the whole run, with node's start-up of the CLI under
// tsx on a loaded 2-core host, must end well before anything could be called a hang.
const REPORT_WITHIN_MS = 30_000;

let guest: Guest;
let agent: GuestAgent;
let args: string[];
const parts: string[] = [];

before(async () => {
  guest = await bootGuest({ memMiB: 256, cpus: 1 });
  agent = await startGuestAgent(guest);
  args = ['--target', agent.target, '--key-file', agent.keyFile, '--timeout-ms', String(TIMEOUT_MS)];
});

after(async () => {
  console.log(`dead parts: ${parts.length} failures reported and recovered from: ${parts.join('; ')}`);
  await agent?.stop();
  await guest?.down();
});

/** `grass ARGS`, timed. */
async function timed(cliArgs: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const start = Date.now();
  const r = await grass(cliArgs);
  return { ...r, ms: Date.now() - start };
}

async function assertReported(verb: string[], code: number, message: RegExp, part: string): Promise<void> {
  const r = await timed([...verb, ...args]);
  assert.equal(r.code, code, `${part}: grass ${verb.join(' ')} exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, message, part);
  assert.ok(r.ms < REPORT_WITHIN_MS, `${part}: reported after ${r.ms} ms`);
  const waited = /no reply (?:in|after) (\d+) ms/.exec(r.stderr);
  if (code === 3) assert.ok(waited, `${part}: a timeout names the time waited`);
  if (waited) assert.ok(Number(waited[1]) <= TIMEOUT_MS + 500, `${part}: the CLI waited ${waited[1]} ms for a ${TIMEOUT_MS} ms timeout`);
  parts.push(`${part}: exit ${code} in ${r.ms} ms`);
}

async function assertAnswers(what: string): Promise<void> {
  const hb = await grassJson<{ livenessCounter: number }>(['heartbeat', ...args]);
  assert.ok(hb.livenessCounter > 0, what);
  parts.push(`${what}: answered`);
}

test('monitor loop stalled (agent SIGSTOPped): heartbeat and ps exit 3 "monitor not answering" in time; SIGCONT: answered again', async () => {
  const pid = Number(agent.ready.pid);
  process.kill(pid, 'SIGSTOP');
  try {
    await assertReported(['heartbeat'], 3, /monitor not answering \(its liveness counter is stuck/, 'agent stopped, heartbeat');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await assertAnswers('after SIGCONT');
});

test('monitor loop stopped with the transport up (SIGUSR1): ps fails "monitor not answering" in time; started again (SIGUSR2): answered', async () => {
  const client = await GrassClient.attach(await openShmTransport(agent.shmPath), readKeyFile(agent.keyFile), { timeoutMs: TIMEOUT_MS });
  const pid = Number(agent.ready.pid);
  process.kill(pid, 'SIGUSR1');
  try {
    await sleep(100);
    const start = Date.now();
    await assert.rejects(client.processList(), (e: Error) => e instanceof GrassTimeoutError && /monitor not answering/.test(e.message));
    assert.ok(Date.now() - start < REPORT_WITHIN_MS);
    parts.push(`monitor loop stopped: ps refused in ${Date.now() - start} ms`);
  } finally {
    process.kill(pid, 'SIGUSR2');
  }
  assert.ok((await client.processList()).some((t) => t.pid === 1), 'answered after SIGUSR2');
  await client.close();
});

/** `grass monitor` holding the agent's buffer; its output is kept for failure messages. */
function startMonitor(socket: string): { log: () => string; stop(signal?: NodeJS.Signals): Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'monitor', '--connect', agent.target, '--socket', socket,
    '--key-file', agent.keyFile, '--poll-ms', '200', '--timeout-ms', String(TIMEOUT_MS)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    log: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

async function waitForTarget(socket: string, ok: (t: TargetStatus) => boolean, what: string, log: () => string): Promise<TargetStatus> {
  const deadline = Date.now() + 60_000;
  let last: TargetStatus[] = [];
  while (Date.now() < deadline) {
    last = await relayTargets(socket).catch(() => []);
    const t = last.find(ok);
    if (t) return t;
    await sleep(200);
  }
  throw new Error(`monitor: ${what} not seen: ${JSON.stringify(last)}; monitor output: ${log()}`);
}

test('grass monitor: a stalled agent is "monitor-dead" with the last good data kept, up again after; the monitor killed is named; restarted, it holds the target again', async () => {
  const socket = path.join(path.dirname(agent.keyFile), 'monitor.sock');
  let monitor = startMonitor(socket);
  try {
    const up = await waitForTarget(socket, (t) => t.state === 'up' && t.last.processes !== undefined, 'target up with data', monitor.log);
    const pid = Number(agent.ready.pid);
    process.kill(pid, 'SIGSTOP');
    let dead: TargetStatus;
    try {
      dead = await waitForTarget(socket, (t) => t.state === 'monitor-dead', 'monitor-dead', monitor.log);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    assert.match(dead.failure ?? '', /monitor|answer/, 'the failure names the monitor loop');
    assert.equal(dead.last.processes, up.last.processes, 'the last good process count is kept');
    assert.equal(dead.last.release, up.last.release, 'the last good release is kept');
    const failedAt = Date.parse(dead.failedAt ?? dead.since);
    await waitForTarget(socket, (t) => t.state === 'up' && t.last.at !== undefined && Date.parse(t.last.at) > failedAt, 'up again with fresh data', monitor.log);
    parts.push(`monitor saw the agent stalled: ${dead.state} (${dead.failure}), last good data kept, up again`);

    await monitor.stop('SIGKILL');
    const gone = await timed(['monitor', 'status', '--socket', socket, '--json']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /monitor/i, `names the monitor: ${gone.stderr}`);
    assert.ok(gone.stderr.includes(socket), `names the socket: ${gone.stderr}`);
    parts.push(`monitor process killed: status exit ${gone.code} naming its socket in ${gone.ms} ms`);
    monitor = startMonitor(socket);
    await waitForTarget(socket, (t) => t.state === 'up' && t.last.processes === up.last.processes, 'held again after a restart', monitor.log);
    parts.push('monitor restarted: holds the target again');
  } finally {
    await monitor.stop();
  }
});

test('guest frozen (QMP stop): the agent still answers from its memory, jiffies stand still; resumed, they move', async () => {
  const client = await GrassClient.attach(await openShmTransport(agent.shmPath), readKeyFile(agent.keyFile), { timeoutMs: TIMEOUT_MS });
  const at = (await client.describe()).symbols.find((s) => s.name === 'jiffies')!.address;
  const jiffies = async (): Promise<string> => Buffer.from(await client.read({ kind: 'kernel' }, at, 8)).toString('hex');
  await guest.pause();
  try {
    const a = await jiffies();
    await sleep(300);
    const { tasks } = await grassJson<{ tasks: PsTask[] }>(['ps', ...args]);
    assert.ok(tasks.some((t) => t.pid === 1));
    assert.equal(await jiffies(), a, 'jiffies stand still while the guest is frozen');
  } finally {
    await guest.resume();
  }
  const b = await jiffies();
  await sleep(300);
  assert.notEqual(await jiffies(), b, 'jiffies move once the guest runs again');
  await client.close();
  parts.push('guest frozen: agent answered, jiffies stood still, moved after resume');
});

test('target panicked mid-walk: ps in a loop through the panic: each is complete or a clear target error, none hangs; after it ps answers', async () => {
  const client = await GrassClient.attach(await openShmTransport(agent.shmPath), readKeyFile(agent.keyFile), { timeoutMs: TIMEOUT_MS });
  let walks = 0;
  const failures: string[] = [];
  let panicked = false;
  let afterPanic = 0;
  const walking = (async () => {
    while (!panicked || (walks < 5 && afterPanic++ < 50)) {
      try {
        const tasks = await client.processList({ threads: true });
        assert.ok(tasks.some((t) => t.pid === 1), 'init listed');
        walks++;
      } catch (err) {
        // A walk that raced the dying kernel's list edits is refused naming the bad address.
        failures.push(String(err));
        assert.match(String(err), /the target's data was inconsistent|is not mapped|outside the memory map/);
      }
      await sleep(5);
    }
  })();
  await guest.fault('panic');
  await guest.waitForConsole(/Kernel panic/, 30_000);
  panicked = true;
  await walking;
  await client.close();
  const { tasks } = await grassJson<{ tasks: PsTask[] }>(['ps', ...args]);
  assert.ok(tasks.some((t) => t.pid === 1));
  parts.push(`target panicked mid-walk: ${walks} walks complete, ${failures.length} refused naming the data`);
});

test('agent killed mid-request: the read fails naming the agent as gone, in time; a new agent at the same path is used after attaching again', async () => {
  const client = await GrassClient.attach(await openShmTransport(agent.shmPath), readKeyFile(agent.keyFile), { timeoutMs: TIMEOUT_MS });
  const before = await client.processList(); // data fetched before the failure
  const start = Date.now();
  const reading = client.read({ kind: 'physical' }, 0x100000n, 64 << 20);
  await sleep(20);
  // `grass agent` runs the binary as its child: kill the binary itself first (killing the CLI
  // would make the binary stop cleanly, removing its buffer).
  process.kill(Number(agent.ready.pid), 'SIGKILL');
  agent.process.kill('SIGKILL');
  await assert.rejects(reading, (e: Error) => e instanceof TransportError && /the agent process is gone/.test(e.message));
  assert.ok(Date.now() - start < REPORT_WITHIN_MS, `reported after ${Date.now() - start} ms`);
  assert.ok(before.length > 0 && before.some((t) => t.pid === 1), 'what was fetched before stays');
  await client.close();
  assert.ok(existsSync(agent.shmPath), 'a killed agent leaves its buffer file behind');
  await assertReported(['heartbeat'], 4, /the agent process is gone/, 'agent killed');

  // Started again at the same path (the guest is panicked, its memory still readable).
  const again = await startAgentAt(agent.shmPath, agent.keyFile);
  try {
    const { tasks } = await grassJson<{ tasks: PsTask[] }>(['ps', ...args]);
    assert.deepEqual(tasks.map((t) => t.pid).sort((a, b) => a - b), before.map((t) => t.pid).sort((a, b) => a - b), 'the panicked kernel lists the same processes');

    // Transport closed: the agent stops and removes its buffer; an attached client is told to
    // attach again, a new CLI that the buffer cannot be opened.
    const attached = await GrassClient.attach(await openShmTransport(agent.shmPath), readKeyFile(agent.keyFile), { timeoutMs: TIMEOUT_MS });
    await again.stop();
    await assert.rejects(attached.heartbeat(), (e: Error) => e instanceof TransportError && /the buffer was replaced or removed/.test(e.message));
    await attached.close();
    parts.push('transport closed: attached client told the buffer was removed');
    await assertReported(['heartbeat'], 4, /cannot open the agent's buffer/, 'transport closed');
  } finally {
    await again.stop();
  }
});

/** `grass agent` on the guest's RAM, listening at a given shm path. */
async function startAgentAt(shmPath: string, keyFile: string): Promise<{ stop(): Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'agent', '--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile,
    '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`agent exited (${code}): ${stderr}`)));
    createInterface({ input: child.stdout! }).once('line', () => resolve());
  });
  return {
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
