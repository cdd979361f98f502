// Access control on a real agent (shm): who can reach the buffer (the agent's user alone: the
// file is 0600), writes refused unless the agent was started with --allow-writes (the status,
// the header flag, and the RAM file mapped read-only in the agent's own /proc/PID/maps), and key
// material absent from every log and message of the agent, the CLI and the monitor, failures
// included. Checks the model in docs/security.md. RDMA (the --peer allow-list, the MR covering
// only the buffer) is not exercised here: see docs/security.md.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootGuest, Guest } from '../../testbed';
import { GrassClient, GrassStatusError } from '../../src/rdma/client';
import { readKeyFile, writeNewKeyFile } from '../../src/rdma/key';
import * as L from '../../src/rdma/protocol/layout';
import { openShmTransport } from '../../src/rdma/shm';
import { grass, root } from './agent-harness';

let guest: Guest;
let dir: string;
let keyFile: string;
let keyHex: string;
let readOnly: Agent; // started without --allow-writes; serves every test but the write test
/** Everything the agents, the CLI and the monitor wrote, to be searched for the key. */
const logs: { who: string; text: string }[] = [];

before(async () => {
  guest = await bootGuest({ memMiB: 256, cpus: 1 });
  await guest.pause(); // the writes below must not race the guest
  dir = mkdtempSync(path.join(tmpdir(), 'grass-access-'));
  keyFile = path.join(dir, 'key');
  writeNewKeyFile(keyFile);
  keyHex = Buffer.from(readKeyFile(keyFile)).toString('hex');
  readOnly = await startAgent('ro');
});

after(async () => {
  await readOnly?.stop();
  await guest?.down();
  rmSync(dir, { recursive: true, force: true });
});

interface Agent {
  shmPath: string;
  pid: number;
  ready: Record<string, unknown>;
  stop(): Promise<void>;
}

/** `grass agent` on the guest's RAM; its stdout and stderr go to `logs`. */
async function startAgent(name: string, extra: string[] = []): Promise<Agent> {
  const shmPath = `/dev/shm/grass-access-${process.pid}-${name}`;
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'agent', '--memory', `qemu-ram:${guest.ramFile}`,
    '--memory-map', guest.memoryMapFile, '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent', ...extra], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = { who: `agent ${name}`, text: '' };
  logs.push(log);
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (log.text += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`agent exited (${code}): ${log.text}`)));
    createInterface({ input: child.stdout! }).on('line', (l) => {
      log.text += l + '\n';
      resolve(l);
    });
  });
  const ready = JSON.parse(line) as Record<string, unknown>;
  return {
    shmPath,
    pid: Number(ready.pid),
    ready,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(shmPath, { force: true });
    },
  };
}

/** The agent's own mapping of the guest's RAM file: its permissions, e.g. "r--s". */
function ramMappingPerms(pid: number): string {
  const lines = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => l.endsWith(guest.ramFile));
  assert.ok(lines.length > 0, `the agent maps ${guest.ramFile}`);
  const perms = new Set(lines.map((l) => l.split(/\s+/)[1]));
  assert.equal(perms.size, 1, `one kind of mapping: ${[...perms].join(', ')}`);
  return [...perms][0];
}

async function attach(agent: Agent): Promise<GrassClient> {
  return GrassClient.attach(await openShmTransport(agent.shmPath), readKeyFile(keyFile));
}

const PHYS = 0x200000n; // a page of guest RAM (the guest is paused; the bytes are put back)

test('without --allow-writes: WRITE refused, no writes flag in the header, the RAM file mapped read-only by the agent', async () => {
  const agent = readOnly;
  {
    assert.equal(agent.ready.writesAllowed, false);
    assert.equal(ramMappingPerms(agent.pid), 'r--s');
    const client = await attach(agent);
    try {
      assert.equal(client.writesAllowed, false);
      const before = guest.readPhysical(PHYS, 8);
      await assert.rejects(client.write({ kind: 'physical' }, PHYS, Buffer.from('grass-w!')),
        (e: Error) => e instanceof GrassStatusError && e.status === L.Status.WritesDisabled && /--allow-writes/.test(e.message));
      assert.deepEqual(guest.readPhysical(PHYS, 8), before, 'the RAM file is unchanged');
    } finally {
      await client.close();
    }
  }
});

test('with --allow-writes: the flag is set, the mapping is writable, and a WRITE lands in the RAM file', async () => {
  const agent = await startAgent('rw', ['--allow-writes']);
  try {
    assert.equal(agent.ready.writesAllowed, true);
    assert.equal(ramMappingPerms(agent.pid), 'rw-s');
    const client = await attach(agent);
    const original = guest.readPhysical(PHYS, 8);
    try {
      assert.equal(client.writesAllowed, true);
      const marker = Buffer.from('grass-w!');
      await client.write({ kind: 'physical' }, PHYS, marker);
      assert.deepEqual(guest.readPhysical(PHYS, 8), marker, 'the bytes are in the RAM file');
    } finally {
      await client.write({ kind: 'physical' }, PHYS, original);
      await client.close();
    }
    assert.deepEqual(guest.readPhysical(PHYS, 8), original);
  } finally {
    await agent.stop();
  }
});

test('shm peers: the buffer file is the agent user\'s alone (mode 0600); another user cannot open it', async () => {
  const agent = readOnly;
  {
    const st = statSync(agent.shmPath);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, process.getuid!());
    let refused = '';
    try {
      execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'head', '-c', '8', agent.shmPath], { stdio: 'pipe' });
    } catch (err) {
      refused = String((err as { stderr?: Buffer }).stderr ?? err);
    }
    assert.match(refused, /Permission denied/, 'user nobody cannot open the buffer');
  }
});

test('key material appears in no log or message of the agent, the CLI or the monitor (failures included)', async () => {
  const agent = readOnly;
  const target = ['--target', `shm:${agent.shmPath}`];
  const wrongKey = path.join(dir, 'wrong-key');
  writeNewKeyFile(wrongKey);
  const truncated = path.join(dir, 'truncated-key');
  writeFileSync(truncated, keyHex.slice(0, 63) + '\n', { mode: 0o600 });
  const notHex = path.join(dir, 'not-hex-key');
  writeFileSync(notHex, keyHex.slice(0, 62) + 'zz\n', { mode: 0o600 });
  const socket = path.join(dir, 'monitor.sock');
  try {
    const runs: [string, string[], number | 'nonzero'][] = [
      ['heartbeat', ['heartbeat', ...target, '--key-file', keyFile, '--json'], 0],
      ['ps', ['ps', ...target, '--key-file', keyFile], 0],
      ['read', ['read', 'linux_banner', '64', ...target, '--key-file', keyFile], 0],
      ['heartbeat, another key', ['heartbeat', ...target, '--key-file', wrongKey], 'nonzero'],
      ['heartbeat, truncated key file', ['heartbeat', ...target, '--key-file', truncated], 'nonzero'],
      ['heartbeat, key file not hex', ['heartbeat', ...target, '--key-file', notHex], 'nonzero'],
      ['agent, truncated key file', ['agent', '--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile, '--listen', `shm:${agent.shmPath}-2`, '--key-file', truncated], 'nonzero'],
    ];
    for (const [what, args, expected] of runs) {
      const r = await grass(args);
      if (expected === 'nonzero') assert.notEqual(r.code, 0, what);
      else assert.equal(r.code, expected, `${what}: ${r.stderr}`);
      logs.push({ who: `grass ${what}`, text: r.stdout + r.stderr });
    }
    // The monitor: holds the agent's buffer, answers status, and logs as it runs and stops.
    const monitor = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'monitor', '--connect', `shm:${agent.shmPath}`, '--socket', socket, '--key-file', keyFile, '--poll-ms', '200'],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const monitorLog = { who: 'grass monitor', text: '' };
    logs.push(monitorLog);
    monitor.stdout!.setEncoding('utf8').on('data', (c: string) => (monitorLog.text += c));
    monitor.stderr!.setEncoding('utf8').on('data', (c: string) => (monitorLog.text += c));
    const monitorExited = new Promise<void>((resolve) => monitor.once('exit', () => resolve()));
    try {
      let status = { code: 1, stdout: '', stderr: '' };
      for (let i = 0; i < 60 && !/"state":\s*"up"/.test(status.stdout); i++) {
        await sleep(500);
        status = await grass(['monitor', 'status', '--socket', socket, '--json']);
      }
      assert.match(status.stdout, /"state":\s*"up"/, `monitor holds the agent: ${status.stdout} ${status.stderr} ${monitorLog.text}`);
      logs.push({ who: 'grass monitor status', text: status.stdout + status.stderr });
    } finally {
      monitor.kill('SIGTERM');
      await monitorExited;
    }
  } finally {
    await readOnly.stop(); // its last words go to the log searched below
  }
  const needles = [keyHex, keyHex.toUpperCase(), Buffer.from(keyHex, 'hex').toString('base64')];
  // Any 16 consecutive hex digits of the key (a partial leak, e.g. a truncated key echoed back).
  for (let i = 0; i + 16 <= keyHex.length; i += 8) needles.push(keyHex.slice(i, i + 16));
  let bytes = 0;
  for (const { who, text } of logs) {
    bytes += text.length;
    for (const needle of needles) assert.ok(!text.toLowerCase().includes(needle.toLowerCase()), `${who} printed key material: ${text}`);
  }
  console.log(`access: ${logs.length} logs and outputs (${bytes} bytes) searched for ${needles.length} forms of the key: none found`);
});
