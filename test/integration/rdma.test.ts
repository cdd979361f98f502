// The verbs transport for real, inside a QEMU guest with Soft-RoCE (testbed/rdma-guest.ts):
// the agent serves a RAM image of another testbed guest and connects out to `grass monitor`
// (the paper's direction); the CLI goes through the monitor. Truth comes from outside the
// code under test: the same CLI on the host over the shm transport (a local agent on the same
// image), and the guest's own view of its processes and devices. Access control (docs/security.md):
// short-lived agents listening with --peer lists, and RDMA READs outside an agent's registered
// buffer (rdma-mr-probe.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { writeNewKeyFile } from '../../src/rdma/key';
import { bootGuest } from '../../testbed/guest';
import { bootRdmaGuest, RDMA_ADDRESS, RdmaGuest } from '../../testbed/rdma-guest';

const run = promisify(execFile);
const repo = path.resolve(__dirname, '../..');
// Visible to the guest through the 9p share of the host's root (its own /tmp is private).
const work = path.join(repo, '.cache', 'rdma-guest', `test-${process.pid}`);
const image = path.join(work, 'ram');
const map = path.join(work, 'map.json');
const keyFile = path.join(work, 'key');
// The CLI bundled once: node loads one file over 9p instead of transpiling the sources.
const cli = path.join(work, 'cli.js');
const mrProbe = path.join(work, 'rdma-mr-probe.js');
const TIMEOUT_MS = 3000;
const READ_ADDRESS = '0x1000000';
const READ_BYTES = 4 << 20;

let rg: RdmaGuest | undefined;

/** The CLI inside the guest, through the monitor's socket. */
async function guestCli(args: string, timeoutMs = 120_000): Promise<{ rc: number; stdout: string }> {
  return rg!.run(`cd ${repo} && GRASS_MONITOR_SOCKET=/tmp/monitor.sock node ${cli} ${args}`, { timeoutMs });
}

async function hostCli(args: string[]): Promise<string> {
  const r = await run('node', ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: repo, maxBuffer: 1 << 26 });
  return r.stdout;
}

interface Status {
  name: string;
  state: string;
  failure?: string;
  since: string;
  last: { at?: string; processes?: number; release?: string };
}

async function monitorStatus(): Promise<Status[]> {
  const r = await guestCli('monitor status --socket /tmp/monitor.sock --json');
  assert.equal(r.rc, 0, r.stdout);
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { targets: Status[] }).targets;
}

async function waitForState(state: string, withinMs: number, since?: string): Promise<Status> {
  const deadline = Date.now() + withinMs;
  let last: Status[] = [];
  while (Date.now() < deadline) {
    last = await monitorStatus();
    const t = last.find((s) => s.name === 'img' && s.state === state && (since === undefined || s.since !== since) && (state !== 'up' || s.last.processes !== undefined));
    if (t) return t;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`target img not ${state} within ${withinMs} ms: ${JSON.stringify(last)}; monitor log: ${(await rg!.run('tail -20 /tmp/monitor.log')).stdout}`);
}

const agentCommand = () =>
  `cd ${repo} && setsid gpu/build/grass-agent --memory qemu-ram:${image} --memory-map ${map} --connect rdma://${RDMA_ADDRESS} ` +
  // Liveness republished once a second: through the monitor's socket under emulation a seqlocked
  // read (three RDMA round trips) takes up to a few hundred ms on this loaded 2-core machine.
  `--key-file ${keyFile} --name img --liveness-period-ms 1000 > /tmp/agent.out 2>> /tmp/agent.log < /dev/null & echo $! > /tmp/agent.pid`;

before(async () => {
  fs.mkdirSync(work, { recursive: true });
  writeNewKeyFile(keyFile);
  for (const [entry, outfile] of [['src/cli/main.ts', cli], ['test/integration/rdma-mr-probe.ts', mrProbe]]) {
    await run('npx', ['esbuild', entry, '--bundle', '--platform=node', '--target=node20', '--format=cjs', '--external:koffi', '--external:@node-rs/crc32', '--external:vscode', `--outfile=${outfile}`, '--log-level=warning'], { cwd: repo });
  }
  // The image: a small guest's RAM, paused, copied, with its memory map.
  const source = await bootGuest({ memMiB: 256 });
  try {
    await source.pause();
    fs.copyFileSync(source.ramFile, image);
    fs.writeFileSync(map, JSON.stringify({ ...source.memoryMap(), ramFile: image }));
  } finally {
    await source.down();
  }
  rg = await bootRdmaGuest();
  await rg.exec(`cd ${repo} && (setsid node ${cli} monitor --listen rdma://${RDMA_ADDRESS} --socket /tmp/monitor.sock ` +
    `--key-file ${keyFile} --timeout-ms ${TIMEOUT_MS} --poll-ms 1000 > /tmp/monitor.log 2>&1 < /dev/null &) && ` +
    'for i in $(seq 120); do [ -S /tmp/monitor.sock ] && break; sleep 0.5; done; [ -S /tmp/monitor.sock ] || { cat /tmp/monitor.log; exit 1; }', { timeoutMs: 90_000 });
  await rg.exec(agentCommand());
});

after(async () => {
  await rg?.down();
  fs.rmSync(work, { recursive: true, force: true });
});

test('the agent connects out to the monitor over rxe; heartbeat, describe, ps and a 4 MiB read through it equal the shm transport', async () => {
  const up = await waitForState('up', 120_000);
  assert.ok(up.last.processes && up.last.processes > 0, JSON.stringify(up));
  const devices = await rg!.exec('ibv_devices');
  assert.match(devices, /rxe0/);

  const hb = await guestCli(`heartbeat --target rdma://img --key-file ${keyFile} --count 5 --json`);
  assert.equal(hb.rc, 0, hb.stdout);
  const heartbeat = JSON.parse(hb.stdout.trim().split('\n').pop()!) as { count: number; livenessCounter: number; backend: string };
  assert.equal(heartbeat.count, 5);
  assert.ok(heartbeat.livenessCounter > 0);

  const offline = `qemu-ram:${image}?map=${map}`;
  const [hostDescribe, hostPs] = await Promise.all([
    hostCli(['describe', '--target', offline, '--json']),
    hostCli(['ps', '--target', offline, '--json', '--threads', '--idle']),
  ]);
  const describe = await guestCli(`describe --target rdma://img --key-file ${keyFile} --json`);
  assert.equal(describe.rc, 0, describe.stdout);
  const strip = (text: string) => {
    const j = JSON.parse(text.trim().split('\n').pop()!) as Record<string, unknown>;
    delete j.target;
    return j;
  };
  assert.deepEqual(strip(describe.stdout), strip(hostDescribe));

  const ps = await guestCli(`ps --target rdma://img --key-file ${keyFile} --json --threads --idle`);
  assert.equal(ps.rc, 0, ps.stdout);
  assert.deepEqual(JSON.parse(ps.stdout.trim().split('\n').pop()!), JSON.parse(hostPs.trim().split('\n').pop()!));

  // Raw bytes: the guest writes them to its /tmp and prints their SHA-256; the host reads the
  // same range over shm.
  const out = await guestCli(`read ${READ_ADDRESS} ${READ_BYTES} --phys --target rdma://img --key-file ${keyFile} --out /tmp/read.bin --json && sha256sum /tmp/read.bin`);
  assert.equal(out.rc, 0, out.stdout);
  const hostFile = path.join(work, 'read.bin');
  await hostCli(['read', READ_ADDRESS, String(READ_BYTES), '--phys', '--target', offline, '--out', hostFile, '--json']);
  const hostBytes = fs.readFileSync(hostFile);
  assert.equal(hostBytes.length, READ_BYTES);
  assert.ok(hostBytes.some((b) => b !== 0), 'the range holds data');
  assert.match(out.stdout, new RegExp(`^${createHash('sha256').update(hostBytes).digest('hex')}\\s+/tmp/read.bin$`, 'm'));
});

test('clients come and go; the session stays', async () => {
  const before = await waitForState('up', 30_000);
  const two = await guestCli(
    `heartbeat --target rdma://img --key-file ${keyFile} --count 20 --json > /tmp/hb1 & ` +
    `GRASS_MONITOR_SOCKET=/tmp/monitor.sock node ${cli} heartbeat --target rdma://${RDMA_ADDRESS} --key-file ${keyFile} --count 20 --json > /tmp/hb2; ` +
    'rc2=$?; wait $!; rc1=$?; cat /tmp/hb1 /tmp/hb2; echo "rcs=$rc1,$rc2"',
  );
  assert.match(two.stdout, /rcs=0,0/, two.stdout);
  const afterwards = await waitForState('up', 30_000);
  assert.equal(afterwards.since, before.since, 'same session');
});

/**
 * Starts an agent listening at RDMA_ADDRESS:port for the given --peer addresses, on the same
 * image; returns its pid once it serves. The caller kills it.
 */
async function startListeningAgent(port: number, peers: string[]): Promise<string> {
  const log = `/tmp/listen-${port}.log`;
  const r = await rg!.run(
    `cd ${repo} && (setsid gpu/build/grass-agent --memory qemu-ram:${image} --memory-map ${map} --listen rdma://${RDMA_ADDRESS}:${port} ` +
    `${peers.map((p) => `--peer ${p}`).join(' ')} --key-file ${keyFile} --name listen-${port} > /dev/null 2> ${log} < /dev/null & echo $! > ${log}.pid) && ` +
    `for i in $(seq 120); do grep -q 'serving' ${log} && break; sleep 0.5; done; grep -q serving ${log} || { cat ${log}; exit 1; }; cat ${log}.pid`,
    { timeoutMs: 90_000 },
  );
  assert.equal(r.rc, 0, r.stdout);
  return r.stdout.trim().split('\n').pop()!;
}

/** The CLI inside the guest connecting straight to an agent (no monitor socket there). */
async function directCli(args: string): Promise<{ rc: number; stdout: string }> {
  return rg!.run(`cd ${repo} && GRASS_MONITOR_SOCKET=/tmp/no-monitor.sock node ${cli} ${args} 2>&1`, { timeoutMs: 120_000 });
}

test('a listening agent accepts only its --peer addresses', async (t) => {
  // The guest's one RDMA address is RDMA_ADDRESS, so every connection comes from it.
  const other = RDMA_ADDRESS.replace(/\.\d+$/, '.99');
  const refusing = await startListeningAgent(7472, [other]);
  const accepting = await startListeningAgent(7473, [other, RDMA_ADDRESS]);
  try {
    const refused = await directCli(`heartbeat --target rdma://${RDMA_ADDRESS}:7472 --key-file ${keyFile} --timeout-ms 10000`);
    assert.equal(refused.rc, 1, `exit 1, a refusal (not 4, a dead transport): ${refused.stdout}`);
    assert.match(refused.stdout, /REJECTED \(status 28\): the far end refused the connection/, refused.stdout);
    assert.doesNotMatch(refused.stdout, /is dead/, refused.stdout);
    t.diagnostic(`refused: exit ${refused.rc}: ${refused.stdout.trim()}`);
    const agentLog = (await rg!.run('cat /tmp/listen-7472.log')).stdout;
    assert.match(agentLog, new RegExp(`refused a connection from ${RDMA_ADDRESS.replace(/\./g, '\\.')} \\(not a configured --peer\\)`), agentLog);

    const served = await directCli(`heartbeat --target rdma://${RDMA_ADDRESS}:7473 --key-file ${keyFile} --count 3 --json`);
    assert.equal(served.rc, 0, served.stdout);
    assert.equal((JSON.parse(served.stdout.trim().split('\n').pop()!) as { count: number }).count, 3);
    // The refusing agent was not harmed by the refusal: it is still running.
    assert.equal((await rg!.run(`kill -0 ${refusing}`)).rc, 0, 'the refusing agent is alive');
  } finally {
    await rg!.run(`kill ${refusing} ${accepting}; sleep 0.5; kill -9 ${refusing} ${accepting} 2>/dev/null; true`);
  }
});

test("an RDMA READ outside the agent's registered buffer, with its rkey, is a remote access error; the agent answers on a new connection", async (t) => {
  const agent = await startListeningAgent(7474, [RDMA_ADDRESS]);
  try {
    const probe = await rg!.run(`cd ${repo} && node ${mrProbe} ${RDMA_ADDRESS} 7474 > /tmp/mr-probe.out 2>&1; rc=$?; cat /tmp/mr-probe.out; exit $rc`, { timeoutMs: 120_000 });
    assert.equal(probe.rc, 0, probe.stdout);
    const reads = probe.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { offset: number; bufferBytes: number; served: boolean; error?: string; message?: string });
    assert.equal(reads.length, 3, `probe output: ${JSON.stringify(probe.stdout)}`);
    const [inside, ...outside] = reads;
    // The control: the same path reads the buffer's last 64 bytes.
    assert.equal(inside.offset, inside.bufferBytes - 64);
    assert.equal(inside.served, true, JSON.stringify(inside));
    assert.equal(outside[0].offset, outside[0].bufferBytes, 'the second read starts just past the end');
    assert.equal(outside[1].offset, outside[1].bufferBytes + (1 << 30));
    for (const r of outside) {
      t.diagnostic(`offset ${r.offset} of ${r.bufferBytes}: ${r.message}`);
      assert.equal(r.served, false, `read at offset ${r.offset} of a ${r.bufferBytes}-byte buffer was served`);
      assert.equal(r.error, 'TransportError');
      // IBV_WC_REM_ACCESS_ERR, as ibv_wc_status_str names it.
      assert.match(r.message ?? '', /RDMA READ of 64 bytes at offset \d+ completed with 'remote access error' \(status 10,/, r.message);
    }
    // The queue pair of each probe connection went to the error state (the transport treats any
    // failed completion as fatal): the agent answers on a new connection.
    const hb = await directCli(`heartbeat --target rdma://${RDMA_ADDRESS}:7474 --key-file ${keyFile} --count 3 --json`);
    assert.equal(hb.rc, 0, hb.stdout);
    assert.equal((JSON.parse(hb.stdout.trim().split('\n').pop()!) as { count: number }).count, 3);
  } finally {
    await rg!.run(`kill ${agent}; sleep 0.5; kill -9 ${agent} 2>/dev/null; true`);
  }
});

test('the monitor loop stopped with RDMA up: "monitor dead"; running again: up', async () => {
  const since = (await waitForState('up', 30_000)).since;
  await rg!.exec('kill -USR1 $(cat /tmp/agent.pid)');
  const started = Date.now();
  const dead = await waitForState('monitor-dead', TIMEOUT_MS * 3 + 10_000);
  assert.match(dead.failure ?? '', /monitor dead: no reply while RDMA works/);
  const hb = await guestCli(`heartbeat --target rdma://img --key-file ${keyFile} --timeout-ms ${TIMEOUT_MS}`);
  assert.equal(hb.rc, 3, hb.stdout);
  assert.match(hb.stdout, /monitor not answering/);
  assert.ok(Date.now() - started < 60_000);
  await rg!.exec('kill -USR2 $(cat /tmp/agent.pid)');
  const up = await waitForState('up', 30_000);
  assert.equal(up.since, since, 'the session survived');
});

test('killing the agent: "GPU/NIC dead", last good data kept; a restarted agent gets a new session', async () => {
  const before = await waitForState('up', 30_000);
  await rg!.exec('kill -KILL $(cat /tmp/agent.pid)');
  const dead = await waitForState('gpu-nic-dead', TIMEOUT_MS * 3 + 10_000);
  assert.match(dead.failure ?? '', /GPU\/NIC or network dead: .*(DISCONNECTED|not completed|completed with)/);
  assert.equal(dead.last.processes, before.last.processes, 'last good data kept');
  const hb = await guestCli(`heartbeat --target rdma://img --key-file ${keyFile}`);
  assert.equal(hb.rc, 4, hb.stdout);
  assert.match(hb.stdout, /GPU\/NIC or network dead/);
  await rg!.exec(agentCommand());
  await waitForState('up', 60_000, before.since);
});

test('destroying the rxe device: "GPU/NIC dead"', async () => {
  await waitForState('up', 30_000);
  await rg!.exec(`(timeout 120 rdma link delete ${rg!.device} > /tmp/link-delete.log 2>&1 &)`);
  const dead = await waitForState('gpu-nic-dead', TIMEOUT_MS * 3 + 10_000);
  assert.match(dead.failure ?? '', /GPU\/NIC or network dead: .*(DEVICE_REMOVAL|DISCONNECTED|completed with|not completed)/);
  // rxe cannot disassociate user contexts: the removal completes when the processes that opened
  // the device are gone (both released their QPs, MRs, PDs and cm_ids already).
  await rg!.exec('kill $(cat /tmp/agent.pid); kill $(pidof node) 2>/dev/null; true');
  const gone = await rg!.run(`for i in $(seq 120); do [ -e /sys/class/infiniband/${rg!.device} ] || { echo removed; break; }; sleep 0.5; done`, { timeoutMs: 90_000 });
  assert.match(gone.stdout, /removed/, `rxe0 still there: ${(await rg!.run('cat /tmp/link-delete.log')).stdout}`);
});
